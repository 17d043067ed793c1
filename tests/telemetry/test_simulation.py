import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from its_camera.choices import ApiScope
from telemetry.services.batches import frames_decode
from telemetry.simulation import FleetSimulator, generate_frames


def test_generated_frames_are_valid_batches_in_time_order():
    cameras = [uuid.uuid4(), uuid.uuid4()]
    start = datetime(2026, 11, 25, tzinfo=UTC)

    frames = list(generate_frames(cameras, fps=30, start=start, seconds=1, detections_per_frame=5))
    batch = frames_decode(msgspec.json.encode(frames), now=start)  # accepted as of the frames' own day

    assert len(batch.frames) == 60
    assert batch.detection_count == 300
    assert [f.timestamp for f in batch.frames] == sorted(f.timestamp for f in batch.frames)
    assert {f.camera_id for f in batch.frames} == set(cameras)


@pytest.mark.django_db(transaction=True)
def test_the_simulator_registers_its_cameras_and_sends_frames_metrics_and_heartbeats(live_server, make_api_key):
    from cameras.models import Camera
    from telemetry.models import FrameMetadata, SystemMetric
    from telemetry.services.partitions import partitions_apply

    partitions_apply()
    raw_key = make_api_key(*ApiScope.values).raw_key
    simulator = FleetSimulator(
        base_url=f"{live_server.url}/api/v1", api_key=raw_key, cameras=2, fps=5, senders=1, write=lambda _: None
    )

    simulator.run(duration=2)
    FleetSimulator(base_url=f"{live_server.url}/api/v1", api_key=raw_key, cameras=2, fps=5).register_cameras()

    cameras = Camera.objects.filter(tags__contains=["simulated"])
    assert sorted(cameras.values_list("name", flat=True)) == ["sim-camera-0001", "sim-camera-0002"]
    assert FrameMetadata.objects.count() == 2 * 5 * 2
    assert set(SystemMetric.objects.values_list("name", flat=True)) == {"fps", "gpu_utilization"}
    assert all(camera.last_seen_at is not None for camera in cameras)
    assert simulator.stats.errors == 0
