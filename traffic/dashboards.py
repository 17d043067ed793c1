"""Traffic on the admin's ingest dashboard (a panel telemetry renders, registered in traffic.apps)."""

from datetime import datetime
from typing import Any

from traffic.selectors.counts import objects_by_class


def objects_beside_detections_panel(*, now: datetime) -> dict[str, Any]:
    return {"template": "admin/traffic/objects_panel.html", "objects": objects_by_class(now=now)}
