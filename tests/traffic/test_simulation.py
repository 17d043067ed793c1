"""`simulate_fleet --scene traffic`: the fleet simulator sends the traffic scene's objects through the HTTP API and
reports the true counts; the platform's counts equal them."""

from datetime import timedelta

import pytest

from its_camera.choices import ApiScope
from telemetry.models import Detection
from telemetry.simulation import FleetSimulator, scenes
from traffic.services.definitions import line_create


def test_the_traffic_scene_is_registered_for_the_simulator():
    assert "traffic" in scenes()
    with pytest.raises(ValueError, match="Unknown scene"):
        FleetSimulator(base_url="http://127.0.0.1:9/api/v1", api_key="x", cameras=1, fps=1, scene="nope")


@pytest.mark.django_db(transaction=True)
def test_the_simulator_sends_the_scene_and_reports_its_truth(live_server, make_api_key):
    from django.utils import timezone

    from telemetry.services.partitions import partitions_apply
    from telemetry.services.rollups import rollups_rebuild
    from traffic.models import LineCount

    partitions_apply()
    raw_key = make_api_key(*ApiScope.values).raw_key
    lines = []
    simulator = FleetSimulator(
        base_url=f"{live_server.url}/api/v1", api_key=raw_key, cameras=1, fps=10, senders=1,
        write=lines.append, scene="traffic",
    )  # fmt: skip
    # The simulator registers its camera first; the line is drawn before the scene is built from the database.
    camera_id = FleetSimulator(
        base_url=f"{live_server.url}/api/v1", api_key=raw_key, cameras=1, fps=10
    ).register_cameras()[0]
    from cameras.models import Camera

    # The line applies from an hour ago (the simulator sends real time; no test clock can pin it).
    line_create(camera=Camera.objects.get(id=camera_id), name="gate", points=[[100, 500], [1800, 520]],
                in_side="left", now=timezone.now(), valid_from=timezone.now() - timedelta(hours=1))  # fmt: skip

    simulator.run(duration=6)

    assert Detection.objects.filter(camera_id=camera_id, track_id__isnull=False).exists()
    report = "\n".join(lines)
    assert "traffic truth:" in report
    truth = simulator.scene.truth()  # type: ignore[union-attr]
    sent = Detection.objects.filter(camera_id=camera_id).order_by("timestamp")
    first, last = sent.first().timestamp, sent.last().timestamp
    rollups_rebuild(since=first - timedelta(minutes=1), until=last + timedelta(minutes=1))
    counted = {
        (r.granularity, r.line_id, r.bucket, r.direction, r.object_type): r.crossings for r in LineCount.objects.all()
    }
    assert counted == truth.crossings
    assert any(key[0] == "day" for key in counted)
