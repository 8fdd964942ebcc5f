// runlink UI: small progressive enhancements (pages work without JS): sortable tables, table filter,
// timeline tooltips and stage focus, rule-form fields per kind, log tail scrolled to the end, task grid keys.
(function () {
  "use strict";

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var raw = cell.getAttribute("data-v");
    if (raw !== null) { var num = parseFloat(raw); return isNaN(num) ? raw : num; }
    return cell.textContent.trim().toLowerCase();
  }

  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, index) {
      var button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function () {
        var current = th.getAttribute("aria-sort");
        var dir = current === "descending" ? "ascending" : "descending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index), y = cellValue(b, index);
          if (x === y) return 0;
          if (x === "" || x === "–") return 1;
          if (y === "" || y === "–") return -1;
          var r = x < y ? -1 : 1;
          return dir === "ascending" ? r : -r;
        });
        var frag = document.createDocumentFragment();
        rows.forEach(function (r) { frag.appendChild(r); });
        body.appendChild(frag);
      });
    });
  }

  function makeFilter(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) return;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      });
    });
  }

  function tooltips(svg) {
    var tip = document.createElement("div");
    tip.className = "tooltip";
    tip.setAttribute("role", "status");
    document.body.appendChild(tip);
    svg.addEventListener("mousemove", function (event) {
      var target = event.target;
      var text = target.getAttribute && target.getAttribute("data-tip");
      if (!text) { tip.style.display = "none"; return; }
      tip.textContent = text;
      tip.style.display = "block";
      tip.style.left = Math.min(event.clientX + 14, window.innerWidth - 380) + "px";
      tip.style.top = (event.clientY + 14) + "px";
    });
    svg.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    svg.addEventListener("click", function (event) {
      var key = event.target.getAttribute && event.target.getAttribute("data-stage");
      if (!key) return;
      var row = document.getElementById("stage-" + key);
      if (row) {
        row.scrollIntoView({ block: "center" });
        var link = row.querySelector("a");
        if (link) link.focus();
        row.classList.add("hl");
        setTimeout(function () { row.classList.remove("hl"); }, 2000);
      }
    });
  }

  function ruleForm(form) {
    var kind = form.querySelector("select[name=kind]");
    function update() {
      var value = kind.value;
      form.querySelectorAll("[data-kinds]").forEach(function (el) {
        var show = el.getAttribute("data-kinds").split(" ").indexOf(value) !== -1;
        el.hidden = !show;
        el.querySelectorAll("input, select").forEach(function (i) { i.disabled = !show; });
      });
    }
    kind.addEventListener("change", update);
    update();
  }

  // The task grid: one Tab stop (roving tabindex); arrow keys move to the nearest cell with an attempt,
  // Home/End to the row's ends, Enter follows the link.
  function gridKeys(table) {
    var rows = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return Array.prototype.map.call(row.querySelectorAll("td"), function (td) { return td.querySelector("a.cell"); });
    });
    var links = table.querySelectorAll("tbody a.cell");
    if (!links.length) return;
    links.forEach(function (a, i) { a.setAttribute("tabindex", i === 0 ? "0" : "-1"); });
    function position(link) {
      for (var r = 0; r < rows.length; r++) { var c = rows[r].indexOf(link); if (c !== -1) return [r, c]; }
      return null;
    }
    function moveTo(link, from) {
      if (!link) return;
      from.setAttribute("tabindex", "-1");
      link.setAttribute("tabindex", "0");
      link.focus();
    }
    function search(r, c, dr, dc) {
      r += dr; c += dc;
      while (r >= 0 && r < rows.length && c >= 0 && c < rows[r].length) {
        if (rows[r][c]) return rows[r][c];
        if (dr !== 0) { // a row without an attempt in this column: nearest one in that row
          for (var d = 1; d < rows[r].length; d++) {
            if (rows[r][c - d]) return rows[r][c - d];
            if (rows[r][c + d]) return rows[r][c + d];
          }
        }
        r += dr; c += dc;
      }
      return null;
    }
    table.addEventListener("keydown", function (event) {
      var link = event.target.closest && event.target.closest("a.cell");
      var at = link && position(link);
      if (!at) return;
      var moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
      var next = null;
      if (moves[event.key]) next = search(at[0], at[1], moves[event.key][0], moves[event.key][1]);
      else if (event.key === "Home") next = rows[at[0]].filter(Boolean)[0];
      else if (event.key === "End") next = rows[at[0]].filter(Boolean).slice(-1)[0];
      else return;
      event.preventDefault();
      moveTo(next, link);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.cellgrid").forEach(gridKeys);
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("input[data-filter]").forEach(makeFilter);
    document.querySelectorAll("svg[data-tips]").forEach(tooltips);
    document.querySelectorAll("form.rule-form").forEach(ruleForm);
    document.querySelectorAll("form.nosubmit").forEach(function (f) {
      f.addEventListener("submit", function (e) { e.preventDefault(); });
    });
    document.querySelectorAll("pre.log").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
  });
})();
