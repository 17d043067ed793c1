"""Traffic in the admin: lines and regions drawn and saved through the services (bad ones are form errors with
nothing saved), the frame data the drawing shows, the traffic dashboard and the objects panel."""

from datetime import timedelta

import pytest
from django.urls import reverse

from telemetry.services.rollups import rollups_refresh
from traffic.models import CountingLine, CountingLineVersion, Region, RegionVersion

from .conftest import T0, ingest, scene_frames, start_watermark
from .test_counting import policy

pytestmark = pytest.mark.django_db


def rows():
    return (CountingLine.objects.count(), CountingLineVersion.objects.count(), Region.objects.count(),
            RegionVersion.objects.count())  # fmt: skip


def test_an_operator_adds_a_line_through_the_form(admin_client, traffic_fleet):
    camera = traffic_fleet.cameras[1]
    response = admin_client.post(
        reverse("admin:traffic_countingline_add"),
        {"camera": camera.id, "name": "kerb", "x1": 5, "y1": 600, "x2": 1275, "y2": 610, "in_side": "right"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    line = CountingLine.objects.get(name="kerb")
    version = line.versions.get()
    assert (version.x1, version.y1, version.x2, version.y2, version.in_side) == (5, 600, 1275, 610, "right")
    assert (version.frame_width, version.frame_height) == (1280, 720)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"x2": 1281}, "x2"),  # outside the 1280 x 720 frame
        ({"x2": 5, "y2": 600}, "x2"),  # zero length
        ({"name": "gate"}, "name"),  # taken on this camera
    ],
)
def test_a_bad_line_is_a_form_error_and_nothing_is_saved(admin_client, traffic_fleet, values, field):
    before = rows()
    data = {"camera": traffic_fleet.cameras[1].id, "name": "kerb", "x1": 5, "y1": 600, "x2": 1275, "y2": 610,
            "in_side": "right", **values}  # fmt: skip

    response = admin_client.post(reverse("admin:traffic_countingline_add"), data)

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert rows() == before


def test_editing_a_line_in_the_admin_opens_a_new_version(admin_client, traffic_fleet):
    line = traffic_fleet.lines[2]
    response = admin_client.post(
        reverse("admin:traffic_countingline_change", args=[line.id]),
        {"name": "gate", "x1": 100, "y1": 300, "x2": 1200, "y2": 300, "in_side": "left",
         "apply_from": "2026-03-02 06:00:00"},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    versions = list(line.versions.order_by("valid_from"))
    assert len(versions) == 2
    assert versions[0].valid_until == versions[1].valid_from
    assert (versions[1].y1, versions[1].y2) == (300, 300)


def test_a_self_intersecting_region_is_a_form_error(admin_client, traffic_fleet):
    before = rows()
    response = admin_client.post(
        reverse("admin:traffic_region_add"),
        {"camera": traffic_fleet.cameras[0].id, "name": "bow", "points": "[[10,10],[300,10],[10,200],[200,250]]"},
    )
    assert response.status_code == 200
    assert "self-intersecting" in str(response.context["adminform"].form.errors["points"])
    assert rows() == before


def test_the_drawing_gets_the_frame_size_lines_regions_and_recent_positions(admin_client, traffic_fleet):
    camera = traffic_fleet.cameras[0]
    response = admin_client.get(reverse("admin:traffic_camera_frame", args=[camera.id]))
    body = response.json()
    assert (body["width"], body["height"]) == (1920, 1080)
    assert sorted(line["name"] for line in body["lines"]) == ["crosswalk", "stop line"]
    assert [region["name"] for region in body["regions"]] == ["box junction"]
    assert body["positions"] == []  # nothing seen in the last (real) hour in this test database
    page = admin_client.get(reverse("admin:traffic_countingline_add"))
    assert b"geometry-svg" in page.content
    assert b"traffic/geometry_editor.js" in page.content
    assert b"cdn" not in page.content.lower()


def test_the_dashboard_shows_crossings_by_class_and_direction_peak_hour_and_lines(
    admin_client, traffic_fleet, make_scene
):
    scene = make_scene(traffic_fleet)
    ingest(scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=20 * 60, fps=2))
    start_watermark(T0)
    rollups_refresh(now=T0 + timedelta(minutes=21), policy=policy())
    truth = scene.truth()

    response = admin_client.get(
        reverse("admin:traffic_dashboard"), {"zone": traffic_fleet.zone.id, "day": "2026-03-01"}
    )

    assert response.status_code == 200
    context = response.context
    zone_lines = {line.id for line in traffic_fleet.lines[:2]}
    expected = {}
    for (granularity, line_id, _bucket, direction, object_type), count in truth.crossings.items():
        if granularity == "day" and line_id in zone_lines and _bucket.day == 1:
            expected[(object_type, direction)] = expected.get((object_type, direction), 0) + count
    assert {(r["object_type"], r["direction"]): r["crossings"] for r in context["by_class"]} == expected
    assert context["peak"]["bucket"].hour == 23
    assert context["peak"]["crossings"] == sum(expected.values())
    assert [frame["camera"].name for frame in context["frames"]] == ["cam-a"]
    assert {line["name"] for line in context["frames"][0]["lines"]} == {"stop line", "crosswalk"}
    assert b"vendor/chartjs/chart.umd.min.js" in response.content


def test_the_ingest_dashboard_shows_objects_beside_detections(admin_client, traffic_fleet):
    response = admin_client.get(reverse("admin:telemetry_analytics_dashboard"))
    assert response.status_code == 200
    assert b"traffic-objects-panel" in response.content
    assert b"Objects (distinct tracks)" in response.content


def test_recent_positions_are_bottom_centres_of_the_first_frames_of_each_minute_of_the_last_hour(
    traffic_fleet, make_scene
):
    from traffic.selectors.definitions import recent_positions

    camera = traffic_fleet.cameras[0]
    scene = make_scene(traffic_fleet)
    frames = scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=3 * 60, fps=2)
    ingest(frames)

    positions = recent_positions(camera_id=camera.id, now=T0 + timedelta(minutes=3))

    mine = [f for f in frames if f["camera_id"] == str(camera.id)]
    expected = []
    for minute in range(3):
        first = [f for f in mine if f["timestamp"][14:16] == f"{20 + minute:02d}"][:5]
        expected += [
            ((d["bbox"][0] + d["bbox"][2]) / 2, d["bbox"][3], d["object_type"]) for f in first for d in f["detections"]
        ]
    assert expected
    assert sorted(positions) == sorted(expected)
    assert recent_positions(camera_id=camera.id, now=T0 + timedelta(hours=2)) == []
