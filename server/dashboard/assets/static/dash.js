// bulkhead dashboard: draws the charts of the page with Chart.js from their
// canvas's data-labels and data-series (JSON written by the server). The
// same data is in a table next to each chart, so nothing is lost without
// JavaScript.
"use strict";
(function () {
  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }
  function draw() {
    if (typeof Chart === "undefined") return;
    var fg = css("--fg"), line = css("--line");
    Chart.defaults.color = fg;
    Chart.defaults.borderColor = line;
    Chart.defaults.animation = false;
    document.querySelectorAll("canvas[data-series]").forEach(function (c) {
      var labels = JSON.parse(c.dataset.labels || "[]");
      var series = JSON.parse(c.dataset.series || "[]");
      var sets = series.map(function (s) {
        var color = s.colors ? s.colors.map(css) : css(s.color);
        var type = s.type || c.dataset.kind;
        // A line over bars gets an axis of its own; a line chart has one.
        var second = s.type === "line" && c.dataset.kind !== "line";
        return { type: type, label: s.label, data: s.data, backgroundColor: color, borderColor: color, borderWidth: type === "line" ? 2 : 0,
          pointRadius: type === "line" ? 2 : undefined, spanGaps: false, yAxisID: second ? "y2" : "y" };
      });
      var scales = { y: { beginAtZero: true, ticks: { precision: 0 } } };
      if (sets.some(function (s) { return s.yAxisID === "y2"; })) {
        scales.y2 = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, ticks: { precision: 0 } };
      }
      var chart = new Chart(c, {
        type: c.dataset.kind,
        data: { labels: labels, datasets: sets },
        options: { responsive: true, maintainAspectRatio: false, scales: scales, plugins: { legend: { display: sets.length > 1 } } }
      });
      c.dataset.drawn = "1";
      charts.push(chart);
    });
  }
  var charts = [];
  document.addEventListener("DOMContentLoaded", draw);
  // The theme changed: draw again in its colours.
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    draw();
  });
})();
