"""Computed traffic counts equal the simulator's ground truth exactly: distinct objects, line crossings by
direction and class, region occupancy and dwell, in 15-minute, hour and day buckets; with batches arriving in
order, out of order, late within the grace window, and later than that followed by a rebuild."""

import random
from collections import defaultdict
from datetime import timedelta

import pytest

from telemetry.models import DetectionHourlyRollup
from telemetry.services.rollups import RollupPolicy, rollups_rebuild, rollups_refresh
from traffic.models import LineCount, LineCrossing, ObjectCount, RegionCount, TrackQuarter
from traffic.services.definitions import line_update
from traffic.simulation import percentile_cont

from .conftest import T0, ingest, scene_frames, start_watermark

pytestmark = pytest.mark.django_db


def policy(**overrides):
    values = {
        "grace": timedelta(minutes=5),
        "max_span": timedelta(hours=1),
        "max_steps": 100,
        "time_budget_seconds": 600.0,
        "initial_backfill": timedelta(days=2),
        "minute_retention": timedelta(days=7),
        "prune_batch_size": 10_000,
        "lag_alert_after": timedelta(minutes=15),
    }
    return RollupPolicy(**{**values, **overrides})


def computed_objects():
    return {
        (row.granularity, row.scope_id, row.bucket, row.object_type): row.objects
        for row in ObjectCount.rows.filter(scope="camera")
        if row.objects
    }


def computed_crossings():
    return {
        (row.granularity, row.line_id, row.bucket, row.direction, row.object_type): row.crossings
        for row in LineCount.objects.all()
    }


def assert_matches_truth(scene, fleet):
    truth = scene.truth()
    assert truth.crossings, "the scene must produce crossings for the test to mean anything"
    assert computed_objects() == truth.objects
    assert computed_crossings() == truth.crossings
    # Zone and fleet objects: the cameras' counts added up (a track belongs to one camera).
    zone_truth: dict = defaultdict(int)
    fleet_truth: dict = defaultdict(int)
    zones = {camera.id: camera.zone_id for camera in fleet.cameras}
    for (granularity, camera_id, bucket, object_type), count in truth.objects.items():
        if zones[camera_id] is not None:
            zone_truth[(granularity, zones[camera_id], bucket, object_type)] += count
        fleet_truth[(granularity, bucket, object_type)] += count
    assert {
        (r.granularity, r.scope_id, r.bucket, r.object_type): r.objects
        for r in ObjectCount.rows.filter(scope="zone").exclude(scope_id=fleet.zone.id.__class__(int=0))
    } == dict(zone_truth)
    assert {(r.granularity, r.bucket, r.object_type): r.objects for r in ObjectCount.rows.filter(scope="fleet")} == (
        dict(fleet_truth)
    )
    # Regions: occupancy per bucket (all-classes rows) and dwell p50/p85 per class.
    occupancy = {
        (r.granularity, r.region_id, r.bucket): (r.occupancy_max, r.occupancy_mean)
        for r in RegionCount.objects.filter(object_type="")
    }
    assert set(occupancy) == set(truth.occupancy)
    for key, (most, mean) in truth.occupancy.items():
        assert occupancy[key][0] == most, key
        assert occupancy[key][1] == pytest.approx(mean, rel=1e-12), key
    dwell = {(r.granularity, r.region_id, r.bucket, r.object_type): r for r in RegionCount.objects.all()}
    assert set(dwell) == set(truth.dwell_tracks)
    for key, seconds in truth.dwell_tracks.items():
        assert dwell[key].tracks == len(seconds), key
        assert dwell[key].dwell_p50_seconds == pytest.approx(percentile_cont(seconds, 0.5), abs=1e-6), key
        assert dwell[key].dwell_p85_seconds == pytest.approx(percentile_cont(seconds, 0.85), abs=1e-6), key


def test_counts_equal_the_simulators_truth_across_an_hour_and_a_day_boundary(traffic_fleet, make_scene):
    # Given 45 minutes of objects moving through two cameras' lines and regions, from 23:20 to 00:05
    scene = make_scene(traffic_fleet)
    ingest(scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=45 * 60, fps=4))
    start_watermark(T0)

    # When the rollups catch up
    rollups_refresh(now=T0 + timedelta(minutes=46), policy=policy())

    # Then every count equals the truth, including the day and hour split at midnight
    assert_matches_truth(scene, traffic_fleet)
    days = {key[2] for key in computed_objects() if key[0] == "day"}
    assert len(days) == 2
    # and a day's objects are distinct tracks of the day, not a sum of its hours when tracks span an hour
    hour_sum = sum(v for k, v in computed_objects().items() if k[0] == "hour" and k[2].hour == 23)
    day_count = sum(v for k, v in computed_objects().items() if k[0] == "day" and k[2].day == 1)
    quarters = sum(v for k, v in computed_objects().items() if k[0] == "15min" and k[2].hour == 23)
    assert day_count == hour_sum < quarters  # one hour of the day here; tracks spanning quarters count in both


def test_late_and_out_of_order_batches_within_the_grace_window_are_counted_exactly(traffic_fleet, make_scene):
    # Given 30 minutes of frames cut into 10-second batches
    scene = make_scene(traffic_fleet)
    frames = scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=30 * 60, fps=4)
    batches = [frames[i : i + 80] for i in range(0, len(frames), 80)]
    rng = random.Random(3)  # noqa: S311 - test data
    first_phase = [b for b in batches if b[-1]["timestamp"] < (T0 + timedelta(minutes=20)).isoformat()]
    late = [b for b in first_phase if b[0]["timestamp"] >= (T0 + timedelta(minutes=16)).isoformat()]
    late = rng.sample(late, len(late) // 2)
    on_time = [b for b in first_phase if b not in late]
    rng.shuffle(on_time)
    start_watermark(T0)

    # When the first 20 minutes arrive out of order without some batches, the rollups refresh,
    for batch in on_time:
        ingest(batch)
    rollups_refresh(now=T0 + timedelta(minutes=20), policy=policy())
    partial = computed_crossings()
    # and the missing batches arrive late (within the 5-minute grace) with the next minutes, newest first
    for batch in late + list(reversed([b for b in batches if b not in first_phase])):
        ingest(batch)
    rollups_refresh(now=T0 + timedelta(minutes=31), policy=policy())

    # Then the counts equal the truth of everything sent
    assert partial != computed_crossings()
    assert_matches_truth(scene, traffic_fleet)


def test_rows_later_than_the_grace_window_are_counted_after_a_rebuild(traffic_fleet, make_scene):
    # Given 20 minutes counted while the frames of minutes 2-4 were still missing
    scene = make_scene(traffic_fleet)
    frames = scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=20 * 60, fps=4)
    held = [f for f in frames if "23:22:" <= f["timestamp"][11:17] < "23:24:"]
    ingest(f for f in frames if f not in held)
    start_watermark(T0)
    rollups_refresh(now=T0 + timedelta(minutes=21), policy=policy())
    counted_without = computed_objects()

    # When they arrive 17 minutes late, a refresh does not see them, a rebuild of their range does
    ingest(held)
    rollups_refresh(now=T0 + timedelta(minutes=22), policy=policy())
    assert computed_objects() == counted_without
    rollups_rebuild(since=T0, until=T0 + timedelta(minutes=30), policy=policy())

    # Then the counts equal the truth
    assert_matches_truth(scene, traffic_fleet)


def test_detections_without_a_track_stay_detections_only(traffic_fleet, make_scene):
    # Given a scene where every third object carries no track id
    scene = make_scene(traffic_fleet, untracked_every=3)
    frames = scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=5 * 60, fps=4)
    ingest(frames)
    start_watermark(T0)

    # When the rollups run
    rollups_refresh(now=T0 + timedelta(minutes=6), policy=policy())

    # Then objects count tracked objects only, detections count every box
    untracked = sum(1 for f in frames for d in f["detections"] if d["track_id"] is None)
    assert untracked > 0
    detections = sum(r.detections for r in DetectionHourlyRollup.objects.filter(scope="fleet"))
    assert detections == sum(len(f["detections"]) for f in frames)
    assert TrackQuarter.objects.filter(track_id__in=[i for i in range(0, 10_000, 3)]).count() == 0
    assert_matches_truth(scene, traffic_fleet)


def test_an_edited_line_counts_with_its_new_geometry_from_the_edit_onward(traffic_fleet, make_scene):
    # Given a line moved at 23:30
    line = traffic_fleet.lines[2]
    old_version = line.versions.get()
    edit = T0 + timedelta(minutes=10)
    line_update(line=line, points=[[100, 200], [1200, 260]], in_side="right", now=edit)
    scene = make_scene(traffic_fleet)
    ingest(scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=20 * 60, fps=4))
    start_watermark(T0)

    # When counted
    rollups_refresh(now=T0 + timedelta(minutes=21), policy=policy())

    # Then crossings before the edit used the old geometry, after it the new one, and both equal the truth
    crossings = LineCrossing.objects.filter(line_id=line.id)
    assert crossings.filter(timestamp__lt=edit).exclude(version_id=old_version.id).count() == 0
    assert crossings.filter(timestamp__gte=edit).filter(version_id=old_version.id).count() == 0
    assert crossings.filter(timestamp__gte=edit).exists()
    assert_matches_truth(scene, traffic_fleet)


def test_a_repeated_refresh_and_rebuild_change_nothing(traffic_fleet, make_scene):
    scene = make_scene(traffic_fleet)
    ingest(scene_frames(scene, traffic_fleet.cameras, start=T0, seconds=10 * 60, fps=4))
    start_watermark(T0)
    rollups_refresh(now=T0 + timedelta(minutes=11), policy=policy())
    before = (computed_objects(), computed_crossings(), RegionCount.objects.count())

    rollups_rebuild(since=T0, until=T0 + timedelta(minutes=11), policy=policy())
    rollups_rebuild(since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=4), policy=policy())

    assert (computed_objects(), computed_crossings(), RegionCount.objects.count()) == before
    assert_matches_truth(scene, traffic_fleet)
