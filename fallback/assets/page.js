// Shared by the loading, 503 and maintenance pages: follows the service's status (/__stream__, or
// polling every 2 s while the stream is down) and goes back to the page the visitor asked for as
// soon as the service is healthy again; a countdown reloads anyway when it runs out. Text from the
// service goes in through textContent only.
(function () {
  "use strict";
  const body = document.body;
  const service = body.dataset.service;
  let remaining = Number(body.dataset.refresh || 5);
  // A stopped service will not come back by itself: no countdown; the page changes once it starts.
  const stopped = body.dataset.stopped === "true";
  const countdown = document.getElementById("countdown");
  function setText(id, text) {
    const n = document.getElementById(id);
    if (n && text !== undefined && n.textContent !== text) n.textContent = text;
  }
  function back() { window.location.reload(); }
  async function poll() {
    try {
      const res = await fetch("/__status__?service=" + encodeURIComponent(service), { cache: "no-store" });
      if (res.ok) apply(await res.json());
    } catch (e) { /* kinfra restarting: keep counting down */ }
  }
  function apply(s) {
    if (s.state === "running" && !(s.maintenance && s.maintenance.on)) return back();
    if (stopped) {
      if (s.state !== "stopped") back();  // someone started it: the page for that
      return;
    }
    setText("state", s.state);
    setText("status-message", s.status_message);
    const steps = document.getElementById("steps");
    if (steps && Array.isArray(s.steps)) {
      const key = JSON.stringify(s.steps);
      if (steps.dataset.key !== key) {
        steps.dataset.key = key;
        steps.replaceChildren(...s.steps.map((st) => {
          const li = document.createElement("li");
          li.className = st.status;
          li.textContent = st.text;
          return li;
        }));
      }
      steps.hidden = s.steps.length === 0;
    }
    setText("pid", s.pid);
    setText("uptime", s.uptime);
    setText("health", s.health_status);
  }
  if (window.kinfraLive) {
    window.kinfraLive.start({ url: () => "/__stream__?service=" + encodeURIComponent(service), on: { status: apply }, poll: poll });
  } else {
    setInterval(poll, 2000);
  }
  setInterval(() => {
    if (stopped) return;
    remaining -= 1;
    if (remaining <= 0) return back();
    if (countdown) countdown.textContent = "Trying again in " + remaining + "s";
  }, 1000);
  poll();
})();
