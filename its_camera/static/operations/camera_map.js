/* The camera map (templates/admin/operations/map.html, cameras/map_page.py): cameras coloured by live
 * connection status, zones as boxes, click -> the camera page, the visible area filters the list.
 * Starts from a JSON snapshot, then applies camera.status / camera.removed from the SSE stream. Without a tile
 * URL it draws on a plain longitude/latitude canvas (Leaflet's CRS.Simple) with a graticule. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("camera-map-config").textContent);
  var COLOURS = { streaming: "#2e7d32", recent: "#f9a825", stale: "#c62828" };
  var RESYNC_MS = 300000;
  var withTiles = Boolean(config.tileUrl);
  var map = L.map("camera-map", withTiles ? { zoomSnap: 0.25 } : { crs: L.CRS.Simple, minZoom: -4, maxZoom: 26, zoomSnap: 0.25 });
  var cameras = {};   // id -> camera (from the snapshot, then events)
  var markers = {};   // id -> L.circleMarker
  var zoneLayer = L.layerGroup().addTo(map);
  var cameraLayer = L.layerGroup().addTo(map);
  var gridLayer = L.layerGroup().addTo(map);
  var source = null;
  var fitted = false;

  document.getElementById("map-mode").textContent = withTiles ? "" : "No tile server configured: longitude/latitude canvas.";
  if (withTiles) {
    L.tileLayer(config.tileUrl, { attribution: config.tileAttribution || "", maxZoom: 19 }).addTo(map);
  }

  function setState(text) { document.getElementById("map-live-state").textContent = text; }
  function colour(camera) { return COLOURS[camera.connection_status] || "#777"; }
  function cameraUrl(id) { return config.cameraUrl.replace("{id}", id); }

  function drawCamera(camera) {
    var marker = markers[camera.id];
    var style = { radius: 7, weight: 1, color: "#222", fillColor: colour(camera), fillOpacity: 0.9 };
    if (!marker) {
      marker = L.circleMarker([camera.lat, camera.lon], style).addTo(cameraLayer);
      marker.on("click", function () { window.location.href = cameraUrl(camera.id); });
      markers[camera.id] = marker;
    } else {
      marker.setStyle(style);
    }
    marker.bindTooltip(camera.name + " — " + camera.connection_status);
  }

  function removeCamera(id) {
    if (markers[id]) { cameraLayer.removeLayer(markers[id]); delete markers[id]; }
    delete cameras[id];
  }

  function inView() {
    var bounds = map.getBounds();
    return Object.keys(cameras).map(function (id) { return cameras[id]; }).filter(function (camera) {
      return bounds.contains([camera.lat, camera.lon]);
    }).sort(function (a, b) { return a.name.localeCompare(b.name); });
  }

  function renderList() {
    var visible = inView();
    var total = Object.keys(cameras).length;
    document.getElementById("map-list-caption").textContent =
      "Cameras in view: " + visible.length + " of " + total + (visible.length > config.maxListed ? " (first " + config.maxListed + " listed)" : "");
    var body = document.querySelector("#map-camera-list tbody");
    body.replaceChildren();
    visible.slice(0, config.maxListed).forEach(function (camera) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-camera-id", camera.id);
      var name = document.createElement("td");
      var link = document.createElement("a");
      link.href = cameraUrl(camera.id);
      link.textContent = camera.name;
      name.appendChild(link);
      var status = document.createElement("td");
      status.textContent = camera.connection_status;
      status.className = "map-status-" + camera.connection_status;
      tr.appendChild(name);
      tr.appendChild(status);
      body.appendChild(tr);
    });
  }

  function niceStep(span) {
    var raw = span / 6;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var scaled = raw / power;
    return (scaled < 1.5 ? 1 : scaled < 3.5 ? 2 : scaled < 7.5 ? 5 : 10) * power;
  }

  function drawGrid() {
    if (withTiles) return;
    gridLayer.clearLayers();
    var b = map.getBounds();
    var south = b.getSouth(), north = b.getNorth(), west = b.getWest(), east = b.getEast();
    var step = niceStep(Math.max(north - south, east - west, 1e-6));
    var digits = Math.max(0, -Math.floor(Math.log10(step)));
    var line = { color: "#b0bec5", weight: 1, interactive: false };
    for (var lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
      L.polyline([[lat, west], [lat, east]], line).addTo(gridLayer);
      L.tooltip({ permanent: true, direction: "right", className: "camera-map-axis", interactive: false })
        .setLatLng([lat, west]).setContent(lat.toFixed(digits) + "°").addTo(gridLayer);
    }
    for (var lon = Math.ceil(west / step) * step; lon <= east; lon += step) {
      L.polyline([[south, lon], [north, lon]], line).addTo(gridLayer);
      L.tooltip({ permanent: true, direction: "top", className: "camera-map-axis", interactive: false })
        .setLatLng([south, lon]).setContent(lon.toFixed(digits) + "°").addTo(gridLayer);
    }
  }

  function load(snapshot) {
    cameraLayer.clearLayers();
    zoneLayer.clearLayers();
    cameras = {};
    markers = {};
    snapshot.zones.forEach(function (zone) {
      L.rectangle([[zone.south, zone.west], [zone.north, zone.east]],
        { color: "#1565c0", weight: 1, fillOpacity: 0.05, interactive: false }).addTo(zoneLayer)
        .bindTooltip(zone.name, { permanent: false });
    });
    snapshot.cameras.forEach(function (camera) { cameras[camera.id] = camera; drawCamera(camera); });
    if (!fitted) {
      var points = snapshot.cameras.map(function (c) { return [c.lat, c.lon]; });
      snapshot.zones.forEach(function (z) { points.push([z.south, z.west], [z.north, z.east]); });
      if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.1));
      else map.setView([0, 0], withTiles ? 2 : 0);
      fitted = true;
    }
    drawGrid();
    renderList();
  }

  function onEvent(event) {
    var data = JSON.parse(event.data);
    if (event.type === "stream.reset" || event.type === "fleet.reset") return resync();
    if (event.type === "camera.removed") { removeCamera(data.camera_id); renderList(); return; }
    var camera = cameras[data.camera_id];
    if (!camera) return resync();  // a camera the snapshot did not have (new, or moved onto the map)
    camera.connection_status = data.connection_status;
    if (data.status) camera.status = data.status;
    if (data.name) camera.name = data.name;
    drawCamera(camera);
    renderList();
  }

  function subscribe(afterId) {
    if (source) source.close();
    var url = config.streamUrl + (afterId !== null && afterId !== undefined ? "?last_event_id=" + afterId : "");
    source = new EventSource(url);  // same origin: the admin session cookie authenticates it
    ["camera.status", "camera.removed", "fleet.reset", "stream.reset"].forEach(function (type) {
      source.addEventListener(type, onEvent);
    });
    source.onopen = function () { setState("live"); };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) { setState("unavailable, retrying in 5 s"); setTimeout(resync, 5000); }
      else setState("reconnecting…");
    };
  }

  function resync() {
    fetch(config.snapshotUrl, { credentials: "same-origin" })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
      .then(function (snapshot) {
        load(snapshot);
        if (snapshot.last_event_id === null) { setState("off (live events unavailable)"); if (source) source.close(); }
        else subscribe(snapshot.last_event_id);
      })
      .catch(function (error) { setState("snapshot failed (" + error.message + "), retrying"); setTimeout(resync, 5000); });
  }

  map.on("moveend", function () { drawGrid(); renderList(); });
  setInterval(resync, RESYNC_MS);
  resync();
  window.cameraMap = { map: map, markers: function () { return markers; }, cameras: function () { return cameras; },
                       colourOf: function (id) { return markers[id] && markers[id].options.fillColor; } };
})();
