// execguard report: draws the page from the JSON in #report-data (this file: summary, timeline, counts, ATT&CK,
// matrix, exposure; table.js: stories and the alert table, through window.execguardReport).
// Every string from the data reaches the DOM as text (textContent, text nodes), never as markup; strings handed
// to Plotly (which reads a little HTML in labels and hovers) are entity-escaped first.
(function () {
  "use strict";
  var SEV = ["info", "low", "medium", "high", "critical"];
  var SEV_COLOR = ["#8a8f98", "#3b7dd8", "#e0a100", "#e5531a", "#a3001b"];
  var TOP = 30, TOP_COUNTS = 15, TOP_MATRIX = 25, BUCKETS = 160;
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var S = D.strings, R = D.rows, N = R.length, C = {};
  D.columns.forEach(function (c, i) { C[c] = i; });

  function $(id) { return document.getElementById(id); }
  function s(row, col) { return S[row[C[col]]]; }
  function reasons(row) { var v = S[row[C.reasons]]; return v ? v.split(",").map(function (k) { return S[+k]; }) : []; }
  // an element with text children only; attributes are our own constant names
  function el(tag, cls, kids) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    (kids || []).forEach(function (k) {
      if (k === null || k === undefined) return;
      e.appendChild(typeof k === "object" ? k : document.createTextNode(String(k)));
    });
    return e;
  }
  function sevBadge(n) { return el("span", "sev sev-" + n, [SEV[n]]); }
  function iso(ms) { return ms === null ? "(no time)" : new Date(ms).toISOString(); }
  function plural(n, word) { return n.toLocaleString("en") + " " + word + (n === 1 ? "" : "s"); }
  // for Plotly's label and hover text, which understands a few tags and these entities
  // (with < and > as entities no tag can start; Plotly shows &quot; as is, so quotes stay)
  function esc(t) { return String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function cut(t, n) { return t.length > n ? t.slice(0, n - 1) + "…" : t; }
  function countBy(col) {
    var m = new Map(), k = C[col];
    for (var i = 0; i < N; i++) { var v = R[i][k]; m.set(v, (m.get(v) || 0) + 1); }
    return Array.from(m.entries()).sort(function (a, b) { return b[1] - a[1] || (S[a[0]] < S[b[0]] ? -1 : 1); });
  }
  function countLines(col) {  // a column holding several values, one per line
    var m = new Map(), k = C[col];
    for (var i = 0; i < N; i++) {
      var v = S[R[i][k]];
      if (v) v.split("\n").forEach(function (p) { m.set(p, (m.get(p) || 0) + 1); });
    }
    return Array.from(m.entries()).sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); });
  }
  // a filter value: quoted (with \" and \\ inside) when it holds white space, a quote or a backslash
  function quote(v) { return /[\s"\\]/.test(v) ? '"' + v.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"' : v; }
  function unquote(v) { return v.replace(/\\(.)/g, "$1"); }

  // ---------- summary
  var sevCounts = [0, 0, 0, 0, 0], timed = [];
  for (var i = 0; i < N; i++) { sevCounts[R[i][C.sev]]++; if (R[i][C.t] !== null) timed.push(i); }
  var inputs = D.meta.inputs || [];
  $("meta-inputs").textContent = inputs.length ? "from " + inputs.slice(0, 4).join(", ") + (inputs.length > 4 ? " and " + (inputs.length - 4) + " more" : "") : "";
  var cards = $("summary");
  function card(label, n, cls) { var c = el("div", "card", [el("div", "n", [n.toLocaleString("en")]), el("div", cls || "meta", [label])]); cards.appendChild(c); return c; }
  card("alerts", N).id = "count-total";
  for (var v = 4; v >= 0; v--) { var c = card(SEV[v], sevCounts[v]); c.dataset.sev = SEV[v]; c.dataset.count = sevCounts[v]; }
  card("actors", countBy("actor").length);
  card("targets", countBy("target").length);
  $("count-total").dataset.count = N;
  $("summary-range").textContent = timed.length
    ? "from " + iso(R[timed[0]][C.t]) + " to " + iso(R[timed[timed.length - 1]][C.t]) + (timed.length < N ? "; " + plural(N - timed.length, "alert") + " without a time" : "")
    : "no alert has a time";

  // ---------- timeline: alerts per row label and time bucket, coloured by the worst severity in the bucket
  var tl = $("timeline"), tlBy = "actor", tlRange = null;
  function firstAtOrAfter(t) {
    var lo = 0, hi = timed.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (R[timed[mid]][C.t] < t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function plotlyTime(v) {  // relayout gives "2026-03-02 08:00:00.1234" (UTC) or a number
    if (typeof v === "number") return v;
    var m = /^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?)?/.exec(String(v));
    if (!m) return NaN;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0), +((m[7] || "0") + "00").slice(0, 3));
  }
  function drawTimeline() {
    if (!timed.length) { tl.textContent = "No alert has a time."; tl.dataset.points = 0; return; }
    var col = C[tlBy === "actor" ? "actor" : "target"];
    var ranked = countBy(tlBy === "actor" ? "actor" : "target");
    var rank = new Map();
    ranked.slice(0, TOP).forEach(function (e, j) { rank.set(e[0], j); });
    var others = ranked.length - rank.size, rows = rank.size + (others > 0 ? 1 : 0);
    var lo = tlRange ? tlRange[0] : R[timed[0]][C.t], hi = tlRange ? tlRange[1] : R[timed[timed.length - 1]][C.t];
    if (!(hi > lo)) { lo -= 30000; hi += 30000; }
    var w = (hi - lo) / BUCKETS, cells = new Map(), shown = 0;
    for (var j = firstAtOrAfter(lo); j < timed.length; j++) {
      var row = R[timed[j]], t = row[C.t];
      if (t > hi) break;
      var r = rank.has(row[col]) ? rank.get(row[col]) : TOP;
      var key = r * BUCKETS + Math.min(BUCKETS - 1, Math.floor((t - lo) / w));
      var cell = cells.get(key);
      if (!cell) cells.set(key, cell = [0, 0]);
      cell[0]++; if (row[C.sev] > cell[1]) cell[1] = row[C.sev];
      shown++;
    }
    var labels = ranked.slice(0, TOP).map(function (e) { return S[e[0]]; });
    if (others > 0) labels.push("(" + plural(others, "other") + ")");
    var traces = SEV.map(function (name, v) {
      return { type: "scatter", mode: "markers", name: name, x: [], y: [], text: [], customdata: [],
        marker: { color: SEV_COLOR[v], size: [], line: { width: 0 } }, hovertemplate: "%{text}<extra></extra>" };
    });
    cells.forEach(function (cell, key) {
      var r = Math.floor(key / BUCKETS), b = key % BUCKETS, tr = traces[cell[1]];
      var r0 = Math.min(r, rows - 1);
      tr.x.push(lo + (b + 0.5) * w); tr.y.push(rows - 1 - r0); tr.customdata.push(cell[0]);
      tr.marker.size.push(6 + 3 * Math.log2(cell[0]));
      tr.text.push(esc(labels[r0]) + "<br>" + plural(cell[0], "alert") + ", worst " + SEV[cell[1]] + "<br>" + iso(lo + b * w) + " +" + Math.max(1, Math.round(w / 1000)) + " s");
    });
    var layout = {
      height: Math.max(240, 90 + 22 * rows), margin: { l: 260, r: 20, t: 10, b: 40 }, showlegend: true,
      legend: { orientation: "h", y: -0.12 }, hovermode: "closest", dragmode: "zoom",
      xaxis: { type: "date", range: [lo, hi], autorange: false },
      yaxis: { fixedrange: true, tickmode: "array", range: [-0.7, rows - 0.3],
        tickvals: labels.map(function (_, r) { return rows - 1 - r; }), ticktext: labels.map(function (l) { return esc(cut(l, 38)); }) },
    };
    Plotly.react(tl, traces.filter(function (t) { return t.x.length; }), layout, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
    tl.dataset.points = shown;
    tl.dataset.rows = rows;
    $("timeline-caption").textContent = plural(shown, "alert") + " in the range shown, " + rows + " rows" + (others > 0 ? " (the " + TOP + " with most alerts, the rest together)" : "") + (timed.length < N ? "; " + plural(N - timed.length, "alert") + " without a time are not on it" : "");
  }
  drawTimeline();
  if (timed.length) {
    tl.on("plotly_relayout", function (ev) {
      if (ev["xaxis.autorange"]) { tlRange = null; drawTimeline(); return; }
      var a = ev["xaxis.range[0]"], b = ev["xaxis.range[1]"];
      if (a === undefined && ev["xaxis.range"]) { a = ev["xaxis.range"][0]; b = ev["xaxis.range"][1]; }
      if (a === undefined) return;
      var r = [plotlyTime(a), plotlyTime(b)];
      if (r[0] < r[1]) { tlRange = r; drawTimeline(); }
    });
  }
  $("timeline-by").addEventListener("change", function (e) { tlBy = e.target.value; drawTimeline(); });
  $("timeline-reset").addEventListener("click", function () { tlRange = null; drawTimeline(); });

  // ---------- counts
  function countTable(title, id, entries, key, label) {
    var total = entries.length, body = el("tbody"), max = Math.max.apply(null, [1].concat(entries.map(function (e) { return e[1]; })));
    entries.slice(0, TOP_COUNTS).forEach(function (e) {
      var name = label(e[0]), bar = el("span", "bar");
      bar.style.width = Math.max(1, Math.round(90 * e[1] / max)) + "px";
      var tr = el("tr", name.value ? "click" : "", [el("td", "", [name.text]), el("td", "num", [e[1].toLocaleString("en"), bar])]);
      tr.dataset.key = name.text; tr.dataset.count = e[1];
      if (name.value) tr.addEventListener("click", function () { api.setFilter(key + ":" + quote(name.value)); });
      body.appendChild(tr);
    });
    var t = el("table", "", [el("thead", "", [el("tr", "", [el("th", "", [title]), el("th", "num", ["alerts"])])]), body]);
    t.id = id;
    var box = el("div", "", [t]);
    if (total > TOP_COUNTS) box.appendChild(el("p", "meta", [plural(total - TOP_COUNTS, "more value") + " not shown"]));
    $("counts").appendChild(box);
  }
  function byString(e) { return S[e] ? { text: S[e], value: S[e] } : { text: "(none)", value: "" }; }
  countTable("severity", "counts-severity", [4, 3, 2, 1, 0].filter(function (v) { return sevCounts[v]; }).map(function (v) { return [v, sevCounts[v]]; }),
    "sev", function (v) { return { text: SEV[v], value: SEV[v] }; });
  countTable("rule", "counts-rule", countBy("rule"), "rule", byString);
  countTable("namespace", "counts-namespace", countBy("ns"), "ns", byString);
  countTable("actor", "counts-actor", countBy("actor"), "actor", byString);
  countTable("source format", "counts-format", countBy("fmt"), "fmt", byString);

  // ---------- ATT&CK
  (function () {
    var box = $("attack"), procs = countLines("procs"), rulesOf = new Map();
    for (var i = 0; i < N; i++) {
      var p = s(R[i], "procs");
      if (!p) continue;
      p.split("\n").forEach(function (name) {
        var m = rulesOf.get(name); if (!m) rulesOf.set(name, m = new Map());
        var rid = s(R[i], "rule"); m.set(rid, (m.get(rid) || 0) + 1);
      });
    }
    box.appendChild(el("p", "", [el("b", "", ["T1609 Container Administration Command"]), " (Execution): " + plural(N, "alert") + ". Every rule maps to it; procedure examples, ATT&CK software and groups, are below."]));
    if (!procs.length) { box.appendChild(el("p", "meta", ["No alert matched a known procedure."])); return; }
    var body = el("tbody");
    procs.forEach(function (e) {
      var rules = Array.from(rulesOf.get(e[0]).entries()).sort(function (a, b) { return b[1] - a[1]; }).map(function (r) { return r[0] + " (" + r[1] + ")"; });
      var tr = el("tr", "", [el("td", "", [e[0]]), el("td", "num", [e[1].toLocaleString("en")]), el("td", "mono", [rules.join(", ")])]);
      tr.dataset.key = e[0]; tr.dataset.count = e[1];
      body.appendChild(tr);
    });
    var t = el("table", "", [el("thead", "", [el("tr", "", [el("th", "", ["procedure"]), el("th", "num", ["alerts"]), el("th", "", ["rules (alerts)"])])]), body]);
    t.id = "attack-procedures";
    box.appendChild(t);
  })();

  // ---------- who exec'd into what
  function drawMatrix(by) {
    var box = $("matrix"), colName = by === "ns" ? "ns" : "target";
    box.textContent = "";
    var actors = countBy("actor").slice(0, TOP_MATRIX), cols = countBy(colName).slice(0, TOP_MATRIX);
    var ai = new Map(), ci = new Map(), cells = new Map(), max = 1;
    actors.forEach(function (e, j) { ai.set(e[0], j); });
    cols.forEach(function (e, j) { ci.set(e[0], j); });
    for (var i = 0; i < N; i++) {
      var a = ai.get(R[i][C.actor]), c = ci.get(R[i][C[colName]]);
      if (a === undefined || c === undefined) continue;
      var k = a * TOP_MATRIX + c, n = (cells.get(k) || 0) + 1;
      cells.set(k, n); if (n > max) max = n;
    }
    var head = el("tr", "", [el("th", "rowh", ["actor \\ " + (by === "ns" ? "namespace" : "target")])]);
    cols.forEach(function (e) { var th = el("th", "", [cut(S[e[0]] || "(none)", 30)]); th.title = S[e[0]]; head.appendChild(th); });
    var body = el("tbody");
    actors.forEach(function (a, r) {
      var tr = el("tr", "", [el("th", "rowh", [S[a[0]]])]);
      cols.forEach(function (c, j) {
        var n = cells.get(r * TOP_MATRIX + j) || 0, td = el("td", n ? "click" : "", [n ? n.toLocaleString("en") : ""]);
        if (n) {
          td.style.background = "rgba(163,0,27," + (0.08 + 0.7 * Math.log(1 + n) / Math.log(1 + max)).toFixed(2) + ")";
          td.style.cursor = "pointer";
          td.addEventListener("click", function () { api.setFilter("actor:" + quote(S[a[0]]) + " " + (by === "ns" ? "ns:" : "target:") + quote(S[c[0]])); });
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    var t = el("table", "matrix", [el("thead", "", [head]), body]);
    t.id = "matrix-table";
    box.appendChild(t);
  }
  drawMatrix("ns");
  $("matrix-by").addEventListener("change", function (e) { drawMatrix(e.target.value); });

  // ---------- exposure (audit findings beside the activity of the identities they name)
  if (D.audit) {
    $("sec-exposure").hidden = false; $("nav-exposure").hidden = false;
    var rank = function (sev) { var n = SEV.indexOf(sev); return n < 0 ? 0 : n; };
    var findings = D.audit.slice().sort(function (a, b) {
      return ((b.exposure.alerts || 0) > 0) - ((a.exposure.alerts || 0) > 0) || rank(b.severity) - rank(a.severity);
    });
    var body = el("tbody");
    findings.forEach(function (f) {
      var x = f.exposure, act = el("td");
      if (x.principal) {
        if (x.alerts) {
          act.appendChild(document.createTextNode(plural(x.alerts, "alert") + " by " + x.principal + ", worst "));
          act.appendChild(sevBadge(x.worst));
          act.className = "click";
          act.addEventListener("click", function () { api.setFilter(x.by + ":" + quote(x.principal)); });
        } else act.appendChild(document.createTextNode("no alert by " + x.principal));
      }
      var tr = el("tr", "", [el("td", "", [sevBadge(rank(f.severity))]), el("td", "", [el("b", "", [f.id]), " ", f.title]),
        el("td", "", [f.target]), el("td", "", [f.evidence, el("div", "meta", [f.remediation])]), act,
        el("td", "mono", [f.file ? f.file + (f.line ? ":" + f.line : "") : ""])]);
      tr.dataset.id = f.id; tr.dataset.alerts = x.alerts || 0;
      body.appendChild(tr);
    });
    var t = el("table", "", [el("thead", "", [el("tr", "", ["severity", "finding", "target", "evidence and remediation", "activity", "file"].map(function (h) { return el("th", "", [h]); }))]), body]);
    t.id = "exposure-table";
    $("exposure").appendChild(t);
  }

  // what table.js reads; it sets setFilter
  window.execguardReport = { D: D, S: S, R: R, N: N, C: C, SEV: SEV, $: $, s: s, reasons: reasons, el: el, sevBadge: sevBadge,
    iso: iso, plural: plural, cut: cut, countBy: countBy, quote: quote, unquote: unquote, setFilter: function () {} };
  var api = window.execguardReport;
})();
