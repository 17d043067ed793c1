"""The admin home is the operations dashboard: fleet, open alerts by severity, ingest over the last hour,
storage with days until the size cap, beat jobs. Numbers come from the data, the page costs a bounded
number of queries whatever the data size, and one broken panel does not take the page down."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from archival.models import RetentionPolicy
from archival.selectors.partitions import PartitionDetail
from archival.selectors.storage import TableStorage, growth_bytes_per_day, storage_by_table
from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_acknowledge, alert_raise
from its_camera import admin_pages
from telemetry.models import NIL_SCOPE_ID, FrameMinuteRollup, RollupScope
from telemetry.selectors.analytics import ingest_last_hour
from telemetry.services.partitions import partitions_apply
from tests.cameras.factories import make_camera

pytestmark = pytest.mark.django_db

# A fixed clock: 00:05 UTC on the 1st of a month, the moment most likely to break hour/day/month arithmetic.
NOW = datetime(2026, 12, 1, 0, 5, 30, tzinfo=UTC)


@pytest.fixture
def pinned_home(monkeypatch):
    monkeypatch.setattr(admin_pages, "dashboard_now", lambda: NOW)
    return NOW


def minute_rollup(bucket: datetime, *, frames: int, failed: int = 0) -> FrameMinuteRollup:
    return FrameMinuteRollup.objects.create(
        scope=RollupScope.FLEET,
        scope_id=NIL_SCOPE_ID,
        bucket=bucket,
        refreshed_at=bucket,
        frames=frames,
        failed_frames=failed,
        processing_time_count=0,
        processing_time_sum=0,
        detections=0,
    )


@pytest.mark.parametrize("now", [NOW, datetime(2026, 11, 30, 23, 55, tzinfo=UTC)])
def test_ingest_last_hour_counts_the_sixty_whole_minutes_before_now(now):
    # Given fleet minute rollups inside the hour, one just before it and one in the current minute
    until = now.replace(second=0)
    minute_rollup(until - timedelta(minutes=60), frames=600, failed=6)  # first minute of the hour
    minute_rollup(until - timedelta(minutes=1), frames=120, failed=0)  # last whole minute
    minute_rollup(until - timedelta(minutes=61), frames=9999)  # before the hour
    minute_rollup(until, frames=9999)  # the current, still filling minute

    # When the home's ingest panel reads them
    hour = ingest_last_hour(now=now)

    # Then only the 60 whole minutes count
    assert hour["frames"] == 720
    assert hour["failed_frames"] == 6
    assert hour["frames_per_second"] == pytest.approx(720 / 3600)
    assert hour["last_minute_frames_per_second"] == pytest.approx(2.0)
    assert len(hour["per_minute_frames_per_second"]) == 60
    assert hour["per_minute_frames_per_second"][0] == pytest.approx(10.0)


def _partition(start: datetime, days: int, size: int) -> PartitionDetail:
    return PartitionDetail(
        name=f"p{start:%Y%m%d}",
        start=start,
        end=start + timedelta(days=days),
        is_default=False,
        total_bytes=size,
        estimated_rows=None,
        last_analyze=None,
        comment="",
    )


def test_growth_is_the_bytes_of_the_last_weeks_partitions_over_their_span():
    # Given daily partitions of 10 MB for the last 10 days, the current one 1 MB, 14 empty ones ahead
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    details = [_partition(day - timedelta(days=n), 1, 10_000_000) for n in range(1, 11)]
    details.append(_partition(day, 1, 1_000_000))
    details += [_partition(day + timedelta(days=n), 1, 16_384) for n in range(1, 15)]
    details.append(PartitionDetail("pdefault", None, None, True, 50_000_000, None, None, ""))

    # When the growth per day is measured
    growth = growth_bytes_per_day(details, now=NOW)

    # Then it covers the 7 days before today plus today's 5.5 minutes: 71 MB over ~7.004 days
    span_days = (NOW - (day - timedelta(days=7))) / timedelta(days=1)
    assert growth == pytest.approx(71_000_000 / span_days)


def test_a_monthly_table_grows_by_its_current_partition_and_a_new_one_says_nothing():
    # Given a monthly partition begun 5.5 minutes ago (00:05 on the 1st) and last month's
    month = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = _partition(datetime(2026, 11, 1, tzinfo=UTC), 30, 300_000_000)
    current = _partition(month, 31, 1_000)

    # Then growth is last month's bytes (which overlap the week) plus the current one's, over their span
    assert growth_bytes_per_day([last_month, current], now=NOW) == pytest.approx(
        300_001_000 / ((NOW - last_month.start) / timedelta(days=1))
    )
    # and a lone partition a few minutes old gives no estimate rather than a wild one
    assert growth_bytes_per_day([current], now=NOW) is None


def test_days_until_the_cap():
    # Given a table of 40 GB capped at 100 GB, growing 2 GB a day
    row = TableStorage("frame_metadata", 40 * 10**9, 20, 2 * 10**9, 100 * 10**9)
    # Then the cap is 30 days away, and 40 % used
    assert row.days_until_cap == pytest.approx(30.0)
    assert row.cap_percent == pytest.approx(40.0)
    # a table over its cap has 0 days left; no cap or no growth: unknown
    assert TableStorage("t", 101, 1, 5.0, 100).days_until_cap == 0.0
    assert TableStorage("t", 10, 1, 5.0, None).days_until_cap is None
    assert TableStorage("t", 10, 1, None, 100).days_until_cap is None


def test_storage_by_table_reads_real_partitions_and_the_policy_cap():
    # Given the partitions made for today and a 1 GB cap on frame_metadata
    partitions_apply(moment=NOW)
    RetentionPolicy.objects.filter(table="frame_metadata").update(size_cap_bytes=10**9, enabled=True)

    # When storage is read
    rows = {row.table: row for row in storage_by_table(now=NOW)}

    # Then every partitioned table is there with its size from the catalog and its cap
    assert set(rows) == {"frame_metadata", "detections", "system_metrics"}
    assert rows["frame_metadata"].size_cap_bytes == 10**9
    assert rows["frame_metadata"].total_bytes > 0
    assert rows["frame_metadata"].partitions >= 15  # today and 14 days ahead
    assert rows["detections"].size_cap_bytes is None


def test_the_home_shows_fleet_alerts_ingest_and_storage_in_bounded_queries(admin_client, pinned_home):
    # Given two streaming cameras, one stale, alerts of each severity (one acknowledged), an hour of ingest
    now = timezone.now()  # the realtime view compares last_seen_at with the database's clock
    for _ in range(2):
        make_camera(last_seen_at=now)
    stale = make_camera(last_seen_at=now - timedelta(hours=2))
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=stale, message="silent", severity=AlertSeverity.CRITICAL)
    warning = alert_raise(kind=AlertKind.ROLLUP_LAG, message="behind", severity=AlertSeverity.WARNING)
    alert_raise(kind=AlertKind.JOB_FAILED, subject="x", message="failed", severity=AlertSeverity.WARNING)
    alert_acknowledge(alert=warning, acknowledged_by="operator")
    minute_rollup(NOW.replace(second=0) - timedelta(minutes=30), frames=3600, failed=36)
    partitions_apply(moment=NOW)

    # When an operator opens the admin home
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:index"))

    # Then each panel shows the data
    assert response.status_code == 200
    html = response.content.decode()
    assert '<span class="count" data-home="streaming">2</span>' in html
    assert '<span class="count" data-home="stale">1</span>' in html
    assert '<span class="count" data-home="fps">1.0</span>' in html
    assert '<span class="count" data-home="failed">1.00 %</span>' in html
    panels = {panel["key"]: panel for panel in response.context["panels"]}
    assert list(panels) == ["fleet", "alerts", "ingest", "storage", "jobs"]
    assert all("error" not in panel for panel in panels.values())
    by_severity = {row["severity"]: row for row in panels["alerts"]["data"]["rows"]}
    assert by_severity["critical"] == {"severity": "critical", "open": 1, "acknowledged": 0}
    assert by_severity["warning"] == {"severity": "warning", "open": 1, "acknowledged": 1}
    assert by_severity["info"] == {"severity": "info", "open": 0, "acknowledged": 0}
    # and the Operations block lists every dashboard, the ingest dashboard among them
    assert 'id="operations-pages"' in html
    assert reverse("admin:telemetry_analytics_dashboard") in html
    assert reverse("admin:archival_partitionhealth_changelist") in html
    # and the page is a fixed number of queries (session, user, panels, app list, recent actions)
    assert len(queries) <= 25, [query["sql"][:120] for query in queries.captured_queries]


def test_the_home_costs_the_same_queries_with_more_cameras_and_alerts(admin_client, pinned_home):
    # Given a small fleet, the page's query count
    make_camera(last_seen_at=timezone.now())
    with CaptureQueriesContext(connection) as small:
        admin_client.get(reverse("admin:index"))
    # When the fleet and the alerts grow tenfold
    for index in range(20):
        camera = make_camera(last_seen_at=timezone.now())
        alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message=f"c{index}")
    with CaptureQueriesContext(connection) as large:
        admin_client.get(reverse("admin:index"))
    # Then the page runs the same number of queries
    assert len(large) == len(small)


def test_a_broken_panel_shows_its_error_and_the_rest_of_the_home_still_renders(admin_client, pinned_home):
    # Given a panel whose query fails
    def broken(*, now):
        raise RuntimeError("catalog unavailable")

    admin_pages.register_panel(key="broken", title="Broken", template="missing.html", context=broken, order=1)
    try:
        # When the home is opened
        response = admin_client.get(reverse("admin:index"))
    finally:
        admin_pages._panels.pop("broken")

    # Then the broken panel says why, and the others are there
    html = response.content.decode()
    assert response.status_code == 200
    assert "This panel could not be built: RuntimeError: catalog unavailable" in html
    assert 'id="panel-fleet"' in html
    assert 'id="panel-storage"' in html


def test_the_jobs_panel_shows_each_jobs_last_success_from_the_job_runner(admin_client, pinned_home):
    # Given a job (every minute) that last succeeded at 00:02 and then failed at 00:03, and one that never ran
    from its_camera.models import JobRun

    JobRun.objects.create(
        job="telemetry.tasks.refresh_rollups", outcome="succeeded", started_at=NOW - timedelta(minutes=4),
        finished_at=NOW - timedelta(minutes=3, seconds=30),
    )  # fmt: skip
    JobRun.objects.create(
        job="telemetry.tasks.refresh_rollups", outcome="failed", started_at=NOW - timedelta(minutes=2),
        finished_at=NOW - timedelta(minutes=2), error="boom",
    )  # fmt: skip

    # When the home is opened
    response = admin_client.get(reverse("admin:index"))

    # Then the panel shows its last success and that its latest run failed; 3.5 min > 3 x 1 min: overdue
    jobs = {job["name"]: job for job in response.context["panels"][-1]["data"]["jobs"]}
    rollups = jobs["telemetry.tasks.refresh_rollups"]
    assert rollups["last_success_at"] == NOW - timedelta(minutes=3, seconds=30)
    assert rollups["latest"].outcome == "failed"
    assert rollups["overdue"]
    assert jobs["notifications.tasks.process_due"]["last_success_at"] is None
    html = response.content.decode()
    assert "12-01 00:02:00 (overdue)" in html
    assert '<span class="state-failed" title="boom">failed</span>' in html
