// trace_view.js: draws the trace embedded in the page (the JSON of
// trace_view.lua in #trace-data) as a timeline: a row per task, its run,
// ready and wait slices, the instants, and the wake and spawn arrows
// between rows. Only the visible rows and the visible time range are
// drawn (binary searches in each row's slices, one rectangle per pixel at
// most), so a trace of 10,000 tasks stays usable. The page's body says
// what it drew: data-rows (every row), data-first-row and
// data-visible-rows, data-state="drawn"; #labels holds an element per
// visible row.
(function () {
  "use strict";

  var ROW_H = 18, AXIS_H = 22, MIN_SPAN = 10; // px, px, ns
  var KINDS = ["run", "ready", "wait", "region"];
  var COLOURS = ["#2e9e44", "#e8a317", "#b9cde6", "#8e6cc9"];
  var FLOW_COLOURS = ["rgba(47,79,209,0.75)", "rgba(120,120,120,0.8)"];

  var started = performance.now();
  var data = JSON.parse(document.getElementById("trace-data").textContent);
  var rows = data.rows;
  var flows = Array.isArray(data.flows) ? data.flows : [];
  var span = Math.max(data.span, MIN_SPAN);
  var body = document.body;
  var canvas = document.getElementById("timeline");
  var labels = document.getElementById("labels");
  var tooltip = document.getElementById("tooltip");
  var ctx = canvas.getContext("2d");

  if (window.lasioEarlyErrors) {
    var box = document.getElementById("errors");
    box.textContent = window.lasioEarlyErrors;
    box.hidden = false;
  }
  rows.forEach(function (r) {
    r.s = Array.isArray(r.s) ? r.s : []; // cjson writes [] as {}
    r.m = Array.isArray(r.m) ? r.m : [];
  });

  // The view: the time range [t0, t0 + w] (ns from the trace's start)
  // across the canvas, and the rows from scrollY (px) down.
  var view = { t0: 0, w: 0, scrollY: 0 };
  function fit() { view.t0 = -span * 0.02; view.w = span * 1.04; }
  fit();
  var width = 0, height = 0;

  function fmtTime(ns) {
    var a = Math.abs(ns);
    if (a >= 1e9) return (ns / 1e9).toFixed(a >= 1e10 ? 2 : 3) + " s";
    if (a >= 1e6) return (ns / 1e6).toFixed(a >= 1e7 ? 1 : 3) + " ms";
    if (a >= 1e3) return (ns / 1e3).toFixed(a >= 1e4 ? 1 : 3) + " \u00b5s";
    return Math.round(ns) + " ns";
  }

  function info() {
    var parts = [data.format];
    var i = data.info || {};
    if (i.clock !== undefined) parts.push("clock " + i.clock);
    if (i.seed !== undefined && i.seed !== null) parts.push("seed " + i.seed);
    parts.push(rows.length + " rows", flows.length + " arrows",
      "span " + fmtTime(data.span));
    document.getElementById("info").textContent = parts.join(" \u00b7 ");
  }

  function xOf(t) { return (t - view.t0) / view.w * width; }
  function tOf(x) { return view.t0 + x / width * view.w; }

  // The first slice of r whose end is at or after t (slices are sorted
  // and never overlap, so their ends are sorted too).
  function firstEndingAfter(s, t) {
    var lo = 0, hi = s.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (s[mid][0] + s[mid][1] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  // The first item (slice or mark, time at [0]) at or after t.
  function firstFrom(a, t) {
    var lo = 0, hi = a.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (a[mid][0] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function clampScroll() {
    var max = Math.max(0, rows.length * ROW_H - (height - AXIS_H) + ROW_H);
    view.scrollY = Math.min(Math.max(0, view.scrollY), max);
  }

  function drawAxis() {
    ctx.fillStyle = "#f6f6f6";
    ctx.fillRect(0, 0, width, AXIS_H);
    var step = Math.pow(10, Math.floor(Math.log10(view.w / 8)));
    if (view.w / step > 20) step *= 5; else if (view.w / step > 10) step *= 2;
    ctx.fillStyle = "#555";
    ctx.strokeStyle = "#e4e4e4";
    ctx.font = "10px sans-serif";
    ctx.textBaseline = "middle";
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t0 + view.w;
      t += step) {
      var x = Math.round(xOf(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, AXIS_H - 6);
      ctx.lineTo(x, height);
      ctx.stroke();
      ctx.fillText(fmtTime(t), x + 3, AXIS_H / 2);
    }
  }

  function rowY(i) { return AXIS_H + i * ROW_H - view.scrollY; }

  function drawRow(r, y) {
    var s = r.s, tEnd = view.t0 + view.w, nsPerPx = view.w / width;
    var i = firstEndingAfter(s, view.t0);
    var lastPx = -1, ticks = [];
    while (i < s.length && s[i][0] <= tEnd) {
      var sl = s[i], x0 = xOf(sl[0]), x1 = xOf(sl[0] + sl[1]);
      var w = x1 - x0;
      if (w < 1) {
        // slices narrower than a pixel: one rectangle for the pixel (a
        // run wins), then on from the next pixel
        var px = Math.floor(x0);
        if (px === lastPx) { i++; continue; }
        var kind = sl[2], j = i + 1;
        var next = view.t0 + (px + 1) * nsPerPx;
        while (j < s.length && s[j][0] + s[j][1] < next) {
          if (s[j][2] === 0) kind = 0;
          if (++j - i > 64) { // many: on from the slice at the next pixel
            var k = firstFrom(s, next) - 1;
            j = k >= j && s[k][0] + s[k][1] >= next ? k : Math.max(j, k + 1);
            break;
          }
        }
        ticks.push(px, kind);
        lastPx = px;
        i = Math.max(j, i + 1);
        continue;
      }
      ctx.fillStyle = COLOURS[sl[2]];
      if (sl[2] === 3) ctx.fillRect(x0, y + 1, w, 3);
      else ctx.fillRect(x0, y + 3, w, ROW_H - 6);
      i++;
    }
    // the narrow ones over the wide ones: a zero-width run (virtual time)
    // beside a long wait stays in sight
    for (var n = 0; n < ticks.length; n += 2) {
      ctx.fillStyle = COLOURS[ticks[n + 1]];
      ctx.fillRect(ticks[n], y + 3, ticks[n + 1] === 0 ? 2 : 1, ROW_H - 6);
    }
    var m = r.m, k = firstFrom(m, view.t0 - 4 * nsPerPx), lastMark = -10;
    while (k < m.length && m[k][0] <= tEnd + 4 * nsPerPx) {
      var mx = Math.round(xOf(m[k][0]));
      if (mx - lastMark >= 3) {
        var name = m[k][1];
        ctx.fillStyle = name === "cancel" || (name === "done" &&
          r.status === "error") ? "#b00020" : "#333";
        ctx.beginPath();
        ctx.moveTo(mx, y + ROW_H - 3);
        ctx.lineTo(mx - 3, y + ROW_H);
        ctx.lineTo(mx + 3, y + ROW_H);
        ctx.fill();
        lastMark = mx;
      }
      k++;
    }
  }

  // The arrows between visible rows, in one path per kind (a path per
  // arrow is slow in a software canvas). An arrow with one end out of
  // sight is a short stub at the visible end, pointing to the other, one
  // per pixel: a task that spawned 10,000 others stays readable.
  var MAX_ARROWS = 5000;
  function drawFlows(first, last) {
    var tEnd = view.t0 + view.w;
    for (var cat = 0; cat < 2; cat++) {
      var lines = new Path2D(), heads = new Path2D(), drawn = 0, stubs = {};
      for (var i = 0; i < flows.length && drawn < MAX_ARROWS; i++) {
        var f = flows[i];
        if (f[4] !== cat) continue;
        var in0 = f[0] >= first && f[0] <= last;
        var in1 = f[2] >= first && f[2] <= last;
        if (!in0 && !in1) continue;
        if (Math.max(f[1], f[3]) < view.t0 || Math.min(f[1], f[3]) > tEnd)
          continue;
        var x0 = xOf(f[1]), y0 = rowY(f[0]) + ROW_H / 2;
        var x1 = xOf(f[3]), y1 = rowY(f[2]) + ROW_H / 2;
        var dir = y1 >= y0 ? 1 : -1;
        if (!in0 || !in1) {
          var x = in0 ? x0 : x1, y = in0 ? y0 : y1;
          var key = Math.round(x) + ":" + Math.round(y) + ":" + dir;
          if (stubs[key]) continue;
          stubs[key] = true;
          lines.moveTo(x, y);
          lines.lineTo(x, y + dir * ROW_H * 0.6);
          drawn++;
          continue;
        }
        lines.moveTo(x0, y0);
        // a small bend, so that arrows at one instant stay apart
        lines.bezierCurveTo(x0 + 12, y0, x1 - 12, y1, x1, y1);
        heads.moveTo(x1, y1);
        heads.lineTo(x1 - 4, y1 - 6 * dir);
        heads.lineTo(x1 + 4, y1 - 6 * dir);
        heads.closePath();
        drawn++;
      }
      ctx.strokeStyle = ctx.fillStyle = FLOW_COLOURS[cat];
      ctx.setLineDash(cat === 1 ? [3, 3] : []);
      ctx.stroke(lines);
      ctx.setLineDash([]);
      ctx.fill(heads);
    }
  }

  // The DOM labels of the visible rows, from a pool of elements.
  var pool = [];
  function drawLabels(first, last) {
    var n = last >= first ? last - first + 1 : 0;
    while (pool.length < n) {
      var el = document.createElement("div");
      el.className = "row-label";
      labels.appendChild(el);
      pool.push(el);
    }
    for (var i = 0; i < pool.length; i++) {
      var e = pool[i];
      if (i >= n) { e.hidden = true; e.removeAttribute("data-task"); continue; }
      var r = rows[first + i];
      e.hidden = false;
      e.style.top = rowY(first + i) + "px";
      e.style.height = e.style.lineHeight = ROW_H + "px";
      e.textContent = "#" + r.id + " " + r.name;
      e.title = e.textContent + (r.site ? "\ncreated at " + r.site : "") +
        (r.status ? "\ndone: " + r.status : "");
      e.setAttribute("data-task", r.id);
      e.className = "row-label" + (r.id === 0 ? " loop" : "") +
        (r.status === "error" ? " error" : "");
    }
  }

  function draw() {
    var drawStart = performance.now();
    pending = false;
    var dpr = window.devicePixelRatio || 1;
    width = canvas.clientWidth;
    height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * dpr) ||
      canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    clampScroll();
    ctx.clearRect(0, 0, width, height);
    var first = Math.max(0, Math.floor(view.scrollY / ROW_H));
    var last = Math.min(rows.length - 1,
      Math.floor((view.scrollY + height - AXIS_H) / ROW_H));
    if (height <= AXIS_H) last = first - 1;
    drawAxis();
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, AXIS_H, width, height - AXIS_H);
    ctx.clip();
    for (var i = first; i <= last; i++) {
      var y = rowY(i);
      if (i % 2) { ctx.fillStyle = "#f7f7f7"; ctx.fillRect(0, y, width, ROW_H); }
      drawRow(rows[i], y);
    }
    drawFlows(first, last);
    ctx.restore();
    drawLabels(first, last);
    body.setAttribute("data-rows", rows.length);
    body.setAttribute("data-first-row", first);
    body.setAttribute("data-visible-rows", Math.max(0, last - first + 1));
    body.setAttribute("data-view-from", Math.round(view.t0));
    body.setAttribute("data-view-to", Math.round(view.t0 + view.w));
    body.setAttribute("data-draw-ms", Math.round(performance.now() - drawStart));
    body.setAttribute("data-state", "drawn");
  }

  var pending = false;
  function redraw() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }

  // {====== the tooltip: the fields of the slice or instant under the mouse

  // The event's fields, where an event starts (ev, seq, ts, task), then
  // the others by name; an object's fields as "key.field".
  var FIRST = { ev: 1, ph: 1, name: 2, seq: 3, ts: 4, dur: 5, task: 6, tid: 6 };
  function fieldLines(ev, out, prefix) {
    if (ev === null || typeof ev !== "object") return;
    Object.keys(ev).sort(function (a, b) {
      var fa = FIRST[a] || 99, fb = FIRST[b] || 99;
      return fa !== fb ? fa - fb : (a < b ? -1 : a > b ? 1 : 0);
    }).forEach(function (k) {
      var v = ev[k];
      if (v !== null && typeof v === "object" && !Array.isArray(v))
        fieldLines(v, out, prefix + k + ".");
      else out.push(prefix + k + ": " + JSON.stringify(v));
    });
  }

  function hit(x, y) {
    var ri = Math.floor((y - AXIS_H + view.scrollY) / ROW_H);
    if (y < AXIS_H || ri < 0 || ri >= rows.length) return null;
    var r = rows[ri], t = tOf(x), tol = 4 * view.w / width;
    var m = r.m, k = firstFrom(m, t - tol), best = null;
    for (; k < m.length && m[k][0] <= t + tol; k++)
      if (!best || Math.abs(m[k][0] - t) < Math.abs(best[0] - t)) best = m[k];
    if (best) return { row: r, mark: best };
    var s = r.s, i = firstEndingAfter(s, t - tol);
    for (; i < s.length && s[i][0] <= t + tol; i++) {
      if (s[i][0] - tol <= t && t <= s[i][0] + s[i][1] + tol)
        return { row: r, slice: s[i] };
    }
    return { row: r };
  }

  function showTooltip(e) {
    var rect = canvas.getBoundingClientRect();
    tooltipAt(e.clientX - rect.left, e.clientY - rect.top);
  }

  // The tooltip of what is at (x, y) on the canvas.
  function tooltipAt(x, y) {
    var h = hit(x, y);
    if (!h) { tooltip.hidden = true; return; }
    var r = h.row, lines = ["#" + r.id + " " + r.name];
    if (r.site) lines.push("created at " + r.site);
    if (h.slice) {
      var sl = h.slice;
      lines.push(sl[2] === 3 ? "region: " + sl[3] : sl[2] === 2 ? sl[3] :
        KINDS[sl[2]],
        "start " + fmtTime(sl[0]) + ", duration " + fmtTime(sl[1]), "");
      fieldLines(sl[4], lines, "");
    } else if (h.mark) {
      lines.push(h.mark[1] + " at " + fmtTime(h.mark[0]), "");
      fieldLines(h.mark[2], lines, "");
    } else {
      lines.push("at " + fmtTime(tOf(x)));
    }
    tooltip.textContent = lines.join("\n");
    tooltip.hidden = false;
    var left = x + 220 + 14, top = y + 14;
    if (left + tooltip.offsetWidth > window.innerWidth)
      left = Math.max(0, x + 220 - tooltip.offsetWidth - 8);
    tooltip.style.left = left + "px";
    tooltip.style.top = top + "px";
  }

  // ====== }

  // {====== zoom (wheel), pan (drag), rows (shift+wheel), fit (dblclick)

  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    if (e.shiftKey) {
      view.scrollY += e.deltaY || e.deltaX;
    } else {
      var x = e.clientX - canvas.getBoundingClientRect().left;
      var t = tOf(x);
      var w = view.w * Math.exp(e.deltaY * 0.002);
      view.w = Math.min(Math.max(w, MIN_SPAN), span * 4);
      view.t0 = t - x / width * view.w;
      if (e.deltaX) view.t0 += e.deltaX * view.w / width;
    }
    redraw();
  }, { passive: false });
  labels.addEventListener("wheel", function (e) {
    e.preventDefault();
    view.scrollY += e.deltaY;
    redraw();
  }, { passive: false });

  var drag = null;
  canvas.addEventListener("mousedown", function (e) {
    drag = { x: e.clientX, y: e.clientY, t0: view.t0, scrollY: view.scrollY };
    canvas.classList.add("dragging");
    tooltip.hidden = true;
  });
  window.addEventListener("mousemove", function (e) {
    if (drag) {
      view.t0 = drag.t0 - (e.clientX - drag.x) * view.w / width;
      view.scrollY = drag.scrollY - (e.clientY - drag.y);
      redraw();
    } else if (e.target === canvas) {
      showTooltip(e);
    }
  });
  window.addEventListener("mouseup", function () {
    drag = null;
    canvas.classList.remove("dragging");
  });
  canvas.addEventListener("mouseleave", function () { tooltip.hidden = true; });
  canvas.addEventListener("dblclick", function () {
    fit();
    redraw();
  });
  window.addEventListener("resize", redraw);

  // ====== }

  // The page's address may ask for a view: #row=N (the first row shown),
  // from=NS and to=NS (the time range, ns from the trace's start), and
  // point at an event: at=ROW,NS opens the tooltip of what is there.
  var pointAt = null;
  function viewFromHash() {
    var q = {};
    window.location.hash.replace(/^#/, "").split("&").forEach(function (p) {
      var kv = p.split("=");
      if (kv.length === 2) q[kv[0]] = kv[1].split(",").map(Number);
    });
    if (q.row && isFinite(q.row[0])) view.scrollY = q.row[0] * ROW_H;
    if (q.from && q.to && q.to[0] > q.from[0]) {
      view.t0 = q.from[0];
      view.w = Math.max(q.to[0] - q.from[0], MIN_SPAN);
    }
    pointAt = q.at && q.at.length === 2 && isFinite(q.at[0] + q.at[1]) ?
      q.at : null;
  }
  function showPointed() {
    if (pointAt)
      tooltipAt(xOf(pointAt[1]), rowY(pointAt[0]) + ROW_H / 2);
  }
  window.addEventListener("hashchange", function () {
    viewFromHash();
    draw();
    showPointed();
  });

  info();
  viewFromHash();
  body.setAttribute("data-load-ms", Math.round(performance.now() - started));
  draw();
  showPointed();
})();
