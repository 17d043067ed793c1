/* Fleet status page: keeps the tiles, the zone table and a chart current from the live event stream.
 * Starts from a JSON snapshot, subscribes after the snapshot's event id, applies camera.status /
 * camera.removed / alert.* events, and reloads the snapshot every minute and on stream.reset / fleet.reset.
 * Needs: #fleet-live (data-snapshot-url, data-stream-url), [data-fleet-total] tiles, table.fleet. */
(function () {
  "use strict";
  var root = document.getElementById("fleet-live");
  if (!root) return;
  var STATUSES = ["streaming", "recent", "stale"];
  var COLOURS = { streaming: "#2e7d32", recent: "#f9a825", stale: "#c62828" };
  var RESYNC_MS = 60000;
  var zones = {};
  var source = null;
  var chart = null;
  var resyncTimer = null;

  function key(zoneId) { return zoneId || "none"; }
  function zone(zoneId, name) {
    var k = key(zoneId);
    if (!zones[k]) {
      zones[k] = { zone_id: zoneId, zone_name: name || (zoneId ? "zone " + zoneId.slice(0, 8) : "(no zone)"),
                   streaming: 0, recent: 0, stale: 0, open_alerts: 0 };
    }
    return zones[k];
  }
  function setState(text) { document.getElementById("fleet-live-state").textContent = text; }
  function sortedZones() {
    return Object.keys(zones).map(function (k) { return zones[k]; }).sort(function (a, b) {
      if (!a.zone_id !== !b.zone_id) return a.zone_id ? -1 : 1;
      return a.zone_name.localeCompare(b.zone_name);
    });
  }

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function render() {
    var rows = sortedZones();
    var totals = { streaming: 0, recent: 0, stale: 0, open_alerts: 0 };
    rows.forEach(function (z) { STATUSES.concat(["open_alerts"]).forEach(function (s) { totals[s] += Math.max(0, z[s]); }); });
    totals.total = totals.streaming + totals.recent + totals.stale;
    document.querySelectorAll("[data-fleet-total]").forEach(function (el) {
      var target = el.querySelector("a") || el;
      target.textContent = totals[el.getAttribute("data-fleet-total")];
    });
    var table = document.querySelector("table.fleet");
    if (table) {
      var changelist = table.getAttribute("data-changelist-url") || "";
      var body = table.querySelector("tbody");
      body.replaceChildren();
      rows.forEach(function (z) {
        var tr = document.createElement("tr");
        var name = document.createElement("td");
        if (z.zone_id && changelist) {
          var link = text("a", z.zone_name);
          link.href = changelist + "?is_active__exact=1&zone__id__exact=" + encodeURIComponent(z.zone_id);
          name.appendChild(link);
        } else {
          name.textContent = z.zone_name;
        }
        tr.appendChild(name);
        STATUSES.forEach(function (s) { tr.appendChild(text("td", Math.max(0, z[s]), "number")); });
        tr.appendChild(text("td", Math.max(0, z.streaming) + Math.max(0, z.recent) + Math.max(0, z.stale), "number"));
        tr.appendChild(text("td", Math.max(0, z.open_alerts), "number"));
        body.appendChild(tr);
      });
    }
    renderChart(rows);
  }

  function renderChart(rows) {
    if (typeof Chart === "undefined") return;
    var labels = rows.map(function (z) { return z.zone_name; });
    var datasets = STATUSES.map(function (s) {
      return { label: s, backgroundColor: COLOURS[s], data: rows.map(function (z) { return Math.max(0, z[s]); }) };
    });
    if (!chart) {
      chart = new Chart(document.getElementById("fleet-chart"), {
        type: "bar",
        data: { labels: labels, datasets: datasets },
        options: { indexAxis: "y", animation: false, maintainAspectRatio: false,
                   scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } } }
      });
    } else {
      chart.data.labels = labels;
      chart.data.datasets.forEach(function (dataset, i) { dataset.data = datasets[i].data; });
      chart.update();
    }
  }

  function log(line) {
    var list = document.getElementById("fleet-live-events");
    list.insertBefore(text("li", new Date().toLocaleTimeString() + "  " + line), list.firstChild);
    while (list.children.length > 100) list.removeChild(list.lastChild);
  }

  function applyCamera(type, data) {
    var prev = data.previous;
    if (prev) zone(prev.zone_id)[prev.connection_status] -= 1;
    if (type === "camera.status") zone(data.zone_id)[data.connection_status] += 1;
    var from = prev ? prev.connection_status + (prev.status !== data.status && data.status ? "/" + prev.status : "") : "new";
    var to = type === "camera.removed" ? "removed" : data.connection_status + (prev && prev.status !== data.status ? "/" + data.status : "");
    log((data.name || data.camera_id) + ": " + from + " → " + to);
  }

  function applyAlert(type, data) {
    if (data.camera_id) {
      if (type === "alert.raised") zone(data.zone_id).open_alerts += 1;
      if (type === "alert.resolved") zone(data.zone_id).open_alerts -= 1;
    }
    log(type.replace("alert.", "alert ") + ": " + data.kind + (data.subject ? " " + data.subject : "") + " — " + data.message);
  }

  function onEvent(event) {
    document.getElementById("fleet-live-last").textContent = event.lastEventId || "—";
    var data = JSON.parse(event.data);
    if (event.type === "stream.reset" || event.type === "fleet.reset") { log(event.type + ": reloading"); return resync(); }
    if (event.type.indexOf("camera.") === 0) applyCamera(event.type, data);
    else if (event.type.indexOf("alert.") === 0) applyAlert(event.type, data);
    render();
  }

  function subscribe(afterId) {
    if (source) source.close();
    var url = root.getAttribute("data-stream-url") + (afterId !== null && afterId !== undefined ? "?last_event_id=" + afterId : "");
    source = new EventSource(url);  // same origin: the admin session cookie authenticates it
    ["camera.status", "camera.removed", "alert.raised", "alert.acknowledged", "alert.resolved",
     "fleet.reset", "stream.reset"].forEach(function (type) { source.addEventListener(type, onEvent); });
    source.onopen = function () { setState("live"); };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {  // 401/503: the browser gives up; we retry later
        setState("unavailable, retrying in 5 s");
        setTimeout(resync, 5000);
      } else {
        setState("reconnecting…");
      }
    };
  }

  function resync() {
    clearTimeout(resyncTimer);
    fetch(root.getAttribute("data-snapshot-url"), { credentials: "same-origin" })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
      .then(function (snapshot) {
        zones = {};
        snapshot.zones.forEach(function (z) { zones[key(z.zone_id)] = z; });
        render();
        if (snapshot.last_event_id === null) { setState("unavailable (Redis down), showing the snapshot"); if (source) source.close(); source = null; }
        else subscribe(snapshot.last_event_id);
      })
      .catch(function (error) { setState("snapshot failed (" + error.message + "), retrying"); })
      .finally(function () { resyncTimer = setTimeout(resync, RESYNC_MS); });
  }

  resync();
})();
