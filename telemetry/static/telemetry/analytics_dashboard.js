// Draws the analytics dashboard's charts from the JSON the page embeds (templates/admin/analytics/dashboard.html).
(function () {
  "use strict";
  var source = document.getElementById("analytics-charts");
  if (!source || typeof Chart === "undefined") {
    return; // no chart library: the tables still carry the numbers
  }
  var charts = JSON.parse(source.textContent);

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  draw("ingest-chart", {
    type: "bar",
    data: {
      labels: charts.ingest.labels,
      datasets: [
        { type: "bar", label: "frames/s", data: charts.ingest.frames_per_second, yAxisID: "rate" },
        { type: "line", label: "failure rate %", data: charts.ingest.failure_rate_percent, yAxisID: "failures",
          spanGaps: true, borderColor: "#c62828", backgroundColor: "#c62828" },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        rate: { position: "left", beginAtZero: true, title: { display: true, text: "frames/s" } },
        failures: { position: "right", beginAtZero: true, title: { display: true, text: "% failed" },
          grid: { drawOnChartArea: false } },
      },
    },
  });

  draw("minutes-chart", {
    type: "line",
    data: { labels: charts.minutes.labels, datasets: [{ label: "frames/s", data: charts.minutes.frames_per_second }] },
    options: { maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } },
  });

  draw("detections-chart", {
    type: "bar",
    data: { labels: charts.detections.labels, datasets: [{ label: "detections", data: charts.detections.counts }] },
    options: { maintainAspectRatio: false, animation: false, indexAxis: "y" },
  });
})();
