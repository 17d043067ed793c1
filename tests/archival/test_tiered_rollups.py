"""`rollups rebuild` over a range spanning hot + sealed + cold writes the same rollups, traffic counts included, as
before part of it went cold."""

import pytest

from telemetry.models import DetectionHourlyRollup, FrameDailyRollup, FrameHourlyRollup, PartitionTier
from telemetry.services.rollups import rollups_rebuild
from tests.archival.conftest import partition_names
from tests.archival.test_tiering import COLD_DAY, DAY, NOW, SEALED_DAY, seal_days, tier_now
from traffic.models import ObjectCount, TrackDay, TrackQuarter

# Each window of a rebuild commits, as in production: its temporary tables (ON COMMIT DROP) go with it, where one
# test transaction around 15 days of windows would run out of lock slots.
pytestmark = pytest.mark.django_db(transaction=True)

KEY = ("scope", "scope_id", "bucket")


def rollups() -> dict[str, list[tuple]]:
    return {
        "frame hours": sorted(FrameHourlyRollup.objects.values_list(*KEY, "frames", "failed_frames", "detections",
                                                                    "processing_time_sum", "processing_time_p95")),
        "frame days": sorted(FrameDailyRollup.objects.values_list(*KEY, "frames", "detections")),
        "detection hours": sorted(DetectionHourlyRollup.objects.values_list(*KEY, "object_type", "detections",
                                                                            "confidence_sum")),
        "track quarters": sorted(TrackQuarter.objects.values_list("camera_id", "track_id", "bucket", "object_type",
                                                                  "first_seen", "last_seen", "observations")),
        "track days": sorted(TrackDay.objects.values_list("camera_id", "track_id", "day", "object_type",
                                                          "first_seen")),
        "objects": sorted(ObjectCount._default_manager.values_list("granularity", *KEY, "object_type", "objects")),
    }  # fmt: skip


def assert_same(after: dict[str, list[tuple]], before: dict[str, list[tuple]]) -> None:
    """Same rows, same counts; float sums are added in the order rows are read, so compared to 1e-12."""
    for name in before:
        assert len(after[name]) == len(before[name]), name
        for now_row, then_row in zip(after[name], before[name], strict=True):
            for now_value, then_value in zip(now_row, then_row, strict=True):
                if isinstance(then_value, float):
                    assert now_value == pytest.approx(then_value, rel=1e-12)
                else:
                    assert now_value == then_value


def test_a_rebuild_spanning_hot_sealed_and_cold_gives_the_same_rollups_and_traffic_counts(tiered_data):
    seal_days(COLD_DAY, SEALED_DAY)
    since, until = COLD_DAY, NOW
    rollups_rebuild(since=since, until=until)
    before = rollups()

    tier_now()
    rollups_rebuild(since=since, until=until)

    assert "detections_p20261110" not in partition_names("detections")
    assert PartitionTier.objects.get(partition="frame_metadata_p20261123").tier == "sealed"
    after = rollups()
    assert all(before.values())  # there was something to compare, in every table
    assert {row[2].date() for row in before["track quarters"]} >= {COLD_DAY.date(), (NOW - DAY).date() + DAY}
    assert_same(after, before)
