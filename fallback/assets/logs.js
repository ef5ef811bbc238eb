// The full log view: loads every kept line (a page at a time: kinfra answers at most 1,000 lines
// a request), then follows new ones through /__stream__ (or asks for lines after the last one
// every second while the stream is down) and appends them, scrolling with them while "Follow" is on.
(function () {
  "use strict";
  const service = document.body.dataset.service;
  const lines = document.getElementById("lines");
  const follow = document.getElementById("follow");
  const levelFilter = document.getElementById("level");
  const rank = { debug: 0, info: 1, warn: 2, error: 3 };
  const tokenKey = "kinfra-admin-token";
  let last = 0, total = 0, busy = false;
  let boot = null;     // the kinfra process the line numbers belong to
  let waiting = null;  // while the log is loaded again: the lines streamed meanwhile

  function headers() {
    const t = sessionStorage.getItem(tokenKey);
    return t ? { "Authorization": "Bearer " + t } : {};
  }
  function visible(level) {
    const min = levelFilter.value;
    return !min || rank[level] >= rank[min];
  }
  function add(entry) {
    if (entry.seq <= last) return;
    const line = document.createElement("div");
    line.className = "log-line level-" + entry.level;
    line.dataset.level = entry.level;
    const ts = document.createElement("span"); ts.className = "ts"; ts.textContent = entry.timestamp + " ";
    const lvl = document.createElement("span"); lvl.className = "lvl"; lvl.textContent = String(entry.level).toUpperCase();
    const msg = document.createElement("span"); msg.className = "msg"; msg.textContent = " " + entry.message;
    line.append(ts, lvl, msg);
    line.hidden = !visible(entry.level);
    lines.appendChild(line);
  }
  async function poll() {
    if (busy) return;
    busy = true;
    try {
      await fetchPages();
    } finally {
      busy = false;
    }
  }
  /** Forgets the lines of an earlier kinfra process; lines streamed until the reload is done wait. */
  function startAgain() {
    lines.replaceChildren();
    last = 0;
    total = 0;
    waiting = waiting || [];
  }
  async function fetchPages() {
    try {
      const res = await fetch("/__logs__/" + encodeURIComponent(service) + "?format=json&after=" + last,
                              { headers: headers(), cache: "no-store" });
      if (res.status === 401 || res.status === 403) {
        const t = window.prompt("The admin token is needed to read these logs:", "");
        if (t) sessionStorage.setItem(tokenKey, t.trim());
        return;
      }
      const body = await res.json();
      const another = boot !== null && body.boot !== boot;
      boot = body.boot;
      if ((body.reset || another) && last > 0) {
        // kinfra restarted (its line numbers began again): the log from the start.
        startAgain();
        return fetchPages();
      }
      const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      for (const entry of body.lines || []) {
        if (entry.seq <= last) continue;
        add(entry);
        last = entry.seq;
        total++;
      }
      if (typeof body.next === "number") last = Math.max(last, body.next);
      document.getElementById("count").textContent = total + " lines";
      document.getElementById("live").classList.remove("disconnected");
      if (follow.checked && atBottom) window.scrollTo(0, document.body.scrollHeight);
      if (body.more) return fetchPages();
      // The lines streamed meanwhile (those the pages brought are skipped by seq).
      const queued = waiting || [];
      waiting = null;
      for (const entry of queued) append(entry);
    } catch (e) {
      document.getElementById("live").classList.add("disconnected");
    }
  }
  levelFilter.addEventListener("change", () => {
    for (const line of lines.children) line.hidden = !visible(line.dataset.level);
  });
  function append(entry) {
    if (waiting) return waiting.push(entry);
    if (entry.seq <= last) return;
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    add(entry);
    last = Math.max(last, entry.seq);
    total++;
    document.getElementById("count").textContent = total + " lines";
    if (follow.checked && atBottom) window.scrollTo(0, document.body.scrollHeight);
  }
  poll().then(() => {
    window.scrollTo(0, document.body.scrollHeight);
    if (!window.kinfraLive) return setInterval(poll, 1000);
    const live = document.getElementById("live");
    window.kinfraLive.start({
      url: () => "/__stream__?service=" + encodeURIComponent(service) + "&logs=1&logs_after=" + last,
      headers: headers,
      on: {
        hello: (h) => {
          if (boot !== null && h.boot !== boot) {
            startAgain();
            boot = h.boot;
            fetchPages();
          }
        },
        log: append,
        resync: (r) => {
          if (r.reset) {
            startAgain();
            return fetchPages();
          }
          if (r.lost) {
            const gap = document.createElement("div");
            gap.className = "log-line level-warn gap";
            gap.dataset.level = "warn";
            gap.textContent = "… " + r.lost + " lines dropped by kinfra's log ring (log_lines) before this page got them …";
            lines.appendChild(gap);
          }
        },
      },
      poll: poll,
      state: (mode) => { live.dataset.mode = mode; },
    });
  });
})();
