// The lineage graph page: lays out the nodes and edges of #lineage-data with dagre (vendored, static/vendor/dagre)
// left to right and draws them as SVG; each node is a link (dataset page, or the task's attempt). The edge table
// below the graph holds the same facts without script.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function draw(box, data) {
    var g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 70, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(function () { return {}; });
    data.nodes.forEach(function (n) {
      var text = n.label.length > 38 ? n.label.slice(0, 37) + "…" : n.label;
      var width = Math.max(90, 7.2 * Math.max(text.length, (n.dag_id || "").length) + 24);
      g.setNode(n.id, { width: width, height: n.kind === "task" ? 44 : 34, node: n, text: text });
    });
    data.edges.forEach(function (e) { g.setEdge(e.source, e.target, { edge: e }); });
    dagre.layout(g);
    var size = g.graph();
    var svg = el("svg", { width: Math.ceil(size.width), height: Math.ceil(size.height),
                         viewBox: "0 0 " + Math.ceil(size.width) + " " + Math.ceil(size.height), "class": "lineage" });
    var defs = el("defs", {}, svg);
    var marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7",
                                markerHeight: "7", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", "class": "arrow" }, marker);
    g.edges().forEach(function (id) {
      var edge = g.edge(id);
      var d = edge.points.map(function (p, i) { return (i ? "L" : "M") + p.x.toFixed(1) + " " + p.y.toFixed(1); });
      el("path", { d: d.join(" "), "class": "edge " + edge.edge.operation, "marker-end": "url(#arrow)",
                   "data-source": id.v, "data-target": id.w }, svg);
    });
    g.nodes().forEach(function (id) {
      var box_ = g.node(id), n = box_.node;
      var link = el("a", { href: n.href, "class": "node " + n.kind + (n.focus ? " focus" : ""), "data-id": n.id }, svg);
      var title = el("title", {}, link);
      title.textContent = (n.kind === "task" ? "task " + n.dag_id + "." + n.label : "dataset " + n.label);
      el("rect", { x: (box_.x - box_.width / 2).toFixed(1), y: (box_.y - box_.height / 2).toFixed(1),
                   width: box_.width.toFixed(1), height: box_.height.toFixed(1),
                   rx: n.kind === "task" ? 4 : 16 }, link);
      var label = el("text", { x: box_.x.toFixed(1), y: (box_.y + (n.kind === "task" ? -3 : 4)).toFixed(1),
                               "text-anchor": "middle" }, link);
      label.textContent = box_.text;
      if (n.kind === "task") {
        var dag = el("text", { x: box_.x.toFixed(1), y: (box_.y + 13).toFixed(1), "text-anchor": "middle",
                               "class": "dag" }, link);
        dag.textContent = n.dag_id;
      }
    });
    box.appendChild(svg);
    box.setAttribute("data-rendered", String(g.nodeCount()));
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("lineage-graph");
    var source = document.getElementById("lineage-data");
    if (!box || !source || typeof dagre === "undefined") return;
    draw(box, JSON.parse(source.textContent));
  });
})();
