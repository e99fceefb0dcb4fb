/* powershare installer page: plain JavaScript, no build step, no network but the gateway itself.
 *
 * Data flow: GET /api/auth, /api/profiles, /api/followers, /api/history once; then /api/stream (server-sent
 * events) pushes every new status and the event log. Writes go to the JSON API with the session cookie and the
 * CSRF token; a refusal (422) names the field, which is highlighted.
 */
"use strict";

const CHART_WINDOW_S = 300;
const CHART_MIN_WINDOW_S = 60;
const STATE_CLASS = { A: "idle", B: "connected", C: "charging", D: "charging", E: "unavailable", F: "unavailable" };

const LIST_FROM_UNITS = 13;
/* From this many units on, the compact list is the default (one line per unit instead of a card). */

const app = {
  auth: null,
  status: null,
  profiles: [],
  followers: [],
  circuitOf: new Map(),
  history: [],
  stream: null,
  followerIds: "",
  view: "overview",
  filter: "all",
  search: "",
  mode: localStorage.getItem("powershare.mode") || "",
  shown: new Map(),  /* unit id -> { key, el }: what is on screen, so a status redraws only what changed */
  perf: { updates: [], firstStatusMs: null },
};

/* The page's texts: i18n.js's catalogs (page.*), in the language chosen in the header. */
const t = (id, params) => i18n.t(id, params);

const SOURCE_TEXT = {
  installation: "page.source.installation", network: "page.source.network", ocpp: "page.source.ocpp",
  bms: "page.source.bms", bms_fallback: "page.source.bms_fallback", site_meter: "page.source.site_meter",
};
const sourceText = (source) => (SOURCE_TEXT[source] ? t(SOURCE_TEXT[source]) : source);

/* -- small helpers ------------------------------------------------------------------------------------------ */
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/* A number with a fixed count of decimals, written the language's way ("16,5" in German). */
const decimal = (value, digits) => Number(value).toLocaleString(i18n.lang, { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false });
const amps = (value, digits = 1) => (value === null || value === undefined ? "–" : `${decimal(value, digits)} A`);
const num = (value) => Math.round(value * 10) / 10;  /* a number for t(): i18n.t writes it the language's way */
const round = (value) => i18n.field(value);  /* a number for an input field or a card, the language's way */
const clock = (unixS) => new Date(unixS * 1000).toLocaleTimeString(i18n.lang, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

/* A text with elements in it ("add them in step 1 of {link}"): the template's {name}s become the given nodes. */
function fillNodes(el, id, nodes) {
  el.replaceChildren(...t(id).split(/\{([a-z][a-z0-9_]*)\}/).map((part, i) => (i % 2 ? nodes[part] || `{${part}}` : part)));
}

/* A unit's state in the reader's language (the API's state_text is English). */
function stateText(state, english) {
  const id = `page.state.${state}`;
  const text = t(id);
  return text === id ? english : text;
}

function setMessage(id, kind, text) {
  const el = $(id);
  el.className = text ? `msg ${kind}` : "msg";
  el.textContent = text || "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && app.auth && app.auth.csrf_token) headers["X-CSRF-Token"] = app.auth.csrf_token;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, status: 0, data: { detail: t("page.api.no_answer") } };
  }
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch (err) { data = { detail: t("page.api.http_status", { status: String(response.status) }) }; }
  }
  if (response.status === 401 && app.auth && app.auth.signed_in && !path.startsWith("/api/session")) {
    await loadAuth();  // the session ended (timeout, password changed elsewhere)
  }
  return { ok: response.ok, status: response.status, data };
}

/* -- authentication ----------------------------------------------------------------------------------------- */
async function loadAuth() {
  const result = await api("GET", "/api/auth");
  if (!result.ok) return;
  app.auth = result.data;
  const signedIn = app.auth.signed_in;
  renderAuthTexts();
  $("commission-fields").disabled = !signedIn;
  $("locked-note").hidden = signedIn;
  if (!app.auth.password_set) openAuthDialog("setup");
  else if (!signedIn && app.auth.read_access === "password") openAuthDialog("signin");
  document.dispatchEvent(new CustomEvent("powershare:auth"));  /* other views (commissioning.js) follow the sign-in */
}

let authMode = "signin";

/* The sign-in button and dialog, in the language in force (drawn again when it changes). */
function renderAuthTexts() {
  if (app.auth) {
    const signedIn = app.auth.signed_in;
    $("auth-button").textContent = t(signedIn ? "page.header.sign_out"
      : (app.auth.password_set ? "page.header.sign_in" : "page.header.set_password"));
    $("locked-sign-in").textContent = t(app.auth.password_set ? "page.header.sign_in" : "page.commission.set_installer_password");
  }
  const setup = authMode === "setup";
  $("auth-title").textContent = t(setup ? "page.auth.title_setup" : "page.auth.title_sign_in");
  $("auth-intro").textContent = t(setup ? "page.auth.intro_setup" : "page.auth.intro_sign_in");
  $("auth-submit").textContent = t(setup ? "page.auth.submit_setup" : "page.auth.submit_sign_in");
}

function openAuthDialog(mode) {
  authMode = mode;
  const setup = mode === "setup";
  renderAuthTexts();
  $("setup-code-label").hidden = !setup;
  $("password2-label").hidden = !setup;
  $("password").autocomplete = setup ? "new-password" : "current-password";
  setMessage("auth-msg", "", "");
  const dialog = $("auth-dialog");
  if (!dialog.open) dialog.showModal();
  (setup ? $("setup-code") : $("password")).focus();
}

async function submitAuth(event) {
  event.preventDefault();
  const password = $("password").value;
  let result;
  if (authMode === "setup") {
    if (password !== $("password2").value) {
      setMessage("auth-msg", "err", t("page.auth.passwords_differ"));
      return;
    }
    result = await api("POST", "/api/setup", { setup_code: $("setup-code").value.trim(), password });
  } else {
    result = await api("POST", "/api/session", { password });
  }
  if (!result.ok) {
    setMessage("auth-msg", "err", result.data.detail);
    return;
  }
  $("password").value = "";
  $("password2").value = "";
  $("setup-code").value = "";
  $("auth-dialog").close();
  await loadAuth();
  await loadAll();
}

async function authButton() {
  if (app.auth && app.auth.signed_in) {
    await api("DELETE", "/api/session");
    await loadAuth();
  } else {
    openAuthDialog(app.auth && !app.auth.password_set ? "setup" : "signin");
  }
}

/* -- loading and streaming ---------------------------------------------------------------------------------- */
async function loadAll() {
  const [profiles, followers, history] = await Promise.all(
    [api("GET", "/api/profiles"), api("GET", "/api/followers"), api("GET", "/api/history")]);
  if (profiles.ok) { app.profiles = profiles.data; renderProfiles(); }
  if (followers.ok) {
    app.followers = followers.data;
    app.followerIds = app.followers.map((f) => f.id).join(",");  /* the first status need not fetch them again */
    app.circuitOf = new Map(app.followers.map((f) => [f.id, f.circuit || "site"]));
    renderFollowers();
  }
  if (history.ok) {
    app.history = history.data.map((p) => ({ t: p.time_s, m: p.drawn_a, l: p.limit_a }));
    drawChart();
  }
  startStream();
}

function startStream() {
  if (app.stream) app.stream.close();
  const stream = new EventSource("/api/stream");
  app.stream = stream;
  stream.addEventListener("open", () => setConnection("live", "page.header.live"));
  stream.addEventListener("error", () => setConnection("wait", "page.header.reconnecting"));
  stream.addEventListener("status", (event) => {
    /* Only the newest status is drawn, once per frame: a slow phone skips snapshots instead of falling behind
     * (a backlog of unparsed messages would freeze the page). */
    const waiting = app.pendingStatus !== undefined;
    app.pendingStatus = event.data;
    if (!waiting) requestAnimationFrame(drawPendingStatus);
  });
  stream.addEventListener("events", (event) => { app.events = JSON.parse(event.data); if (app.view === "events") renderEvents(app.events); });
}

function drawPendingStatus() {
  const data = app.pendingStatus;
  app.pendingStatus = undefined;
  const started = performance.now();
  onStatus(JSON.parse(data));
  const ms = performance.now() - started;
  /* what one status costs this browser (parse and DOM update) and the wire: read by the benchmark */
  app.perf.updates.push({ ms, bytes: data.length });
  if (app.perf.updates.length > 200) app.perf.updates.shift();
  if (app.perf.firstStatusMs === null) {
    app.perf.firstStatusMs = performance.now();
    performance.mark("powershare-first-status");
  }
}

/* The connection pill: its kind and the id of its text, kept so a change of language redraws it. */
function setConnection(kind, id) {
  app.connection = { kind, id };
  const pill = $("conn");
  pill.className = `pill pill-${kind}`;
  pill.textContent = t(id);
}

function onStatus(status) {
  app.status = status;
  const last = app.history[app.history.length - 1];
  if (!last || status.time_s - last.t >= 1) {
    app.history.push({ t: status.time_s, m: status.drawn_a, l: status.limit.effective_limit_a });
    while (app.history.length && app.history[0].t < status.time_s - 600) app.history.shift();
  }
  render(status);
  const ids = status.units.map((u) => u.id).join(",");
  if (ids !== app.followerIds) {
    app.followerIds = ids;
    loadFollowers();
  }
}

async function loadFollowers() {
  const followers = await api("GET", "/api/followers");
  if (!followers.ok) return;
  app.followers = followers.data;
  app.circuitOf = new Map(app.followers.map((f) => [f.id, f.circuit || "site"]));
  renderFollowers();
  if (app.status) renderUnits(app.status);
}

/* -- views: #/ overview, #/commission, #/events (hash routing, so Back works and a view can be bookmarked) -- */
const VIEWS = { "": "overview", "commission": "commission", "events": "events" };

function route() {
  const name = VIEWS[location.hash.replace(/^#\/?/, "")] || "overview";
  app.view = name;
  for (const view of Object.values(VIEWS)) {
    $(`view-${view}`).hidden = view !== name;
    $(`tab-${view}`).setAttribute("aria-current", view === name ? "page" : "false");
  }
  if (app.status) render(app.status);
  if (name === "events" && app.events) renderEvents(app.events);
  if (name === "overview") drawChart();
}

/* -- rendering: site -------------------------------------------------------------------------------------- */
function render(status) {
  $("site-name").textContent = status.name;
  const limit = status.limit;
  const sharing = $("tile-sharing");
  $("sharing-value").textContent = t(status.enabled ? "page.tiles.on" : "page.tiles.off");
  $("sharing-note").textContent = status.enabled ? t("page.tiles.charging_count", { count: status.charging }) : t("page.tiles.no_car_charges");
  sharing.className = `tile ${status.enabled ? "good" : "warn"}`;

  const inForce = Math.min(...limit.effective_limit_a);
  $("limit-value").textContent = amps(inForce, 0);
  $("limit-note").textContent = t("page.tiles.set_by", { source: sourceText(limit.source) }) +
    (limit.source === "network" ? "" : ` · ${t("page.tiles.network", { limit: num(limit.network_limit_a) })}`);

  const busiest = Math.max(...status.drawn_a);
  const silent = status.units.filter((u) => !u.answering).length;
  $("drawn-value").textContent = amps(busiest);
  $("drawn-note").textContent = silent
    ? t("page.tiles.silent_counted", { count: silent })
    : t("page.tiles.power_total", { kw: decimal(status.power_w / 1000, 1) });

  const total = status.units.length;
  const down = status.units.filter((u) => u.availability === "unavailable").length;
  $("units-value").textContent = `${total - down}/${total}`;
  $("units-note").textContent = down ? t("page.tiles.not_answering_count", { count: down })
    : t(total ? "page.tiles.all_answering" : "page.tiles.none_yet");
  $("tile-units").className = `tile ${down ? "bad" : (total ? "good" : "")}`;

  if (app.view === "overview") renderUnits(status);
  if (app.view === "commission") renderLimits(status);
  renderEnable(status);
  $("chart-now").textContent = t("page.chart.now", { l1: amps(status.drawn_a[0]), l2: amps(status.drawn_a[1]),
    l3: amps(status.drawn_a[2]), limit: amps(inForce, 0) }) + (silent ? ` · ${t("page.chart.silent", { count: silent })}` : "");
  if (app.view === "overview") drawChart();
}

function unitKind(unit) {
  if (unit.availability === "unavailable") return "unavailable";
  if (unit.availability === "disabled" && unit.state !== "C" && unit.state !== "D") return "disabled";
  return STATE_CLASS[unit.state] || "idle";
}

/* The gateway's short reasons ("timeout", "exception 4") in an installer's words. */
function reasonText(reason) {
  if (!reason) return t("page.reason.none");
  if (reason === "timeout") return t("page.reason.timeout");
  if (reason.startsWith("connection")) return t("page.reason.connection", { reason });
  const exception = /^exception (\d+)$/.exec(reason);
  if (exception) return t("page.reason.exception", { code: exception[1] });
  if (reason.startsWith("invalid readings")) return t("page.reason.invalid", { detail: reason.slice(18) || "?" });
  return reason;
}

function signalClass(rate) {
  if (rate >= 0.95) return "q4";
  if (rate >= 0.8) return "q3";
  if (rate >= 0.5) return "q2";
  if (rate > 0) return "q1";
  return "q0";
}

function unitCard(unit) {
  const kind = unitKind(unit);
  const state = stateText(unit.state, unit.state_text);
  const badgeText = unit.availability === "unavailable" ? t("page.unit.not_answering")
    : (kind === "disabled" ? t("page.unit.disabled", { state }) : state);
  const scale = Math.max(unit.limit_a, unit.max_current_a, 1);
  const known = unit.answering;
  const phases = ["L1", "L2", "L3"].map((name, i) => {
    const shown = known ? unit.current_a[i] : unit.booked_a[i];
    const fill = h("div", { class: `fill l${i + 1}${known ? "" : " booked"}` });
    fill.style.width = `${Math.min(100, (shown / scale) * 100)}%`;
    return h("div", { class: "phase" }, h("span", {}, name), h("div", { class: "track" }, fill),
      h("span", { class: "val" }, known ? amps(shown) : (shown > 0 ? `≤ ${amps(shown)}` : "–")));  /* symbols: no words */
  });
  const link = unit.link;
  const signal = h("div", { class: "signal", title: t("page.unit.link_title") },
    h("span", { class: `bars ${signalClass(link.success_rate)}`, "aria-hidden": "true" }, h("i"), h("i"), h("i"), h("i")),
    t("page.unit.signal", { percent: Math.round(link.success_rate * 100) }) +
    (link.latency_ms !== null ? ` · ${Math.round(link.latency_ms)} ms` : ""));
  const energy = unit.session_energy_wh > 0 ? ` · ${t("page.unit.session", { kwh: decimal(unit.session_energy_wh / 1000, 2) })}` : "";
  return h("article", { class: `unit ${kind}`, "data-unit": unit.id, "data-setpoint": unit.setpoint_a },
    h("div", { class: "unit-head" }, h("span", { class: "unit-id" }, unit.id),
      h("span", { class: `badge ${kind}` }, badgeText)),
    known
      ? h("div", { class: "setpoint" }, h("b", { class: "setpoint-value" }, round(unit.setpoint_a)), h("span", {}, t("page.unit.setpoint")))
      : h("div", { class: "setpoint unknown" }, h("b", { class: "setpoint-value" }, "?"),
        h("span", {}, t("page.unit.unknown", { amps: amps(Math.max(...unit.booked_a)) }))),
    h("div", { class: "phases" }, phases),
    unit.availability === "unavailable" ? h("div", { class: "reason" }, t("page.unit.reason", { reason: reasonText(unit.unavailable_reason) })) : null,
    unit.waiting ? h("div", { class: "waiting" }, unit.unavailable_reason
      ? t("page.unit.waiting_reason", { reason: unit.unavailable_reason }) : t("page.unit.waiting")) : null,
    h("div", { class: "unit-meta" }, t("page.unit.limit", { limit: num(unit.limit_a), max: num(unit.max_current_a) }) + energy),
    signal);
}

function unitFilter(unit) {
  if (!unit.answering) return "unavailable";
  if (unit.waiting) return "waiting";
  if (unit.state === "C" || unit.state === "D") return "charging";
  return "other";
}

function listMode(status) {
  if (app.mode) return app.mode === "list";
  return status.units.length >= LIST_FROM_UNITS;
}

/* One line per unit: name, state, setpoint and current on its busiest phase; the details stay on the card. */
function unitRow(unit) {
  const row = h("div", { class: "unit row", "data-unit": unit.id, role: "listitem" },
    h("span", { class: "unit-id" }, unit.id), h("span", { class: "badge" }),
    h("span", { class: "row-set" }, h("b", { class: "setpoint-value" }), " A"), h("span", { class: "row-now" }));
  updateRow(row, unit);
  return row;
}

/* A row is kept and only its texts change: rebuilding hundreds of rows a second is what a phone cannot afford. */
function updateRow(row, unit) {
  const kind = unitKind(unit);
  const known = unit.answering;
  const now = known ? Math.max(...unit.current_a) : Math.max(...unit.booked_a);
  const state = unit.availability === "unavailable" ? t("page.unit.not_answering")
    : (unit.waiting ? t("page.row.waiting") : stateText(unit.state, unit.state_text));
  const [, badge, set, current] = row.children;
  const put = (el, text) => { if (el.textContent !== text) el.textContent = text; };
  if (row.className !== `unit row ${kind}`) row.className = `unit row ${kind}`;
  if (badge.className !== `badge ${kind}`) badge.className = `badge ${kind}`;
  put(badge, state);
  put(set.firstChild, known ? round(unit.setpoint_a) : "?");
  put(current, t(known ? "page.row.now" : "page.row.booked", { amps: amps(now) }));
  row.dataset.setpoint = unit.setpoint_a;
}

function unitKey(unit, list) {
  /* what the element shows, so an unchanged unit keeps its element */
  return `${list ? "r" : "c"}|${unit.state}|${unit.availability}|${unit.answering}|${unit.waiting}|${round(unit.setpoint_a)}|` +
    `${unit.current_a.map(round)}|${unit.booked_a.map(round)}|${round(unit.limit_a)}|${unit.unavailable_reason}|` +
    `${Math.round(unit.session_energy_wh / 10)}|${Math.round(unit.link.success_rate * 100)}|${Math.round(unit.link.latency_ms || 0)}`;
}

function renderUnits(status) {
  const box = $("units");
  const counts = { all: status.units.length, charging: 0, waiting: 0, unavailable: 0, other: 0 };
  for (const unit of status.units) counts[unitFilter(unit)] += 1;
  for (const name of ["all", "charging", "waiting", "unavailable"]) $(`count-${name}`).textContent = counts[name];
  const list = listMode(status);
  $("mode-list").setAttribute("aria-pressed", String(list));
  $("mode-cards").setAttribute("aria-pressed", String(!list));
  if (!status.units.length) {
    if (!box.querySelector(".empty")) {
      const empty = h("p", { class: "empty" });
      fillNodes(empty, "page.units.empty", { link: h("a", { href: "#/commission" }, t("page.tabs.commission")) });
      box.replaceChildren(empty);
    }
    return;
  }
  const needle = app.search.trim().toLowerCase();
  const groups = new Map();
  const seen = new Set();
  for (const unit of status.units) {
    const circuit = app.circuitOf.get(unit.id) || "site";
    if (app.filter !== "all" && unitFilter(unit) !== app.filter) continue;
    if (needle && !unit.id.toLowerCase().includes(needle) && !circuit.toLowerCase().includes(needle)) continue;
    seen.add(unit.id);
    const key = unitKey(unit, list);
    let shown = app.shown.get(unit.id);
    if (shown && shown.key !== key && list && shown.list) {
      updateRow(shown.el, unit);
      shown.key = key;
    } else if (!shown || shown.key !== key) {
      shown = { key, list, el: list ? unitRow(unit) : unitCard(unit) };
      app.shown.set(unit.id, shown);
    }
    if (!groups.has(circuit)) groups.set(circuit, { els: [], units: [] });
    groups.get(circuit).els.push(shown.el);
    groups.get(circuit).units.push(unit);
  }
  for (const id of [...app.shown.keys()]) if (!seen.has(id)) app.shown.delete(id);
  const sections = [];
  const oldSections = new Map([...box.querySelectorAll(":scope > .group")].map((el) => [el.dataset.circuit, el]));
  const several = groups.size > 1 || (groups.size === 1 && !groups.has("site"));
  for (const [circuit, group] of groups) {
    let section = oldSections.get(circuit);
    if (!section) {
      section = h("section", { class: "group", "data-circuit": circuit },
        h("h3", { class: "group-head" }, h("span", { class: "group-name" }), h("small", { class: "group-note" })),
        h("div", { class: "group-body", role: "list" }));
    }
    section.querySelector(".group-head").hidden = !several;
    section.querySelector(".group-name").textContent = circuit === "site" ? t("page.group.site") : t("page.group.circuit", { circuit });
    const charging = group.units.filter((u) => unitFilter(u) === "charging").length;
    const drawn = [0, 1, 2].map((p) => group.units.reduce((sum, u) => sum + (u.answering ? u.current_a[p] : u.booked_a[p]), 0));
    section.querySelector(".group-note").textContent = t("page.group.note", { shown: group.units.length, charging, amps: amps(Math.max(...drawn)) });
    const body = section.querySelector(".group-body");
    body.className = `group-body ${list ? "rows" : "units"}`;
    if (group.els.length !== body.children.length || group.els.some((el, i) => body.children[i] !== el)) {
      body.replaceChildren(...group.els);
    }
    sections.push(section);
  }
  if (!sections.length) sections.push(h("p", { class: "empty" }, t("page.units.no_match")));
  if (sections.length !== box.children.length || sections.some((el, i) => box.children[i] !== el)) {
    box.replaceChildren(...sections);
  }
}

function setFilter(name) {
  app.filter = name;
  document.querySelectorAll("[data-filter]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.filter === name)));
  if (app.status) renderUnits(app.status);
}

function setMode(mode) {
  app.mode = mode;
  localStorage.setItem("powershare.mode", mode);
  if (app.status) renderUnits(app.status);
}

/* -- rendering: chart ------------------------------------------------------------------------------------- */
function niceStep(range) {
  const raw = range / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();

  const now = app.status ? app.status.time_s : Date.now() / 1000;
  const first = app.history.length ? app.history[0].t : now;
  const span = Math.min(CHART_WINDOW_S, Math.max(CHART_MIN_WINDOW_S, Math.ceil((now - first) / 60) * 60));
  const start = now - span;
  const points = app.history.filter((p) => p.t >= start - 2);
  let top = 10;
  for (const p of points) top = Math.max(top, ...p.m, ...p.l.filter(Number.isFinite));
  top *= 1.12;
  const step = niceStep(top);
  top = Math.ceil(top / step) * step;

  const left = 44, right = 8, upper = 8, lower = 24;
  const plotW = width - left - right, plotH = height - upper - lower;
  const x = (t) => left + ((t - start) / span) * plotW;
  const y = (a) => upper + plotH - (a / top) * plotH;

  g.font = "13px system-ui, sans-serif";
  g.fillStyle = "#4a5568";
  g.strokeStyle = "#dde3ea";
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (let a = 0; a <= top + 1e-9; a += step) {
    g.beginPath(); g.moveTo(left, y(a)); g.lineTo(width - right, y(a)); g.stroke();
    g.fillText(`${round(a)} A`, left - 6, y(a));
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  const tick = span <= 60 ? 15 : 60;
  for (let s = 0; s <= span; s += tick) {
    const label = s === span ? t("page.chart.axis_now")
      : (tick < 60 ? t("page.chart.seconds_ago", { n: span - s }) : t("page.chart.minutes_ago", { n: (span - s) / 60 }));
    g.textAlign = s === 0 ? "left" : (s === span ? "right" : "center");
    g.fillText(label, x(start + s), upper + plotH + 6);
  }
  if (!points.length) return;

  const line = (values, stroke, widthPx, dash) => {
    g.save();
    g.beginPath();
    g.rect(left, upper - 2, plotW, plotH + 4);
    g.clip();
    g.strokeStyle = stroke;
    g.lineWidth = widthPx;
    g.setLineDash(dash);
    g.lineJoin = "round";
    g.beginPath();
    points.forEach((p, i) => {
      const v = values(p);
      if (i === 0) g.moveTo(x(p.t), y(v)); else g.lineTo(x(p.t), y(v));
    });
    g.stroke();
    g.restore();
  };
  line((p) => Math.min(...p.l), color("--limit"), 2.5, [8, 5]);
  line((p) => p.m[2], color("--l3"), 2.5, []);
  line((p) => p.m[1], color("--l2"), 2.5, []);
  line((p) => p.m[0], color("--l1"), 2.5, []);
}

/* -- rendering: commissioning ----------------------------------------------------------------------------- */
function profileById(name) { return app.profiles.find((p) => p.name === name); }

function renderProfiles() {
  const select = $("add-profile");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, t("page.add.choose_charger")),
    ...app.profiles.map((p) => h("option", { value: p.name }, `${p.manufacturer} ${p.models.join(", ")} (${p.name})`)));
  if (chosen) select.value = chosen;
  onProfileChange();
}

function onProfileChange() {
  const profile = profileById($("add-profile").value);
  const type = $("add-type");
  for (const option of type.options) option.disabled = !!profile && !profile.transports.includes(option.value);
  if (type.selectedOptions[0] && type.selectedOptions[0].disabled) {
    const first = [...type.options].find((o) => !o.disabled);
    if (first) type.value = first.value;
  }
  if (profile) $("add-unit").value = profile.default_unit_id;
  onTypeChange();
}

function onTypeChange() {
  const serial = $("add-type").value === "rtu";
  document.querySelectorAll("#add-form .net").forEach((el) => { el.hidden = serial; });
  document.querySelectorAll("#add-form .serial").forEach((el) => { el.hidden = !serial; });
}

function onPhasesChange() {
  const one = $("add-phases").value === "1";
  const options = one ? ["L1", "L2", "L3"] : ["L1L2L3", "L2L3L1", "L3L1L2", "L1L3L2", "L3L2L1", "L2L1L3"];
  $("add-rotation").replaceChildren(...options.map((o) => h("option", { value: o }, o)));
}

function describeTransport(link) {
  /* numbers as strings: a port or unit id is not a quantity ("5020", never "5.020") */
  const values = { device: link.device, baudrate: String(link.baudrate), parity: link.parity, host: link.host,
    port: String(link.port), unit: String(link.unit) };
  if (link.type === "rtu") return t("page.follower.transport_rtu", values);
  return t(link.type === "tcp" ? "page.follower.transport_tcp" : "page.follower.transport_rtu_over_tcp", values);
}

function renderFollowers() {
  const list = $("followers");
  list.replaceChildren(...app.followers.map((f) => {
    const remove = h("button", { class: "btn btn-danger", type: "button", "data-remove": f.id }, t("page.follower.remove"));
    remove.addEventListener("click", () => removeFollower(f.id, remove));
    return h("li", { class: "follower" },
      h("div", {}, h("b", {}, f.id), h("small", {}, `${f.profile} · ${describeTransport(f.transport)}`)), remove);
  }));
}

function renderLimits(status) {
  const input = $("network-limit");
  const limit = status.limit;
  if (document.activeElement !== input && !input.dataset.dirty) input.value = round(limit.network_limit_a);
  $("network-hint").textContent = t("page.limits.hint", { installation: num(limit.installation_limit_a),
    now: num(Math.min(...limit.effective_limit_a)), source: sourceText(limit.source) });

  const box = $("unit-limits");
  const rows = new Map([...box.children].map((row) => [row.dataset.unit, row]));
  const wanted = status.units.map((u) => u.id);
  for (const [id, row] of rows) if (!wanted.includes(id)) row.remove();
  status.units.forEach((unit, i) => {
    let row = rows.get(unit.id);
    if (!row) {
      const field = h("input", { type: "text", inputmode: "decimal", autocomplete: "off" });
      keepWhileEditing(field);
      const button = h("button", { class: "btn btn-primary", type: "button" });
      button.addEventListener("click", () => setUnitLimit(unit.id, field));
      row = h("div", { class: "unit-limit", "data-unit": unit.id },
        h("span", { class: "name" }, unit.id, h("small", {})), field, button);
    }
    if (box.children[i] !== row) box.insertBefore(row, box.children[i] || null);
    const field = row.querySelector("input");
    if (document.activeElement !== field && !field.dataset.dirty) field.value = round(unit.limit_a);
    row.querySelector("small").textContent = t("page.limits.range", { max: num(unit.max_current_a) });
    field.setAttribute("aria-label", t("page.limits.unit_field", { unit: unit.id }));
    row.querySelector("button").textContent = t("page.limits.set");
  });
}

/* A limit field shows the gateway's value until the installer starts editing it; then live updates leave it
 * alone until it is sent, or left unchanged. */
function keepWhileEditing(field) {
  field.addEventListener("focus", () => { field.dataset.dirty = "1"; field.dataset.shown = field.value; });
  field.addEventListener("input", () => { field.dataset.dirty = "1"; });
  field.addEventListener("blur", () => { if (field.value === field.dataset.shown) delete field.dataset.dirty; });
}

function renderEnable(status) {
  const button = $("enable-button");
  button.textContent = t(status.enabled ? "page.enable.disable" : "page.enable.enable");
  button.className = `btn btn-wide ${status.enabled ? "btn-stop" : "btn-go"}`;
  button.dataset.enabled = status.enabled ? "1" : "0";
  $("enable-hint").textContent = t(status.enabled ? "page.enable.hint_on" : "page.enable.hint_off");
}

function renderEvents(events) {
  $("events").replaceChildren(...events.slice().reverse().slice(0, 100).map((e) => h("li", {},
    h("time", {}, clock(e.time_s)),
    h("span", { class: e.kind }, e.text, e.origin ? h("span", { class: "origin" }, t("page.events.by", { origin: e.origin })) : null))));
}

/* -- writes -------------------------------------------------------------------------------------------------- */
function markField(form, field) {
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  if (!field) return;
  const names = { "transport.host": "host", "transport.port": "port", "transport.unit": "unit", "transport.device": "device",
    "transport.type": "type", "transport": "host", "transport.baudrate": "baudrate", "transport.parity": "parity" };
  const el = form.elements[names[field] || field];
  if (el) el.setAttribute("aria-invalid", "true");
}

/* The add form as the gateway's body; a typed number that is not one is named ({ bad, what }), never sent as 0. */
function followerBody() {
  const f = $("add-form").elements;
  const type = f.type.value;
  const typed = {};
  for (const [name, what] of [["unit", "page.add.unit"], ["port", "page.add.port"], ["breaker_limit_a", "page.add.breaker"]]) {
    const text = f[name].value.trim();
    if (text === "" || (name === "port" && type === "rtu")) continue;
    typed[name] = i18n.number(text);
    if (typed[name] === null) return { bad: name, what };
  }
  const transport = { type, unit: typed.unit };
  if (type === "rtu") {
    transport.device = f.device.value.trim();
    transport.baudrate = Number(f.baudrate.value);
    transport.parity = f.parity.value;
  } else {
    transport.host = f.host.value.trim();
    transport.port = typed.port;
  }
  const body = { id: f.id.value.trim(), profile: f.profile.value, transport,
    phases: Number(f.phases.value), phase_rotation: f.phase_rotation.value };
  if (typed.breaker_limit_a !== undefined) body.breaker_limit_a = typed.breaker_limit_a;
  return { body };
}

async function addFollower(event) {
  event.preventDefault();
  const form = $("add-form");
  const { body, bad, what } = followerBody();
  if (bad) { markField(form, bad); setMessage("add-msg", "err", t("page.add.not_number", { what: t(what) })); return; }
  if (!body.id) { markField(form, "id"); setMessage("add-msg", "err", t("page.add.need_name")); return; }
  if (!body.profile) { markField(form, "profile"); setMessage("add-msg", "err", t("page.add.need_profile")); return; }
  markField(form, null);
  setMessage("add-msg", "busy", t("page.add.reading", { unit: body.id }));
  $("add-submit").disabled = true;
  const result = await api("POST", "/api/followers", body);
  $("add-submit").disabled = false;
  if (!result.ok) {
    markField(form, result.data.field);
    setMessage("add-msg", "err", result.data.detail);
    return;
  }
  const probe = result.data.probe;
  const serial = probe.identity && probe.identity.serial ? String(probe.identity.serial) : "";
  const timed = probe.latency_ms !== null;
  const id = `page.add.answered${timed ? "_in" : ""}${serial ? "_serial" : ""}`;  /* answered, _in, _serial, _in_serial */
  setMessage("add-msg", "ok", t(id, { unit: body.id, ms: String(Math.max(1, Math.round(probe.latency_ms || 0))), serial,
    state: probe.state ? stateText(probe.state, probe.state_text) : probe.state_text }));
  form.elements.id.value = "";
  await loadFollowers();
}

async function removeFollower(id, button) {
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = t("page.follower.confirm_remove");
    setTimeout(() => { button.classList.remove("armed"); button.textContent = t("page.follower.remove"); }, 4000);
    return;
  }
  const result = await api("DELETE", `/api/followers/${encodeURIComponent(id)}`);
  setMessage("add-msg", result.ok ? "ok" : "err", result.ok ? t("page.follower.removed", { unit: id }) : result.data.detail);
  await loadFollowers();
}

/* A limit as typed: a number of amperes, or a message saying what is wrong. An empty field is never 0 A. */
function readAmps(field) {
  const text = field.value.trim();
  if (text === "") return { error: t("page.limit.empty") };
  const value = i18n.number(text);
  if (value === null) return { error: t("page.limit.not_a_number") };
  if (value < 0) return { error: t("page.limit.negative") };
  return { value };
}

/* Check, confirm 0 A (it stops charging), send; the answer or the refusal shows in the step's message. */
async function sendLimit(field, path, zeroWhat, done) {
  const typed = readAmps(field);
  if (typed.error) {
    field.setAttribute("aria-invalid", "true");
    setMessage("network-msg", "err", typed.error);
    field.focus();
    return;
  }
  const body = { limit_a: typed.value };
  if (typed.value === 0) {
    const sure = await askConfirm(t("page.zero.title"), t("page.zero.text", { what: zeroWhat }), t("page.zero.yes"));
    if (!sure) { setMessage("network-msg", "", ""); return; }
    body.confirm_zero = true;
  }
  const result = await api("PUT", path, body);
  field.toggleAttribute("aria-invalid", !result.ok);
  if (result.ok) delete field.dataset.dirty;
  setMessage("network-msg", result.ok ? "ok" : "err", result.ok ? done(typed.value) : result.data.detail);
}

async function setNetworkLimit(event) {
  event.preventDefault();
  await sendLimit($("network-limit"), "/api/network-limit", t("page.zero.every_car"),
    (value) => t("page.limits.network_set", { limit: num(value) }));
}

async function setUnitLimit(id, field) {
  await sendLimit(field, `/api/units/${encodeURIComponent(id)}/limit`, t("page.zero.unit", { unit: id }),
    (value) => t("page.limits.unit_set", { unit: id, limit: num(value) }));
}

/* A modal yes/no, for the choices that stop cars: resolves true only on the explicit confirming button. */
function askConfirm(title, text, yes) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = yes;
  return new Promise((resolve) => {
    const finish = () => { dialog.removeEventListener("close", finish); resolve(dialog.returnValue === "yes"); };
    dialog.returnValue = "";
    dialog.addEventListener("close", finish);
    dialog.showModal();
    $("confirm-no").focus();
  });
}

async function toggleEnabled() {
  const enable = $("enable-button").dataset.enabled !== "1";
  if (!enable && !await askConfirm(t("page.disable.title"), t("page.disable.text"), t("page.disable.yes"))) {
    return;
  }
  const result = await api("PUT", "/api/enabled", { enabled: enable });
  setMessage("enable-msg", result.ok ? "ok" : "err",
    result.ok ? t(enable ? "page.enable.enabled" : "page.enable.disabled") : result.data.detail);
}

/* -- language ---------------------------------------------------------------------------------------------- */
/* After a change of language (i18n.js has refilled every data-i18n element): draw again what the script wrote. */
function onLanguage() {
  renderAuthTexts();
  if (app.connection) setConnection(app.connection.kind, app.connection.id);
  fillNodes($("export-text"), "page.export.text", { command: h("code", {}, "powershare check-config") });
  renderProfiles();
  renderFollowers();
  if (app.status) {
    app.shown.clear();  /* the units' cards and rows are kept while unchanged: build them again */
    $("units").replaceChildren();
    render(app.status);
  }
  if (app.events) renderEvents(app.events);
  drawChart();
}

/* -- start ------------------------------------------------------------------------------------------------- */
function start() {
  $("auth-form").addEventListener("submit", submitAuth);
  $("auth-cancel").addEventListener("click", () => $("auth-dialog").close());
  $("auth-button").addEventListener("click", authButton);
  $("locked-sign-in").addEventListener("click", authButton);
  $("add-form").addEventListener("submit", addFollower);
  $("add-profile").addEventListener("change", onProfileChange);
  $("add-type").addEventListener("change", onTypeChange);
  $("add-phases").addEventListener("change", onPhasesChange);
  $("network-form").addEventListener("submit", setNetworkLimit);
  keepWhileEditing($("network-limit"));
  $("enable-button").addEventListener("click", toggleEnabled);
  window.addEventListener("resize", drawChart);
  window.addEventListener("hashchange", route);
  document.querySelectorAll("[data-filter]").forEach((b) => b.addEventListener("click", () => setFilter(b.dataset.filter)));
  $("mode-list").addEventListener("click", () => setMode("list"));
  $("mode-cards").addEventListener("click", () => setMode("cards"));
  $("unit-search").addEventListener("input", (event) => {
    app.search = event.target.value;
    if (app.status) renderUnits(app.status);
  });
  document.addEventListener("powershare:language", onLanguage);
  setConnection("wait", "page.header.connecting");
  route();
  onPhasesChange();
  onTypeChange();
  loadAuth().then(loadAll);
}

document.addEventListener("DOMContentLoaded", start);
