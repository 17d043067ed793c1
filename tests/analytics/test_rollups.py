"""Rollups equal the raw-table aggregates, and the refresh is incremental, bounded, idempotent and late-row safe."""

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.models import (
    NIL_SCOPE_ID,
    DetectionDailyRollup,
    DetectionHourlyRollup,
    DetectionMinuteRollup,
    FrameDailyRollup,
    FrameHourlyRollup,
    FrameMinuteRollup,
    RollupWatermark,
)
from telemetry.services.rollups import (
    RollupPolicy,
    histogram_bin,
    histogram_p95,
    histogram_value,
    rollup_minutes_prune,
    rollups_rebuild,
    rollups_refresh,
)

from .conftest import insert_frames, raw_detection_aggregates, raw_frame_aggregates

pytestmark = pytest.mark.django_db


def policy(**overrides):
    values = {
        "grace": timedelta(minutes=5),
        "max_span": timedelta(hours=1),
        "max_steps": 100,
        "time_budget_seconds": 60.0,
        "initial_backfill": timedelta(days=2),
        "minute_retention": timedelta(days=7),
        "prune_batch_size": 10_000,
        "lag_alert_after": timedelta(minutes=15),
    }
    return RollupPolicy(**{**values, **overrides})


def start_watermark(at):
    RollupWatermark.objects.update_or_create(name="telemetry", defaults={"watermark": at})


def _key(row):
    if row.scope == "camera":
        return ("camera", row.scope_id)
    if row.scope == "zone":
        return ("zone", None if row.scope_id == NIL_SCOPE_ID else row.scope_id)
    return ("fleet", None)


def frame_rollups(model):
    return {(*_key(row), row.bucket): row for row in model.objects.all()}


def hourly_rows():
    return frame_rollups(FrameHourlyRollup)


def assert_frames_equal(rollups, raw):
    assert set(rollups) == set(raw)
    for key, expected in raw.items():
        row = rollups[key]
        assert row.frames == expected["frames"], key
        assert row.failed_frames == expected["failed_frames"], key
        assert row.detections == expected["detections"], key
        assert row.processing_time_mean == approx(expected["mean"], rel=1e-9), key
        assert row.processing_time_max == expected["max"], key
        assert row.processing_time_p95 == approx(expected["p95"], rel=1e-12), key


def approx(expected, *, rel):
    """pytest.approx that also matches None (a bucket whose frames carry no processing time)."""
    return None if expected is None else pytest.approx(expected, rel=rel)


def test_minute_and_hour_rollups_equal_raw_aggregates_for_every_camera_zone_and_the_fleet(fleet, now, make_frames):
    # Given three hours of frames from four cameras (two zones and one camera without a zone)
    start = now.replace(minute=0) - timedelta(hours=2)
    make_frames(fleet.camera_ids, start=start, end=now, per_camera=400)
    start_watermark(start)

    # When the rollups are refreshed up to now
    result = rollups_refresh(now=now, policy=policy())

    # Then every minute and hour bucket, in every scope, equals what the raw rows give
    assert result.watermark == now
    assert result.caught_up
    assert result.raw_frames >= 4 * 400
    assert_frames_equal(frame_rollups(FrameMinuteRollup), raw_frame_aggregates("minute", start, now))
    assert_frames_equal(frame_rollups(FrameHourlyRollup), raw_frame_aggregates("hour", start, now))
    # and detections per object type too
    raw = raw_detection_aggregates("hour", start, now)
    rolled = {
        (*_key(row), row.bucket, row.object_type): (row.detections, row.confidence_sum)
        for row in DetectionHourlyRollup.objects.all()
    }
    assert set(rolled) == set(raw)
    for key, (count, confidence) in raw.items():
        assert rolled[key][0] == count
        assert rolled[key][1] == pytest.approx(confidence, rel=1e-9)
    assert DetectionMinuteRollup.objects.filter(scope="fleet").count() > 0
    # and the zone-less camera is its own "no zone" zone row, not mixed into another zone
    assert FrameHourlyRollup.objects.filter(scope="zone", scope_id=NIL_SCOPE_ID).exists()


def test_day_rows_add_up_the_hours_exactly_and_estimate_p95_within_the_histogram_error(fleet, now, make_frames):
    # Given frames over six hours of one day (yesterday, so the day is whole)
    day = now.replace(hour=0, minute=0) - timedelta(days=1)
    make_frames(fleet.camera_ids, start=day + timedelta(hours=6), end=day + timedelta(hours=12), per_camera=600)
    start_watermark(day)

    # When refreshed through the end of that day
    rollups_refresh(now=day + timedelta(days=1), policy=policy())

    # Then counts, failures, mean, max and detections of each day row equal the raw day aggregate, and
    # its p95 is within the histogram's resolution (2 % bins, geometric middle) of percentile_cont
    raw = raw_frame_aggregates("day", day, day + timedelta(days=1))
    rolled = frame_rollups(FrameDailyRollup)
    assert set(rolled) == set(raw)
    for key, expected in raw.items():
        row = rolled[key]
        assert (row.frames, row.failed_frames, row.detections) == (
            expected["frames"], expected["failed_frames"], expected["detections"],
        )  # fmt: skip
        assert row.processing_time_mean == approx(expected["mean"], rel=1e-9)
        assert row.processing_time_max == expected["max"]
        assert row.processing_time_p95 == approx(expected["p95"], rel=0.01), key
    raw_detections = raw_detection_aggregates("day", day, day + timedelta(days=1))
    rolled_detections = {
        (*_key(row), row.bucket, row.object_type): row.detections for row in DetectionDailyRollup.objects.all()
    }
    assert rolled_detections == {key: count for key, (count, _) in raw_detections.items()}


def test_a_second_refresh_of_the_same_range_changes_nothing(fleet, now, make_frames):
    # Given refreshed rollups
    start = now - timedelta(hours=2)
    make_frames(fleet.camera_ids, start=start, end=now, per_camera=200)
    start_watermark(start)
    rollups_refresh(now=now, policy=policy())
    before = {key: (r.frames, r.failed_frames, r.processing_time_p95) for key, r in hourly_rows().items()}
    count_before = FrameMinuteRollup.objects.count()

    # When the same range is rebuilt and refreshed again
    rollups_rebuild(since=start, until=now, policy=policy())
    rollups_refresh(now=now, policy=policy())

    # Then the rollups are the same rows with the same values
    after = {key: (r.frames, r.failed_frames, r.processing_time_p95) for key, r in hourly_rows().items()}
    assert after == before
    assert FrameMinuteRollup.objects.count() == count_before


def test_late_rows_within_the_grace_window_are_picked_up_by_the_next_run(fleet, now, make_frames):
    # Given rollups refreshed up to now
    start = now - timedelta(hours=1)
    make_frames(fleet.camera_ids, start=start, end=now - timedelta(minutes=10), per_camera=100)
    start_watermark(start)
    rollups_refresh(now=now, policy=policy())
    camera = fleet.cameras[0]
    hour = (now - timedelta(minutes=3)).replace(minute=0)
    frames_before = FrameHourlyRollup.objects.get(scope="camera", scope_id=camera.id, bucket=hour).frames

    # When frames 3 minutes behind the watermark arrive late, and frames 2 hours behind arrive later still
    late = now - timedelta(minutes=3)
    too_late = now - timedelta(hours=2)
    insert_frames([(camera.id, late + timedelta(seconds=n), "completed", 10.0, 1) for n in range(5)])
    insert_frames([(camera.id, too_late + timedelta(seconds=n), "completed", 10.0, 1) for n in range(7)])
    rollups_refresh(now=now + timedelta(minutes=1), policy=policy())

    # Then the run after includes the late rows (within the 5 minute grace)
    row = FrameHourlyRollup.objects.get(scope="camera", scope_id=camera.id, bucket=hour)
    assert row.frames == frames_before + 5
    # but not the rows older than the grace window, until their range is rebuilt
    old_hour = too_late.replace(minute=0)
    assert not FrameHourlyRollup.objects.filter(scope="camera", scope_id=camera.id, bucket=old_hour).exists()
    rollups_rebuild(since=old_hour, until=old_hour + timedelta(hours=1), policy=policy())
    assert FrameHourlyRollup.objects.get(scope="camera", scope_id=camera.id, bucket=old_hour).frames == 7


def test_a_run_is_bounded_and_later_runs_catch_up_after_downtime(fleet, now, make_frames):
    # Given five hours of frames nobody rolled up (the beat was down)
    start = now.replace(minute=0) - timedelta(hours=5)
    make_frames(fleet.camera_ids, start=start, end=now, per_camera=300)
    start_watermark(start)

    # When a run may take two one-hour steps
    first = rollups_refresh(now=now, policy=policy(max_steps=2))

    # Then it moves the watermark two hours and says it is behind
    assert first.steps == 2
    assert first.watermark == start + timedelta(hours=2)
    assert not first.caught_up
    assert RollupWatermark.objects.get().watermark == start + timedelta(hours=2)

    # When more runs follow, they catch up and the result equals the raw aggregates
    while not rollups_refresh(now=now, policy=policy(max_steps=2)).caught_up:
        pass
    rollups_refresh(now=now, policy=policy(max_steps=2))
    assert RollupWatermark.objects.get().watermark == now
    assert_frames_equal(frame_rollups(FrameHourlyRollup), raw_frame_aggregates("hour", start, now))


def test_a_camera_moved_to_another_zone_leaves_no_stale_zone_rows_for_refreshed_buckets(fleet, now, make_frames):
    # Given rollups of the last 30 minutes
    start = now - timedelta(minutes=30)
    make_frames([fleet.cameras[2].id], start=start, end=now, per_camera=50)  # south's only camera
    start_watermark(start)
    rollups_refresh(now=now, policy=policy())
    assert FrameMinuteRollup.objects.filter(scope="zone", scope_id=fleet.south.id).exists()

    # When the camera moves to north and the range is rebuilt
    fleet.cameras[2].zone = fleet.north
    fleet.cameras[2].save()
    rollups_rebuild(since=start, until=now, policy=policy())

    # Then south has no rows left for those buckets and north has them all
    assert not FrameMinuteRollup.objects.filter(scope="zone", scope_id=fleet.south.id).exists()
    north = FrameMinuteRollup.objects.filter(scope="zone", scope_id=fleet.north.id)
    assert sum(north.values_list("frames", flat=True)) == 50


def test_a_first_run_starts_from_the_oldest_partition_within_the_backfill_limit(fleet, now, make_frames):
    # Given frames from an hour ago and no watermark yet
    make_frames([fleet.cameras[0].id], start=now - timedelta(hours=1), end=now, per_camera=20)

    # When the first run happens
    result = rollups_refresh(now=now, policy=policy(max_steps=100))

    # Then it started at the oldest partition (yesterday 00:00, the fixture's first) and caught up
    assert result.watermark_before == (now - timedelta(days=1)).replace(hour=0, minute=0)
    assert result.watermark == now
    assert sum(FrameHourlyRollup.objects.filter(scope="fleet").values_list("frames", flat=True)) == 20


def test_old_minute_rows_are_pruned_in_batches(fleet, now, make_frames):
    # Given minute rows from 9 days ago and from now
    old = now - timedelta(days=9)
    make_frames([fleet.cameras[0].id], start=old, end=old + timedelta(minutes=30), per_camera=30)
    make_frames([fleet.cameras[0].id], start=now - timedelta(minutes=30), end=now, per_camera=30)
    # Each rebuild window commits on its own in production; inside this test's one transaction their locks add up,
    # so only the two spans holding frames are rebuilt (nine days of windows ran out of the server's lock table).
    rollups_rebuild(since=old, until=old + timedelta(hours=1), policy=policy())
    rollups_rebuild(since=now - timedelta(hours=1), until=now, policy=policy())
    old_rows = FrameMinuteRollup.objects.filter(bucket__lt=now - timedelta(days=7)).count()
    assert old_rows > 0

    # When pruning with a batch smaller than the old rows
    deleted = rollup_minutes_prune(now=now, policy=policy(prune_batch_size=5))

    # Then one batch per table is deleted, recent minute rows and every hour row stay
    assert deleted == 10
    rollup_minutes_prune(now=now, policy=policy(prune_batch_size=10_000))
    assert not FrameMinuteRollup.objects.filter(bucket__lt=now - timedelta(days=7)).exists()
    assert FrameMinuteRollup.objects.filter(bucket__gte=now - timedelta(minutes=30)).exists()
    assert FrameHourlyRollup.objects.filter(bucket__lt=now - timedelta(days=7)).exists()


def test_histogram_estimates_are_within_one_percent_of_the_values_they_stand_for():
    # Given processing times across six orders of magnitude
    for value in [0.02, 0.5, 1.0, 12.5, 33.3, 250.0, 999.0, 12_000.0]:
        # When binned and read back
        estimate = histogram_value(histogram_bin(value))
        # Then the estimate is within 1 % (half a 2 % bin)
        assert math.isclose(estimate, value, rel_tol=0.0101), value
    # and a merged p95 interpolates between the bins of the order statistics around rank 0.95 (n - 1)
    bins = [histogram_bin(v) for v in range(1, 101)]
    counts = [1] * 100
    assert histogram_p95([(bins[:50], counts[:50]), (bins[50:], counts[50:])]) == pytest.approx(95.05, rel=0.0101)
    assert histogram_p95([]) is None


def percentile_cont_95(values: list[float]) -> float:
    """PostgreSQL's percentile_cont(0.95): linear interpolation between the order statistics around 0.95 (n - 1)."""
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    lower = math.floor(rank)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (rank - lower) * (ordered[upper] - ordered[lower])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=3_000_000.0), min_size=1, max_size=400), st.integers(1, 4))
def test_the_merged_p95_is_within_one_percent_of_percentile_cont_whatever_the_sample_size(values, parts):
    # Given processing times of any count (one frame or hundreds, a sparse tail or not), split into hours
    hours = []
    for part in range(parts):
        hour: dict[int, int] = {}
        for value in values[part::parts]:
            hour[histogram_bin(value)] = hour.get(histogram_bin(value), 0) + 1
        hours.append((list(hour), list(hour.values())))

    # When their histograms are merged into a p95
    estimate = histogram_p95(hours)

    # Then it is within 1 % of percentile_cont over the raw values: the bound is the histogram's (2 % bins read
    # at their geometric middle), not the sample's, because both order statistics are read from their own bins
    assert estimate == approx(percentile_cont_95(values), rel=0.01)


def test_catching_up_skips_minute_rows_older_than_their_retention(fleet, now, make_frames):
    # Given frames from three days ago and from the last hour, and minute rows kept for two days
    old = now - timedelta(days=3)
    make_frames([fleet.cameras[0].id], start=old, end=old + timedelta(minutes=30), per_camera=30)
    make_frames([fleet.cameras[0].id], start=now - timedelta(minutes=30), end=now, per_camera=30)
    start_watermark(old.replace(minute=0))

    # When the refresh catches up over the whole range
    rollups_refresh(now=now, policy=policy(minute_retention=timedelta(days=2)))

    # Then the old range has hour and day rows but no minute rows (the prune would delete them), the recent one all
    assert sum(FrameHourlyRollup.objects.filter(scope="fleet", bucket__lt=now - timedelta(days=2))
               .values_list("frames", flat=True)) == 30  # fmt: skip
    assert not FrameMinuteRollup.objects.filter(bucket__lt=now - timedelta(days=2)).exists()
    assert sum(FrameMinuteRollup.objects.filter(scope="fleet").values_list("frames", flat=True)) == 30
