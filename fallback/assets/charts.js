// kinfra's charts: small inline SVG drawings, no library. `sparkline` draws one series into an
// <svg> (the cards, the list, the routes); `chart` draws one or more series with axes, a grid
// and a hover read-out (the service page). Values may be null (no requests: no latency): the line
// breaks there. Numbers only reach the DOM through attributes and textContent.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";

  function svgEl(tag, attrs) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  /** "M x y L x y …" for the points of `values`, breaking at nulls. */
  function path(values, x, y) {
    let d = "", pen = false;
    values.forEach((v, i) => {
      if (v === null || v === undefined || !isFinite(v)) { pen = false; return; }
      d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1) + " ";
      pen = true;
    });
    return d.trim();
  }

  /** The area under each unbroken run of `values`, down to `base`. */
  function area(values, x, y, base) {
    let d = "", run = [];
    const close = () => {
      if (run.length) {
        d += "M" + run[0][0] + " " + base + " " + run.map((p) => "L" + p[0] + " " + p[1]).join(" ") +
             " L" + run[run.length - 1][0] + " " + base + " Z ";
      }
      run = [];
    };
    values.forEach((v, i) => {
      if (v === null || v === undefined || !isFinite(v)) return close();
      run.push([x(i).toFixed(1), y(v).toFixed(1)]);
    });
    close();
    return d.trim();
  }

  function maxOf(list) {
    let m = 0;
    for (const series of list) for (const v of series) if (typeof v === "number" && v > m) m = v;
    return m;
  }

  function format(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const n = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
    return n + (unit ? " " + unit : "");
  }

  /**
   * One series in `svg` (its viewBox is set here), as a line over a light area. `opts.colour`,
   * `opts.title` (a tooltip: the latest value); with `opts.times` (seconds) and `opts.from`/`opts.to`,
   * points sit at their time (a young series fills only the right end). Data attributes say what
   * was drawn (for tests).
   */
  function sparkline(svg, values, opts) {
    opts = opts || {};
    const w = 120, h = 28;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("preserveAspectRatio", "none");
    const key = JSON.stringify(values) + (opts.colour || "") + (opts.times ? opts.times[0] + "-" + opts.to : "");
    if (svg.dataset.key === key) return;
    svg.dataset.key = key;
    const max = maxOf([values]) || 1;
    const n = Math.max(values.length - 1, 1);
    const timed = opts.times && opts.to > opts.from;
    const x = timed ? (i) => Math.max(0, ((opts.times[i] - opts.from) / (opts.to - opts.from)) * w) : (i) => (i / n) * w;
    const y = (v) => h - 2 - (v / max) * (h - 4);
    const colour = opts.colour || "var(--accent)";
    const line = path(values, x, y);
    const parts = [];
    if (line) {
      parts.push(svgEl("path", { d: area(values, x, y, h), fill: colour, opacity: "0.12", stroke: "none" }));
      parts.push(svgEl("path", { d: line, fill: "none", stroke: colour, "stroke-width": "1.5",
                                 "vector-effect": "non-scaling-stroke", "stroke-linejoin": "round" }));
      // A point alone (a run of one) has no line: a short tick shows it.
      values.forEach((v, i) => {
        const lonely = typeof v === "number" && typeof values[i - 1] !== "number" && typeof values[i + 1] !== "number";
        if (lonely) parts.push(svgEl("rect", { x: Math.max(0, x(i) - 1.5), y: y(v) - 1, width: 3, height: 2, fill: colour }));
      });
    }
    svg.replaceChildren(...parts);
    let last = null;
    for (let i = values.length - 1; i >= 0; i--) if (typeof values[i] === "number") { last = values[i]; break; }
    svg.dataset.points = String(values.length);
    svg.dataset.max = String(maxOf([values]));
    svg.dataset.last = last === null ? "" : String(last);
    const title = svgEl("title", {});
    title.textContent = (opts.title || "") + ": " + format(last, opts.unit) + " now, " + format(maxOf([values]), opts.unit) + " at most";
    svg.appendChild(title);
  }

  /**
   * A chart in `box` (a block element): `times` (seconds since the epoch) and `series`
   * ([{name, values, colour}]), `opts.unit`. Hovering shows every series' value at that time.
   */
  function chart(box, times, series, opts) {
    opts = opts || {};
    const w = 640, h = 180, left = 44, right = 8, top = 8, bottom = 20;
    const max = maxOf(series.map((s) => s.values)) || 1;
    const n = Math.max(times.length - 1, 1);
    const x = (i) => left + (i / n) * (w - left - right);
    const y = (v) => top + (h - top - bottom) * (1 - v / max);
    const svg = svgEl("svg", { viewBox: "0 0 " + w + " " + h, class: "chart-svg", role: "img" });
    svg.setAttribute("aria-label", opts.title || "chart");
    for (let g = 0; g <= 4; g++) {
      const v = (max * g) / 4, yy = y(v);
      svg.appendChild(svgEl("line", { x1: left, x2: w - right, y1: yy, y2: yy, class: "grid" }));
      const label = svgEl("text", { x: left - 6, y: yy + 4, "text-anchor": "end", class: "axis" });
      label.textContent = format(v);
      svg.appendChild(label);
    }
    if (times.length) {
      for (const i of [0, Math.floor(times.length / 2), times.length - 1]) {
        const t = svgEl("text", { x: x(i), y: h - 4, "text-anchor": i === 0 ? "start" : i === times.length - 1 ? "end" : "middle", class: "axis" });
        const seconds = times[times.length - 1] - times[0] < 3600;
        t.textContent = new Date(times[i] * 1000).toLocaleTimeString([], seconds ? {} : { hour: "2-digit", minute: "2-digit" });
        svg.appendChild(t);
      }
    }
    for (const s of series) {
      const d = path(s.values, x, y);
      if (d) svg.appendChild(svgEl("path", { d: d, fill: "none", stroke: s.colour, "stroke-width": "1.6",
                                             "stroke-linejoin": "round", class: "series" }));
      // A point with no neighbour draws no line: a dot shows it.
      s.values.forEach((v, i) => {
        if (typeof v === "number" && typeof s.values[i - 1] !== "number" && typeof s.values[i + 1] !== "number")
          svg.appendChild(svgEl("circle", { cx: x(i), cy: y(v), r: 2.5, fill: s.colour }));
      });
    }
    const cursor = svgEl("line", { x1: 0, x2: 0, y1: top, y2: h - bottom, class: "cursor", visibility: "hidden" });
    svg.appendChild(cursor);
    const tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    svg.addEventListener("mousemove", (ev) => {
      if (!times.length) return;
      const r = svg.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * w;
      const i = Math.max(0, Math.min(times.length - 1, Math.round(((px - left) / (w - left - right)) * n)));
      cursor.setAttribute("x1", x(i));
      cursor.setAttribute("x2", x(i));
      cursor.setAttribute("visibility", "visible");
      const when = new Date(times[i] * 1000).toLocaleTimeString();
      tip.replaceChildren(document.createTextNode(when));
      for (const s of series) {
        const line = document.createElement("div");
        const dot = document.createElement("span");
        dot.className = "swatch";
        dot.style.background = s.colour;
        line.append(dot, document.createTextNode(s.name + ": " + format(s.values[i], opts.unit)));
        tip.appendChild(line);
      }
      tip.hidden = false;
      tip.style.left = Math.min(r.width - 160, Math.max(0, ev.clientX - r.left + 12)) + "px";
    });
    svg.addEventListener("mouseleave", () => { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); });
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const s of series) {
      const item = document.createElement("span");
      const dot = document.createElement("span");
      dot.className = "swatch";
      dot.style.background = s.colour;
      let last = null;
      for (let i = s.values.length - 1; i >= 0; i--) if (typeof s.values[i] === "number") { last = s.values[i]; break; }
      item.append(dot, document.createTextNode(s.name + " " + format(last, opts.unit)));
      legend.appendChild(item);
    }
    box.dataset.points = String(times.length);
    box.dataset.max = String(maxOf(series.map((s) => s.values)));
    box.replaceChildren(legend, svg, tip);
  }

  window.kinfraCharts = { sparkline: sparkline, chart: chart, format: format };
})();
