"""API: archive runs (cursor pagination, filters), partition health, retention policies and their plan."""

from datetime import UTC, datetime

import pytest

from archival.models import ArchiveRun
from archival.services.retention import retention_apply
from its_camera.choices import ApiScope
from tests.archival.conftest import insert_frames, only_policy
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)


@pytest.fixture
def reader(make_api_key):
    return ApiClient(make_api_key(ApiScope.TELEMETRY_READ).raw_key)


@pytest.fixture
def runs(policies, make_partitions):
    make_partitions(datetime(2026, 5, 25, tzinfo=UTC))
    insert_frames(datetime(2026, 5, 24, tzinfo=UTC), 50)
    only_policy("frame_metadata")
    return retention_apply(now=datetime(2026, 11, 29, 10, tzinfo=UTC)).runs  # 2026-05-24 .. 2026-05-28


def test_archive_runs_are_listed_newest_first_with_cursor_pages(reader, runs):
    first = reader.get("/api/v1/archive-runs", {"page_size": 3})
    second = reader.get(first.json()["next"])

    assert first.status_code == 200
    listed = [r["partition"] for r in first.json()["results"] + second.json()["results"]]
    assert listed == [run.partition for run in sorted(runs, key=lambda r: (r.started_at, r.pk), reverse=True)]
    oldest = first.json()["results"][0] if listed[0] == "frame_metadata_p20260524" else second.json()["results"][-1]
    assert (oldest["rows"], oldest["state"], oldest["policy"]) == (50, "dropped", "frame_metadata_retention")
    assert len(oldest["checksum"]) == 64


def test_archive_runs_filter_and_detail(reader, runs):
    by_partition = reader.get("/api/v1/archive-runs", {"partition": "frame_metadata_p20260524", "state": "dropped"})
    failed = reader.get("/api/v1/archive-runs", {"state": "failed"})
    detail = reader.get(f"/api/v1/archive-runs/{runs[0].pk}")

    assert [r["rows"] for r in by_partition.json()["results"]] == [50]
    assert failed.json()["results"] == []
    assert detail.json()["location"] == runs[0].location


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/archive-runs", {"state": "exploded"}, 422),
        ("/api/v1/archive-runs", {"table": "cameras"}, 422),
        ("/api/v1/archive-runs/999999", {}, 404),
        ("/api/v1/archive-runs/not-a-number", {}, 422),
        ("/api/v1/partitions", {"table": "nope"}, 422),
        ("/api/v1/retention-policies/no_such_policy/plan", {}, 404),
    ],
)
def test_bad_requests_get_a_json_detail(reader, policies, path, params, status):
    before = ArchiveRun.objects.count()

    response = reader.get(path, params)

    assert response.status_code == status
    assert "detail" in response.json()
    assert ArchiveRun.objects.count() == before


def test_archival_endpoints_need_a_key_with_telemetry_read(make_api_key, anonymous_api_client):
    writer = ApiClient(make_api_key(ApiScope.TELEMETRY_WRITE).raw_key)

    assert anonymous_api_client.get("/api/v1/archive-runs").status_code == 401
    assert writer.get("/api/v1/partitions").status_code == 403


def test_partition_health_summary(reader, policies, make_partitions):
    make_partitions(datetime.now(UTC))

    body = reader.get("/api/v1/partitions", {"table": "frame_metadata", "details": "true"}).json()

    (frames,) = body["tables"]
    assert body["ok"] is True
    assert (frames["partition_size"], frames["periods_ahead"], frames["wanted_ahead"]) == ("daily", 14, 14)
    assert frames["current_partition_missing"] is False
    assert frames["default_partition_has_rows"] is False
    assert len(frames["partitions"]) == 17  # yesterday, today, 14 ahead, DEFAULT
    assert frames["retention_cutoff"] is not None


def test_partition_health_is_not_ok_without_partitions(reader, policies):
    body = reader.get("/api/v1/partitions").json()

    assert body["ok"] is False
    assert {t["table"] for t in body["tables"] if t["current_partition_missing"]} == {
        "frame_metadata",
        "detections",
        "system_metrics",
    }


def test_retention_policies_and_their_plan(reader, policies, make_partitions):
    make_partitions(datetime(2020, 1, 1, tzinfo=UTC))

    listed = reader.get("/api/v1/retention-policies").json()["results"]
    plan = reader.get("/api/v1/retention-policies/frame_metadata_retention/plan").json()

    assert {p["name"] for p in listed} == {p.name for p in policies.values()}
    frames = next(p for p in listed if p["table"] == "frame_metadata")
    assert frames["table_bytes"] > 0
    assert plan["actions"][0]["partition"] == "frame_metadata_p20191231"
    assert plan["actions"][0]["action"] == "export"
    assert sum(a["beyond_this_run"] for a in plan["actions"]) == 8
    assert ArchiveRun.objects.count() == 0
