// Live updates for kinfra's pages: reads /__stream__ (Server-Sent Events) with fetch, so that the
// admin token can go in a header (EventSource cannot send one), and calls the page back for each
// event. While the stream is down (refused, cut, never reachable), `poll` runs every 2 s instead
// and the stream is tried again (after 3 s, then up to 30 s apart).
//
//   kinfraLive.start({ url, headers: () => ({…}), on: { hello(data), status(data), event(data), log(data), resync(data) },
//                      poll: async () => {…}, state: (mode) => {…} })   // mode: "stream" | "polling"
(function () {
  "use strict";

  function start(opts) {
    let mode = "";
    let pollTimer = null;
    let retry = 3000;
    let current = null;      // the AbortController of the open stream
    let retryTimer = null;
    const setMode = (m) => {
      if (m === mode) return;
      mode = m;
      if (m === "stream") {
        clearInterval(pollTimer);
        pollTimer = null;
      } else if (!pollTimer) {
        pollTimer = setInterval(() => { opts.poll && opts.poll(); }, 2000);
        opts.poll && opts.poll();
      }
      opts.state && opts.state(m);
    };

    function dispatch(block) {
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
      if (!data.length) return;
      const handler = opts.on && opts.on[name];
      if (!handler) return;
      let parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch (e) { return; }
      handler(parsed);
    }

    async function connect() {
      let res;
      if (document.hidden) return;  // (opened again when the tab is shown)
      const abort = new AbortController();
      current = abort;
      let heard = Date.now();
      let first = true;
      let opened = 0;
      // Nothing for 5 s at the start, or for 35 s later (kinfra sends a comment every 15 s): the
      // pages poll meanwhile; a silent stream is dropped and opened again.
      const slow = setTimeout(() => { if (first) setMode("polling"); }, 5000);
      const watchdog = setInterval(() => { if (Date.now() - heard > 35000) abort.abort(); }, 5000);
      try {
        const headers = Object.assign({ "Accept": "text/event-stream" }, opts.headers ? opts.headers() : {});
        res = await fetch(opts.url(), { headers: headers, cache: "no-store", signal: abort.signal });
      } catch (e) {
        res = null;
      }
      if (!res || !res.ok || !res.body || !String(res.headers.get("content-type")).startsWith("text/event-stream")) {
        clearTimeout(slow);
        clearInterval(watchdog);
        if (abort.signal.aborted && document.hidden) return;
        setMode("polling");
        if (res && (res.status === 401 || res.status === 403) && opts.denied) opts.denied(res.status);
        retryTimer = setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
        return;
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          heard = Date.now();
          if (first) {
            first = false;
            opened = Date.now();
            setMode("stream");
          }
          buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (e) { /* cut: polled until the stream is back */ }
      clearTimeout(slow);
      clearInterval(watchdog);
      if (document.hidden) return;  // (closed because the tab was hidden: opened again when shown)
      if (!first && !abort.signal.aborted && Date.now() - opened >= 5000) {
        // It worked for a while and ended (a reload ends every stream): open it again at once.
        retry = 3000;
        retryTimer = setTimeout(connect, 300);
        return;
      }
      // Refused, cut, or short-lived: poll, and try the stream again later and later.
      setMode("polling");
      retryTimer = setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    }

    // A hidden tab lets its stream go (a browser keeps only 6 connections per host, and every
    // kinfra tab would hold one), and polls nothing; shown again, it connects at once.
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        if (current) current.abort();
        current = null;
        clearTimeout(retryTimer);
        clearInterval(pollTimer);
        pollTimer = null;
        mode = "";
      } else if (!current) {
        retry = 3000;
        opts.poll && opts.poll();  // (what happened meanwhile)
        connect();
      }
    });

    connect();
    return { mode: () => mode };
  }

  window.kinfraLive = { start: start };
})();
