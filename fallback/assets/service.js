// One service's page (/kinfra/service/NAME): its charts over 15 minutes, an hour or a day
// (/__history__), its events (/__events__) and its log with a level filter and a search
// (/__logs__), kept current by /__stream__ (or by polling while the stream is down). Text from
// the service goes in through textContent only.
(function () {
  "use strict";
  const service = document.body.dataset.service;
  const enc = encodeURIComponent(service);
  const tokenKey = "kinfra-admin-token";
  const icons = { running: "🟢", starting: "🟡", stopping: "🟡", unhealthy: "🔴", error: "🔴", stopped: "⚪" };
  const rank = { debug: 0, info: 1, warn: 2, error: 3 };
  const maxLines = 100000;  // (the largest ring: log_lines is at most 100,000)
  let range = "15m";
  let lastLine = 0;
  let stream = null;
  let asked = false;
  let boot = null;          // the kinfra process the seqs below belong to
  let eventsCursor = 0;     // the last event seq asked about (any service's)
  let reloading = null;     // while the log is loaded again: the lines streamed meanwhile
  let catching = null;      // while newer lines are fetched (after a resync): the lines streamed meanwhile
  /** kinfra restarted (another process, its seqs begin again): events and log start again. */
  function newProcess(id) {
    const changed = boot !== null && id !== boot;
    boot = id;
    if (changed) {
      timeline.reset();
      eventsCursor = 0;
      loadEvents();
      restartLog();
    }
    return changed;
  }

  function headers() {
    const t = sessionStorage.getItem(tokenKey);
    return t ? { "Authorization": "Bearer " + t } : {};
  }
  function setText(id, text) {
    const n = document.getElementById(id);
    if (n && n.textContent !== text) n.textContent = text;
  }
  async function get(url) {
    const res = await fetch(url, { headers: headers(), cache: "no-store" });
    if ((res.status === 401 || res.status === 403) && !asked) {
      asked = true;
      const t = window.prompt("The admin token is needed to see this service:\nAdmin token (kept for this tab only):", "");
      if (t) {
        sessionStorage.setItem(tokenKey, t.trim());
        return get(url);
      }
    }
    if (!res.ok) throw new Error("HTTP " + res.status);
    return res.json();
  }

  // ---- Status ----
  function showStatus(doc) {
    const s = doc.services && doc.services[service];
    if (!s) return;
    setText("indicator", icons[s.state] || "⚪");
    const badge = document.getElementById("state");
    badge.className = "badge state-" + s.state;
    setText("state", s.maintenance && s.maintenance.on ? s.state + " · maintenance" : s.state);
    document.body.dataset.state = s.state;
    const rps = s.requests_per_second, er = s.error_rate;
    setText("f-rps", rps === null || rps === undefined ? "–" : (rps < 10 ? rps.toFixed(1) : rps.toFixed(0)) + "/s");
    setText("f-errors", er === null || er === undefined ? "–" : (er * 100).toFixed(1) + "%");
    setText("f-uptime", s.uptime);
    setText("f-restarts", String(s.restarts || 0));
    setText("f-pid", s.pid);
    setText("f-health", s.health_status);
    setText("message", [s.status_message, s.health_detail].filter(Boolean).join(" · "));
  }
  async function pollStatus() {
    try {
      showStatus(await get("/__status__?service=" + enc));
      live(true);
    } catch (e) { live(false); }
  }
  function live(ok) {
    const streaming = stream && stream.mode() === "stream";
    document.getElementById("live").classList.toggle("disconnected", !ok);
    setText("live-text", !ok ? "Disconnected • retrying" : streaming ? "Live • Streaming" : "Live • Updates every 2s");
    document.body.dataset.live = !ok ? "down" : streaming ? "stream" : "polling";
  }

  // ---- Charts ----
  async function loadHistory() {
    if (document.hidden) return;  // (a hidden tab asks for nothing)
    let doc;
    // (About 180–300 points: a chart's width; the API keeps 1 s and 1 min points.)
    const step = { "15m": 5, "1h": 60, "24h": 300 }[range];
    try { doc = await get("/__history__?service=" + enc + "&range=" + range + "&step=" + step); } catch (e) { return; }
    const pts = doc.points || [];
    const t = pts.map((p) => p.t);
    const charts = window.kinfraCharts;
    charts.chart(document.querySelector("#chart-requests .chart-box"), t,
                 [{ name: "requests/s", values: pts.map((p) => p.requests_per_s), colour: "#5A8DEE" }], { unit: "/s", title: "requests per second" });
    charts.chart(document.querySelector("#chart-latency .chart-box"), t, [
      { name: "p50", values: pts.map((p) => p.p50_ms), colour: "#22C55E" },
      { name: "p95", values: pts.map((p) => p.p95_ms), colour: "#F59E0B" },
      { name: "p99", values: pts.map((p) => p.p99_ms), colour: "#EF4444" },
    ], { unit: "ms", title: "latency" });
    charts.chart(document.querySelector("#chart-errors .chart-box"), t,
                 [{ name: "5xx/s", values: pts.map((p) => p.errors_per_s), colour: "#EF4444" }], { unit: "/s", title: "5xx per second" });
    charts.chart(document.querySelector("#chart-active .chart-box"), t,
                 [{ name: "in flight", values: pts.map((p) => p.connections), colour: "#8B5CF6" }], { unit: "", title: "requests in flight" });
  }
  let historyTimer = null;
  function setRange(r) {
    range = r;
    for (const b of document.querySelectorAll(".ranges button")) {
      b.classList.toggle("on", b.dataset.range === r);
      b.setAttribute("aria-pressed", String(b.dataset.range === r));
    }
    clearInterval(historyTimer);
    historyTimer = setInterval(loadHistory, r === "15m" ? 5000 : 60000);
    loadHistory();
  }

  // ---- Events ----
  const timeline = window.kinfraTimeline.create(document.getElementById("timeline"), { service: service, showService: false });
  async function loadEvents() {
    try {
      const after = eventsCursor;
      const doc = await get("/__events__?service=" + enc + "&limit=200" + (after ? "&after=" + after : ""));
      if (newProcess(doc.boot)) return;
      if (doc.reset && after) {
        timeline.reset();  // (kinfra restarted: its events are numbered from 1 again)
        eventsCursor = 0;
        return loadEvents();
      }
      eventsCursor = Math.max(eventsCursor, doc.last_seq || 0);
      timeline.add(doc.events || []);
    } catch (e) { /* next time */ }
  }

  // ---- Log ----
  const lines = document.getElementById("lines");
  const level = document.getElementById("level");
  const search = document.getElementById("log-search");
  function visible(line) {
    const min = level.value;
    if (min && rank[line.dataset.level] < rank[min]) return false;
    const q = search.value.trim().toLowerCase();
    return !q || line.dataset.text.indexOf(q) >= 0;
  }
  let shown = 0;  // lines not hidden by the filter (kept as lines come and go: no walk per line)
  function count() {
    const total = lines.children.length;
    setText("log-count", shown === total ? total + " lines" : shown + " of " + total + " lines");
  }
  function addLines(list) {
    const queue = reloading || catching;
    if (queue) {
      for (const e of list) queue.push(e);  // (added after the load, those it did not bring)
      return;
    }
    const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 30;
    for (const e of list) {
      if (e.seq <= lastLine) continue;
      lastLine = e.seq;
      const line = document.createElement("div");
      line.className = "log-line level-" + e.level;
      line.dataset.level = e.level;
      line.dataset.seq = String(e.seq);
      line.dataset.text = (e.timestamp + " " + e.level + " " + e.message).toLowerCase();
      const ts = document.createElement("span"); ts.className = "ts"; ts.textContent = e.timestamp + " ";
      const lvl = document.createElement("span"); lvl.className = "lvl"; lvl.textContent = String(e.level).toUpperCase();
      const msg = document.createElement("span"); msg.className = "msg"; msg.textContent = " " + e.message;
      line.append(ts, lvl, msg);
      line.hidden = !visible(line);
      if (!line.hidden) shown++;
      lines.appendChild(line);
    }
    while (lines.children.length > maxLines) {
      if (!lines.firstElementChild.hidden) shown--;
      lines.firstElementChild.remove();
    }
    count();
    if (document.getElementById("follow").checked && atBottom) lines.scrollTop = lines.scrollHeight;
  }
  async function loadLog(first) {
    if ((reloading || catching) && !first) return;
    if (!first) catching = [];
    try {
      // The whole ring (first) or what is newer, in pages of at most 10,000 lines, oldest first.
      let after = first ? 0 : lastLine, doc;
      const got = [];
      for (;;) {
        doc = await get("/__logs__/" + enc + "?format=json&limit=10000&after=" + after);
        if (!first && (newProcess(doc.boot) || doc.reset)) {
          catching = null;
          return restartLog();
        }
        for (const e of doc.lines || []) got.push(e);
        if (!doc.more || typeof doc.next !== "number" || doc.next <= after) break;
        after = doc.next;
      }
      if (first) boot = boot || doc.boot;
      const queued = (first ? reloading : catching) || [];
      if (first) reloading = null;
      else catching = null;
      addLines(got);
      addLines(queued);  // (lines streamed during the reload; those it brought are skipped by seq)
      if (first) lines.scrollTop = lines.scrollHeight;
    } catch (e) {
      const queued = (first ? reloading : catching) || [];
      if (first) reloading = null;
      else catching = null;
      addLines(queued);
    }
  }
  /** kinfra restarted (its line numbers began again): the log from the start. */
  function restartLog() {
    if (reloading) return;
    lines.replaceChildren();
    shown = 0;
    lastLine = 0;
    reloading = [];
    return loadLog(true);
  }
  /** Lines kinfra's ring dropped before this page had them: said where they were. */
  function gap(n) {
    const line = document.createElement("div");
    line.className = "log-line level-warn gap";
    line.dataset.level = "warn";
    line.dataset.seq = String(lastLine);
    line.dataset.text = "";
    line.textContent = "… " + n + " lines dropped by kinfra's log ring (log_lines) before this page got them …";
    line.hidden = !visible(line);
    if (!line.hidden) shown++;
    lines.appendChild(line);
    count();
  }
  function refilter() {
    shown = 0;
    for (const l of lines.children) {
      l.hidden = !visible(l);
      if (!l.hidden) shown++;
    }
    count();
  }
  level.addEventListener("change", refilter);
  search.addEventListener("input", refilter);
  for (const b of document.querySelectorAll(".ranges button")) b.addEventListener("click", () => setRange(b.dataset.range));

  setRange("15m");
  document.addEventListener("visibilitychange", () => { if (!document.hidden) loadHistory(); });
  pollStatus();
  Promise.all([loadEvents(), loadLog(true)]).then(() => {
    stream = window.kinfraLive.start({
      url: () => "/__stream__?service=" + enc + "&logs=1&logs_after=" + lastLine +
                 (eventsCursor ? "&events_after=" + eventsCursor : ""),
      headers: headers,
      on: {
        status: (doc) => { showStatus(doc); live(true); },
        hello: (h) => newProcess(h.boot),
        event: (e) => { eventsCursor = Math.max(eventsCursor, e.seq); timeline.add([e]); },
        log: (l) => addLines([l]),
        resync: (r) => {
          if (r.what === "logs") return r.reset ? restartLog() : r.lost ? gap(r.lost) : loadLog(false);
          if (r.reset) {
            timeline.reset();
            eventsCursor = 0;
          }
          loadEvents();
        },
      },
      poll: () => { pollStatus(); loadEvents(); loadLog(false); },
      state: () => live(true),
    });
  });
})();
