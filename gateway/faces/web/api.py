"""The HTTP API and the page, as one FastAPI application over ``GatewayControl``.

Every write becomes one command for ``GatewayControl.apply``, the call the site file's rules and the BMS face go
through too; a refusal (``CommandRejected``) is answered 422 with the field at fault, and nothing has changed.
Adding a follower reads the device first (``gateway.runtime.follower_probe``): one that does not answer, or answers
nonsense, is refused with what to check. Reads are open or need a session (``web.read_access``); writes always
need one (``gateway.faces.web.auth``). The OpenAPI document is at ``/openapi.json`` and browsable at ``/docs`` (served
from the gateway itself: a site often has no internet).

A refusal's ``detail`` is in the client's language: the page's choice (the ``powershare_lang`` cookie its language
switch sets), else Accept-Language, else English (``gateway.i18n.language.web_language``); ``field`` and every
other name in the API stay as they are. The page's own texts are served by ``GET /api/i18n/{lang}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from drivers.profile import ProfileRegistry
from gateway.faces.web.auth import AuthError, Guard, Session
from gateway.faces.web.commissioning import add_commissioning_routes
from gateway.faces.web.exports import events_csv, history_csv, sessions_csv
from gateway.faces.web.live import Broadcast
from gateway.faces.web.messages import readable
from gateway.faces.web.schemas import (
    AddedOut,
    AuthOut,
    CatalogOut,
    EnabledIn,
    EventOut,
    HistoryPoint,
    LanguageOut,
    LanguagesOut,
    LimitIn,
    LimitOut,
    PasswordChangeIn,
    PasswordIn,
    ProfileOut,
    Refusal,
    SessionNeedIn,
    SessionOut,
    SessionsOut,
    SetupIn,
    StatusOut,
    UnitOut,
    event_out,
    history_point,
    limit_out,
    probe_out,
    profile_out,
    session_record,
    status_out,
    unit_out,
)
from gateway.i18n.catalog import SHIPPED
from gateway.i18n.language import web_language
from gateway.i18n.text import joined, localized, text_of, tr
from gateway.runtime.commands import (
    AddFollower,
    Command,
    CommandRejected,
    GatewayControl,
    RemoveFollower,
    SetEnabled,
    SetNetworkLimit,
    SetSessionNeed,
    SetUnitLimit,
)
from gateway.runtime.follower_probe import Probe, ProbeFailed
from gateway.runtime.history.recorder import SITE
from gateway.runtime.history.service import History
from gateway.runtime.history.store import EventQuery, SessionQuery
from gateway.site.config import ChargerConfig, SiteConfig
from gateway.site.export import export_site
from gateway.site.settings import SiteSettings
from gateway.site.store import StoreError
from gateway.site.validation import profile_issues

log = logging.getLogger("gateway.faces.web")

COOKIE = "powershare_session"
LANG_COOKIE = "powershare_lang"
"""The page's language switch sets it (``static/i18n.js``); not a secret, so readable by the page."""
PAGE_MESSAGES = "page."
"""The ids ``GET /api/i18n/{lang}`` serves: the page's texts."""
SETTLE_S = 2.0
"""A write is answered with the next snapshot's limits, or the latest one if none comes within this."""
STATIC = files("gateway.faces.web") / "static"
_PAGE_HEADERS = {"Cache-Control": "no-cache"}
"""The security headers are on every response (``gateway.faces.web.middleware.SecurityHeaders``)."""
_READ_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Refusal, "description": "sign in first"}}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal, "description": "sign in first"},
    403: {"model": Refusal, "description": "cookie session without the X-CSRF-Token header"},
    422: {"model": Refusal, "description": "refused by the commissioning rules; nothing was changed"},
}
MOST_CSV_ROWS = 100_000
"""The most sessions or events one CSV file holds (the newest, where a range holds more)."""
ChartRange = Literal["10m", "1h", "24h", "7d"]
"""``gateway.runtime.history.recorder``: RECENT and the VIEWS."""
CsvRange = Literal["1h", "24h", "7d"]
_RANGE_HELP = ("10m: the live chart, a point a second (since the gateway started); 1h: 10 s steps; 24h: 2 min; "
               "7d: 15 min")
_TIME_HELP = "ISO 8601 (2026-05-01T08:00:00Z; without a time zone: UTC) or UNIX seconds"
From = Annotated[datetime | None, Query(alias="from", description="events at or after this time, sessions still "
                                                                 f"running at or after it; {_TIME_HELP}")]
To = Annotated[datetime | None, Query(alias="to", description="events and sessions that started before this "
                                                             f"time; {_TIME_HELP}")]
Circuit = Annotated[str | None, Query(max_length=64, description="a circuit's id; the whole site if absent")]
UnitFilter = Annotated[str | None, Query(max_length=64, description="only this unit's sessions")]
_HISTORY_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": Refusal, "description": "a query parameter is not valid: the detail says which and why"},
    503: {"model": Refusal, "description": "the history cannot be read now (the gateway's log says why)"}}
_CSV = {"content": {"text/csv": {}}, "description": "a CSV file (RFC 4180, UTF-8, times in UTC)"}
_SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal, "description": "wrong password or setup code"},
    409: {"model": Refusal, "description": "no password yet (sign in), or one already (setup)"},
    422: {"model": Refusal, "description": "the request or the new password breaks a rule"},
    429: {"model": Refusal, "description": "too many wrong attempts: wait Retry-After seconds"},
}


@dataclass
class ApiContext:
    """What the routes need; ``WebServer`` builds it."""

    control: GatewayControl
    guard: Guard
    profiles: ProfileRegistry
    probe: Probe
    followers: Callable[[], Sequence[ChargerConfig]]
    site: Callable[[], SiteConfig]
    """The site as the gateway starts with it (the site file with the settings changed at run time)."""
    site_name: str
    read_access: Literal["open", "password"]
    secure_cookie: bool
    history: History
    broadcast: Broadcast
    keepalive_s: float = 15.0
    metrics: Callable[[], bytes] | None = None
    """The Prometheus text exposition of the gateway (``gateway.faces.web.metrics``)."""
    settings: SiteSettings | None = None
    """The supervisor's settings (the commissioning API reads them; changes go through ``control``)."""
    restart: Callable[[str], None] | None = None
    """Restart the gateway (``gateway.runtime.restart``); None where it cannot restart itself."""
    instance: str = ""
    """Changes at every start (the page tells a restart by it)."""


_bearer = HTTPBearer(auto_error=False, description="the token from POST /api/session")
_cookie = APIKeyCookie(name=COOKIE, auto_error=False, description="set by POST /api/session")
_csrf = APIKeyHeader(name="X-CSRF-Token", auto_error=False, description="with the cookie, on every write")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Cookie = Annotated[str | None, Depends(_cookie)]
Csrf = Annotated[str | None, Depends(_csrf)]


class NotFound(CommandRejected):
    """A read of something the site does not have."""


def language_of(request: Request) -> str:
    """The language the client reads: the page's choice, else Accept-Language, else English."""
    return web_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def refusal(request: Request, status: int, detail: str, field: str | None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal in the client's language (``detail``); ``field`` stays the request's own name."""
    lang = language_of(request)
    return JSONResponse({"detail": localized(detail, lang), "field": field}, status_code=status,
                        headers={**(headers or {}), "Content-Language": lang})


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def reader(request: Request, bearer: Bearer, cookie: Cookie) -> None:
    """Reads need a session where ``web.read_access`` is "password" (only then is this a dependency)."""
    token = bearer.credentials if bearer else cookie
    context_of(request).guard.authenticate(token, None, by_cookie=bearer is None, write=False)


def token_of(request: Request) -> str | None:
    """The session token of a request to an open endpoint (which declares no security in the OpenAPI)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return request.cookies.get(COOKIE)


def writer(request: Request, bearer: Bearer, cookie: Cookie, csrf: Csrf) -> Session:
    token = bearer.credentials if bearer else cookie
    return context_of(request).guard.authenticate(token, csrf, by_cookie=bearer is None, write=True)


Write = Annotated[Session, Depends(writer)]


def build_app(ctx: ApiContext) -> FastAPI:
    app = FastAPIOffline(title="powershare gateway", version="1", redoc_url=None,
                         description="Commissioning and status of a power-sharing network. Writes need a session: "
                                     "POST /api/session, then a Bearer token or the cookie with X-CSRF-Token.")
    app.state.ctx = ctx
    guard = ctx.guard
    control = ctx.control
    read_deps = [Depends(reader)] if ctx.read_access == "password" else []
    read_errors = _READ_ERRORS if ctx.read_access == "password" else {}

    async def apply(command: Command, request: Request) -> LimitOut:
        """Apply, then answer with the limits of the snapshot that follows (the loop acts at once on a command)."""
        published = ctx.broadcast.next_snapshot()
        try:
            control.apply(command, f"web installer@{client_of(request)}")
        except CommandRejected as exc:
            raise CommandRejected(text_of(exc), field=_request_field(command, exc.field)) from None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_S):  # not wait_for: on 3.11 it can lose a cancellation at shutdown
                await published.wait()
        return limit_out(control.status())

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))} if exc.retry_after_s else None
        return refusal(request, exc.status, text_of(exc), None, headers)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return refusal(request, 404, text_of(exc), exc.field)

    @app.exception_handler(CommandRejected)
    async def _rejected(request: Request, exc: CommandRejected) -> JSONResponse:
        return refusal(request, 422, text_of(exc), exc.field)

    @app.exception_handler(StoreError)
    async def _unreadable(request: Request, exc: StoreError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": f"The gateway's history cannot be read now: {exc}", "field": None},
                            status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        fields = [_field(e.get("loc", ())) for e in errors]
        detail = joined(readable(f, e) for f, e in zip(fields, errors, strict=True))
        return refusal(request, 422, detail or tr("web.invalid_request"), fields[0] if fields else None)

    # -- the page ------------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                        headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(str(STATIC / "favicon.svg"), media_type="image/svg+xml")

    # -- the page's languages (open like the page itself: the sign-in dialog needs them too) ---------------------
    @app.get("/api/i18n", tags=["page"], summary="The languages there are texts for, and the one this client gets")
    async def languages(request: Request) -> LanguagesOut:
        return LanguagesOut(lang=language_of(request),
                            languages=[LanguageOut(code=c, name=SHIPPED.name(c)) for c in SHIPPED.languages])

    @app.get("/api/i18n/{lang}", tags=["page"], responses={404: {"model": Refusal, "description": "no such language"}},
             summary="The page's texts in one language (English where a text is not translated yet)")
    async def catalog(lang: str) -> CatalogOut:
        if lang not in SHIPPED.languages:
            raise NotFound(tr("web.no_language", lang=lang), field="lang")
        return CatalogOut(lang=lang, messages=SHIPPED.complete(lang, PAGE_MESSAGES))

    # -- sessions ------------------------------------------------------------------------------------------------
    def signed_in(response: Response, session: Session) -> SessionOut:
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", secure=ctx.secure_cookie,
                            path="/")
        return SessionOut(token=session.token, csrf_token=session.csrf_token)

    @app.get("/api/auth", tags=["session"], summary="Whether a password is set and this client is signed in")
    async def auth_state(request: Request) -> AuthOut:
        session = guard.sessions.find(token_of(request))
        return AuthOut(password_set=guard.passwords.is_set, signed_in=session is not None,
                       read_access=ctx.read_access,
                       csrf_token=session.csrf_token if session else None)

    @app.post("/api/setup", tags=["session"], responses=_SIGN_IN_ERRORS,
              summary="Set the first installer password, with the setup code from the gateway's log")
    async def setup(body: SetupIn, request: Request, response: Response) -> SessionOut:
        session = await _stored(guard.set_first_password(body.setup_code, body.password, client_of(request)))
        log.warning("installer password set from %s", client_of(request))
        return signed_in(response, session)

    @app.post("/api/session", tags=["session"], responses=_SIGN_IN_ERRORS, summary="Sign in")
    async def sign_in(body: PasswordIn, request: Request, response: Response) -> SessionOut:
        return signed_in(response, await guard.sign_in(body.password, client_of(request)))

    @app.delete("/api/session", tags=["session"], status_code=204, responses={
        403: {"model": Refusal, "description": "cookie session without the X-CSRF-Token header"}},
        summary="Sign out (with the cookie, the X-CSRF-Token header is needed as for any write)")
    async def sign_out(request: Request, bearer: Bearer, cookie: Cookie, csrf: Csrf) -> Response:
        token = bearer.credentials if bearer else cookie
        if token and guard.sessions.find(token) is not None:
            # Another site must not be able to sign the installer out: a cookie sign-out is a write like any other.
            guard.authenticate(token, csrf, by_cookie=bearer is None, write=True)
            guard.sessions.close(token)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.post("/api/password", tags=["session"], responses={**_SIGN_IN_ERRORS, **_WRITE_ERRORS},
              summary="Change the installer password (every other session ends)")
    async def change_password(body: PasswordChangeIn, session: Write, request: Request,
                              response: Response) -> SessionOut:
        new = await _stored(guard.change_password(body.current_password, body.new_password, client_of(request)))
        log.warning("installer password changed from %s", client_of(request))
        return signed_in(response, new)

    # -- reads ---------------------------------------------------------------------------------------------------
    @app.get("/metrics", dependencies=read_deps, include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus scrapes here; readable like the status (``web.read_access``)."""
        if ctx.metrics is None:
            raise NotFound(tr("web.no_metrics"))
        return Response(ctx.metrics(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @app.get("/api/status", tags=["status"], dependencies=read_deps, responses=read_errors,
             summary="The whole site: limits, totals, every unit")
    async def status() -> StatusOut:
        return status_out(control.status(), ctx.site_name)

    @app.get("/api/units", tags=["status"], dependencies=read_deps, responses=read_errors,
             summary="Every unit's state, currents and link quality")
    async def units() -> list[UnitOut]:
        return [unit_out(u) for u in control.status().units]

    @app.get("/api/units/{unit_id}", tags=["status"], dependencies=read_deps,
             responses={**read_errors, 404: {"model": Refusal, "description": "no such unit"}},
             summary="One unit's state, currents and link quality")
    async def unit(unit_id: str) -> UnitOut:
        for u in control.status().units:
            if u.id == unit_id:
                return unit_out(u)
        raise NotFound(tr("web.no_unit", unit=unit_id), field="unit_id")

    @app.get("/api/limit", tags=["status"], dependencies=read_deps, responses=read_errors,
             summary="The effective limit and which source sets it")
    async def limit() -> LimitOut:
        return limit_out(control.status())

    # -- history -------------------------------------------------------------------------------------------------
    history_errors = {**read_errors, **_HISTORY_ERRORS}

    @app.get("/api/events", tags=["history"], dependencies=read_deps, responses=history_errors,
             summary="State and settings changes with who made them, across restarts: the newest of the range, "
                     "oldest first")
    async def events(start: From = None, end: To = None,
                     limit: Annotated[int, Query(ge=1, le=1000, description="how many (the newest)")] = 200,
                     ) -> list[EventOut]:
        start_s, end_s = _range(start, end)
        return [event_out(e) for e in await ctx.history.events(EventQuery(start_s, end_s, limit))]

    @app.get("/api/history", tags=["history"], dependencies=read_deps, responses=history_errors,
             summary="Current drawn per phase (mean and peak of each step) and the limit, oldest first")
    async def history(span: Annotated[ChartRange, Query(alias="range", description=_RANGE_HELP)] = "10m",
                      circuit: Circuit = None) -> list[HistoryPoint]:
        return [history_point(p) for p in await ctx.history.points(span, _series(ctx, circuit))]

    @app.get("/api/sessions", tags=["history"], dependencies=read_deps, responses=history_errors,
             summary="Charging sessions (plug-in to unplug) across restarts, newest first, a page at a time")
    async def sessions(unit: UnitFilter = None, start: From = None, end: To = None,
                       limit: Annotated[int, Query(ge=1, le=500, description="sessions per page")] = 50,
                       offset: Annotated[int, Query(ge=0, le=1_000_000, description="sessions to skip")] = 0,
                       ) -> SessionsOut:
        start_s, end_s = _range(start, end)
        total, rows = await ctx.history.sessions(SessionQuery(unit, start_s, end_s, limit, offset))
        return SessionsOut(total=total, offset=offset, limit=limit, sessions=[session_record(s) for s in rows])

    @app.get("/api/history.csv", tags=["history"], dependencies=read_deps, response_class=Response,
             responses={**history_errors, 200: _CSV},
             summary="Current per phase as CSV: every stored step of the range (10 s for 1h and 24h, 1 min for 7d)")
    async def history_file(span: Annotated[CsvRange, Query(alias="range", description="1h, 24h or 7d")] = "24h",
                           circuit: Circuit = None) -> Response:
        points = await ctx.history.samples(span, _series(ctx, circuit))
        name = f"powershare-history-{circuit or SITE}-{span}.csv"
        return _csv(await asyncio.to_thread(history_csv, points), name)

    @app.get("/api/sessions.csv", tags=["history"], dependencies=read_deps, response_class=Response,
             responses={**history_errors, 200: _CSV}, summary="Charging sessions as CSV, oldest first")
    async def sessions_file(unit: UnitFilter = None, start: From = None, end: To = None) -> Response:
        start_s, end_s = _range(start, end)
        _, rows = await ctx.history.sessions(SessionQuery(unit, start_s, end_s, MOST_CSV_ROWS, 0, oldest_first=True))
        return _csv(await asyncio.to_thread(sessions_csv, rows), "powershare-sessions.csv")

    @app.get("/api/events.csv", tags=["history"], dependencies=read_deps, response_class=Response,
             responses={**history_errors, 200: _CSV}, summary="Events as CSV, oldest first")
    async def events_file(start: From = None, end: To = None) -> Response:
        start_s, end_s = _range(start, end)
        rows = await ctx.history.events(EventQuery(start_s, end_s, MOST_CSV_ROWS))
        return _csv(await asyncio.to_thread(events_csv, rows), "powershare-events.csv")

    @app.get("/api/profiles", tags=["commissioning"], dependencies=read_deps, responses=read_errors,
             summary="The charger profiles a follower can be added with")
    async def profiles() -> list[ProfileOut]:
        return [profile_out(ctx.profiles.charger(n)) for n in ctx.profiles.names("charger")]

    @app.get("/api/followers", tags=["commissioning"], dependencies=read_deps, responses=read_errors,
             summary="The followers as configured: profile, transport, wiring")
    async def followers() -> list[ChargerConfig]:
        return list(ctx.followers())

    @app.get("/api/site.yaml", tags=["commissioning"], dependencies=read_deps, response_class=Response,
             responses={**read_errors, 200: {"content": {"application/yaml": {}},
                                             "description": "a site file (the OCPP AuthorizationKey left out)"}},
             summary="The site as the gateway starts with it, with the changes made here, as a site file")
    async def site_yaml() -> Response:
        return Response(export_site(ctx.site()), media_type="application/yaml; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="site.yaml"',
                                 "Cache-Control": "no-store"})

    @app.get("/api/stream", tags=["status"], dependencies=read_deps, responses={
        **read_errors, 200: {"content": {"text/event-stream": {}}, "description":
                              "server-sent events: `status` (as GET /api/status) after every control step, "
                              "`events` (as GET /api/events) when there are new ones"}},
             response_class=StreamingResponse, summary="Live updates (server-sent events)")
    async def stream() -> StreamingResponse:
        return StreamingResponse(_sse(ctx), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- commissioning -------------------------------------------------------------------------------------------
    @app.post("/api/followers", tags=["commissioning"], status_code=201, responses=_WRITE_ERRORS,
              summary="Step 1: add a follower, after reading it live with its profile and transport")
    async def add_follower(body: ChargerConfig, session: Write, request: Request) -> AddedOut:
        if any(u.id == body.id for u in control.status().units):
            raise CommandRejected(tr("settings.charger.exists", charger=body.id), field="id")
        issues = profile_issues({"chargers": [body.model_dump(mode="json", exclude_unset=True)]}, ctx.profiles)
        if issues:
            raise CommandRejected(joined(i.message for i in issues), field=issues[0].path.split(".", 1)[1])
        if body.profile not in ctx.profiles.names("charger"):
            raise CommandRejected(tr("probe.profile_unknown", profile=body.profile), field="profile")
        try:
            report = await ctx.probe(body)
        except ProbeFailed as exc:
            raise CommandRejected(text_of(exc), field=exc.field) from None
        await apply(AddFollower(body), request)
        return AddedOut(follower=body, probe=probe_out(report))

    @app.delete("/api/followers/{follower_id}", tags=["commissioning"], responses=_WRITE_ERRORS,
                summary="Remove a follower")
    async def remove_follower(follower_id: str, session: Write, request: Request) -> LimitOut:
        return await apply(RemoveFollower(follower_id), request)

    @app.put("/api/network-limit", tags=["commissioning"], responses=_WRITE_ERRORS,
             summary="Step 2: set the network limit (per phase; 0 A needs confirm_zero)")
    async def set_network_limit(body: LimitIn, session: Write, request: Request) -> LimitOut:
        _zero_confirmed(body, tr("web.zero.every_car"))
        return await apply(SetNetworkLimit(body.limit_a), request)

    @app.put("/api/units/{unit_id}/limit", tags=["commissioning"], responses=_WRITE_ERRORS,
             summary="Step 2: set one unit's limit (0 A keeps it at 0 A, with confirm_zero)")
    async def set_unit_limit(unit_id: str, body: LimitIn, session: Write, request: Request) -> LimitOut:
        _zero_confirmed(body, tr("web.zero.unit", unit=unit_id))
        return await apply(SetUnitLimit(unit_id, body.limit_a), request)

    @app.put("/api/units/{unit_id}/session-need", tags=["sessions"], responses=_WRITE_ERRORS,
             summary="The present car's departure and/or energy wanted (both null clears; ends at unplug)")
    async def set_session_need(unit_id: str, body: SessionNeedIn, session: Write, request: Request) -> LimitOut:
        return await apply(SetSessionNeed(unit_id, body.departure, body.energy_kwh), request)

    @app.put("/api/enabled", tags=["commissioning"], responses=_WRITE_ERRORS,
             summary="Step 3: enable or disable power sharing")
    async def set_enabled(body: EnabledIn, session: Write, request: Request) -> LimitOut:
        return await apply(SetEnabled(body.enabled), request)

    add_commissioning_routes(app, ctx, write=Depends(writer), read=read_deps, read_errors=read_errors,
                             refusal=refusal)
    return app


async def _stored(operation: Any) -> Session:
    """A password that cannot be written is refused (nothing changed), not a server error."""
    try:
        session: Session = await operation
    except StoreError as exc:
        raise CommandRejected(tr("web.password_not_saved", error=str(exc)), field="password") from exc
    return session


def _range(start: datetime | None, end: datetime | None) -> tuple[float | None, float | None]:
    """UNIX seconds; a time without a zone is UTC. Refused unless the start comes first."""
    start_s, end_s = _unix(start), _unix(end)
    if start_s is not None and end_s is not None and start_s >= end_s:
        raise CommandRejected("The start time must be before the end time", field="from")
    return start_s, end_s


def _unix(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def _series(ctx: ApiContext, circuit: str | None) -> str:
    """The history's series: the site, or a circuit of the site file."""
    if circuit is None:
        return SITE
    if circuit not in {c.id for c in ctx.site().circuits}:
        raise CommandRejected(f"This site has no circuit {circuit!r}", field="circuit")
    return circuit


def _csv(body: str, filename: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def _zero_confirmed(body: LimitIn, what: str) -> None:
    """0 A is a legitimate choice (stop charging on purpose) but also what an empty field used to send: it is
    taken only when the request says it means it."""
    if body.limit_a == 0 and not body.confirm_zero:
        raise CommandRejected(tr("web.zero_unconfirmed", what=what), field="confirm_zero")


def _request_field(command: Command, field: str | None) -> str | None:
    """The rules name site-file keys ("network_limit_a", "chargers[3].breaker_limit_a"); the page needs the
    request's own names ("limit_a", "breaker_limit_a")."""
    if field is None:
        return None
    if isinstance(command, AddFollower):
        return re.sub(r"^chargers\[\d+\]\.", "", field)
    if isinstance(command, SetNetworkLimit) and field == "network_limit_a":
        return "limit_a"
    return field


def _field(loc: Sequence[Any]) -> str | None:
    """``("body", "transport", "tcp", "port")`` -> ``"transport.port"``: the request's own names, no union tags."""
    parts = [str(p) for p in loc if p not in ("body", "path", "query", "header", "cookie")]
    parts = [p for i, p in enumerate(parts) if not (i and parts[i - 1] == "transport" and p in _TRANSPORT_TAGS)]
    return ".".join(parts) or None


_TRANSPORT_TAGS = ("tcp", "rtu", "rtu-over-tcp")


def _sse_message(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _sse(ctx: ApiContext) -> AsyncIterator[bytes]:
    """The current status at once, then every new one, until the client leaves or the server stops."""
    with ctx.broadcast.subscribe() as page:
        yield _sse_message("status", status_out(ctx.control.status(), ctx.site_name).model_dump(mode="json"))
        yield _sse_message("events", [event_out(e).model_dump(mode="json") for e in ctx.control.recent_events()])
        while not page.closed:
            try:
                async with asyncio.timeout(ctx.keepalive_s):  # not wait_for: see above
                    items = await page.take()
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            for event, data in items:
                yield _sse_message(event, data)
