// The /kinfra dashboard: follows /__stream__ (or, while the stream is down, polls /__status__ every
// 2 s) and updates the cards, the list and the tables in place (no reload, scroll position kept);
// draws each card's sparklines from /__history__ every 10 s and keeps the event timeline. Every
// string from a service goes in through textContent: never HTML.
(function () {
  "use strict";
  const body = document.body;
  const refreshMs = Number(body.dataset.refreshMs || 2000);
  const actionsEnabled = body.dataset.actions === "true";
  const tokenKey = "kinfra-admin-token";
  const icons = { running: "🟢", starting: "🟡", stopping: "🟡", unhealthy: "🔴", error: "🔴", stopped: "⚪" };
  let timer = null;
  let inFlight = false;
  let lastStatus = null;   // the last /__status__ document drawn
  let lastHistory = null;  // the last /__history__?all=1 answer
  let stream = null;       // kinfraLive, when the page has it
  let boot = null;         // the kinfra process the timeline's seqs belong to
  let eventsCursor = 0;    // the last event seq asked about (any service's)

  function token() { return sessionStorage.getItem(tokenKey) || ""; }
  function authHeaders() {
    const t = token();
    return t ? { "Authorization": "Bearer " + t } : {};
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }
  function toast(text, isError) {
    const t = el("div", "toast" + (isError ? " error" : ""), text);
    document.body.appendChild(t);
    setTimeout(() => t.remove(), 3500);
  }

  function fact(label, cls) {
    const d = el("div");
    d.appendChild(el("dt", "", label));
    d.appendChild(el("dd", cls));
    return d;
  }

  function createCard(name) {
    const card = el("article", "card");
    card.dataset.service = name;
    const head = el("div", "card-head");
    head.appendChild(el("span", "indicator"));
    const title = el("h2", "name");
    const link = el("a", "", name);
    link.href = "/kinfra/service/" + encodeURIComponent(name);
    title.appendChild(link);
    head.appendChild(title);
    head.appendChild(el("span", "badge"));
    card.appendChild(head);
    card.appendChild(el("p", "message"));
    card.appendChild(el("p", "detail"));
    const facts = el("dl", "facts");
    facts.appendChild(fact("Port", "port"));
    facts.appendChild(fact("PID", "pid"));
    facts.appendChild(fact("Uptime", "uptime"));
    facts.appendChild(fact("Health", "health"));
    facts.appendChild(fact("Restarts", "restarts"));
    facts.appendChild(fact("Requests", "traffic"));
    facts.appendChild(fact("Errors", "errors"));
    card.appendChild(facts);
    card.appendChild(sparks());
    card.appendChild(el("ol", "steps"));
    card.appendChild(el("div", "logs"));
    const actions = el("div", "actions");
    const restart = el("button", "restart", "🔄 Restart");
    restart.type = "button";
    const logs = el("a", "button view-logs", "📄 View Logs");
    logs.href = "/__logs__/" + encodeURIComponent(name);
    logs.target = "_blank";
    logs.rel = "noopener";
    const stop = el("button", "stop", "⏹ Stop");
    stop.type = "button";
    actions.appendChild(restart);
    actions.appendChild(logs);
    actions.appendChild(stop);
    const details = el("a", "button details", "📈 Details");
    details.href = "/kinfra/service/" + encodeURIComponent(name);
    actions.appendChild(details);
    card.appendChild(actions);
    return card;
  }

  const NS = "http://www.w3.org/2000/svg";
  function spark(cls) { const svg = document.createElementNS(NS, "svg"); svg.setAttribute("class", "spark " + cls); return svg; }
  function sparks() {
    const box = el("div", "sparks");
    for (const [label, cls] of [["req/s", "spark-rps"], ["p99 ms", "spark-p99"], ["5xx/s", "spark-errors"]]) {
      const f = el("figure");
      f.appendChild(el("figcaption", "", label));
      f.appendChild(spark(cls));
      box.appendChild(f);
    }
    return box;
  }

  function updateCard(card, name, s) {
    card.className = "card state-" + s.state;
    setText(card.querySelector(".indicator"), icons[s.state] || "⚪");
    setText(card.querySelector(".badge"), s.state);
    setText(card.querySelector(".message"), s.status_message);
    const detail = card.querySelector(".detail");
    setText(detail, s.health_detail || "");
    detail.hidden = !s.health_detail;
    setText(card.querySelector(".port"), s.port);
    setText(card.querySelector(".pid"), s.pid === "-" ? "- (stopped)" : s.pid);
    setText(card.querySelector(".uptime"), s.uptime);
    setText(card.querySelector(".health"), s.health_status);
    setText(card.querySelector(".restarts"), String(s.restarts === undefined ? 0 : s.restarts));
    // The same counters as /metrics, over about the last ten seconds (formatted as the server does).
    const rps = s.requests_per_second;
    setText(card.querySelector(".traffic"),
            rps === null || rps === undefined ? "–" : (rps < 10 ? rps.toFixed(1) : rps.toFixed(0)) + " req/s");
    const er = s.error_rate;
    setText(card.querySelector(".errors"), er === null || er === undefined ? "–" : (er * 100).toFixed(1) + "%");
    card.classList.toggle("failing", typeof er === "number" && er > 0.05);

    updateInstances(part(card, "table", "instances"), s.instances || []);
    updateRestartReport(part(card, "div", "restart-report"), s.last_restart);

    const steps = card.querySelector(".steps");
    const stepsKey = JSON.stringify(s.steps || []);
    if (steps.dataset.key !== stepsKey) {
      steps.dataset.key = stepsKey;
      steps.replaceChildren(...(s.steps || []).map((st) => el("li", st.status, st.text)));
    }
    steps.hidden = !(s.steps && s.steps.length);

    const logs = card.querySelector(".logs");
    const logsKey = JSON.stringify(s.logs || []);
    if (logs.dataset.key !== logsKey) {
      logs.dataset.key = logsKey;
      const lines = (s.logs || []).map((l) => {
        const line = el("div", "log-line level-" + l.level);
        line.appendChild(el("span", "ts", l.timestamp + " "));
        line.appendChild(el("span", "lvl", String(l.level).toUpperCase()));
        line.appendChild(el("span", "msg", " " + l.message));
        return line;
      });
      if (!lines.length) lines.push(el("div", "empty", "No log lines yet."));
      logs.replaceChildren(...lines);
    }

    const restart = card.querySelector(".restart");
    const stop = card.querySelector(".stop");
    const managed = s.managed !== false;
    if (!actionsEnabled || !managed) {
      for (const b of [restart, stop]) {
        b.disabled = true;
        setText(b, "Not available");
        b.title = actionsEnabled ? "kinfra only watches this service; it does not run it" : "Actions are disabled (actions: false)";
      }
      return;
    }
    const down = s.state === "stopped" || s.state === "error";
    restart.disabled = false;
    stop.disabled = s.state === "stopping";
    setText(restart, "🔄 Restart");
    stop.dataset.action = down ? "start" : "stop";
    setText(stop, down ? "▶ Start" : "⏹ Stop");
    restart.onclick = () => act("restart", name);
    stop.onclick = () => act(stop.dataset.action, name);
  }

  // A part of the card made on first use, after the facts (cards also come from the server's page).
  function part(card, tag, cls) {
    let node = card.querySelector("." + cls);
    if (!node) {
      node = el(tag, cls);
      node.hidden = true;
      const steps = card.querySelector(".steps");
      card.insertBefore(node, steps);
    }
    return node;
  }

  // One row per process when there are several (instances: N, or a start-first restart under way).
  const roles = { starting: "new (starting)", draining: "replaced (draining)" };
  function updateInstances(table, list) {
    const key = JSON.stringify(list.map((i) => [i.instance, i.role, i.state, i.pid, i.port, i.uptime, i.in_flight]));
    if (table.dataset.key === key) return;
    table.dataset.key = key;
    table.hidden = list.length < 2;
    const head = el("tr");
    for (const h of ["#", "State", "PID", "Port", "Uptime", ""]) head.appendChild(el("th", "", h));
    const rows = list.map((i) => {
      const tr = el("tr", "instance state-" + i.state);
      tr.dataset.instance = String(i.instance);
      tr.appendChild(el("td", "", String(i.instance)));
      tr.appendChild(el("td", "", (icons[i.state] || "⚪") + " " + i.state));
      tr.appendChild(el("td", "pid", i.pid));
      tr.appendChild(el("td", "", i.port));
      tr.appendChild(el("td", "", i.uptime));
      tr.appendChild(el("td", "role", roles[i.role] || ""));
      return tr;
    });
    table.replaceChildren(head, ...rows);
  }

  function updateRestartReport(box, r) {
    const failed = !!(r && r.result === "failed");
    const key = failed ? r.at + r.message : "";
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.hidden = !failed;
    if (!failed) return box.replaceChildren();
    const lines = el("pre", "restart-lines", (r.lines || []).join("\n"));
    lines.hidden = !(r.lines && r.lines.length);
    box.replaceChildren(el("p", "restart-failed", "⚠ " + r.message), lines);
  }

  function render(status) {
    const services = status.services || {};
    const names = Object.keys(services);
    const cards = document.getElementById("cards");
    const seen = new Set();
    for (const name of names) {
      let card = cards.querySelector('[data-service="' + CSS.escape(name) + '"]');
      if (!card) {
        card = createCard(name);
        cards.appendChild(card);
      }
      updateCard(card, name, services[name]);
      seen.add(name);
    }
    for (const card of Array.from(cards.children)) if (!seen.has(card.dataset.service)) card.remove();
    lastStatus = status;
    renderList(services, names);
    applyView();
    let running = 0, starting = 0, errors = 0;
    for (const name of names) {
      const st = services[name].state;
      if (st === "running") running++;
      else if (st === "starting" || st === "stopping") starting++;
      else if (st === "error" || st === "unhealthy") errors++;
    }
    setText(document.querySelector("#stats .total .value"), String(names.length));
    setText(document.querySelector("#stats .running .value"), String(running));
    setText(document.querySelector("#stats .starting .value"), String(starting));
    setText(document.querySelector("#stats .errors .value"), String(errors));
    setText(document.getElementById("updated"), status.timestamp || "");
    const config = status.config || {};
    const banner = document.getElementById("banner");
    const problems = config.errors || [];
    banner.hidden = !problems.length;
    if (problems.length) banner.replaceChildren(el("strong", "", "routes.yaml has errors; the previous configuration is still in use:"),
      ...problems.map((p) => el("div", "mono", p)));
    if (config.loaded_at) setText(document.getElementById("config-loaded"), config.loaded_at.replace("T", " ") + " (" + config.loaded_by + ")");
    renderTopology(status);
    drawSparks();
  }

  // ---- The list view: one row per service (the compact view for many services). ----
  function renderList(services, names) {
    const body = document.querySelector("#service-list tbody");
    const rows = new Map();
    for (const tr of Array.from(body.children)) rows.set(tr.dataset.service, tr);
    for (const name of names) {
      const s = services[name];
      let tr = rows.get(name);
      if (!tr) {
        tr = el("tr", "svc-row");
        tr.dataset.service = name;
        const link = el("a", "", name);
        link.href = "/kinfra/service/" + encodeURIComponent(name);
        const nameCell = el("td", "svc-name");
        nameCell.appendChild(link);
        const sparkCell = el("td", "svc-spark");
        sparkCell.appendChild(spark("spark-p99"));
        const logs = el("a", "button", "📄 Logs");
        logs.href = "/__logs__/" + encodeURIComponent(name);
        const linkCell = el("td", "svc-links");
        linkCell.appendChild(logs);
        tr.append(el("td", "indicator"), nameCell, el("td", "svc-state"), el("td", "mono svc-rps"), el("td", "mono svc-errors"),
                  sparkCell, el("td", "mono svc-uptime"), el("td", "mono svc-restarts"), linkCell);
        body.appendChild(tr);
      }
      rows.delete(name);
      tr.className = "svc-row state-" + s.state;
      setText(tr.querySelector(".indicator"), icons[s.state] || "⚪");
      setText(tr.querySelector(".svc-state"), s.maintenance && s.maintenance.on ? s.state + " (maintenance)" : s.state);
      setText(tr.querySelector(".svc-rps"), rateText(s.requests_per_second));
      setText(tr.querySelector(".svc-errors"), errorText(s.error_rate));
      setText(tr.querySelector(".svc-uptime"), s.uptime);
      setText(tr.querySelector(".svc-restarts"), String(s.restarts || 0));
    }
    for (const tr of rows.values()) tr.remove();
  }
  function rateText(rps) { return rps === null || rps === undefined ? "–" : (rps < 10 ? rps.toFixed(1) : rps.toFixed(0)) + " req/s"; }
  function errorText(er) { return er === null || er === undefined ? "–" : (er * 100).toFixed(1) + "%"; }

  // ---- Filter, sort and search: cards and list rows alike. ----
  const rank = { error: 0, unhealthy: 1, starting: 2, stopping: 3, stopped: 4, running: 5 };
  function matches(s, name) {
    const q = document.getElementById("search").value.trim().toLowerCase();
    if (q && name.toLowerCase().indexOf(q) < 0) return false;
    switch (document.getElementById("filter-state").value) {
      case "running": return s.state === "running" && !(s.maintenance && s.maintenance.on);
      case "problem": return s.state === "error" || s.state === "unhealthy";
      case "starting": return s.state === "starting" || s.state === "stopping";
      case "stopped": return s.state === "stopped";
      case "maintenance": return !!(s.maintenance && s.maintenance.on);
      default: return true;
    }
  }
  function applyView() {
    if (!lastStatus) return;
    const services = lastStatus.services || {};
    const names = Object.keys(services);
    const order = names.slice();
    const by = document.getElementById("sort").value;
    const num = (v) => (typeof v === "number" ? v : -1);
    if (by === "name") order.sort();
    else if (by === "state") order.sort((a, b) => (rank[services[a].state] ?? 9) - (rank[services[b].state] ?? 9));
    else if (by === "requests") order.sort((a, b) => num(services[b].requests_per_second) - num(services[a].requests_per_second));
    else if (by === "errors") order.sort((a, b) => num(services[b].error_rate) - num(services[a].error_rate));
    const position = new Map(order.map((n, i) => [n, i]));
    let shown = 0;
    for (const node of document.querySelectorAll("#cards .card, #service-list tbody tr")) {
      const name = node.dataset.service;
      const s = services[name];
      const visible = !!s && matches(s, name);
      node.hidden = !visible;
      node.style.order = String(position.get(name) ?? 0);
      if (visible && node.classList.contains("card")) shown++;
    }
    // The list keeps its rows in the chosen order (a table has no `order`).
    const body = document.querySelector("#service-list tbody");
    const rows = Array.from(body.children).sort((a, b) => position.get(a.dataset.service) - position.get(b.dataset.service));
    if (rows.some((r, i) => body.children[i] !== r)) body.replaceChildren(...rows);
    setText(document.getElementById("shown"), shown === names.length ? "" : shown + " of " + names.length + " shown");
  }
  function setView(list) {
    document.getElementById("cards").hidden = list;
    document.getElementById("list-wrap").hidden = !list;
    document.getElementById("view-cards").classList.toggle("on", !list);
    document.getElementById("view-list").classList.toggle("on", list);
    document.getElementById("view-cards").setAttribute("aria-pressed", String(!list));
    document.getElementById("view-list").setAttribute("aria-pressed", String(list));
    try { localStorage.setItem("kinfra-view", list ? "list" : "cards"); } catch (e) { /* private mode */ }
  }

  // ---- Sparklines: 15 minutes in 10 s steps, every service and route in one request. ----
  async function loadHistory() {
    if (document.hidden) return;  // (a hidden tab asks for nothing)
    try {
      const res = await fetch("/__history__?all=1&range=15m&step=10", { headers: authHeaders(), cache: "no-store" });
      if (!res.ok) return;
      lastHistory = await res.json();
      drawSparks();
    } catch (e) { /* next time */ }
  }
  function drawSparks() {
    if (!lastHistory || !window.kinfraCharts) return;
    const charts = window.kinfraCharts;
    const services = lastHistory.services || {};
    // The last 15 minutes, ending at kinfra's newest point: a young series fills only the right end.
    const whole = (lastHistory.kinfra && lastHistory.kinfra.t) || [];
    const to = whole.length ? whole[whole.length - 1] : Date.now() / 1000;
    const span = { from: to - 900 + lastHistory.step_seconds, to: to };
    const opts = (h, colour, title, unit) => Object.assign({ times: h.t, colour: colour, title: title, unit: unit }, span);
    for (const node of document.querySelectorAll("#cards .card, #service-list tbody tr")) {
      const h = services[node.dataset.service];
      if (!h) continue;
      const rps = node.querySelector(".spark-rps"), p99 = node.querySelector(".spark-p99"), errs = node.querySelector(".spark-errors");
      if (rps) charts.sparkline(rps, h.requests_per_s, opts(h, "#5A8DEE", "requests/s", "req/s"));
      if (p99) charts.sparkline(p99, h.p99_ms, opts(h, "#F59E0B", "p99 latency", "ms"));
      if (errs) charts.sparkline(errs, h.errors_per_s, opts(h, "#EF4444", "5xx/s", "/s"));
    }
    const routes = lastHistory.routes || {};
    for (const svg of document.querySelectorAll("#routes-table .spark-route")) {
      const h = routes[svg.dataset.label] || { t: [], requests_per_s: [] };
      charts.sparkline(svg, h.requests_per_s, opts(h, "#5A8DEE", "requests/s", "req/s"));
    }
    for (const svg of document.querySelectorAll("#routes-table .spark-route-errors")) {
      const h = routes[svg.dataset.label] || { t: [], errors_per_s: [] };
      charts.sparkline(svg, h.errors_per_s, opts(h, "#EF4444", "5xx/s", "/s"));
    }
  }

  // ---- The event timeline. ----
  const timeline = window.kinfraTimeline ? window.kinfraTimeline.create(document.getElementById("timeline"), { max: 100 }) : null;
  /** kinfra restarted (another process, its events numbered from 1 again): the timeline starts again. */
  function newProcess(id) {
    const changed = boot !== null && id !== boot;
    boot = id;
    if (changed && timeline) {
      timeline.reset();
      eventsCursor = 0;
    }
    return changed;
  }
  async function loadEvents() {
    if (!timeline) return;
    try {
      const after = eventsCursor;
      const res = await fetch("/__events__?limit=100" + (after ? "&after=" + after : ""), { headers: authHeaders(), cache: "no-store" });
      if (!res.ok) return;
      const doc = await res.json();
      if ((newProcess(doc.boot) || doc.reset) && after) {
        // What this page has belongs to an earlier process: from the start.
        timeline.reset();
        eventsCursor = 0;
        return loadEvents();
      }
      eventsCursor = Math.max(eventsCursor, doc.last_seq || 0);
      timeline.add(doc.events || []);
    } catch (e) { /* next time */ }
  }

  function cell(text, cls, title) {
    const td = el("td", cls || "", text === undefined || text === null ? "" : String(text));
    if (title) td.title = title;
    return td;
  }

  function fillTable(id, rows, empty) {
    const body = document.querySelector("#" + id + " tbody");
    const columns = document.querySelectorAll("#" + id + " thead th").length;
    if (!rows.length) {
      const td = cell(empty, "empty");
      td.colSpan = columns;
      const tr = el("tr");
      tr.appendChild(td);
      rows = [tr];
    }
    // Rebuilt only when something changed: a selection or hover survives the 2 s refresh.
    const key = rows.map((r) => r.textContent + "|" + r.className).join("\n");
    if (body.dataset.key === key) return;
    body.dataset.key = key;
    body.replaceChildren(...rows);
  }

  function sparkCell(label) {
    const td = el("td", "route-spark");
    for (const cls of ["spark-route", "spark-route-errors"]) {
      const svg = spark(cls);
      svg.dataset.label = label || "";
      td.appendChild(svg);
    }
    return td;
  }

  function row(cells, cls) {
    const tr = el("tr", cls || "");
    for (const c of cells) tr.appendChild(c);
    return tr;
  }

  function renderTopology(status) {
    const services = status.services || {};
    fillTable("routes-table", (status.routes || []).map((r) => {
      const s = services[r.service] || {};
      const state = r.maintenance ? "maintenance" : r.state;
      const er = r.error_rate;
      const rps = r.requests_per_second;
      return row([
        cell(r.host || "any", r.host ? "mono" : "muted"),
        cell(r.path, "mono"),
        cell(r.strip_prefix ? "yes" : "no", r.strip_prefix ? "" : "muted"),
        cell(r.service),
        cell((icons[r.state] || "⚪") + " " + state, "route-state state-" + r.state, s.status_message || ""),
        cell(rps === null || rps === undefined ? "–" : (rps < 10 ? rps.toFixed(1) : rps.toFixed(0)) + " req/s", "mono"),
        cell(er === null || er === undefined ? "–" : (er * 100).toFixed(1) + "%",
             "mono" + (typeof er === "number" && er > 0.05 ? " failing" : "")),
        sparkCell(r.label),
      ]);
    }), "No routes.");
    const kinds = { http: "HTTP", https: "HTTPS", redirect: "HTTP → HTTPS", admin: "Admin only" };
    fillTable("listeners-table", (status.listeners || []).map((l) => {
      let note = "";
      if (l.kind === "redirect") {
        note = "308 to port " + l.https_port;
        if (l.plain_paths && l.plain_paths.length) note += "; plain: " + l.plain_paths.join(", ");
      } else if (l.kind === "admin") note = "dashboard and admin API";
      return row([cell(l.address, "mono"), cell(kinds[l.kind] || l.kind, "kind-" + l.kind),
                  cell((l.protocols || []).join(", "), "mono"), cell(note, "muted")]);
    }), "No listeners.");
    fillTable("certificates-table", (status.certificates || []).map((c) => {
      // (A temporary certificate is short-lived on purpose: its expiry is not a warning.)
      const temporary = String(c.source || "").startsWith("temporary");
      const soon = typeof c.days_left === "number" && c.days_left < 14 && !temporary;
      const when = String(c.not_after || "").slice(0, 10) + " (" + c.days_left + (c.days_left === 1 ? " day)" : " days)");
      const details = [];  // [text, failing]: lines under the source
      if (c.acme) {
        // ACME: when it renews, and why the last attempt failed (the CA's words), if it did.
        if (c.acme.next_renewal) details.push(["renews " + String(c.acme.next_renewal).slice(0, 10), false]);
        if (c.acme.last_error) {
          details.push(["last attempt failed: " + c.acme.last_error, true]);
          if (c.acme.next_attempt)
            details.push(["next attempt " + String(c.acme.next_attempt).slice(0, 16).replace("T", " ") + " UTC", false]);
        }
      }
      if (c.ocsp) {
        // OCSP stapling: what the responder said, or why there is no answer to staple.
        if (c.ocsp.status) details.push(["OCSP " + c.ocsp.status, c.ocsp.status === "revoked"]);
        if (c.ocsp.last_error) details.push(["OCSP fetch failed: " + c.ocsp.last_error, !c.ocsp.status]);
      }
      const source = cell(c.source === "file" ? c.file : c.source, c.source === "file" ? "mono" : "",
                          c.file + "\nSHA-256 " + c.fingerprint);
      for (const [text, failing] of details) source.appendChild(el("div", "detail" + (failing ? " failing" : ""), text));
      return row([cell((c.names || []).join(", "), "mono"), cell(c.issuer),
                  cell(when, "mono" + (soon ? " failing" : ""), c.not_after), source, cell(c.listener, "mono")]);
    }), "No HTTPS listener: no certificates in use.");
  }

  function live(ok) {
    const l = document.getElementById("live");
    l.classList.toggle("disconnected", !ok);
    const streaming = stream && stream.mode() === "stream";
    setText(document.getElementById("live-text"),
            !ok ? "Disconnected • retrying every 2s" : streaming ? "Live • Streaming" : "Live • Updates every 2s");
    document.body.dataset.live = !ok ? "down" : streaming ? "stream" : "polling";
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const res = await fetch("/__status__", { headers: authHeaders(), cache: "no-store" });
      if (res.status === 401 || res.status === 403) {
        if (askToken("The admin token is needed to see this dashboard.")) return refreshSoon(0);
        live(false);
        return;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      render(await res.json());
      live(true);
    } catch (e) {
      live(false);
    } finally {
      inFlight = false;
    }
  }

  // Once soon; without the stream's script (a custom template), again every 2 s.
  function refreshSoon(ms) {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      await refresh();
      if (!stream) refreshSoon(refreshMs);
    }, ms);
  }

  function askToken(why) {
    const t = window.prompt(why + "\nAdmin token (kept for this tab only):", "");
    if (t) {
      sessionStorage.setItem(tokenKey, t.trim());
      return true;
    }
    return false;
  }

  async function act(action, name) {
    for (let attempt = 0; attempt < 2; attempt++) {
      let res;
      try {
        res = await fetch("/__action__/" + action + "/" + encodeURIComponent(name), {
          method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()), body: "{}",
        });
      } catch (e) {
        toast("kinfra did not answer: " + e, true);
        return;
      }
      if (res.status === 401 && attempt === 0 && askToken("This action needs the admin token.")) continue;
      let body = {};
      try { body = await res.json(); } catch (e) { /* not JSON */ }
      if (res.ok && body.success) toast(action + " " + name + ": accepted");
      else toast(action + " " + name + " failed: " + (body.error || "HTTP " + res.status), true);
      break;
    }
    refreshSoon(150);
  }

  document.getElementById("refresh-all").addEventListener("click", () => { refreshSoon(0); loadHistory(); loadEvents(); });
  document.getElementById("view-cards").addEventListener("click", () => setView(false));
  document.getElementById("view-list").addEventListener("click", () => setView(true));
  for (const id of ["filter-state", "sort", "search"]) document.getElementById(id).addEventListener("input", applyView);
  let savedView = null;
  try { savedView = localStorage.getItem("kinfra-view"); } catch (e) { /* private mode */ }
  // Many services: the list unless the user chose the cards.
  const initialCount = document.querySelectorAll("#cards .card").length;
  setView(savedView ? savedView === "list" : initialCount > 12);
  try {
    const initial = JSON.parse(document.getElementById("initial-status").textContent || "null");
    if (initial && initial.services) render(initial);
  } catch (e) { /* the first poll renders */ }
  if (window.kinfraLive) {
    stream = window.kinfraLive.start({
      url: () => "/__stream__" + (eventsCursor ? "?events_after=" + eventsCursor : ""),
      headers: authHeaders,
      on: {
        status: (doc) => { render(doc); live(true); },
        hello: (h) => { if (newProcess(h.boot)) loadEvents(); },
        event: (e) => { eventsCursor = Math.max(eventsCursor, e.seq); if (timeline) timeline.add([e]); },
        resync: (r) => { if (r.reset && timeline) { timeline.reset(); eventsCursor = 0; } loadEvents(); },
      },
      poll: () => { refresh(); loadEvents(); },
      state: (mode) => { live(true); if (mode === "stream") loadEvents(); },  // (what came before it opened)
    });
    refreshSoon(0);
  } else {
    refreshSoon(0);
  }
  loadEvents();
  loadHistory();
  setInterval(loadHistory, 10000);
})();
