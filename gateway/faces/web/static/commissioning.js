/* powershare installer page: the Commissioning view (#/commissioning). Plain JavaScript, no build step.
 *
 * Everything the installer sets, section by section: the installation limit, the circuits (a tree), each unit's
 * breaker, phases, phase rotation and circuit, the site meter, the BMS face and its watchdog, the central system,
 * and a restart for what waits for one. Data: GET /api/commissioning when the view opens; every write answers with
 * the whole state again, which is drawn. The gateway checks every change by the site file's rules; the page only
 * refuses an empty number field and asks before anything that stops cars, and shows the gateway's refusal as it is,
 * with the field at fault highlighted.
 *
 * Uses app.js's helpers ($, h, api, setMessage, askConfirm, loadAuth, loadFollowers, VIEWS, app) and i18n.js. Every
 * text the installer reads is a message of the catalogs (page.commissioning.*), in the page's language.
 */
"use strict";

(() => {
  /* Every text the installer reads is a catalog message (page.commissioning.*, gateway/i18n/catalogs), through
   * i18n.t: t("page.commissioning.unit_saved", { id: "bay-3" }). */
  const t = (id, params) => i18n.t(id, params);

  const ROTATIONS3 = ["L1L2L3", "L2L3L1", "L3L1L2", "L1L3L2", "L3L2L1", "L2L1L3"];
  const ROTATIONS1 = ["L1", "L2", "L3"];
  const cm = { state: null, meterProfiles: [], loaded: false, editingUnit: null, editingCircuit: null, instance: null,
    treeKey: "", unitsKey: "" };

  /* -- small helpers ---------------------------------------------------------------------------------------- */
  const num = (value) => Math.round(Number(value) * 10) / 10;  /* a number: i18n.t writes it the language's way */

  function field(labelKey, input, extraClass) {
    return h("label", { class: extraClass || null }, t(labelKey), input);
  }

  function input(name, attrs) {
    return h("input", { name, autocomplete: "off", autocapitalize: "off", spellcheck: "false", ...attrs });
  }

  function numberInput(name, attrs) {
    return input(name, { type: "text", inputmode: "decimal", ...(attrs || {}) });
  }

  function select(name, options, chosen) {
    return h("select", { name }, options.map(([value, text]) => h("option", { value, selected: value === chosen }, text)));
  }

  function message(id) {
    return h("p", { class: "msg", id, role: "status", "aria-live": "polite" });
  }

  const say = (id, kind, text) => setMessage(id, kind, text);

  /* A number as typed; { error } names what is missing, in the table's words. An empty field is never 0. */
  function readNumber(el, whatKey, optional) {
    const text = el.value.trim();
    if (text === "") return optional ? { value: null } : { error: t("page.commissioning.empty_field", { what: t(whatKey) }) };
    const value = i18n.number(text);
    if (value === null) return { error: t("page.commissioning.not_number", { what: t(whatKey) }) };
    return { value };
  }

  /* Read several fields of a form: { values } or the first { error, el }. */
  function readNumbers(form, specs) {
    const values = {};
    for (const [name, whatKey, optional] of specs) {
      const el = form.elements[name];
      const read = readNumber(el, whatKey, optional);
      if (read.error) return { error: read.error, el };
      values[name] = read.value;
    }
    return { values };
  }

  function mark(form, name) {
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    if (!name) return;
    const map = { "transport.host": "host", "transport.port": "port", "transport.unit": "unit",
      "transport.device": "device", "transport.type": "type", "transport.baudrate": "baudrate",
      "transport.parity": "parity", limit_a: "limit_a" };
    const key = map[name] || name.replace(/\.\d+$/, "");
    const el = form.elements[key];
    if (el && el.setAttribute) el.setAttribute("aria-invalid", "true");
  }

  /* Send a change; on success draw the whole state the gateway answered, on refusal show its words. */
  async function send(form, msgId, method, path, body, done) {
    mark(form, null);
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    const result = await api(method, path, body);
    buttons.forEach((b) => { b.disabled = false; });
    if (!result.ok) {
      mark(form, result.data && result.data.field);
      say(msgId, "err", (result.data && result.data.detail) || `HTTP ${result.status}`);
      return false;
    }
    cm.state = result.data;
    render(form);
    say(msgId, "ok", done(result.data));
    if (typeof loadFollowers === "function") loadFollowers();  // the overview groups units by circuit
    return true;
  }

  function refuse(form, msgId, read) {
    mark(form, read.el ? read.el.name : null);
    say(msgId, "err", read.error);
    if (read.el) read.el.focus();
  }

  /* -- the view's skeleton ----------------------------------------------------------------------------------- */
  function build() {
    const view = $("view-commissioning");
    const part = (id, titleKey, hintKey, ...children) => h("section", { class: "cm-part", id, "aria-labelledby": `${id}-title` },
      h("h3", { id: `${id}-title` }, t(titleKey)), hintKey ? h("p", { class: "hint" }, t(hintKey)) : null, ...children);

    const supply = h("form", { id: "cm-supply-form", class: "inline-form", novalidate: true },
      field("page.commissioning.installation_limit", h("span", { class: "with-unit" },
        numberInput("limit_a", { id: "cm-installation", required: true }), h("span", {}, t("page.commissioning.amps")))),
      h("button", { class: "btn btn-primary", type: "submit" }, t("page.commissioning.set")));

    const circuitForm = h("form", { id: "cm-circuit-form", class: "cm-subform", novalidate: true, hidden: true },
      h("div", { class: "grid2" },
        field("page.commissioning.name", input("id", { maxlength: "32", required: true })),
        field("page.commissioning.parent", h("select", { name: "parent" })),
        field("page.commissioning.limit_per_phase", numberInput("limit_a", { required: true }))),
      h("div", { class: "cm-buttons" },
        h("button", { class: "btn btn-light-outline", type: "button", "data-cancel": "1" }, t("page.commissioning.cancel")),
        h("button", { class: "btn btn-primary", type: "submit" }, t("page.commissioning.save"))));

    const addCircuit = h("form", { id: "cm-add-circuit", novalidate: true },
      h("div", { class: "grid2" },
        field("page.commissioning.name", input("id", { id: "cm-circuit-id", maxlength: "32", placeholder: "e.g. board-2" })),
        field("page.commissioning.parent", h("select", { name: "parent", id: "cm-circuit-parent" })),
        field("page.commissioning.limit_per_phase", numberInput("limit_a", { id: "cm-circuit-limit" }))),
      h("button", { class: "btn btn-primary btn-wide", type: "submit" }, t("page.commissioning.add_circuit")));

    const wiringForm = h("form", { id: "cm-wiring-form", class: "cm-subform", novalidate: true, hidden: true },
      h("div", { class: "grid2" },
        field("page.commissioning.breaker", numberInput("breaker_limit_a")),
        field("page.commissioning.phases", select("phases", [["3", t("page.commissioning.phases_3")], ["1", t("page.commissioning.phases_1")]], "3")),
        field("page.commissioning.rotation", h("select", { name: "phase_rotation" })),
        field("page.commissioning.circuit", h("select", { name: "circuit" }))),
      h("div", { class: "cm-buttons" },
        h("button", { class: "btn btn-light-outline", type: "button", "data-cancel": "1" }, t("page.commissioning.cancel")),
        h("button", { class: "btn btn-primary", type: "submit" }, t("page.commissioning.save"))));

    const meterForm = h("form", { id: "cm-meter-form", novalidate: true },
      h("div", { class: "grid2" },
        field("page.commissioning.profile", h("select", { name: "profile", id: "cm-meter-profile" })),
        field("page.commissioning.connection", select("type", [["tcp", t("page.commissioning.tcp")], ["rtu-over-tcp", t("page.commissioning.rtu_over_tcp")], ["rtu", t("page.commissioning.rtu")]], "tcp")),
        field("page.commissioning.address", input("host", { placeholder: "e.g. 192.168.1.30" }), "cm-net"),
        field("page.commissioning.port", numberInput("port", { value: "502", inputmode: "numeric" }), "cm-net"),
        field("page.commissioning.device", input("device", { placeholder: "/dev/ttyUSB0" }), "cm-serial"),
        field("page.commissioning.baud", select("baudrate", ["9600", "19200", "38400", "57600", "115200"].map((b) => [b, b]), "9600"), "cm-serial"),
        field("page.commissioning.parity", select("parity", [["N", t("page.commissioning.parity_n")], ["E", t("page.commissioning.parity_e")], ["O", t("page.commissioning.parity_o")]], "N"), "cm-serial"),
        field("page.commissioning.unit_id", numberInput("unit", { value: "1", inputmode: "numeric" })),
        field("page.commissioning.circuit", h("select", { name: "circuit" })),
        field("page.commissioning.meter_limit", numberInput("limit_a")),
        field("page.commissioning.margin", numberInput("margin_a", { value: "2" })),
        field("page.commissioning.fallback", numberInput("fallback_limit_a")),
        field("page.commissioning.stale_after", numberInput("stale_after_s", { value: "5" }))),
      h("div", { class: "cm-buttons" },
        h("button", { class: "btn btn-danger", type: "button", id: "cm-meter-remove" }, t("page.commissioning.remove_meter")),
        h("button", { class: "btn btn-primary", type: "submit" }, t("page.commissioning.save_meter"))));

    const bmsForm = h("form", { id: "cm-bms-form", novalidate: true },
      h("div", { class: "grid2" },
        field("page.commissioning.bms_face", select("enabled", [["1", t("page.commissioning.on")], ["0", t("page.commissioning.off")]], "1")),
        field("page.commissioning.access", select("read_only", [["0", t("page.commissioning.read_write")], ["1", t("page.commissioning.read_only")]], "0")),
        field("page.commissioning.listen", input("host", { value: "0.0.0.0" })),
        field("page.commissioning.port", numberInput("port", { value: "502", inputmode: "numeric" })),
        field("page.commissioning.unit_id", numberInput("unit_id", { value: "1", inputmode: "numeric" })),
        field("page.commissioning.writes_from", input("allow_write_from", { placeholder: t("page.commissioning.writes_from_placeholder") }))),
      h("button", { class: "btn btn-primary btn-wide", type: "submit" }, t("page.commissioning.save_bms")));

    const watchdogForm = h("form", { id: "cm-watchdog-form", novalidate: true },
      h("div", { class: "grid2" },
        field("page.commissioning.watchdog", numberInput("timeout_s")),
        field("page.commissioning.watchdog_fallback", numberInput("fallback_limit_a"))),
      h("button", { class: "btn btn-primary btn-wide", type: "submit" }, t("page.commissioning.set")));

    const ocppForm = h("form", { id: "cm-ocpp-form", novalidate: true },
      h("div", { class: "grid2" },
        field("page.commissioning.url", input("url", { placeholder: t("page.commissioning.url_placeholder"), type: "url" }), "cm-wide"),
        field("page.commissioning.charge_point_id", input("charge_point_id", { maxlength: "48" })),
        field("page.commissioning.security", select("security_profile", [0, 1, 2, 3].map((n) => [String(n), t(`page.commissioning.security_${n}`)]), "0")),
        field("page.commissioning.key", input("password", { type: "password", autocomplete: "new-password", maxlength: "40" }), "cm-key"),
        field("page.commissioning.ca_file", input("ca_file", { placeholder: t("page.commissioning.ca_placeholder") }), "cm-tls"),
        field("page.commissioning.client_cert", input("client_cert", {}), "cm-cert"),
        field("page.commissioning.client_key", input("client_key", {}), "cm-cert")),
      h("div", { class: "cm-buttons" },
        h("button", { class: "btn btn-danger", type: "button", id: "cm-ocpp-remove" }, t("page.commissioning.remove_ocpp")),
        h("button", { class: "btn btn-primary", type: "submit" }, t("page.commissioning.save_ocpp"))));

    view.replaceChildren(h("section", { class: "card narrow cm", "aria-labelledby": "cm-title" },
      h("h2", { id: "cm-title" }, t("page.commissioning.title")),
      h("p", { class: "locked", id: "cm-locked" }, t("page.commissioning.locked"),
        h("button", { type: "button", class: "btn btn-primary", id: "cm-sign-in" }, t("page.commissioning.sign_in"))),
      h("div", { class: "cm-restart", id: "cm-restart", role: "status", hidden: true },
        h("p", { id: "cm-restart-text" }),
        h("button", { type: "button", class: "btn btn-primary", id: "cm-restart-button" }, t("page.commissioning.restart_now")),
        h("p", { class: "hint", id: "cm-restart-how" }, t("page.commissioning.restart_how"))),
      message("cm-restart-msg"),
      h("fieldset", { id: "cm-fields", disabled: true },
        h("legend", { class: "visually-hidden" }, t("page.commissioning.title")),
        part("cm-supply", "page.commissioning.supply_title", null, supply, h("p", { class: "hint", id: "cm-supply-hint" }), message("cm-supply-msg")),
        part("cm-circuits", "page.commissioning.circuits_title", "page.commissioning.circuits_hint", h("ul", { class: "cm-tree", id: "cm-tree" }), circuitForm,
          message("cm-circuits-msg"), addCircuit),
        part("cm-units", "page.commissioning.units_title", "page.commissioning.units_hint",
          input("search", { type: "search", id: "cm-unit-search", placeholder: t("page.commissioning.find_unit"), "aria-label": t("page.commissioning.find_unit") }),
          h("ul", { class: "cm-units", id: "cm-unit-list" }), wiringForm, message("cm-units-msg")),
        part("cm-meter", "page.commissioning.meter_title", "page.commissioning.meter_hint", h("p", { class: "cm-now", id: "cm-meter-now" }), meterForm,
          message("cm-meter-msg")),
        part("cm-bms", "page.commissioning.bms_title", "page.commissioning.bms_hint", h("p", { class: "cm-now", id: "cm-bms-now" }), bmsForm, message("cm-bms-msg"),
          h("h4", {}, t("page.commissioning.watchdog_title")), h("p", { class: "hint" }, t("page.commissioning.watchdog_hint")), watchdogForm,
          message("cm-watchdog-msg")),
        part("cm-ocpp", "page.commissioning.ocpp_title", "page.commissioning.ocpp_hint", h("p", { class: "cm-now", id: "cm-ocpp-now" }), ocppForm,
          message("cm-ocpp-msg"))),
      h("p", { class: "hint export" }, t("page.commissioning.export_text"),
        h("a", { class: "btn btn-light-outline", href: "/api/site.yaml", download: "site.yaml" }, t("page.commissioning.export_link")))));

    for (const form of view.querySelectorAll("form")) {
      form.addEventListener("input", () => { form.dataset.dirty = "1"; });
    }
    supply.addEventListener("submit", setInstallationLimit);
    addCircuit.addEventListener("submit", (event) => saveCircuit(event, addCircuit, null));
    circuitForm.addEventListener("submit", (event) => saveCircuit(event, circuitForm, cm.editingCircuit));
    circuitForm.querySelector("[data-cancel]").addEventListener("click", () => closeCircuitForm());
    wiringForm.addEventListener("submit", saveWiring);
    wiringForm.querySelector("[data-cancel]").addEventListener("click", () => closeWiringForm());
    wiringForm.elements.phases.addEventListener("change", () => fillRotations(wiringForm, null));
    $("cm-unit-search").addEventListener("input", filterUnits);
    meterForm.addEventListener("submit", saveMeter);
    meterForm.elements.profile.addEventListener("change", () => meterProfileChanged(meterForm));
    meterForm.elements.type.addEventListener("change", () => meterTypeChanged(meterForm));
    $("cm-meter-remove").addEventListener("click", removeMeter);
    bmsForm.addEventListener("submit", saveBms);
    watchdogForm.addEventListener("submit", saveWatchdog);
    ocppForm.addEventListener("submit", saveOcpp);
    ocppForm.elements.security_profile.addEventListener("change", () => ocppProfileChanged(ocppForm));
    $("cm-ocpp-remove").addEventListener("click", removeOcpp);
    $("cm-restart-button").addEventListener("click", restart);
    $("cm-sign-in").addEventListener("click", () => authButton());
  }

  /* -- loading ---------------------------------------------------------------------------------------------- */
  async function load() {
    const [state, profiles] = await Promise.all([api("GET", "/api/commissioning"),
      cm.meterProfiles.length ? Promise.resolve(null) : api("GET", "/api/meter-profiles")]);
    if (profiles && profiles.ok) cm.meterProfiles = profiles.data;
    if (!state.ok) return;
    cm.state = state.data;
    cm.instance = state.data.instance;
    cm.loaded = true;
    render(null);
  }

  function locked() {
    const signedIn = !!(app.auth && app.auth.signed_in);
    $("cm-fields").disabled = !signedIn;
    $("cm-locked").hidden = signedIn;
    $("cm-restart-button").disabled = !signedIn;
  }

  /* Draw the state; a form the installer is typing in keeps its values, unless it is the one just sent. */
  function render(sent) {
    const state = cm.state;
    if (!state) return;
    const fresh = (form) => form === sent || !form.dataset.dirty;
    const clean = (form) => { delete form.dataset.dirty; };
    renderRestart(state);

    const supply = $("cm-supply-form");
    if (fresh(supply)) { supply.elements.limit_a.value = i18n.field(state.installation_limit_a); clean(supply); }
    $("cm-supply-hint").textContent = t("page.commissioning.installation_hint", { network: num(state.network_limit_a) });

    const treeKey = JSON.stringify([state.circuits, state.installation_limit_a, state.units.map((u) => u.circuit)]);
    if (treeKey !== cm.treeKey) { cm.treeKey = treeKey; renderTree(state); }
    const add = $("cm-add-circuit");
    fillParents(add.elements.parent, null, fresh(add) ? "site" : add.elements.parent.value);
    if (sent === add) { add.reset(); fillParents(add.elements.parent, null, "site"); clean(add); }
    if (sent === $("cm-circuit-form")) closeCircuitForm();

    const unitsKey = JSON.stringify(state.units);
    if (unitsKey !== cm.unitsKey) { cm.unitsKey = unitsKey; renderUnitList(state); }
    if (sent === $("cm-wiring-form")) closeWiringForm();

    const meter = $("cm-meter-form");
    fillMeterProfiles(meter);
    fillCircuits(meter.elements.circuit, fresh(meter) ? (state.meter ? state.meter.circuit : "site") : meter.elements.circuit.value);
    if (fresh(meter)) { fillMeter(meter, state.meter); clean(meter); }
    const pending = (section, text) => (state.restart_needed.includes(section) ? t("page.commissioning.waits_for_restart", { now: text }) : text);
    $("cm-meter-now").textContent = pending("meter", state.meter ? t("page.commissioning.meter_line", { profile: state.meter.profile, circuit: state.meter.circuit,
      limit: num(state.meter.limit_a), margin: num(state.meter.margin_a), fallback: num(state.meter.fallback_limit_a) }) : t("page.commissioning.no_meter"));
    $("cm-meter-remove").hidden = !state.meter;

    const bms = $("cm-bms-form");
    if (fresh(bms)) { fillBms(bms, state.bms); clean(bms); }
    $("cm-bms-now").textContent = pending("bms", state.bms ? t("page.commissioning.bms_line", { state: state.bms.enabled ? t("page.commissioning.bms_on") : t("page.commissioning.bms_off"),
      host: state.bms.host, port: state.bms.port, unit: state.bms.unit_id,
      access: state.bms.read_only ? t("page.commissioning.read_only") : (state.bms.allow_write_from.length
        ? t("page.commissioning.writes_from_list", { list: state.bms.allow_write_from.join(", ") }) : t("page.commissioning.writes_none")) })
      : t("page.commissioning.no_bms"));
    const watchdog = $("cm-watchdog-form");
    if (fresh(watchdog)) {
      watchdog.elements.timeout_s.value = i18n.field(state.bms_watchdog_s);
      watchdog.elements.fallback_limit_a.value = i18n.field(state.bms_fallback_limit_a);
      clean(watchdog);
    }

    const ocpp = $("cm-ocpp-form");
    if (fresh(ocpp)) { fillOcpp(ocpp, state.ocpp); clean(ocpp); }
    $("cm-ocpp-now").textContent = pending("ocpp", state.ocpp ? t("page.commissioning.ocpp_line", { url: state.ocpp.settings.url,
      id: state.ocpp.settings.charge_point_id, profile: state.ocpp.settings.security_profile }) : t("page.commissioning.no_ocpp"));
    $("cm-ocpp-remove").hidden = !state.ocpp;
    ocppProfileChanged(ocpp);
  }

  function renderRestart(state) {
    const waiting = state.restart_needed;
    $("cm-restart").hidden = !waiting.length;
    $("cm-restart-text").textContent = t("page.commissioning.restart_waiting", { what: waiting.map((s) => t(`page.commissioning.section_${s}`)).join(", ") });
    $("cm-restart-button").hidden = !state.restart_available;
    $("cm-restart-how").hidden = state.restart_available;
  }

  /* -- installation limit ----------------------------------------------------------------------------------- */
  async function setInstallationLimit(event) {
    event.preventDefault();
    const form = event.target;
    const read = readNumbers(form, [["limit_a", "page.commissioning.the_installation_limit"]]);
    if (read.error) { refuse(form, "cm-supply-msg", read); return; }
    const body = { limit_a: read.values.limit_a };
    if (body.limit_a === 0) {
      if (!await askConfirm(t("page.commissioning.zero_title"), t("page.commissioning.zero_installation"), t("page.commissioning.zero_yes"))) return;
      body.confirm_zero = true;
    }
    await send(form, "cm-supply-msg", "PUT", "/api/installation-limit", body, () => t("page.commissioning.applied_now"));
  }

  /* -- circuits --------------------------------------------------------------------------------------------- */
  function childrenOf(state) {
    const children = new Map();
    for (const c of state.circuits) {
      if (!children.has(c.parent)) children.set(c.parent, []);
      children.get(c.parent).push(c);
    }
    return children;
  }

  function unitsText(n) {
    return n === 0 ? t("page.commissioning.no_units") : (n === 1 ? t("page.commissioning.one_unit") : t("page.commissioning.units", { n }));
  }

  function renderTree(state) {
    const tree = $("cm-tree");
    if (tree.contains($("cm-circuit-form"))) closeCircuitForm();
    const children = childrenOf(state);
    const rows = [h("li", { class: "cm-node cm-root", "data-circuit": "site" },
      h("span", { class: "cm-node-name" }, t("page.commissioning.supply_node")),
      h("span", { class: "cm-node-note" }, t("page.commissioning.circuit_line", { limit: num(state.installation_limit_a),
        units: unitsText(state.units.filter((u) => u.circuit === "site").length) })))];
    const walk = (parent, depth) => {
      for (const c of children.get(parent) || []) {
        const edit = h("button", { type: "button", class: "btn btn-light-outline", "data-edit": c.id }, t("page.commissioning.edit"));
        const remove = h("button", { type: "button", class: "btn btn-danger", "data-remove": c.id }, t("page.commissioning.remove"));
        edit.addEventListener("click", () => openCircuitForm(c));
        remove.addEventListener("click", () => removeCircuit(c.id, remove));
        const row = h("li", { class: "cm-node", "data-circuit": c.id },
          h("span", { class: "cm-node-name" }, c.id),
          h("span", { class: "cm-node-note" }, t("page.commissioning.circuit_line", { limit: num(c.limit_a), units: unitsText(c.units) })),
          h("span", { class: "cm-node-buttons" }, edit, remove));
        row.style.setProperty("--depth", String(depth));
        rows.push(row);
        walk(c.id, depth + 1);
      }
    };
    walk("site", 1);
    tree.replaceChildren(...rows);
  }

  /* Parents a circuit may hang from: the supply and every circuit that is not itself or below it. */
  function fillParents(el, self, chosen) {
    const state = cm.state;
    const below = new Set();
    if (self) {
      const children = childrenOf(state);
      const stack = [self];
      while (stack.length) {
        const id = stack.pop();
        below.add(id);
        for (const c of children.get(id) || []) stack.push(c.id);
      }
    }
    const options = [["site", `${t("page.commissioning.supply_node")} (${t("page.commissioning.on_supply")})`],
      ...state.circuits.filter((c) => !below.has(c.id)).map((c) => [c.id, c.id])];
    el.replaceChildren(...options.map(([value, text]) => h("option", { value, selected: value === chosen }, text)));
  }

  function fillCircuits(el, chosen) {
    const options = [["site", `${t("page.commissioning.supply_node")} (${t("page.commissioning.on_supply")})`], ...cm.state.circuits.map((c) => [c.id, c.id])];
    el.replaceChildren(...options.map(([value, text]) => h("option", { value, selected: value === chosen }, text)));
  }

  function openCircuitForm(circuit) {
    closeCircuitForm();
    const form = $("cm-circuit-form");
    cm.editingCircuit = circuit.id;
    form.elements.id.value = circuit.id;
    fillParents(form.elements.parent, circuit.id, circuit.parent);
    form.elements.limit_a.value = i18n.field(circuit.limit_a);
    const row = $("cm-tree").querySelector(`[data-circuit="${CSS.escape(circuit.id)}"]`);
    row.after(h("li", { class: "cm-form-slot" }, form));
    form.hidden = false;
    mark(form, null);
    form.elements.limit_a.focus();
  }

  function closeCircuitForm() {
    const form = $("cm-circuit-form");
    const slot = form.parentElement;
    form.hidden = true;
    cm.editingCircuit = null;
    $("cm-circuits").insertBefore(form, $("cm-circuits-msg"));
    if (slot && slot.classList.contains("cm-form-slot")) slot.remove();
    delete form.dataset.dirty;
  }

  async function saveCircuit(event, form, editing) {
    event.preventDefault();
    const read = readNumbers(form, [["limit_a", "page.commissioning.the_circuit_limit"]]);
    if (read.error) { refuse(form, "cm-circuits-msg", read); return; }
    const id = form.elements.id.value.trim();
    const body = { id, parent: form.elements.parent.value, limit_a: read.values.limit_a };
    if (body.limit_a < 6) {
      if (!await askConfirm(t("page.commissioning.low_circuit_title", { id, limit: num(body.limit_a) }), t("page.commissioning.low_circuit", { id }), t("page.commissioning.low_circuit_yes"))) return;
      if (body.limit_a === 0) body.confirm_zero = true;
    }
    const path = editing ? `/api/circuits/${encodeURIComponent(editing)}` : "/api/circuits";
    await send(form, "cm-circuits-msg", editing ? "PUT" : "POST", path, body,
      () => (editing ? t("page.commissioning.circuit_saved", { id }) : t("page.commissioning.circuit_added", { id })));
  }

  async function removeCircuit(id, button) {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = t("page.commissioning.tap_again");
      setTimeout(() => { button.classList.remove("armed"); button.textContent = t("page.commissioning.remove"); }, 4000);
      return;
    }
    await send($("cm-add-circuit"), "cm-circuits-msg", "DELETE", `/api/circuits/${encodeURIComponent(id)}`, undefined,
      () => t("page.commissioning.circuit_removed", { id }));
  }

  /* -- units' wiring ---------------------------------------------------------------------------------------- */
  function wiringText(unit) {
    const breaker = unit.breaker_limit_a === null ? t("page.commissioning.nameplate", { limit: num(unit.nameplate_a) }) : t("page.commissioning.amps_value", { value: num(unit.breaker_limit_a) });
    const phases = unit.phases === 3 ? t("page.commissioning.three_phases", { rotation: unit.phase_rotation }) : t("page.commissioning.one_phase", { rotation: unit.phase_rotation });
    return t("page.commissioning.unit_line", { breaker, phases, circuit: unit.circuit === "site" ? t("page.commissioning.supply_node") : unit.circuit });
  }

  function renderUnitList(state) {
    const list = $("cm-unit-list");
    const form = $("cm-wiring-form");
    if (list.contains(form)) closeWiringForm();
    list.replaceChildren(...state.units.map((unit) => {
      const edit = h("button", { type: "button", class: "btn btn-light-outline", "data-edit": unit.id }, t("page.commissioning.edit"));
      edit.addEventListener("click", () => openWiringForm(unit.id));
      return h("li", { class: "cm-unit", "data-unit": unit.id, "data-search": `${unit.id} ${unit.circuit}`.toLowerCase() },
        h("span", { class: "cm-unit-name" }, h("b", {}, unit.id),
          h("small", {}, `${unit.device}${unit.added_here ? ` · ${t("page.commissioning.added_here")}` : ""}`)),
        h("span", { class: "cm-unit-wiring" }, wiringText(unit)), edit);
    }));
    filterUnits();
  }

  function filterUnits() {
    const needle = $("cm-unit-search").value.trim().toLowerCase();
    let shown = 0;
    for (const row of $("cm-unit-list").children) {
      if (!row.dataset.unit) continue;
      row.hidden = !!needle && !row.dataset.search.includes(needle);
      if (!row.hidden) shown += 1;
    }
    const list = $("cm-unit-list");
    let none = list.querySelector(".cm-none");
    if (!shown && cm.state && cm.state.units.length) {
      if (!none) list.append(h("li", { class: "cm-none empty" }, t("page.commissioning.no_unit_matches")));
    } else if (none) none.remove();
  }

  function fillRotations(form, chosen) {
    const one = form.elements.phases.value === "1";
    const options = one ? ROTATIONS1 : ROTATIONS3;
    const keep = chosen || form.elements.phase_rotation.value;
    form.elements.phase_rotation.replaceChildren(...options.map((o) => h("option", { value: o, selected: o === keep }, o)));
  }

  function openWiringForm(id) {
    closeWiringForm();
    const unit = cm.state.units.find((u) => u.id === id);
    const form = $("cm-wiring-form");
    cm.editingUnit = id;
    form.elements.breaker_limit_a.value = unit.breaker_limit_a === null ? "" : i18n.field(unit.breaker_limit_a);
    form.elements.breaker_limit_a.placeholder = t("page.commissioning.breaker_placeholder", { limit: num(unit.nameplate_a) });
    form.elements.phases.value = String(unit.phases);
    fillRotations(form, unit.phase_rotation);
    fillCircuits(form.elements.circuit, unit.circuit);
    const row = $("cm-unit-list").querySelector(`[data-unit="${CSS.escape(id)}"]`);
    row.after(h("li", { class: "cm-form-slot" }, form));
    form.hidden = false;
    mark(form, null);
    form.elements.breaker_limit_a.focus();
  }

  function closeWiringForm() {
    const form = $("cm-wiring-form");
    const slot = form.parentElement;
    form.hidden = true;
    cm.editingUnit = null;
    $("cm-units").insertBefore(form, $("cm-units-msg"));
    if (slot && slot.classList.contains("cm-form-slot")) slot.remove();
    delete form.dataset.dirty;
  }

  async function saveWiring(event) {
    event.preventDefault();
    const form = $("cm-wiring-form");
    const id = cm.editingUnit;
    const read = readNumbers(form, [["breaker_limit_a", "page.commissioning.the_breaker", true]]);
    if (read.error) { refuse(form, "cm-units-msg", read); return; }
    const body = { breaker_limit_a: read.values.breaker_limit_a, phases: Number(form.elements.phases.value),
      phase_rotation: form.elements.phase_rotation.value, circuit: form.elements.circuit.value };
    await send(form, "cm-units-msg", "PUT", `/api/units/${encodeURIComponent(id)}/wiring`, body, () => t("page.commissioning.unit_saved", { id }));
  }

  /* -- site meter ------------------------------------------------------------------------------------------- */
  function fillMeterProfiles(form) {
    const el = form.elements.profile;
    const chosen = el.value || (cm.state.meter ? cm.state.meter.profile : "");
    el.replaceChildren(h("option", { value: "" }, t("page.commissioning.choose_profile")),
      ...cm.meterProfiles.map((p) => h("option", { value: p.name, selected: p.name === chosen },
        `${p.manufacturer} ${p.models.join(", ")} (${p.name})`)));
  }

  function meterProfileChanged(form) {
    const profile = cm.meterProfiles.find((p) => p.name === form.elements.profile.value);
    for (const option of form.elements.type.options) option.disabled = !!profile && !profile.transports.includes(option.value);
    if (form.elements.type.selectedOptions[0] && form.elements.type.selectedOptions[0].disabled) {
      const first = [...form.elements.type.options].find((o) => !o.disabled);
      if (first) form.elements.type.value = first.value;
    }
    if (profile && !form.dataset.filling) form.elements.unit.value = profile.default_unit_id;
    meterTypeChanged(form);
  }

  function meterTypeChanged(form) {
    const serial = form.elements.type.value === "rtu";
    form.querySelectorAll(".cm-net").forEach((el) => { el.hidden = serial; });
    form.querySelectorAll(".cm-serial").forEach((el) => { el.hidden = !serial; });
  }

  function fillMeter(form, meter) {
    form.dataset.filling = "1";
    const m = meter || { profile: "", transport: { type: "tcp", port: 502, unit: 1 }, limit_a: "", margin_a: 2,
      fallback_limit_a: "", stale_after_s: 5 };
    form.elements.profile.value = m.profile;
    form.elements.type.value = m.transport.type;
    form.elements.host.value = m.transport.host || "";
    form.elements.port.value = m.transport.port || 502;
    form.elements.device.value = m.transport.device || "";
    form.elements.baudrate.value = String(m.transport.baudrate || 9600);
    form.elements.parity.value = m.transport.parity || "N";
    form.elements.unit.value = m.transport.unit;
    form.elements.limit_a.value = m.limit_a === "" ? "" : i18n.field(m.limit_a);
    form.elements.margin_a.value = i18n.field(m.margin_a);
    form.elements.fallback_limit_a.value = m.fallback_limit_a === "" ? "" : i18n.field(m.fallback_limit_a);
    form.elements.stale_after_s.value = i18n.field(m.stale_after_s);
    meterProfileChanged(form);
    delete form.dataset.filling;
  }

  async function saveMeter(event) {
    event.preventDefault();
    const form = $("cm-meter-form");
    const read = readNumbers(form, [["unit", "page.commissioning.the_unit_id"], ["limit_a", "page.commissioning.the_meter_limit"], ["margin_a", "page.commissioning.the_margin"],
      ["fallback_limit_a", "page.commissioning.the_fallback"], ["stale_after_s", "page.commissioning.the_stale"]]);
    if (read.error) { refuse(form, "cm-meter-msg", read); return; }
    const f = form.elements;
    const transport = { type: f.type.value, unit: read.values.unit };
    if (transport.type === "rtu") {
      Object.assign(transport, { device: f.device.value.trim(), baudrate: Number(f.baudrate.value), parity: f.parity.value });
    } else {
      const port = readNumber(f.port, "page.commissioning.the_port");
      if (port.error) { refuse(form, "cm-meter-msg", { error: port.error, el: f.port }); return; }
      Object.assign(transport, { host: f.host.value.trim(), port: port.value });
    }
    const body = { profile: f.profile.value, transport, circuit: f.circuit.value, limit_a: read.values.limit_a,
      margin_a: read.values.margin_a, fallback_limit_a: read.values.fallback_limit_a, stale_after_s: read.values.stale_after_s };
    if (body.fallback_limit_a < 6 && !await askConfirm(t("page.commissioning.low_fallback_title"),
      t("page.commissioning.low_fallback", { circuit: body.circuit === "site" ? t("page.commissioning.supply_node") : body.circuit }), t("page.commissioning.low_fallback_yes"))) return;
    await send(form, "cm-meter-msg", "PUT", "/api/meter", body,
      (state) => (state.restart_needed.includes("meter") ? t("page.commissioning.saved_restart") : t("page.commissioning.applied_now")));
  }

  async function removeMeter() {
    if (!await askConfirm(t("page.commissioning.remove_meter_title"), t("page.commissioning.remove_meter_text"), t("page.commissioning.remove_meter_yes"))) return;
    await send($("cm-meter-form"), "cm-meter-msg", "DELETE", "/api/meter", undefined, () => t("page.commissioning.meter_removed"));
  }

  /* -- BMS face and watchdog -------------------------------------------------------------------------------- */
  function fillBms(form, bms) {
    const b = bms || { enabled: true, host: "0.0.0.0", port: 502, unit_id: 1, read_only: false, allow_write_from: [] };
    form.elements.enabled.value = b.enabled ? "1" : "0";
    form.elements.read_only.value = b.read_only ? "1" : "0";
    form.elements.host.value = b.host;
    form.elements.port.value = b.port;
    form.elements.unit_id.value = b.unit_id;
    form.elements.allow_write_from.value = b.allow_write_from.map((a) => a.replace(/\/(32|128)$/, "")).join(", ");
  }

  async function saveBms(event) {
    event.preventDefault();
    const form = $("cm-bms-form");
    const read = readNumbers(form, [["port", "page.commissioning.the_port"], ["unit_id", "page.commissioning.the_unit_id"]]);
    if (read.error) { refuse(form, "cm-bms-msg", read); return; }
    const f = form.elements;
    const body = { enabled: f.enabled.value === "1", host: f.host.value.trim(), port: read.values.port,
      unit_id: read.values.unit_id, read_only: f.read_only.value === "1",
      allow_write_from: f.allow_write_from.value.split(/[\s,;]+/).filter(Boolean),
      rtu: cm.state.bms ? cm.state.bms.rtu : null };  /* the RS-485 side stays as the site file has it */
    await send(form, "cm-bms-msg", "PUT", "/api/bms", body,
      (state) => (state.restart_needed.includes("bms") ? t("page.commissioning.saved_restart") : t("page.commissioning.saved")));
  }

  async function saveWatchdog(event) {
    event.preventDefault();
    const form = $("cm-watchdog-form");
    const read = readNumbers(form, [["timeout_s", "page.commissioning.the_watchdog"], ["fallback_limit_a", "page.commissioning.the_watchdog_fallback"]]);
    if (read.error) { refuse(form, "cm-watchdog-msg", read); return; }
    const body = read.values;
    if (body.timeout_s > 0 && body.fallback_limit_a < 6
        && !await askConfirm(t("page.commissioning.low_watchdog_title"), t("page.commissioning.low_watchdog"), t("page.commissioning.low_fallback_yes"))) return;
    await send(form, "cm-watchdog-msg", "PUT", "/api/bms/watchdog", body,
      () => (body.timeout_s > 0 ? t("page.commissioning.watchdog_set", { timeout: num(body.timeout_s), fallback: num(body.fallback_limit_a) }) : t("page.commissioning.watchdog_off")));
  }

  /* -- central system --------------------------------------------------------------------------------------- */
  const KEY_SOURCE = { here: "page.commissioning.key_here", file: "page.commissioning.key_file",
    env: "page.commissioning.key_env", "site file": "page.commissioning.key_site_file" };

  function fillOcpp(form, ocpp) {
    const s = ocpp ? ocpp.settings : { url: "", charge_point_id: "", security_profile: 0 };
    form.elements.url.value = s.url;
    form.elements.charge_point_id.value = s.charge_point_id;
    form.elements.security_profile.value = String(s.security_profile);
    form.elements.password.value = "";
    form.elements.ca_file.value = s.ca_file || "";
    form.elements.client_cert.value = s.client_cert || "";
    form.elements.client_key.value = s.client_key || "";
  }

  function ocppProfileChanged(form) {
    const profile = Number(form.elements.security_profile.value);
    form.querySelectorAll(".cm-key").forEach((el) => { el.hidden = profile !== 1 && profile !== 2; });
    form.querySelectorAll(".cm-tls").forEach((el) => { el.hidden = profile < 2; });
    form.querySelectorAll(".cm-cert").forEach((el) => { el.hidden = profile !== 3; });
    const key = cm.state && cm.state.ocpp ? cm.state.ocpp.key : "none";
    form.elements.password.placeholder = key === "none" ? t("page.commissioning.key_new") : t("page.commissioning.key_kept", { source: t(KEY_SOURCE[key]) });
  }

  async function saveOcpp(event) {
    event.preventDefault();
    const form = $("cm-ocpp-form");
    const f = form.elements;
    const profile = Number(f.security_profile.value);
    const current = cm.state.ocpp;
    const body = { ...(current ? current.settings : {}), url: f.url.value.trim(), charge_point_id: f.charge_point_id.value.trim(),
      security_profile: profile, ca_file: profile >= 2 ? (f.ca_file.value.trim() || null) : null,
      client_cert: profile === 3 ? (f.client_cert.value.trim() || null) : null,
      client_key: profile === 3 ? (f.client_key.value.trim() || null) : null };
    const key = f.password.value;
    if (profile === 1 || profile === 2) {
      if (key) Object.assign(body, { password: key, password_file: null, password_env: null });
      else if (!current || current.key === "none") {
        refuse(form, "cm-ocpp-msg", { error: t("page.commissioning.key_needed"), el: f.password });
        return;
      }
    } else {
      Object.assign(body, { password_file: null, password_env: null });
    }
    const ok = await send(form, "cm-ocpp-msg", "PUT", "/api/ocpp", body,
      (state) => (state.restart_needed.includes("ocpp") ? t("page.commissioning.saved_restart") : t("page.commissioning.saved")));
    if (ok) f.password.value = "";
  }

  async function removeOcpp() {
    if (!await askConfirm(t("page.commissioning.remove_ocpp_title"), t("page.commissioning.remove_ocpp_text"), t("page.commissioning.remove_ocpp_yes"))) return;
    await send($("cm-ocpp-form"), "cm-ocpp-msg", "DELETE", "/api/ocpp", undefined, () => t("page.commissioning.ocpp_removed"));
  }

  /* -- restart ---------------------------------------------------------------------------------------------- */
  async function restart() {
    if (!await askConfirm(t("page.commissioning.restart_title"), t("page.commissioning.restart_text"), t("page.commissioning.restart_yes"))) return;
    const before = cm.instance;
    const result = await api("POST", "/api/restart");
    if (!result.ok) { say("cm-restart-msg", "err", result.data.detail); return; }
    say("cm-restart-msg", "busy", t("page.commissioning.restarting"));
    $("cm-restart-button").disabled = true;
    const until = Date.now() + 60000;
    while (Date.now() < until) {
      await new Promise((resolve) => { setTimeout(resolve, 1000); });
      const state = await api("GET", "/api/commissioning");
      if (state.ok && state.data.instance !== before) {
        await loadAuth();
        await load();
        say("cm-restart-msg", "ok", t("page.commissioning.restarted"));
        return;
      }
    }
    say("cm-restart-msg", "err", t("page.commissioning.restart_lost"));
  }

  /* -- joining the page ------------------------------------------------------------------------------------- */
  function shown() {
    return location.hash.replace(/^#\/?/, "") === "commissioning";
  }

  /* The view is built once the texts of the page's language are in, and again in a new language; what the
   * gateway holds is drawn anew from the last state. */
  function buildView() {
    build();
    locked();
    cm.treeKey = cm.unitsKey = "";
    if (cm.state) render(null);
  }

  VIEWS.commissioning = "commissioning";
  document.addEventListener("DOMContentLoaded", () => {
    i18n.ready.finally(() => {
      buildView();
      if (shown()) load();
    });
  });
  document.addEventListener("powershare:language", () => { if ($("cm-fields")) buildView(); });
  window.addEventListener("hashchange", () => {
    if (!shown()) return;
    $("tab-commissioning").scrollIntoView({ block: "nearest", inline: "nearest" });  /* the tab bar scrolls on a phone */
    load();
  });
  document.addEventListener("powershare:auth", () => {
    if (!$("cm-fields")) return;  /* not built yet: the build reads the sign-in itself */
    locked();
    if (shown() || cm.loaded) load();
  });
})();
