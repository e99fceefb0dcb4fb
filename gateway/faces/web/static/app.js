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

const SOURCE_TEXT = {
  installation: "the installation limit", network: "the network limit", ocpp: "the central system (OCPP)",
  bms: "the building management system (BMS)", bms_fallback: "the BMS fallback (no word from the BMS)", site_meter: "the site meter",
};
const sourceText = (source) => SOURCE_TEXT[source] || source;

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

const amps = (value, digits = 1) => (value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)} A`);
const round = (value) => (Math.round(value * 10) / 10).toString();
const clock = (unixS) => new Date(unixS * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

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
    return { ok: false, status: 0, data: { detail: "the gateway did not answer (network)" } };
  }
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch (err) { data = { detail: `HTTP ${response.status}` }; }
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
  $("auth-button").textContent = signedIn ? "Sign out" : (app.auth.password_set ? "Sign in" : "Set password");
  $("commission-fields").disabled = !signedIn;
  $("locked-note").hidden = signedIn;
  $("locked-sign-in").textContent = app.auth.password_set ? "Sign in" : "Set installer password";
  if (!app.auth.password_set) openAuthDialog("setup");
  else if (!signedIn && app.auth.read_access === "password") openAuthDialog("signin");
  document.dispatchEvent(new CustomEvent("powershare:auth"));  /* other views (commissioning.js) follow the sign-in */
}

let authMode = "signin";

function openAuthDialog(mode) {
  authMode = mode;
  const setup = mode === "setup";
  $("auth-title").textContent = setup ? "Set the installer password" : "Sign in";
  $("auth-intro").textContent = setup
    ? "This gateway has no installer password yet. Enter the setup code from the gateway's log, then choose a password of at least 8 characters."
    : "Enter the installer password.";
  $("setup-code-label").hidden = !setup;
  $("password2-label").hidden = !setup;
  $("password").autocomplete = setup ? "new-password" : "current-password";
  $("auth-submit").textContent = setup ? "Set password" : "Sign in";
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
      setMessage("auth-msg", "err", "The two passwords differ.");
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
  stream.addEventListener("open", () => setConnection("live", "live"));
  stream.addEventListener("error", () => setConnection("wait", "reconnecting…"));
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

function setConnection(kind, text) {
  const pill = $("conn");
  pill.className = `pill pill-${kind}`;
  pill.textContent = text;
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
  $("sharing-value").textContent = status.enabled ? "On" : "Off";
  $("sharing-note").textContent = status.enabled ? `${status.charging} charging` : "no car charges";
  sharing.className = `tile ${status.enabled ? "good" : "warn"}`;

  const inForce = Math.min(...limit.effective_limit_a);
  $("limit-value").textContent = amps(inForce, 0);
  $("limit-note").textContent = `set by ${sourceText(limit.source)}` +
    (limit.source === "network" ? "" : ` · network ${round(limit.network_limit_a)} A`);

  const busiest = Math.max(...status.drawn_a);
  const silent = status.units.filter((u) => !u.answering).length;
  $("drawn-value").textContent = amps(busiest);
  $("drawn-note").textContent = silent
    ? `incl. ${silent} not answering, counted at their booked current`
    : `${(status.power_w / 1000).toFixed(1)} kW in total`;

  const total = status.units.length;
  const down = status.units.filter((u) => u.availability === "unavailable").length;
  $("units-value").textContent = `${total - down}/${total}`;
  $("units-note").textContent = down ? `${down} not answering` : (total ? "all answering" : "none yet");
  $("tile-units").className = `tile ${down ? "bad" : (total ? "good" : "")}`;

  if (app.view === "overview") renderUnits(status);
  if (app.view === "commission") renderLimits(status);
  renderEnable(status);
  $("chart-now").textContent = `now L1 ${amps(status.drawn_a[0])} · L2 ${amps(status.drawn_a[1])} · ` +
    `L3 ${amps(status.drawn_a[2])} · limit ${amps(inForce, 0)}` +
    (silent ? ` · ${silent} not answering: counted at their booked current` : "");
  if (app.view === "overview") drawChart();
}

function unitKind(unit) {
  if (unit.availability === "unavailable") return "unavailable";
  if (unit.availability === "disabled" && unit.state !== "C" && unit.state !== "D") return "disabled";
  return STATE_CLASS[unit.state] || "idle";
}

/* The gateway's short reasons ("timeout", "exception 4") in an installer's words. */
function reasonText(reason) {
  if (!reason) return "no reason given";
  if (reason === "timeout") return "no answer in time (timeout)";
  if (reason.startsWith("connection")) return `${reason}: check the device's power and network`;
  const exception = /^exception (\d+)$/.exec(reason);
  if (exception) return `the device refused the request (Modbus exception ${exception[1]})`;
  if (reason.startsWith("invalid readings")) return `it answers with values that make no sense (${reason.slice(18) || "?"})`;
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
  const badgeText = unit.availability === "unavailable" ? "not answering"
    : (kind === "disabled" ? `disabled · ${unit.state_text}` : unit.state_text);
  const scale = Math.max(unit.limit_a, unit.max_current_a, 1);
  const known = unit.answering;
  const phases = ["L1", "L2", "L3"].map((name, i) => {
    const shown = known ? unit.current_a[i] : unit.booked_a[i];
    const fill = h("div", { class: `fill l${i + 1}${known ? "" : " booked"}` });
    fill.style.width = `${Math.min(100, (shown / scale) * 100)}%`;
    return h("div", { class: "phase" }, h("span", {}, name), h("div", { class: "track" }, fill),
      h("span", { class: "val" }, known ? amps(shown) : (shown > 0 ? `≤ ${amps(shown)}` : "–")));
  });
  const link = unit.link;
  const signal = h("div", { class: "signal", title: "link quality: share of recent exchanges that succeeded" },
    h("span", { class: `bars ${signalClass(link.success_rate)}`, "aria-hidden": "true" }, h("i"), h("i"), h("i"), h("i")),
    `signal ${Math.round(link.success_rate * 100)} %` + (link.latency_ms !== null ? ` · ${Math.round(link.latency_ms)} ms` : ""));
  const energy = unit.session_energy_wh > 0 ? ` · session ${(unit.session_energy_wh / 1000).toFixed(2)} kWh` : "";
  return h("article", { class: `unit ${kind}`, "data-unit": unit.id, "data-setpoint": unit.setpoint_a },
    h("div", { class: "unit-head" }, h("span", { class: "unit-id" }, unit.id),
      h("span", { class: `badge ${kind}` }, badgeText)),
    known
      ? h("div", { class: "setpoint" }, h("b", { class: "setpoint-value" }, round(unit.setpoint_a)), h("span", {}, "A setpoint"))
      : h("div", { class: "setpoint unknown" }, h("b", { class: "setpoint-value" }, "?"),
        h("span", {}, `current unknown: counted at ${amps(Math.max(...unit.booked_a))} (booked)`)),
    h("div", { class: "phases" }, phases),
    unit.availability === "unavailable" ? h("div", { class: "reason" }, `Not answering: ${reasonText(unit.unavailable_reason)}`) : null,
    unit.waiting ? h("div", { class: "waiting" }, unit.unavailable_reason ? `Waiting: ${unit.unavailable_reason}` : "Car waiting for current") : null,
    h("div", { class: "unit-meta" }, `limit ${round(unit.limit_a)} A of ${round(unit.max_current_a)} A${energy}`),
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
  const state = unit.availability === "unavailable" ? "not answering" : (unit.waiting ? "waiting" : unit.state_text);
  const [, badge, set, current] = row.children;
  const put = (el, text) => { if (el.textContent !== text) el.textContent = text; };
  if (row.className !== `unit row ${kind}`) row.className = `unit row ${kind}`;
  if (badge.className !== `badge ${kind}`) badge.className = `badge ${kind}`;
  put(badge, state);
  put(set.firstChild, known ? round(unit.setpoint_a) : "?");
  put(current, known ? `${amps(now)} now` : `≤ ${amps(now)} booked`);
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
      box.replaceChildren(h("p", { class: "empty" }, "No followers yet: add them in step 1 of ",
        h("a", { href: "#/commission" }, "Power Sharing"), "."));
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
    section.querySelector(".group-name").textContent = circuit === "site" ? "On the supply" : `Circuit ${circuit}`;
    const charging = group.units.filter((u) => unitFilter(u) === "charging").length;
    const drawn = [0, 1, 2].map((p) => group.units.reduce((sum, u) => sum + (u.answering ? u.current_a[p] : u.booked_a[p]), 0));
    section.querySelector(".group-note").textContent = `${group.units.length} shown · ${charging} charging · ${amps(Math.max(...drawn))}`;
    const body = section.querySelector(".group-body");
    body.className = `group-body ${list ? "rows" : "units"}`;
    if (group.els.length !== body.children.length || group.els.some((el, i) => body.children[i] !== el)) {
      body.replaceChildren(...group.els);
    }
    sections.push(section);
  }
  if (!sections.length) sections.push(h("p", { class: "empty" }, "No charger matches: clear the search or choose All."));
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
    const label = s === span ? "now" : (tick < 60 ? `-${span - s} s` : `-${(span - s) / 60} min`);
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
  select.replaceChildren(h("option", { value: "" }, "choose the charger…"),
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

function describeTransport(t) {
  if (t.type === "rtu") return `RS-485 ${t.device} ${t.baudrate} ${t.parity}, unit ${t.unit}`;
  return `${t.type === "tcp" ? "TCP" : "RS-485 via"} ${t.host}:${t.port}, unit ${t.unit}`;
}

function renderFollowers() {
  const list = $("followers");
  list.replaceChildren(...app.followers.map((f) => {
    const remove = h("button", { class: "btn btn-danger", type: "button", "data-remove": f.id }, "Remove");
    remove.addEventListener("click", () => removeFollower(f.id, remove));
    return h("li", { class: "follower" },
      h("div", {}, h("b", {}, f.id), h("small", {}, `${f.profile} · ${describeTransport(f.transport)}`)), remove);
  }));
}

function renderLimits(status) {
  const input = $("network-limit");
  const limit = status.limit;
  input.max = limit.installation_limit_a;
  if (document.activeElement !== input && !input.dataset.dirty) input.value = round(limit.network_limit_a);
  $("network-hint").textContent = `Installation limit ${round(limit.installation_limit_a)} A per phase. ` +
    `In force now: ${round(Math.min(...limit.effective_limit_a))} A, set by ${sourceText(limit.source)}.`;

  const box = $("unit-limits");
  const rows = new Map([...box.children].map((row) => [row.dataset.unit, row]));
  const wanted = status.units.map((u) => u.id);
  for (const [id, row] of rows) if (!wanted.includes(id)) row.remove();
  status.units.forEach((unit, i) => {
    let row = rows.get(unit.id);
    if (!row) {
      const field = h("input", { type: "number", inputmode: "decimal", min: "0", step: "0.1", "aria-label": `limit of ${unit.id} in A` });
      keepWhileEditing(field);
      const button = h("button", { class: "btn btn-primary", type: "button" }, "Set");
      button.addEventListener("click", () => setUnitLimit(unit.id, field));
      row = h("div", { class: "unit-limit", "data-unit": unit.id },
        h("span", { class: "name" }, unit.id, h("small", {})), field, button);
    }
    if (box.children[i] !== row) box.insertBefore(row, box.children[i] || null);
    const field = row.querySelector("input");
    field.max = unit.max_current_a;
    if (document.activeElement !== field && !field.dataset.dirty) field.value = round(unit.limit_a);
    row.querySelector("small").textContent = `0 to ${round(unit.max_current_a)} A`;
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
  button.textContent = status.enabled ? "Disable power sharing" : "Enable power sharing";
  button.className = `btn btn-wide ${status.enabled ? "btn-stop" : "btn-go"}`;
  button.dataset.enabled = status.enabled ? "1" : "0";
  $("enable-hint").textContent = status.enabled
    ? "Sharing is on: cars charge within the limits."
    : "No vehicle charges until sharing is enabled.";
}

function renderEvents(events) {
  $("events").replaceChildren(...events.slice().reverse().slice(0, 100).map((e) => h("li", {},
    h("time", {}, clock(e.time_s)),
    h("span", { class: e.kind }, e.text, e.origin ? h("span", { class: "origin" }, `by ${e.origin}`) : null))));
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

function followerBody() {
  const f = $("add-form").elements;
  const type = f.type.value;
  const transport = { type, unit: Number(f.unit.value) };
  if (type === "rtu") {
    transport.device = f.device.value.trim();
    transport.baudrate = Number(f.baudrate.value);
    transport.parity = f.parity.value;
  } else {
    transport.host = f.host.value.trim();
    transport.port = Number(f.port.value);
  }
  const body = { id: f.id.value.trim(), profile: f.profile.value, transport,
    phases: Number(f.phases.value), phase_rotation: f.phase_rotation.value };
  if (f.breaker_limit_a.value !== "") body.breaker_limit_a = Number(f.breaker_limit_a.value);
  return body;
}

async function addFollower(event) {
  event.preventDefault();
  const form = $("add-form");
  const body = followerBody();
  if (!body.id) { markField(form, "id"); setMessage("add-msg", "err", "Give the unit a name."); return; }
  if (!body.profile) { markField(form, "profile"); setMessage("add-msg", "err", "Choose the device profile."); return; }
  markField(form, null);
  setMessage("add-msg", "busy", `Reading ${body.id} live…`);
  $("add-submit").disabled = true;
  const result = await api("POST", "/api/followers", body);
  $("add-submit").disabled = false;
  if (!result.ok) {
    markField(form, result.data.field);
    setMessage("add-msg", "err", result.data.detail);
    return;
  }
  const probe = result.data.probe;
  const who = probe.identity && probe.identity.serial ? `, serial ${probe.identity.serial}` : "";
  const speed = probe.latency_ms !== null ? ` in ${Math.max(1, Math.round(probe.latency_ms))} ms` : "";
  setMessage("add-msg", "ok", `${body.id} answered${speed}${who}: ${probe.state_text}. Added.`);
  form.elements.id.value = "";
  await loadFollowers();
}

async function removeFollower(id, button) {
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = "Tap again to remove";
    setTimeout(() => { button.classList.remove("armed"); button.textContent = "Remove"; }, 4000);
    return;
  }
  const result = await api("DELETE", `/api/followers/${encodeURIComponent(id)}`);
  setMessage("add-msg", result.ok ? "ok" : "err", result.ok ? `${id} removed.` : result.data.detail);
  await loadFollowers();
}

/* A limit as typed: a number of amperes, or a message saying what is wrong. An empty field is never 0 A. */
function readAmps(field) {
  const text = field.value.trim();
  if (field.validity && field.validity.badInput) return { error: "Enter the limit as a number of amperes, e.g. 32." };
  if (text === "") return { error: "Enter the limit in amperes: the field is empty." };
  const value = Number(text);
  if (!Number.isFinite(value)) return { error: "Enter the limit as a number of amperes, e.g. 32." };
  if (value < 0) return { error: "The limit cannot be below 0 A." };
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
    const sure = await askConfirm("Set 0 A?", `0 A stops ${zeroWhat}. Cars stay stopped until the limit is raised again.`,
      "Stop charging: 0 A");
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
  await sendLimit($("network-limit"), "/api/network-limit", "every car on the site",
    (value) => `Network limit set to ${round(value)} A.`);
}

async function setUnitLimit(id, field) {
  await sendLimit(field, `/api/units/${encodeURIComponent(id)}/limit`, `charging at ${id}`,
    (value) => `${id}: limit ${round(value)} A.`);
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
  if (!enable && !await askConfirm("Disable power sharing?",
    "Every car on the site stops charging until power sharing is enabled again.", "Disable: stop every car")) {
    return;
  }
  const result = await api("PUT", "/api/enabled", { enabled: enable });
  setMessage("enable-msg", result.ok ? "ok" : "err",
    result.ok ? (enable ? "Power sharing enabled." : "Power sharing disabled: every unit goes to 0 A.") : result.data.detail);
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
  route();
  onPhasesChange();
  onTypeChange();
  loadAuth().then(loadAll);
}

document.addEventListener("DOMContentLoaded", start);
