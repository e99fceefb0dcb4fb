/* powershare installer page: the History view (#/history). Loaded after app.js, whose helpers it uses ($, h,
 * api, app, VIEWS); it adds its view to the router and draws itself whenever the view is shown.
 *
 * Data: GET /api/history?range=1h|24h|7d (the chart, at most 720 points), /api/sessions (a page at a time),
 * /api/events (the newest of the range, then older on request), and the CSV files of each. Refreshed every
 * 30 s while the view is shown; nothing is fetched while it is not.
 *
 * Every text the view shows comes from HISTORY_TEXT through tr(), and the view's static texts in index.html carry
 * the key they are filled from (data-text, data-label, data-placeholder), so the view can be translated in one place.
 */
"use strict";

const HISTORY_TEXT = {
  tab: "History",
  chartTitle: "Current per phase",
  rangeGroup: "Range",
  range1h: "1 h", range24h: "24 h", range7d: "7 d",
  circuit: "Circuit",
  wholeSite: "Whole site",
  legendPeak: "peak",
  legendLimit: "limit",
  chartLabel: "Current drawn per phase against the limit over the last {range}",
  chartEmpty: "No current recorded in this range yet.",
  summary: "Highest: {peak} on {phase} at {time} · limit {limit}",
  summaryNoLimit: "Highest: {peak} on {phase} at {time}",
  downloadCsv: "Download CSV",
  sessionsTitle: "Sessions",
  unitFilter: "Only this unit",
  unitFilterHint: "Show only one unit's sessions",
  colUnit: "Unit", colStart: "Plugged in", colEnd: "Left", colEnergy: "Energy", colTag: "idTag",
  stillThere: "still plugged in",
  noTag: "–",
  sessionsEmpty: "No sessions in this range.",
  sessionsPage: "{first}–{last} of {total}",
  newer: "Newer", older: "Older",
  eventsTitle: "Event log",
  eventsEmpty: "No events in this range.",
  eventsMore: "Show older events",
  by: "by {origin}",
  loading: "Loading…",
  unreadable: "The history could not be read: {detail}",
  now: "now",
};

function tr(key, values) {
  const text = HISTORY_TEXT[key] !== undefined ? HISTORY_TEXT[key] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (values && values[name] !== undefined ? String(values[name]) : whole));
}

const HISTORY_RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400 };
const HISTORY_REFRESH_MS = 30000;
const SESSIONS_PER_PAGE = 25;
const EVENTS_PER_LOAD = 100;
const SVG_NS = "http://www.w3.org/2000/svg";

const historyView = {
  range: "1h", circuit: "", unit: "", offset: 0,
  points: [], sessions: null, events: [], eventsDone: false,
  timer: null, loaded: false, since: 0,
};

VIEWS.history = "history";  /* app.js's router shows and hides #view-history and marks #tab-history */

/* -- text ---------------------------------------------------------------------------------------------------- */
function translateHistoryView() {
  const root = $("view-history");
  $("tab-history").textContent = tr("tab");
  for (const el of root.querySelectorAll("[data-text]")) el.textContent = tr(el.dataset.text);
  for (const el of root.querySelectorAll("[data-label]")) el.setAttribute("aria-label", tr(el.dataset.label));
  for (const el of root.querySelectorAll("[data-placeholder]")) el.placeholder = tr(el.dataset.placeholder);
}

const iso = (unixS) => new Date(unixS * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
const shortTime = (unixS) => new Date(unixS * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
function dayTime(unixS) {
  const d = new Date(unixS * 1000);
  return `${d.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })} ${shortTime(unixS)}`;
}
const historyAmps = (value) => (value === null || value === undefined ? "–" : `${Number(value).toFixed(1)} A`);

/* -- loading ------------------------------------------------------------------------------------------------- */
function historyQuery(extra) {
  const query = new URLSearchParams(extra);
  return query.toString() ? `?${query}` : "";
}

function rangeStart() { return historyView.since; }

async function loadHistory() {
  historyView.since = Math.floor(Date.now() / 1000) - HISTORY_RANGES[historyView.range];
  renderCircuitChoice();
  renderUnitChoice();
  updateDownloads();
  await Promise.all([loadHistoryChart(), loadSessions(), loadHistoryEvents()]);
}

function historyError(result) {
  setMessage("hist-msg", "err", tr("unreadable", { detail: result.data && result.data.detail ? result.data.detail : `HTTP ${result.status}` }));
}

async function loadHistoryChart() {
  const params = { range: historyView.range };
  if (historyView.circuit) params.circuit = historyView.circuit;
  const result = await api("GET", `/api/history${historyQuery(params)}`);
  if (!result.ok) { historyError(result); return; }
  setMessage("hist-msg", "", "");
  historyView.points = result.data;
  drawHistoryChart();
}

async function loadSessions() {
  const params = { from: iso(rangeStart()), limit: SESSIONS_PER_PAGE, offset: historyView.offset };
  if (historyView.unit) params.unit = historyView.unit;
  const result = await api("GET", `/api/sessions${historyQuery(params)}`);
  if (!result.ok) { historyError(result); return; }
  historyView.sessions = result.data;
  renderSessions();
}

async function loadHistoryEvents(older) {
  const params = { from: iso(rangeStart()), limit: EVENTS_PER_LOAD };
  if (older && historyView.events.length) params.to = iso(historyView.events[0].time_s);
  const result = await api("GET", `/api/events${historyQuery(params)}`);
  if (!result.ok) { historyError(result); return; }
  historyView.events = older ? [...result.data, ...historyView.events] : result.data;
  historyView.eventsDone = result.data.length < EVENTS_PER_LOAD;
  renderHistoryEvents();
}

function updateDownloads() {
  const chart = { range: historyView.range };
  if (historyView.circuit) chart.circuit = historyView.circuit;
  $("csv-history").href = `/api/history.csv${historyQuery(chart)}`;
  const sessions = { from: iso(rangeStart()) };
  if (historyView.unit) sessions.unit = historyView.unit;
  $("csv-sessions").href = `/api/sessions.csv${historyQuery(sessions)}`;
  $("csv-events").href = `/api/events.csv${historyQuery({ from: iso(rangeStart()) })}`;
}

/* -- chart (SVG, drawn by the page itself) -------------------------------------------------------------------- */
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  for (const child of children) el.append(child);
  return el;
}

/* Lines broken where the gateway recorded nothing (it was off): a gap wider than 2.5 steps. */
function segments(points, value) {
  const spacing = points.slice(1).map((p, i) => p.time_s - points[i].time_s).sort((a, b) => a - b);
  const step = spacing.length ? spacing[Math.floor(spacing.length / 2)] : 0;
  const runs = [];
  let run = [];
  points.forEach((p, i) => {
    const v = value(p);
    if (v === null || v === undefined || (i && step && p.time_s - points[i - 1].time_s > 2.5 * step)) {
      if (run.length) runs.push(run);
      run = [];
    }
    if (v !== null && v !== undefined) run.push([p.time_s, v]);
  });
  if (run.length) runs.push(run);
  return runs;
}

function timeTicks(start, end) {
  const span = end - start;
  const every = span <= 3600 ? 900 : (span <= 86400 ? 4 * 3600 : 86400);
  const offset = new Date().getTimezoneOffset() * 60;  /* ticks on the local clock's whole hours and days */
  const ticks = [];
  for (let t = Math.ceil((start - offset) / every) * every + offset; t <= end; t += every) ticks.push(t);
  return { ticks, label: every >= 86400 ? (t) => new Date(t * 1000).toLocaleDateString([], { weekday: "short", day: "numeric" }) : shortTime };
}

function drawHistoryChart() {
  const box = $("hist-chart");
  const width = box.clientWidth;
  if (!width) return;
  const height = width < 520 ? 220 : 280;
  const points = historyView.points;
  const end = Date.now() / 1000;
  const start = end - HISTORY_RANGES[historyView.range];
  let top = 10;
  for (const p of points) top = Math.max(top, ...p.drawn_max_a.filter(Number.isFinite), ...p.limit_a.filter(Number.isFinite));
  top *= 1.1;
  const stepA = niceStep(top);
  top = Math.ceil(top / stepA) * stepA;
  const left = 48, right = 10, upper = 10, lower = 26;
  const x = (t) => left + ((t - start) / (end - start)) * (width - left - right);
  const y = (a) => upper + (height - upper - lower) * (1 - a / top);

  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "hist-svg" });
  for (let a = 0; a <= top + 1e-9; a += stepA) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(a), y2: y(a), class: "grid" }),
      svg("text", { x: left - 6, y: y(a), class: "axis y" }, `${round(a)} A`));
  }
  const { ticks, label } = timeTicks(start, end);
  const apart = ticks.length > 1 ? x(ticks[1]) - x(ticks[0]) : width;
  const every = Math.ceil(72 / apart);  /* labels at least 72 px apart: a phone shows every other day */
  ticks.forEach((t, i) => {
    if (i % every === 0) chart.append(svg("text", { x: x(t), y: height - 6, class: "axis x" }, label(t)));
  });

  const line = (value, cls) => {
    for (const run of segments(points, value)) {
      chart.append(svg("polyline", { class: cls, points: run.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    }
  };
  const lowest = (values) => { const known = values.filter(Number.isFinite); return known.length ? Math.min(...known) : null; };
  [0, 1, 2].forEach((i) => line((p) => p.drawn_max_a[i], `peak l${i + 1}`));
  [2, 1, 0].forEach((i) => line((p) => p.drawn_a[i], `mean l${i + 1}`));
  line((p) => lowest(p.limit_a), "limit");  /* on top: where the current reaches the limit, the limit shows */
  if (!points.length) chart.append(svg("text", { x: width / 2, y: height / 2, class: "empty-note" }, tr("chartEmpty")));

  box.replaceChildren(chart);
  box.dataset.points = String(points.length);
  box.setAttribute("aria-label", tr("chartLabel", { range: tr(`range${historyView.range}`) }));
  renderHistorySummary(points);
}

function renderHistorySummary(points) {
  let best = null;
  for (const p of points) {
    p.drawn_max_a.forEach((v, i) => { if (Number.isFinite(v) && (!best || v > best.value)) best = { value: v, phase: i, p }; });
  }
  if (!best) { $("hist-summary").textContent = ""; return; }
  const limits = best.p.limit_a.filter(Number.isFinite);
  const values = { peak: historyAmps(best.value), phase: `L${best.phase + 1}`,
    time: historyView.range === "1h" ? shortTime(best.p.time_s) : dayTime(best.p.time_s),
    limit: limits.length ? historyAmps(Math.min(...limits)) : "" };
  $("hist-summary").textContent = tr(limits.length ? "summary" : "summaryNoLimit", values);
}

/* -- sessions and events -------------------------------------------------------------------------------------- */
function renderSessions() {
  const page = historyView.sessions;
  const body = $("hist-sessions-body");
  const cell = (key, ...content) => h("td", { "data-label": tr(key) }, ...content);
  body.replaceChildren(...page.sessions.map((s) => h("tr", { class: s.end_s === null ? "running" : "" },
    cell("colUnit", h("b", {}, s.unit)),
    cell("colStart", dayTime(s.start_s)),
    cell("colEnd", s.end_s === null ? tr("stillThere") : dayTime(s.end_s)),
    cell("colEnergy", `${s.energy_kwh.toFixed(2)} kWh`),
    cell("colTag", s.id_tag || tr("noTag")))));
  $("hist-sessions-table").hidden = !page.sessions.length;
  $("hist-sessions-note").textContent = page.sessions.length
    ? tr("sessionsPage", { first: page.offset + 1, last: page.offset + page.sessions.length, total: page.total })
    : tr("sessionsEmpty");
  $("hist-newer").disabled = page.offset === 0;
  $("hist-older").disabled = page.offset + page.sessions.length >= page.total;
}

function renderHistoryEvents() {
  const list = $("hist-events");
  const events = historyView.events.slice().reverse();
  list.replaceChildren(...events.map((e) => h("li", {},
    h("time", { datetime: iso(e.time_s) }, dayTime(e.time_s)),
    h("span", { class: e.kind }, e.text, e.origin ? h("span", { class: "origin" }, tr("by", { origin: e.origin })) : null))));
  $("hist-events-note").textContent = events.length ? "" : tr("eventsEmpty");
  $("hist-events-more").hidden = historyView.eventsDone;
}

/* -- controls ------------------------------------------------------------------------------------------------- */
function setHistoryRange(range) {
  historyView.range = range;
  historyView.offset = 0;
  for (const b of document.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b.dataset.range === range));
  loadHistory();
}

function renderCircuitChoice() {
  const circuits = [...new Set(app.circuitOf ? app.circuitOf.values() : [])].filter((c) => c !== "site").sort();
  const select = $("hist-circuit");
  const shown = [...select.options].map((o) => o.value).join(",");
  if (shown !== ["", ...circuits].join(",")) {
    select.replaceChildren(h("option", { value: "" }, tr("wholeSite")), ...circuits.map((c) => h("option", { value: c }, c)));
    select.value = circuits.includes(historyView.circuit) ? historyView.circuit : "";
  }
  $("hist-circuit-label").hidden = !circuits.length;
}

function renderUnitChoice() {
  const units = app.status ? app.status.units.map((u) => u.id) : [];
  const list = $("hist-units");
  if (list.children.length !== units.length) list.replaceChildren(...units.map((id) => h("option", { value: id })));
}

let unitTyping = null;
function onUnitFilter() {
  clearTimeout(unitTyping);
  unitTyping = setTimeout(() => {
    historyView.unit = $("hist-unit").value.trim();
    historyView.offset = 0;
    updateDownloads();
    loadSessions();
  }, 300);
}

function onHistoryShown() {
  const shown = app.view === "history";
  clearInterval(historyView.timer);
  historyView.timer = null;
  if (!shown) return;
  $("tab-history").scrollIntoView({ block: "nearest", inline: "nearest" });  /* the tabs scroll on a phone */
  loadHistory();
  historyView.timer = setInterval(() => { if (!document.hidden) loadHistory(); }, HISTORY_REFRESH_MS);
}

function startHistory() {
  translateHistoryView();
  for (const b of document.querySelectorAll("[data-range]")) b.addEventListener("click", () => setHistoryRange(b.dataset.range));
  $("hist-circuit").addEventListener("change", (event) => { historyView.circuit = event.target.value; updateDownloads(); loadHistoryChart(); });
  $("hist-unit").addEventListener("input", onUnitFilter);
  $("hist-newer").addEventListener("click", () => { historyView.offset = Math.max(0, historyView.offset - SESSIONS_PER_PAGE); loadSessions(); });
  $("hist-older").addEventListener("click", () => { historyView.offset += SESSIONS_PER_PAGE; loadSessions(); });
  $("hist-events-more").addEventListener("click", () => loadHistoryEvents(true));
  window.addEventListener("hashchange", onHistoryShown);
  window.addEventListener("resize", () => { if (app.view === "history") drawHistoryChart(); });
  onHistoryShown();
}

document.addEventListener("DOMContentLoaded", startHistory);
