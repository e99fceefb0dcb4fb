/* powershare installer page: its texts in the reader's language. Plain JavaScript, no build step.
 *
 * The gateway says which languages it has texts for and which one this browser gets (GET /api/i18n: the choice
 * made here, kept in the powershare_lang cookie, else the browser's Accept-Language, else English); the texts come
 * from GET /api/i18n/{lang} (English where one is not translated yet). The cookie also makes the gateway's own
 * answers (refusals, what to check) come in that language.
 *
 *   i18n.t(id, params)   the text of a message id, {placeholders} filled (numbers written the language's way)
 *   i18n.apply(root)     fills every element marked data-i18n="id" (its text) or data-i18n-<attribute>="id"
 *                        (placeholder, aria-label, title) under root
 *   i18n.ready           a promise, settled once the texts are in (t() before that answers the id)
 *   i18n.lang            the language in force
 *   i18n.number(text)    a number as the reader typed it ("16,5" or "16.5"), or null if it is not one
 *   i18n.field(value)    a number as a field shows it: the language's decimal mark, one decimal at most, no grouping
 * After each change of language the document gets a "powershare:language" event, for whatever draws texts itself.
 */
"use strict";

const i18n = (() => {
  const COOKIE = "powershare_lang";
  const ATTRIBUTES = ["placeholder", "aria-label", "title"];
  const state = { lang: document.documentElement.lang || "en", messages: {} };

  function format(value) {
    return typeof value === "number" ? value.toLocaleString(state.lang, { maximumFractionDigits: 3 }) : String(value);
  }

  function t(id, params) {
    const template = Object.prototype.hasOwnProperty.call(state.messages, id) ? state.messages[id] : id;
    return template.replace(/\{([a-z][a-z0-9_]*)\}/g, (whole, name) =>
      (params && Object.prototype.hasOwnProperty.call(params, name) ? format(params[name]) : whole));
  }

  /* The page reads numbers itself (fields are text with a decimal keypad, not the browser's number fields): an
   * English page's number field takes "16,5" as 165, ten times the limit meant. Either mark is a decimal mark,
   * whatever the language; but a mark the language groups thousands with, followed by exactly three digits
   * ("1,000" in English, "1.000" in German), could mean either and is refused. No exponents, signs but "-",
   * spaces inside, or units. */
  function number(text) {
    const match = /^(-?)(\d*)(?:([.,])(\d+))?$/.exec(String(text).trim());
    if (!match || (match[2] === "" && match[4] === undefined)) return null;
    const [, sign, whole, mark, fraction] = match;
    if (mark !== undefined && fraction.length === 3 && mark === groupMark()) return null;
    return Number(`${sign}${whole || "0"}${mark === undefined ? "" : `.${fraction}`}`);
  }

  function field(value) {
    return Number(value).toLocaleString(state.lang, { maximumFractionDigits: 1, useGrouping: false });
  }

  function groupMark() {
    return (1234567).toLocaleString(state.lang).replace(/\d/g, "").charAt(0);
  }

  function apply(root) {
    const scope = root || document;
    scope.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    for (const name of ATTRIBUTES) {
      scope.querySelectorAll(`[data-i18n-${name}]`).forEach((el) => el.setAttribute(name, t(el.getAttribute(`data-i18n-${name}`))));
    }
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  async function load(lang) {
    const catalog = await getJson(`/api/i18n/${encodeURIComponent(lang)}`);
    state.lang = catalog.lang;
    state.messages = catalog.messages;
    document.documentElement.lang = state.lang;
    const picker = document.getElementById("lang-switch");
    if (picker) picker.value = state.lang;
    apply(document);
    document.dispatchEvent(new CustomEvent("powershare:language", { detail: { lang: state.lang } }));
  }

  function remember(lang) {
    document.cookie = `${COOKIE}=${encodeURIComponent(lang)}; path=/; max-age=31536000; samesite=strict`;
  }

  function fillSwitch(languages) {
    const picker = document.getElementById("lang-switch");
    if (!picker) return;
    picker.replaceChildren(...languages.map((l) => {
      const option = document.createElement("option");
      option.value = l.code;
      option.lang = l.code;
      option.title = l.name;
      option.textContent = l.code.toUpperCase();
      return option;
    }));
    picker.addEventListener("change", async () => {
      const wanted = picker.value;
      remember(wanted);
      try {
        await load(wanted);
      } catch (err) {
        picker.value = state.lang;  /* the texts did not come: the page stays as it is */
      }
    });
  }

  async function start() {
    const info = await getJson("/api/i18n");
    fillSwitch(info.languages);
    await load(info.lang);
  }

  const ready = start().catch(() => { /* the gateway did not answer: the page keeps its English */ });
  return { t, apply, number, field, ready, get lang() { return state.lang; } };
})();
