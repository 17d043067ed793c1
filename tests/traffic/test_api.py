"""The traffic API: counting lines and regions (CRUD, versioned edits, bad input refused with nothing saved) and the
counts (crossings, objects, occupancy, FIWARE TrafficFlowObserved) filtered as asked and equal to the truth."""

from collections import defaultdict
from datetime import datetime, timedelta

import pytest

from its_camera.choices import ApiScope
from telemetry.services.rollups import rollups_refresh
from traffic.models import CountingLine, CountingLineVersion, Region, RegionVersion

from .conftest import T0, ingest, scene_frames, start_watermark
from .test_counting import policy

pytestmark = pytest.mark.django_db

LINES = "/api/v1/traffic/lines"
REGIONS = "/api/v1/traffic/regions"


def definition_rows():
    return (CountingLine.objects.count(), CountingLineVersion.objects.count(), Region.objects.count(),
            RegionVersion.objects.count())  # fmt: skip


def test_a_line_is_created_listed_edited_from_a_moment_and_closed(api_client, traffic_fleet):
    camera = traffic_fleet.cameras[1]  # 1280 x 720 from its config
    created = api_client.post_json(
        LINES,
        {"camera_id": str(camera.id), "name": "exit", "points": [[10, 10], [1270, 700]], "in_side": "left",
         "valid_from": T0.isoformat()},
    )  # fmt: skip
    assert created.status_code == 201, created.content
    line = created.json()
    assert line["versions"] == [
        {"valid_from": "2026-03-01T23:20:00Z", "valid_until": None, "points": [[10.0, 10.0], [1270.0, 700.0]],
         "in_side": "left", "frame_width": 1280, "frame_height": 720}
    ]  # fmt: skip

    listed = api_client.get(LINES, {"camera_id": str(camera.id)}).json()["results"]
    assert sorted(row["name"] for row in listed) == ["exit", "gate"]

    edit = (T0 + timedelta(hours=1)).isoformat()
    patched = api_client.patch_json(f"{LINES}/{line['id']}", {"points": [[20, 20], [1200, 600]], "valid_from": edit})
    assert patched.status_code == 200, patched.content
    versions = patched.json()["versions"]
    assert [(v["valid_from"], v["valid_until"]) for v in versions] == [
        ("2026-03-01T23:20:00Z", "2026-03-02T00:20:00Z"),
        ("2026-03-02T00:20:00Z", None),
    ]
    assert versions[1]["in_side"] == "left"  # kept when not given

    assert api_client.delete(f"{LINES}/{line['id']}").status_code == 204
    assert [row["name"] for row in api_client.get(LINES, {"camera_id": str(camera.id)}).json()["results"]] == ["gate"]
    closed = api_client.get(f"{LINES}/{line['id']}").json()
    assert closed["closed_at"] is not None
    assert datetime.fromisoformat(closed["versions"][-1]["valid_until"]) == datetime.fromisoformat(closed["closed_at"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": [[10, 10], [1300, 700]]}, "points"),  # x past the 1280-pixel frame
        ({"points": [[10, 10], [10, 10]]}, "points"),  # zero length
        ({"points": [[10, 10], [20, 20], [30, 30]]}, "points"),  # three points
        ({"points": [[-1, 10], [20, 20]]}, "points"),  # negative
        ({"in_side": "up"}, "in_side"),
        ({"name": "x" * 101}, "name"),
        ({"camera_id": "6f1e2a34-0000-4000-8000-000000000000"}, "camera"),
        ({"valid_from": "1999-12-31T23:00:00Z"}, "valid_from"),  # before any camera of this platform
    ],
)
def test_a_bad_line_is_refused_with_the_field_named_and_nothing_saved(api_client, traffic_fleet, body, field):
    before = definition_rows()
    payload = {"camera_id": str(traffic_fleet.cameras[1].id), "name": "new", "points": [[10, 10], [200, 200]],
               "in_side": "right", **body}  # fmt: skip

    response = api_client.post_json(LINES, payload)

    assert response.status_code == 422, response.content
    assert field in response.content.decode()
    assert definition_rows() == before


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[10, 10], [300, 10], [10, 200], [200, 250]], "self-intersecting"),  # a bow tie
        ([[10, 10], [100, 100], [200, 200]], "no area"),  # collinear
        ([[10, 10], [2000, 10], [10, 200]], "outside"),
        ([[10, 10]] * 2 + [[5, 5]], "repeated"),
        ([[i, i * i % 700] for i in range(33)], "points"),  # too many vertices
    ],
)
def test_a_bad_region_is_refused_with_the_field_named_and_nothing_saved(api_client, traffic_fleet, points, message):
    before = definition_rows()

    response = api_client.post_json(
        REGIONS, {"camera_id": str(traffic_fleet.cameras[1].id), "name": "r", "points": points}
    )

    assert response.status_code == 422, response.content
    assert message in response.content.decode()
    assert "points" in response.content.decode()
    assert definition_rows() == before


def test_a_bad_edit_keeps_the_line_as_it_was(api_client, traffic_fleet):
    line = traffic_fleet.lines[0]
    before = definition_rows()

    response = api_client.patch_json(f"{LINES}/{line.id}", {"points": [[0, 0], [1921, 5]]})

    assert response.status_code == 422
    assert "points" in response.content.decode()
    assert definition_rows() == before
    assert line.versions.get().valid_until is None


def test_writing_lines_needs_the_cameras_write_scope(traffic_fleet, make_api_key):
    from tests.conftest import ApiClient

    reader = ApiClient(make_api_key(ApiScope.CAMERAS_READ, ApiScope.TELEMETRY_READ).raw_key)
    before = definition_rows()
    response = reader.post_json(LINES, {"camera_id": str(traffic_fleet.cameras[0].id), "name": "n",
                                        "points": [[1, 1], [100, 100]], "in_side": "left"})  # fmt: skip
    assert response.status_code == 403
    assert definition_rows() == before


@pytest.fixture
def counted(traffic_fleet, make_scene):
    scene = make_scene(traffic_fleet)
    ingest(scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=50 * 60, fps=2))
    start_watermark(T0)
    rollups_refresh(now=T0 + timedelta(minutes=51), policy=policy())
    return scene.truth()


def test_counts_are_filtered_by_camera_zone_line_class_direction_and_range(api_client, traffic_fleet, counted):
    stop_line, crosswalk, gate = traffic_fleet.lines
    window = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}

    def truth(granularity, lines, *, object_type=None, direction=None):
        total = defaultdict(int)
        for (g, line_id, bucket, d, t), n in counted.crossings.items():
            in_range = g == granularity and line_id in lines and T0 <= bucket < T0 + timedelta(hours=1)
            if in_range and (object_type is None or t == object_type) and (direction is None or d == direction):
                total[(d, t)] += n
        return dict(total)

    def answer(**params):
        response = api_client.get("/api/v1/traffic/counts", {**window, **params})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["truncated"] is False
        return {(row["direction"], row["object_type"]): row["crossings"] for row in body["totals"]}, body

    by_camera, body = answer(camera_id=str(traffic_fleet.cameras[0].id))
    assert by_camera == truth("15min", {stop_line.id, crosswalk.id})
    assert {row["line_name"] for row in body["series"]} == {"stop line", "crosswalk"}
    answered = {
        (series["line_id"], datetime.fromisoformat(bucket), series["direction"], series["object_type"]): n
        for series in body["series"]
        for bucket, n in zip(series["buckets"], series["crossings"], strict=True)
    }
    assert answered == {
        (str(line_id), bucket, d, t): n
        for (g, line_id, bucket, d, t), n in counted.crossings.items()
        if g == "15min" and line_id in {stop_line.id, crosswalk.id} and T0 <= bucket < T0 + timedelta(hours=1)
    }
    assert answer(zone_id=str(traffic_fleet.zone.id))[0] == truth("15min", {stop_line.id, crosswalk.id})
    assert answer(line_id=str(gate.id), granularity="hour")[0] == truth("hour", {gate.id})
    assert answer(object_type="car", direction="in")[0] == truth(
        "15min", {stop_line.id, crosswalk.id, gate.id}, object_type="car", direction="in"
    )
    assert answer(object_type="car", direction="in")[0]  # the scene sends cars in both directions


def test_objects_are_distinct_tracks_per_camera_zone_and_fleet(api_client, traffic_fleet, counted):
    camera = traffic_fleet.cameras[0]
    response = api_client.get(
        "/api/v1/traffic/objects",
        {"camera_id": str(camera.id), "granularity": "day", "since": "2026-03-01T00:00:00Z",
         "until": "2026-03-03T00:00:00Z"},
    )  # fmt: skip
    assert response.status_code == 200
    rows = {(r["bucket"], r["object_type"]): r["objects"] for r in response.json()["results"]}
    expected = {
        (bucket.isoformat().replace("+00:00", "Z"), t): n
        for (g, camera_id, bucket, t), n in counted.objects.items()
        if g == "day" and camera_id == camera.id
    }
    assert rows == expected
    hours = {"granularity": "hour", "since": "2026-03-01T23:00:00Z", "until": "2026-03-02T01:00:00Z"}
    fleet = api_client.get("/api/v1/traffic/objects", hours).json()
    assert fleet["scope"] == "fleet"
    assert sum(r["objects"] for r in fleet["results"]) == sum(
        n for (g, _c, _b, _t), n in counted.objects.items() if g == "hour"
    )


def test_occupancy_and_dwell_per_region(api_client, traffic_fleet, counted):
    region = traffic_fleet.regions[0]
    body = api_client.get(
        "/api/v1/traffic/occupancy", {"region_id": str(region.id), "since": T0.isoformat(), "granularity": "15min",
                                      "until": (T0 + timedelta(hours=1)).isoformat()},
    ).json()  # fmt: skip
    rows = [r for r in body["results"] if r["object_type"] == ""]
    assert rows
    assert all(r["region_name"] == "box junction" for r in rows)
    for row in rows:
        key = ("15min", region.id, datetime.fromisoformat(row["bucket"]))
        assert (row["occupancy_max"], pytest.approx(row["occupancy_mean"])) == counted.occupancy[key]


def test_fiware_traffic_flow_observed_entities(api_client, traffic_fleet, counted):
    stop_line = traffic_fleet.lines[0]
    response = api_client.get(
        "/api/v1/traffic/fiware/TrafficFlowObserved",
        {"line_id": str(stop_line.id), "since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()},
    )
    assert response.status_code == 200
    entities = response.json()
    assert entities
    for entity in entities:
        assert set(entity) == {"id", "type", "name", "dateObserved", "dateObservedFrom", "dateObservedTo",
                               "intensity", "vehicleType", "laneDirection", "dataProvider", "location"}  # fmt: skip
        assert entity["type"] == "TrafficFlowObserved"
        assert entity["location"] == {"type": "Point", "coordinates": [-74.0, 40.71]}
        assert entity["laneDirection"] in {"forward", "backward"}
        assert entity["dateObserved"] == f"{entity['dateObservedFrom']}/{entity['dateObservedTo']}"
        assert entity["vehicleType"] != "person"
    # intensity = crossings of vehicles (a truck is a "lorry"), persons left out
    expected = sum(
        n
        for (g, line_id, bucket, _d, t), n in counted.crossings.items()
        if g == "15min" and line_id == stop_line.id and t != "person" and T0 <= bucket < T0 + timedelta(hours=1)
    )
    assert sum(e["intensity"] for e in entities) == expected
    assert any(e["vehicleType"] == "lorry" for e in entities)


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-03-01T00:00:00", "until": "2026-03-02T00:00:00Z"},  # no time zone
        {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},  # reversed
        {"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"},  # 59 days of 15-minute buckets
        {"direction": "sideways"},
        {"granularity": "week"},
        {"camera_id": "6f1e2a34-0000-4000-8000-000000000000"},
    ],
)
def test_bad_count_queries_are_422(api_client, traffic_fleet, params):
    response = api_client.get("/api/v1/traffic/counts", params)
    assert response.status_code == 422, response.content
    assert "detail" in response.json()
