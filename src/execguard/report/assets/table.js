// execguard report, part 2: per-actor stories and the alert table (filter, sort, pages, row detail).
// Strings reach the DOM as text only, as in report.js.
(function (api) {
  "use strict";
  var D = api.D, S = api.S, R = api.R, N = api.N, C = api.C, SEV = api.SEV, $ = api.$, s = api.s, reasons = api.reasons,
    el = api.el, sevBadge = api.sevBadge, iso = api.iso, plural = api.plural, cut = api.cut, countBy = api.countBy,
    unquote = api.unquote;
  var PAGE = 100, STORY_PAGE = 200;

  // ---------- stories: every command of one actor in time order, with its reasons
  var storyActor = null, storyRows = [], storyShown = 0;
  function what(row) {
    var action = s(row, "action"), target = s(row, "target"), container = s(row, "container");
    return action + (target ? " → " + target : "") + (container && target.indexOf("container ") !== 0 ? " [" + container + "]" : "");
  }
  function storyMore() {
    var list = $("story"), end = Math.min(storyRows.length, storyShown + STORY_PAGE);
    for (; storyShown < end; storyShown++) {
      var row = R[storyRows[storyShown]], list2 = el("ul");
      reasons(row).forEach(function (r) { if (r) list2.appendChild(el("li", "", [r])); });
      var li = el("li", "s" + row[C.sev], [
        el("div", "", [el("span", "mono", [iso(row[C.t])]), " ", sevBadge(row[C.sev]), " ", el("b", "", [s(row, "rule")]), " ", what(row), " (" + s(row, "outcome") + ")"]),
        el("code", "", [s(row, "cmd") || "(no command)"]), list2,
        el("div", "meta", [s(row, "fmt") + " " + s(row, "file") + (row[C.line] !== null ? ":" + row[C.line] : "")]),
      ]);
      list.appendChild(li);
    }
    $("story-more").hidden = storyShown >= storyRows.length;
    $("story-caption").textContent = plural(storyRows.length, "alert") + (storyShown < storyRows.length ? ", the first " + storyShown + " shown" : "");
    list.dataset.count = storyRows.length;
  }
  function drawStory(actor) {
    storyActor = actor; storyRows = []; storyShown = 0; $("story").textContent = "";
    for (var i = 0; i < N; i++) if (R[i][C.actor] === actor) storyRows.push(i);
    storyMore();
  }
  var actorList = countBy("actor"), sel = $("story-actor");
  actorList.forEach(function (e) { var o = el("option", "", [S[e[0]] + " (" + e[1] + ")"]); o.value = e[0]; sel.appendChild(o); });
  sel.addEventListener("change", function () { drawStory(+sel.value); });
  $("story-more").addEventListener("click", storyMore);
  if (actorList.length) drawStory(actorList[0][0]);

  // ---------- the alert table: filter, sort, pages
  var lower = new Array(S.length);
  function low(id) { var v = lower[id]; if (v === undefined) v = lower[id] = S[id].toLowerCase(); return v; }
  var lowReasons = new Map();  // a reasons list id -> its reasons, lower case, one per line
  function lowR(id) {
    var v = lowReasons.get(id);
    if (v === undefined) { v = S[id] ? S[id].split(",").map(function (k) { return low(+k); }).join("\n") : ""; lowReasons.set(id, v); }
    return v;
  }
  var KEYS = { ns: "ns", namespace: "ns", pod: "pod", rule: "rules", actor: "actor", user: "actor", group: "groups", fmt: "fmt", format: "fmt",
    file: "file", container: "container", target: "target", action: "action", outcome: "outcome", proc: "procs" };
  var TEXT_COLS = ["rule", "title", "actor", "ns", "pod", "container", "target", "cmd", "file"].map(function (c) { return C[c]; });
  function glob(v) {
    if (v.indexOf("*") < 0) return function (x) { return x === v; };
    var re = new RegExp("^" + v.split("*").map(function (p) { return p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"); }).join(".*") + "$");
    return function (x) { return re.test(x); };
  }
  function parseFilter(text) {
    var tests = [], re = /(\w+):"((?:[^"\\]|\\.)*)"|(\w+):(\S*)|"((?:[^"\\]|\\.)*)"|(\S+)/g, m;
    while ((m = re.exec(text))) {
      var key = m[1] || m[3], val = m[1] ? unquote(m[2]) : m[3] ? m[4] : m[5] !== undefined ? unquote(m[5]) : m[6];
      if (key && key.toLowerCase() === "sev") {
        var n = SEV.indexOf(val.toLowerCase());
        if (n >= 0) tests.push(function (n) { return function (row) { return row[C.sev] === n; }; }(n));
        continue;
      }
      if (key && KEYS[key.toLowerCase()]) {
        var col = C[KEYS[key.toLowerCase()]], g = glob(val), multi = col === C.rules || col === C.groups || col === C.procs;
        tests.push(function (col, g, multi) {
          var memo = new Map();  // per string id: a column holds few distinct values
          return function (row) {
            var id = row[col], hit = memo.get(id);
            if (hit === undefined) { hit = multi ? S[id].split("\n").some(g) : g(S[id]); memo.set(id, hit); }
            return hit;
          };
        }(col, g, multi));
        continue;
      }
      var word = (key ? m[0] : val).toLowerCase();
      if (!word) continue;
      tests.push(function (word) {
        return function (row) {
          for (var k = 0; k < TEXT_COLS.length; k++) if (low(row[TEXT_COLS[k]]).indexOf(word) >= 0) return true;
          return lowR(row[C.reasons]).indexOf(word) >= 0;
        };
      }(word));
    }
    return tests;
  }
  var table = $("alerts"), tbody = table.tBodies[0], state = { sort: "t", dir: 1, page: 0, rows: [] };
  function applyFilter() {
    var tests = parseFilter($("filter").value), min = +$("min-sev").value, out = [];
    outer: for (var i = 0; i < N; i++) {
      var row = R[i];
      if (row[C.sev] < min) continue;
      for (var k = 0; k < tests.length; k++) if (!tests[k](row)) continue outer;
      out.push(i);
    }
    state.rows = out; state.page = 0;
    sortRows();
    table.dataset.filter = $("filter").value;  // what the rows shown were filtered by
  }
  function sortRows() {
    var col = C[state.sort], dir = state.dir, strings = D.columns[col] !== "t" && D.columns[col] !== "sev";
    state.rows.sort(function (a, b) {
      var x = R[a][col], y = R[b][col];
      if (strings) { x = S[x]; y = S[y]; }
      if (x === y) return a - b;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.className = th.dataset.col === state.sort ? (dir > 0 ? "asc" : "desc") : "";
    });
    drawPage();
  }
  function detail(row) {
    var dl = el("dl", "kv");
    function add(k, v) { if (v === "" || v === null || v === undefined) return; dl.appendChild(el("dt", "", [k])); dl.appendChild(el("dd", "", [v])); }
    add("time", iso(row[C.t]));
    add("rule", s(row, "rule") + ": " + s(row, "title"));
    add("all rules", s(row, "rules").split("\n").join(", "));
    var argv = s(row, "argv");
    if (argv) {
      var ol = el("ol", "argv");
      JSON.parse(argv).forEach(function (a) { ol.appendChild(el("li", "", [el("code", "", [a])])); });
      add("argv", ol);
    }
    var ul = el("ul");
    reasons(row).forEach(function (r) { if (r) ul.appendChild(el("li", "", [r])); });
    add("reasons", ul);
    add("actor", s(row, "actor"));
    add("groups", s(row, "groups").split("\n").join(", "));
    add("target", s(row, "target"));
    add("container", s(row, "container"));
    add("action", s(row, "action") + (s(row, "outcome") ? " (" + s(row, "outcome") + ")" : ""));
    add("procedures", s(row, "procs").split("\n").join(", "));
    add("source", s(row, "fmt") + " " + s(row, "file") + (row[C.line] !== null ? ":" + row[C.line] : ""));
    var ctx = s(row, "ctx"), extra = s(row, "extra");
    if (ctx || extra) {
      var x = Object.assign(ctx ? JSON.parse(ctx) : {}, extra ? JSON.parse(extra) : {});
      if (x.process) {  // node telemetry: the process and its parent first
        var p = x.process, parts = [];
        if (p.pid !== null && p.pid !== undefined) parts.push("pid " + p.pid);
        if (p.ppid !== null && p.ppid !== undefined) parts.push("ppid " + p.ppid);
        if (p.exe) parts.push(p.exe);
        if (p.parent_exe) parts.push("parent " + p.parent_exe + (p.parent_command && p.parent_command.length ? " (" + p.parent_command.join(" ") + ")" : ""));
        if (p.uid !== null && p.uid !== undefined) parts.push("uid " + p.uid);
        add("process", parts.join(", "));
      }
      Object.keys(x).forEach(function (k) { add(k, typeof x[k] === "object" ? JSON.stringify(x[k]) : String(x[k])); });
    }
    return dl;
  }
  function drawPage() {
    var rows = state.rows, pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE, end = Math.min(rows.length, start + PAGE), frag = document.createDocumentFragment();
    for (var j = start; j < end; j++) {
      var row = R[rows[j]], cmd = s(row, "cmd");
      var tr = el("tr", "click", [el("td", "mono", [iso(row[C.t])]), el("td", "", [sevBadge(row[C.sev])]), el("td", "", [s(row, "rule")]),
        el("td", "", [s(row, "actor")]), el("td", "", [s(row, "target")]), el("td", "cmd mono", [cut(cmd, 300)]),
        el("td", "mono", [s(row, "file") + (row[C.line] !== null ? ":" + row[C.line] : "")])]);
      tr.dataset.row = rows[j];
      frag.appendChild(tr);
    }
    tbody.textContent = "";
    tbody.appendChild(frag);
    table.dataset.count = rows.length;
    $("table-count").textContent = rows.length === N ? plural(N, "alert") : rows.length.toLocaleString("en") + " of " + plural(N, "alert");
    $("page-info").textContent = rows.length ? "rows " + (start + 1).toLocaleString("en") + "–" + end.toLocaleString("en") + " of " + rows.length.toLocaleString("en") + ", page " + (state.page + 1) + " of " + pages : "no alert matches";
    $("page-prev").disabled = state.page === 0;
    $("page-next").disabled = state.page >= pages - 1;
  }
  tbody.addEventListener("click", function (e) {
    var tr = e.target.closest("tr");
    if (!tr || tr.classList.contains("detail")) return;
    var next = tr.nextSibling;
    if (next && next.classList.contains("detail")) { next.remove(); return; }
    var td = el("td", "", [detail(R[+tr.dataset.row])]);
    td.colSpan = 7;
    tr.after(el("tr", "detail", [td]));
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    th.addEventListener("click", function () {
      if (state.sort === th.dataset.col) state.dir = -state.dir;
      else { state.sort = th.dataset.col; state.dir = th.dataset.col === "sev" ? -1 : 1; }
      sortRows();
    });
  });
  var timer = null;
  $("filter").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(applyFilter, 150); });
  $("min-sev").addEventListener("change", applyFilter);
  $("filter-clear").addEventListener("click", function () { setFilter(""); });
  $("page-prev").addEventListener("click", function () { state.page--; drawPage(); });
  $("page-next").addEventListener("click", function () { state.page++; drawPage(); });
  function setFilter(text) {
    $("filter").value = text;
    applyFilter();
    $("sec-alerts").scrollIntoView();
  }
  applyFilter();

  api.setFilter = setFilter;

  window.__report = { ready: true, readyMs: performance.now(), alerts: N };
  document.body.dataset.ready = "1";
})(window.execguardReport);
