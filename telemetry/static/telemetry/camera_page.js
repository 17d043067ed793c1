// Draws the camera page's charts from the JSON it embeds (templates/admin/operations/camera.html).
(function () {
  "use strict";
  var source = document.getElementById("camera-charts-data");
  if (!source || typeof Chart === "undefined") {
    return; // no chart library: the tables still carry the numbers
  }
  var data = JSON.parse(source.textContent);
  var base = { maintainAspectRatio: false, animation: false };
  var palette = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#827717", "#4e342e"];

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  draw("camera-rate-chart", {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { type: "bar", label: "frames/s", data: data.frames_per_second, yAxisID: "rate" },
        { type: "line", label: "failure rate %", data: data.failure_rate_percent, yAxisID: "failures",
          spanGaps: true, borderColor: "#c62828", backgroundColor: "#c62828" },
      ],
    },
    options: Object.assign({}, base, {
      scales: {
        rate: { position: "left", beginAtZero: true },
        failures: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } },
      },
    }),
  });

  draw("camera-p95-chart", {
    type: "line",
    data: { labels: data.labels, datasets: [{ label: "p95 ms", data: data.p95_ms, spanGaps: true }] },
    options: Object.assign({}, base, { scales: { y: { beginAtZero: true } } }),
  });

  draw("camera-detections-chart", {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: Object.keys(data.detections).map(function (name, index) {
        return { label: name, data: data.detections[name], backgroundColor: palette[index % palette.length] };
      }),
    },
    options: Object.assign({}, base, { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }),
  });

  var fpsSets = [{ label: "fps (metrics, hourly mean)", data: data.fps_mean, spanGaps: true }];
  if (data.promised_fps) {
    fpsSets.push({ label: "fps promised by config", data: data.labels.map(function () { return data.promised_fps; }),
      borderDash: [6, 4], pointRadius: 0, borderColor: "#888" });
  }
  draw("camera-fps-chart", {
    type: "line",
    data: { labels: data.labels, datasets: fpsSets },
    options: Object.assign({}, base, { scales: { y: { beginAtZero: true } } }),
  });
})();
