// Draws a counting line or a region over the camera's frame outline in the admin form
// (templates/admin/traffic/geometry_change_form.html), with the camera's recent object positions and its other
// lines and regions. Plain SVG, no library. The form fields stay the source of truth: drawing writes them,
// typing in them redraws.
(function () {
  "use strict";
  var box = document.getElementById("geometry-editor");
  var svg = document.getElementById("geometry-svg");
  if (!box || !svg) {
    return;
  }
  var NS = "http://www.w3.org/2000/svg";
  var kind = box.dataset.kind;
  var cameraField = document.getElementById("id_camera");
  var frame = { width: 1920, height: 1080, positions: [], lines: [], regions: [] };
  var clicks = 0;

  function field(name) {
    return document.getElementById("id_" + name);
  }
  function el(name, attrs) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (key) {
      node.setAttribute(key, attrs[key]);
    });
    svg.appendChild(node);
    return node;
  }
  function regionPoints() {
    try {
      var points = JSON.parse(field("points").value || "[]");
      return Array.isArray(points) ? points : [];
    } catch (e) {
      return [];
    }
  }
  function draw() {
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
    svg.setAttribute("viewBox", "0 0 " + frame.width + " " + frame.height);
    el("rect", { x: 0, y: 0, width: frame.width, height: frame.height, fill: "#fff", stroke: "#333", "stroke-width": 2 });
    frame.positions.forEach(function (p) {
      el("circle", { cx: p[0], cy: p[1], r: 4, fill: "#1976d2", "fill-opacity": 0.35 });
    });
    frame.regions.forEach(function (r) {
      el("polygon", { points: r.points.map(function (p) { return p.join(","); }).join(" "), fill: "none", stroke: "#999", "stroke-dasharray": "8 6" });
    });
    frame.lines.forEach(function (l) {
      el("line", { x1: l.points[0][0], y1: l.points[0][1], x2: l.points[1][0], y2: l.points[1][1], stroke: "#999", "stroke-width": 3 });
    });
    if (kind === "line") {
      var x1 = parseFloat(field("x1").value), y1 = parseFloat(field("y1").value);
      var x2 = parseFloat(field("x2").value), y2 = parseFloat(field("y2").value);
      if ([x1, y1, x2, y2].every(isFinite)) {
        el("line", { x1: x1, y1: y1, x2: x2, y2: y2, stroke: "#c62828", "stroke-width": 5 });
        // The "in" side: right of 1 -> 2 on the image is the normal (-dy, dx) with y down.
        var dx = x2 - x1, dy = y2 - y1, length = Math.hypot(dx, dy) || 1;
        var sign = field("in_side").value === "right" ? 1 : -1;
        var mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
        var nx = (-dy / length) * 60 * sign, ny = (dx / length) * 60 * sign;
        el("line", { x1: mx - nx, y1: my - ny, x2: mx + nx, y2: my + ny, stroke: "#2e7d32", "stroke-width": 4 });
        el("circle", { cx: mx + nx, cy: my + ny, r: 10, fill: "#2e7d32" });
        var label = el("text", { x: mx + nx * 1.4, y: my + ny * 1.4, "font-size": 36, fill: "#2e7d32" });
        label.textContent = "in";
        el("text", { x: x1 + 8, y: y1 - 8, "font-size": 30, fill: "#c62828" }).textContent = "1";
        el("text", { x: x2 + 8, y: y2 - 8, "font-size": 30, fill: "#c62828" }).textContent = "2";
      }
    } else {
      var points = regionPoints();
      if (points.length) {
        el("polygon", { points: points.map(function (p) { return p.join(","); }).join(" "), fill: "#c62828", "fill-opacity": 0.2, stroke: "#c62828", "stroke-width": 4 });
      }
    }
    document.getElementById("geometry-frame-size").textContent = "Frame: " + frame.width + " × " + frame.height + " px";
  }
  function load() {
    if (!cameraField || !cameraField.value) {
      draw();
      return;
    }
    var url = box.dataset.frameUrl.replace("00000000-0000-0000-0000-000000000000", cameraField.value);
    fetch(url, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) {
          frame = data;
        }
        draw();
      });
  }
  svg.addEventListener("click", function (event) {
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var p = point.matrixTransform(svg.getScreenCTM().inverse());
    var x = Math.round(Math.max(0, Math.min(frame.width, p.x))), y = Math.round(Math.max(0, Math.min(frame.height, p.y)));
    if (kind === "line") {
      var which = clicks % 2 === 0 ? "1" : "2";
      field("x" + which).value = x;
      field("y" + which).value = y;
      clicks += 1;
    } else {
      var points = regionPoints();
      points.push([x, y]);
      field("points").value = JSON.stringify(points);
    }
    draw();
  });
  var reset = document.getElementById("geometry-reset");
  if (reset) {
    reset.addEventListener("click", function () {
      field("points").value = "[]";
      draw();
    });
  }
  ["x1", "y1", "x2", "y2", "in_side", "points"].forEach(function (name) {
    var input = field(name);
    if (input) {
      input.addEventListener("input", draw);
      input.addEventListener("change", draw);
    }
  });
  if (cameraField) {
    cameraField.addEventListener("change", load);
  }
  load();
})();
