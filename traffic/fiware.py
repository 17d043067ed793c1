"""The 15-minute line crossings as FIWARE smart-data-models `TrafficFlowObserved` entities (key-values form).

Field names as the model's specification defines them (dataModel.Transportation/TrafficFlowObserved): `id`, `type`,
`name`, `dateObserved` (an ISO 8601 interval), `dateObservedFrom`, `dateObservedTo`, `intensity` (vehicles in the
period), `vehicleType` (the model's enum), `laneDirection` (`forward` / `backward`), `location` (GeoJSON),
`dataProvider`. One entity per line, period, direction and vehicle type: a line's "in" direction is `forward`,
"out" is `backward`. Classes that are not vehicles in the model's enum (person, unknown classes) are left out.
`refRoadSegment` and `laneId` are not sent: the platform does not know road segments or lanes.
"""

from datetime import timedelta
from typing import Any

from cameras.models import Camera
from traffic.selectors.counts import CountFilters, line_counts, line_names

__all__ = ["VEHICLE_TYPES", "traffic_flow_observed"]

# Our object types -> the model's vehicleType enum.
VEHICLE_TYPES = {
    "car": "car",
    "truck": "lorry",
    "lorry": "lorry",
    "bus": "bus",
    "minibus": "minibus",
    "bicycle": "bicycle",
    "motorcycle": "motorcycle",
    "moped": "moped",
    "van": "van",
    "tram": "tram",
    "trailer": "trailer",
}
LANE_DIRECTIONS = {"in": "forward", "out": "backward"}
PERIOD = timedelta(minutes=15)


def _iso(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def traffic_flow_observed(*, filters: CountFilters, limit: int) -> list[dict[str, Any]]:
    rows = [row for row in line_counts(filters=filters, limit=limit) if row["object_type"] in VEHICLE_TYPES]
    names = line_names({row["line_id"] for row in rows})
    positions = {
        camera_id: (longitude, latitude)
        for camera_id, longitude, latitude in Camera.objects.filter(id__in={row["camera_id"] for row in rows})
        .values_list("id", "longitude", "latitude")
    }  # fmt: skip
    entities: dict[str, dict[str, Any]] = {}
    for row in rows:
        vehicle_type = VEHICLE_TYPES[row["object_type"]]
        start, end = row["bucket"], row["bucket"] + PERIOD
        entity_id = (
            f"urn:ngsi-ld:TrafficFlowObserved:{row['line_id']}:{row['direction']}:{vehicle_type}:"
            f"{start.strftime('%Y%m%dT%H%M%SZ')}"
        )
        if entity_id in entities:  # two of our classes map to one vehicleType (truck, lorry)
            entities[entity_id]["intensity"] += row["crossings"]
            continue
        entity: dict[str, Any] = {
            "id": entity_id,
            "type": "TrafficFlowObserved",
            "name": names.get(row["line_id"], ""),
            "dateObserved": f"{_iso(start)}/{_iso(end)}",
            "dateObservedFrom": _iso(start),
            "dateObservedTo": _iso(end),
            "intensity": row["crossings"],
            "vehicleType": vehicle_type,
            "laneDirection": LANE_DIRECTIONS[row["direction"]],
            "dataProvider": "its_camera",
        }
        longitude, latitude = positions.get(row["camera_id"], (None, None))
        if longitude is not None and latitude is not None:
            entity["location"] = {"type": "Point", "coordinates": [longitude, latitude]}
        entities[entity_id] = entity
    return list(entities.values())
