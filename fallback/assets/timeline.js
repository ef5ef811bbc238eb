// The event timeline (the dashboard's and a service page's): newest first, at most `max` entries.
// Events come from /__events__ and from /__stream__'s `event` messages; each is drawn once (by its
// seq). Text goes in through textContent only.
(function () {
  "use strict";
  const marks = { info: "●", warn: "▲", error: "■" };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function entry(e, opts) {
    const li = el("li", "event level-" + e.level + " kind-" + e.kind);
    li.dataset.seq = String(e.seq);
    li.dataset.kind = e.kind;
    const when = new Date(e.time);
    const time = el("time", "when", isNaN(when) ? e.time : when.toLocaleTimeString());
    time.dateTime = e.time;
    time.title = isNaN(when) ? e.time : when.toLocaleString();
    li.appendChild(el("span", "mark", marks[e.level] || "●"));
    li.appendChild(time);
    if (opts.showService) {
      if (e.service) {
        const a = el("a", "who", e.service);
        a.href = "/kinfra/service/" + encodeURIComponent(e.service);
        li.appendChild(a);
      } else {
        li.appendChild(el("span", "who kinfra", "kinfra"));
      }
    }
    li.appendChild(el("span", "what", e.message));
    if (e.by && e.message.indexOf("(" + e.by + ")") < 0) li.appendChild(el("span", "by", e.by));
    if (e.detail) li.appendChild(el("div", "event-detail", e.detail));
    return li;
  }

  /** A timeline in `list` (an <ol>): `add(events)` takes them in any order, oldest first is fine. */
  function create(list, opts) {
    opts = Object.assign({ max: 200, showService: true }, opts || {});
    let last = 0;
    let floor = 0;  // the newest seq trimmed off: anything at or below it stays out
    const seen = new Set();  // the seqs shown (at most `max`)
    function add(events) {
      for (const e of events) {
        if (seen.has(e.seq) || e.seq <= floor) continue;
        if (opts.service && e.service !== opts.service) continue;
        seen.add(e.seq);
        last = Math.max(last, e.seq);
        const node = entry(e, opts);
        // Newest first: before the first entry with a lower seq.
        let before = null;
        for (const c of list.children) if (Number(c.dataset.seq) < e.seq) { before = c; break; }
        list.insertBefore(node, before);
      }
      while (list.children.length > opts.max) {
        const gone = Number(list.lastElementChild.dataset.seq);
        seen.delete(gone);
        floor = Math.max(floor, gone);
        list.lastElementChild.remove();
      }
      const empty = list.parentElement && list.parentElement.querySelector(".timeline-empty");
      if (empty) empty.hidden = list.children.length > 0;
    }
    /** Forgets every entry (kinfra restarted: its seqs began again). */
    function reset() {
      last = 0;
      floor = 0;
      seen.clear();
      list.replaceChildren();
    }
    return { add: add, last: () => last, reset: reset };
  }

  window.kinfraTimeline = { create: create };
})();
