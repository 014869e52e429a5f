// forestream console: draws the charts the server describes in each page.
//
// A chart is a <figure data-chart> holding a <script type="application/json"> with
// {title, unit, x: [epoch seconds], series: [{label, values, points?}], empty}. The
// server renders it; this file only draws it with uPlot, on load and after every htmx
// swap (live regions are fetched again every few seconds). No inline scripts: the
// pages' Content-Security-Policy allows scripts from this server only.
(function () {
  "use strict";

  var COLORS = ["#1d6b3e", "#2f6fbd", "#c2571a", "#8a3ab9", "#b8941a", "#1a9a9a",
                "#a3261d", "#55606e"];

  function readSpec(figure) {
    var node = figure.querySelector('script[type="application/json"]');
    if (!node) { return null; }
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function hasPoints(spec) {
    return spec.x.length > 0 && spec.series.some(function (s) {
      return s.values.some(function (v) { return v !== null; });
    });
  }

  function formatValue(unit) {
    return function (u, value) {
      if (value === null || value === undefined) { return "-"; }
      var abs = Math.abs(value);
      var shown = abs >= 100 ? value.toFixed(0) : abs >= 1 ? value.toFixed(2) : value.toPrecision(2);
      return unit ? shown + " " + unit : shown;
    };
  }

  function draw(figure) {
    var spec = readSpec(figure);
    var target = figure.querySelector(".plot");
    if (!spec || !target) { return; }
    if (figure._plot) { figure._plot.destroy(); figure._plot = null; }
    target.textContent = "";
    if (!hasPoints(spec) || typeof uPlot === "undefined") {
      var note = document.createElement("p");
      note.className = "muted empty";
      note.textContent = typeof uPlot === "undefined" ? "charts need uPlot (make console-assets)" : spec.empty;
      target.appendChild(note);
      figure.setAttribute("data-drawn", "empty");
      return;
    }
    var series = [{}];
    spec.series.forEach(function (s, i) {
      var color = s.color || COLORS[i % COLORS.length];
      var one = {label: s.label, stroke: color, width: 1.5, value: formatValue(spec.unit), spanGaps: !!s.spanGaps};
      if (s.points) {
        one.paths = function () { return null; };
        one.points = {show: true, size: 9, fill: color, stroke: color};
      }
      series.push(one);
    });
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var width = Math.max(300, Math.floor(target.clientWidth || figure.clientWidth || 600));
    figure._plot = new uPlot({
      width: width, height: 200, series: series,
      scales: {x: {time: true}},
      axes: [{}, {label: spec.unit, size: 60}],
      legend: {live: true},
      cursor: {drag: {x: false, y: false}}
    }, data, target);
    figure.setAttribute("data-drawn", "chart");
  }

  function drawAll(root) {
    if (root.matches && root.matches("[data-chart]")) { draw(root); return; }
    if (!root.querySelectorAll) { return; }
    Array.prototype.forEach.call(root.querySelectorAll("[data-chart]"), draw);
  }

  if (typeof htmx !== "undefined") {
    htmx.onLoad(function (element) { drawAll(element); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  }
})();
