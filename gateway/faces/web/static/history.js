/* powershare installer page: the History view (#/history). Loaded after app.js, whose helpers it uses ($, h,
 * api, app, VIEWS); it adds its view to the router and draws itself whenever the view is shown.
 *
 * Data: GET /api/history?range=1h|24h|7d (the chart, at most 720 points), /api/sessions (a page at a time),
 * /api/events (the newest of the range, then older on request), and the CSV files of each. Refreshed every
 * 30 s while the view is shown; nothing is fetched while it is not.
 *
 * Every text the view shows comes from the page's catalogs (page.history.*) through app.js's t(), which is i18n.t;
 * the view's static texts in index.html carry their ids (data-i18n, data-i18n-aria-label, data-i18n-placeholder)
 * and i18n.js fills them. After a change of language the view draws its own texts again.
 */
"use strict";

/* The range chips' words, for the chart's description. */
const RANGE_TEXT = { "1h": "page.history.range_1h", "24h": "page.history.range_24h", "7d": "page.history.range_7d" };

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

const iso = (unixS) => new Date(unixS * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
const shortTime = (unixS) => new Date(unixS * 1000).toLocaleTimeString(i18n.lang, { hour: "2-digit", minute: "2-digit", hour12: false });
function dayTime(unixS) {
  const d = new Date(unixS * 1000);
  return `${d.toLocaleDateString(i18n.lang, { weekday: "short", day: "numeric", month: "short" })} ${shortTime(unixS)}`;
}

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
  setMessage("hist-msg", "err", t("page.history.unreadable", { detail: result.data && result.data.detail ? result.data.detail : t("page.api.http_status", { status: String(result.status) }) }));
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
  return { ticks, label: every >= 86400 ? (t) => new Date(t * 1000).toLocaleDateString(i18n.lang, { weekday: "short", day: "numeric" }) : shortTime };
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
  if (!points.length) chart.append(svg("text", { x: width / 2, y: height / 2, class: "empty-note" }, t("page.history.chart_empty")));

  box.replaceChildren(chart);
  box.dataset.points = String(points.length);
  box.setAttribute("aria-label", t("page.history.chart_label", { range: t(RANGE_TEXT[historyView.range]) }));
  renderHistorySummary(points);
}

function renderHistorySummary(points) {
  let best = null;
  for (const p of points) {
    p.drawn_max_a.forEach((v, i) => { if (Number.isFinite(v) && (!best || v > best.value)) best = { value: v, phase: i, p }; });
  }
  if (!best) { $("hist-summary").textContent = ""; return; }
  const limits = best.p.limit_a.filter(Number.isFinite);
  const values = { peak: amps(best.value), phase: `L${best.phase + 1}`,
    time: historyView.range === "1h" ? shortTime(best.p.time_s) : dayTime(best.p.time_s),
    limit: limits.length ? amps(Math.min(...limits)) : "" };
  $("hist-summary").textContent = t(limits.length ? "page.history.summary" : "page.history.summary_no_limit", values);
}

/* -- sessions and events -------------------------------------------------------------------------------------- */
function renderSessions() {
  const page = historyView.sessions;
  const body = $("hist-sessions-body");
  const cell = (id, ...content) => h("td", { "data-label": t(id) }, ...content);
  body.replaceChildren(...page.sessions.map((s) => h("tr", { class: s.end_s === null ? "running" : "" },
    cell("page.history.col_unit", h("b", {}, s.unit)),
    cell("page.history.col_start", dayTime(s.start_s)),
    cell("page.history.col_end", s.end_s === null ? t("page.history.still_there") : dayTime(s.end_s)),
    cell("page.history.col_energy", `${decimal(s.energy_kwh, 2)} kWh`),
    cell("page.history.col_tag", s.id_tag || "–"))));
  $("hist-sessions-table").hidden = !page.sessions.length;
  $("hist-sessions-note").textContent = page.sessions.length
    ? t("page.history.sessions_page",  /* positions, written as digits only */
      { first: String(page.offset + 1), last: String(page.offset + page.sessions.length), total: String(page.total) })
    : t("page.history.sessions_empty");
  $("hist-newer").disabled = page.offset === 0;
  $("hist-older").disabled = page.offset + page.sessions.length >= page.total;
}

function renderHistoryEvents() {
  const list = $("hist-events");
  const events = historyView.events.slice().reverse();
  list.replaceChildren(...events.map((e) => h("li", {},
    h("time", { datetime: iso(e.time_s) }, dayTime(e.time_s)),
    h("span", { class: e.kind }, e.text, e.origin ? h("span", { class: "origin" }, t("page.events.by", { origin: e.origin })) : null))));
  $("hist-events-note").textContent = events.length ? "" : t("page.history.events_empty");
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
    select.replaceChildren(h("option", { value: "" }, t("page.history.whole_site")), ...circuits.map((c) => h("option", { value: c }, c)));
    select.value = circuits.includes(historyView.circuit) ? historyView.circuit : "";
  }
  if (select.options.length) select.options[0].textContent = t("page.history.whole_site");
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

/* After a change of language: the view's drawn texts again (i18n.js has filled its static ones). */
function onHistoryLanguage() {
  if (app.view !== "history") return;
  renderCircuitChoice();
  drawHistoryChart();
  if (historyView.sessions) renderSessions();
  renderHistoryEvents();
}

function startHistory() {
  document.addEventListener("powershare:language", onHistoryLanguage);
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
