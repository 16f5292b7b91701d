// bulkhead HTML report: sorting and filtering of the server-rendered tables.
// Without JavaScript every row is shown; this only enhances.
(function () {
  "use strict";
  var coll = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  function key(row, col) {
    var c = row.cells[col];
    if (!c) return "";
    return c.hasAttribute("data-key") ? c.getAttribute("data-key") : c.textContent.trim();
  }
  function cmp(a, b) {
    var x = Number(a), y = Number(b);
    if (a !== "" && b !== "" && !isNaN(x) && !isNaN(y)) return x - y;
    return coll.compare(a, b);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var btn = th.querySelector("button");
      if (!btn) return;
      btn.disabled = false;
      btn.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var keys = new Map();
        rows.forEach(function (r) { keys.set(r, key(r, col)); });
        rows.sort(function (a, b) { var d = cmp(keys.get(a), keys.get(b)); return asc ? d : -d; });
        var frag = document.createDocumentFragment();
        rows.forEach(function (r) { frag.appendChild(r); });
        body.appendChild(frag);
      });
    });
  });

  var ctl = document.getElementById("controls-form");
  if (!ctl) return;
  ctl.hidden = false;
  var q = document.getElementById("q"), sev = document.getElementById("sev"), supp = document.getElementById("supp");
  // The rows of each table, copied once: a live collection re-indexed
  // after every change is quadratic on a hundred thousand rows.
  var tables = Array.prototype.map.call(document.querySelectorAll("table[data-filter]"), function (t) {
    return { id: t.id, rows: Array.prototype.slice.call(t.tBodies[0].rows) };
  });
  var texts = new WeakMap();
  function count(t, shown) {
    var out = document.querySelector('[data-count-for="' + t.id + '"]');
    if (out) out.textContent = shown + " of " + t.rows.length + " shown";
  }
  tables.forEach(function (t) { count(t, t.rows.length); });
  function apply() {
    var text = q.value.trim().toLowerCase(), min = Number(sev.value), hideSupp = supp && !supp.checked;
    tables.forEach(function (t) {
      var rows = t.rows, shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var r = rows[i], ok = true;
        if (min > 0 && r.hasAttribute("data-rank") && Number(r.getAttribute("data-rank")) < min) ok = false;
        if (ok && hideSupp && r.classList.contains("suppressed")) ok = false;
        if (ok && text) {
          var s = texts.get(r);
          if (s === undefined) { s = r.textContent.toLowerCase(); texts.set(r, s); }
          ok = s.indexOf(text) >= 0;
        }
        if (r.hidden === ok) r.hidden = !ok;
        if (ok) shown++;
      }
      count(t, shown);
    });
  }
  var timer = 0;
  q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  sev.addEventListener("change", apply);
  if (supp) supp.addEventListener("change", apply);
  ctl.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
})();
