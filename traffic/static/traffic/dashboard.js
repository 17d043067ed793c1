// Crossings per hour by class and direction (templates/admin/traffic/dashboard.html), with the vendored Chart.js.
(function () {
  "use strict";
  var source = document.getElementById("traffic-chart-data");
  var canvas = document.getElementById("traffic-chart");
  if (!source || !canvas || typeof Chart === "undefined") {
    return; // the tables still carry the numbers
  }
  var chart = JSON.parse(source.textContent);
  var datasets = Object.keys(chart.series).sort().map(function (name) {
    return { label: name, data: chart.series[name], stack: name.split(" ").pop() };
  });
  new Chart(canvas, {
    type: "bar",
    data: { labels: chart.labels, datasets: datasets },
    options: { maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
})();
