"""Who may change the site from the web: the installer, who knows the installer password.

* There is no built-in password. While none is set, the gateway makes a one-time setup code at start and logs it
  (``WebServer.setup_code`` holds it for a CLI that prints it): whoever sets the password must show that code, so a
  stranger on the site's network cannot claim a fresh gateway before the installer does.
* The password is stored as an scrypt hash with a random salt (``web-password.json`` in the state directory,
  written atomically). Hashing runs in a worker thread, one at a time, so the control loop never waits for it and
  parallel guesses cannot exhaust memory.
* A wrong password or setup code makes that client wait before its next attempt: 1 s, then 2, 4, ... up to 60 s.
  An attempt made too early is refused without being checked (HTTP 429 with ``Retry-After``), so guessing is slow
  and costs the gateway nothing.
* Across all clients, at most ``GLOBAL_CHECKS_PER_S`` attempts a second are checked (after a burst of
  ``GLOBAL_BURST``): an attacker with many addresses gets no more guesses than one with a few. An attempt over the
  budget waits its turn, at most ``MAX_QUEUE_WAIT_S``, and one that would wait longer is refused unchecked (429
  with ``Retry-After``); each client has at most one attempt waiting. So the installer's right password from an
  address that has not failed is answered within ``MAX_QUEUE_WAIT_S`` plus one check, or is told when to retry,
  however many addresses are guessing; and it never inherits another address's backoff.
* A correct password opens a session: a random token, sent back as an HttpOnly, SameSite=Strict cookie for the
  page and in the body for scripts (``Authorization: Bearer``). A write with the cookie must also carry the
  session's CSRF token in ``X-CSRF-Token``; a bearer token needs none, since browsers never attach it by
  themselves. Sessions live in memory (a restart signs everyone out) and end after ``session_timeout_s`` idle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError
from gateway.i18n.text import tr
from gateway.site.store import JsonStore

PASSWORD_FILE = "web-password.json"
FORMAT_VERSION = 1
MIN_PASSWORD = 8
MAX_PASSWORD = 256
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
MAX_TRACKED_CLIENTS = 1024
GLOBAL_CHECKS_PER_S = 2.0
"""Password and setup-code checks per second, all clients together (each check is one scrypt, ~0.1 s of CPU)."""
GLOBAL_BURST = 5
"""Checks allowed back to back before the rate applies (a few typos in a row are not an attack)."""
MAX_QUEUE_WAIT_S = 4.0
"""The longest an attempt waits for the global budget; one that would wait longer is refused at once."""
MAX_SESSIONS = 64
"""More sign-ins than this end the oldest session: memory stays bounded whatever a client does."""


class AuthError(GatewayError):
    """A request the installer's credentials do not cover; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


def scrypt_hash(password: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(422, tr("auth.password_length", least=MIN_PASSWORD, most=MAX_PASSWORD))


class PasswordStore:
    """The installer password's scrypt hash on disk; the parameters are stored with it so they can be raised."""

    def __init__(self, state_dir: Path) -> None:
        self._store = JsonStore(state_dir / PASSWORD_FILE)
        self._record = self._load()
        self._lock = asyncio.Lock()

    @property
    def is_set(self) -> bool:
        return self._record is not None

    async def set(self, password: str) -> None:
        """Hash and persist; raises ``gateway.site.store.StoreError`` (nothing changed) if it cannot be written."""
        check_password_rules(password)
        salt = secrets.token_bytes(16)
        async with self._lock:
            digest = await asyncio.to_thread(scrypt_hash, password, salt)
            record = {"version": FORMAT_VERSION, "scheme": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
                      "salt": _b64(salt), "hash": _b64(digest)}
            self._store.save(record)
            self._record = record

    async def verify(self, password: str) -> bool:
        record = self._record
        if record is None or len(password) > MAX_PASSWORD:
            return False
        async with self._lock:
            digest = await asyncio.to_thread(scrypt_hash, password, _unb64(record["salt"]), int(record["n"]),
                                             int(record["r"]), int(record["p"]))
        return hmac.compare_digest(digest, _unb64(record["hash"]))

    def _load(self) -> dict[str, Any] | None:
        record = self._store.load()
        if record is None:
            return None
        try:
            if record.get("version") != FORMAT_VERSION or record.get("scheme") != "scrypt":
                raise ValueError("unknown format")
            _unb64(record["salt"]), _unb64(record["hash"])
            int(record["n"]), int(record["r"]), int(record["p"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{self._store.path} is not a password record ({exc}); remove it and restart to set "
                             "a new password with a setup code") from None
        return record


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text, validate=True)


@dataclass
class _Backoff:
    failures: int = 0
    next_allowed_s: float = 0.0


class Throttle:
    """Per client: after the n-th wrong attempt, the next one is allowed only after 2^(n-1) s (at most 60 s)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._clients: dict[str, _Backoff] = {}

    def wait_s(self, client: str) -> float:
        """How long ``client`` must still wait before an attempt is checked; 0 if it may try now."""
        entry = self._clients.get(client)
        return max(0.0, entry.next_allowed_s - self._clock()) if entry else 0.0

    def failed(self, client: str) -> float:
        """Record a wrong attempt; returns the wait imposed."""
        now = self._clock()
        if len(self._clients) >= MAX_TRACKED_CLIENTS and client not in self._clients:
            self._forget_expired(now)
        entry = self._clients.setdefault(client, _Backoff())
        entry.failures += 1
        delay = min(FIRST_DELAY_S * 2.0 ** min(entry.failures - 1, 16), MAX_DELAY_S)
        entry.next_allowed_s = now + delay
        return delay

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def _forget_expired(self, now: float) -> None:
        """Clients whose delay has run out forget their count, except when that would leave the table full: then the
        oldest go (an attacker with a thousand addresses still waits on each)."""
        expired = [c for c, e in self._clients.items() if e.next_allowed_s + MAX_DELAY_S < now]
        for client in expired:
            del self._clients[client]
        while len(self._clients) >= MAX_TRACKED_CLIENTS:
            oldest = min(self._clients, key=lambda c: self._clients[c].next_allowed_s)
            del self._clients[oldest]


class GlobalBudget:
    """The global rate of checks as a schedule: each admitted attempt gets the next free slot (``GLOBAL_BURST`` slots
    may be taken at once); ``reserve`` says how long to wait for it, or None when that would exceed the queue."""

    def __init__(self, clock: Callable[[], float], rate_per_s: float = GLOBAL_CHECKS_PER_S,
                 burst: int = GLOBAL_BURST, max_wait_s: float = MAX_QUEUE_WAIT_S) -> None:
        self._clock = clock
        self._interval = 1.0 / rate_per_s
        self._slack = (burst - 1) * self._interval
        self._max_wait_s = max_wait_s
        self._next_s = clock()

    def reserve(self) -> float | None:
        now = self._clock()
        slot = max(self._next_s, now)
        wait = max(0.0, slot - self._slack - now)
        if wait > self._max_wait_s:
            return None
        self._next_s = slot + self._interval
        return wait

    def retry_after_s(self) -> float:
        """When an attempt refused by ``reserve`` could get a slot."""
        return max(1.0, self._next_s - self._slack - self._max_wait_s - self._clock())


@dataclass
class Session:
    token: str
    csrf_token: str
    last_used_s: float


class Sessions:
    def __init__(self, clock: Callable[[], float], timeout_s: float) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._sessions: dict[str, Session] = {}

    def open(self) -> Session:
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_used_s)
            del self._sessions[oldest.token]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock())
        self._sessions[session.token] = session
        return session

    def find(self, token: str | None) -> Session | None:
        """The live session for ``token`` (its idle timer restarts), or None."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_used_s > self._timeout_s:
            del self._sessions[token]
            return None
        session.last_used_s = now
        return session

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)

    def close_all(self) -> None:
        self._sessions.clear()


def new_setup_code() -> str:
    """Twelve characters that survive being read off a terminal and typed on a phone: no 0/O, 1/I/L."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


class Guard:
    """The installer's credentials: password, setup code, sessions and the brute-force delay, together."""

    def __init__(self, state_dir: Path, clock: Callable[[], float], session_timeout_s: float,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.passwords = PasswordStore(state_dir)
        self.sessions = Sessions(clock, session_timeout_s)
        self.throttle = Throttle(clock)
        self.budget = GlobalBudget(clock)
        self.setup_code: str | None = None if self.passwords.is_set else new_setup_code()
        self._checking = asyncio.Lock()
        self._sleep = sleep
        self._waiting: set[str] = set()

    @contextlib.asynccontextmanager
    async def _turn(self, client: str) -> AsyncIterator[None]:
        """Admit ``client`` (its own backoff, then the global budget) and hold the one checking slot."""
        self._admit(client)
        if client in self._waiting:
            raise AuthError(429, tr("auth.still_checking"), retry_after_s=1.0)
        wait = self.budget.reserve()
        if wait is None:
            retry = self.budget.retry_after_s()
            raise AuthError(429, tr("auth.too_many_here", seconds=_seconds(retry)), retry_after_s=retry)
        self._waiting.add(client)
        try:
            if wait > 0:
                await self._sleep(wait)
            async with self._checking:
                self._admit(client)
                yield
        finally:
            self._waiting.discard(client)

    async def set_first_password(self, setup_code: str, password: str, client: str) -> Session:
        check_password_rules(password)
        async with self._turn(client):
            if self.setup_code is None:
                raise AuthError(409, tr("auth.password_already_set"))
            if not hmac.compare_digest(_normalise_code(setup_code), _normalise_code(self.setup_code)):
                self._refuse(client, tr("auth.wrong_setup_code"))
            await self.passwords.set(password)
            self.setup_code = None
            self.throttle.succeeded(client)
            return self.sessions.open()

    async def sign_in(self, password: str, client: str) -> Session:
        async with self._turn(client):
            if not self.passwords.is_set:
                raise AuthError(409, tr("auth.no_password_yet"))
            if not await self.passwords.verify(password):
                self._refuse(client, tr("auth.wrong_password"))
            self.throttle.succeeded(client)
            return self.sessions.open()

    async def change_password(self, current: str, new: str, client: str) -> Session:
        """Every session ends (a leaked session must not outlive the password); the caller gets a new one."""
        check_password_rules(new)
        async with self._turn(client):
            if not await self.passwords.verify(current):
                self._refuse(client, tr("auth.wrong_current_password"))
            await self.passwords.set(new)
            self.throttle.succeeded(client)
            self.sessions.close_all()
            return self.sessions.open()

    def _admit(self, client: str) -> None:
        wait = self.throttle.wait_s(client)
        if wait > 0:
            raise AuthError(429, tr("auth.too_many_wrong", seconds=_seconds(wait)), retry_after_s=wait)

    def _refuse(self, client: str, message: str) -> None:
        delay = self.throttle.failed(client)
        raise AuthError(401, tr("auth.refused", reason=message, seconds=_seconds(delay)), retry_after_s=delay)

    def authenticate(self, token: str | None, csrf_token: str | None, *, by_cookie: bool, write: bool) -> Session:
        """The session behind a request, or ``AuthError``: 401 without one, 403 for a cookie write without CSRF."""
        session = self.sessions.find(token)
        if session is None:
            raise AuthError(401, tr("auth.sign_in_first"))
        if write and by_cookie and not (csrf_token and hmac.compare_digest(csrf_token, session.csrf_token)):
            raise AuthError(403, tr("auth.csrf"))
        return session


def _seconds(wait_s: float) -> str:
    """Rounded up, so a refusal never says "0 s" while it still refuses."""
    whole = max(1, math.ceil(wait_s))
    return tr("auth.seconds.one") if whole == 1 else tr("auth.seconds.other", n=whole)


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())
