"""Admin: policies (form errors write nothing, dry-run preview), archive runs (read-only, restore action),
job runs, and the partition health page."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from archival.choices import ArchiveState
from archival.models import ArchiveRun, RetentionPolicy
from archival.services.retention import retention_apply
from config.celery import app as celery_app
from tests.archival.conftest import count_rows, insert_frames, only_policy, partition_names

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)


def policy_form(policy: RetentionPolicy, **changes: object) -> dict:
    data = {
        "name": policy.name,
        "table": policy.table,
        "keep_for": policy.keep_for,
        "keep_unit": policy.keep_unit,
        "method": policy.method,
        "enabled": "on" if policy.enabled else "",
        "size_cap_bytes": policy.size_cap_bytes or "",
        "description": policy.description,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


@pytest.fixture
def archived(policies, make_partitions):
    make_partitions(datetime(2026, 5, 25, tzinfo=UTC))
    insert_frames(datetime(2026, 5, 24, tzinfo=UTC), 200, step_seconds=60)
    only_policy("frame_metadata")
    return retention_apply(now=NOW).runs[0]


def test_policy_list_shows_size_against_cap_without_a_query_per_row(
    admin_client, policies, django_assert_max_num_queries
):
    RetentionPolicy.objects.filter(table="frame_metadata").update(size_cap_bytes=10 * 1024**3)

    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:archival_retentionpolicy_changelist"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "frame_metadata_retention" in page
    assert "of 10.0 GB (" in page
    assert "(no cap)" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"table": "django_session", "method": "export"}, "method", "Export is for partitioned tables"),
        ({"keep_for": "0"}, "keep_for", "greater than or equal to 1"),
        ({"size_cap_bytes": "-5"}, "size_cap_bytes", "greater than or equal to 1"),
        ({"table": "detections"}, "table", "already exists"),
        ({"name": "not a slug!"}, "name", "Enter a valid"),
    ],
)
def test_a_bad_policy_edit_is_a_form_error_and_changes_nothing(admin_client, policies, changes, field, message):
    policy = policies["frame_metadata"] if changes.get("table") != "django_session" else policies["django_session"]
    before = list(RetentionPolicy.objects.order_by("pk").values())
    url = reverse("admin:archival_retentionpolicy_change", args=[policy.pk])

    response = admin_client.post(url, policy_form(policy, **changes))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert list(RetentionPolicy.objects.order_by("pk").values()) == before


def test_a_valid_policy_edit_is_saved(admin_client, policies):
    policy = policies["system_metrics"]
    url = reverse("admin:archival_retentionpolicy_change", args=[policy.pk])

    response = admin_client.post(url, policy_form(policy, keep_for="18", size_cap_bytes="1000000"))

    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.keep_for, policy.size_cap_bytes) == (18, 1_000_000)


def test_the_preview_shows_what_the_next_run_would_do_and_does_nothing(admin_client, policies, make_partitions):
    make_partitions(datetime(2020, 1, 1, tzinfo=UTC))  # old partitions: all due for export
    policy = policies["frame_metadata"]

    page = admin_client.get(reverse("admin:archival_retentionpolicy_preview", args=[policy.pk]))
    action = admin_client.post(
        reverse("admin:archival_retentionpolicy_changelist"),
        {"action": "preview", "_selected_action": [policy.pk]},
    )

    assert page.status_code == 200
    assert "frame_metadata_p20191231" in page.content.decode()
    assert "next run" in page.content.decode()  # 16 due, 8 per run
    assert action.status_code == 200
    assert "frame_metadata_p20191231" in action.content.decode()
    assert ArchiveRun.objects.count() == 0
    assert "frame_metadata_p20191231" in page.context["plans"][0].actions[0].partition


def test_archive_runs_are_read_only_and_filterable(admin_client, archived):
    changelist = reverse("admin:archival_archiverun_changelist")

    listed = admin_client.get(changelist, {"state__exact": "dropped"})
    filtered_out = admin_client.get(changelist, {"state__exact": "failed"})
    change = admin_client.post(reverse("admin:archival_archiverun_change", args=[archived.pk]), {"rows": "1"})

    assert "frame_metadata_p20260524" in listed.content.decode()
    assert "frame_metadata_p20260524" not in filtered_out.content.decode()
    assert change.status_code == 403
    archived.refresh_from_db()
    assert archived.rows == 200


def test_restore_action_refuses_runs_without_an_archive_and_queues_nothing(admin_client, archived):
    failed = ArchiveRun.objects.create(
        action="export",
        table="frame_metadata",
        partition="frame_metadata_p20260101",
        state=ArchiveState.FAILED,
        started_at=NOW,
    )
    before = ArchiveRun.objects.count()

    response = admin_client.post(
        reverse("admin:archival_archiverun_changelist"),
        {"action": "restore", "_selected_action": [archived.pk, failed.pk]},
        follow=True,
    )

    assert f"#{failed.pk}" in response.content.decode()
    assert ArchiveRun.objects.count() == before
    assert not ArchiveRun.objects.filter(action="restore").exists()
    assert "frame_metadata_p20260524" not in partition_names("frame_metadata")
    assert count_rows("frame_metadata") == 0


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_restore_action_restores_the_partition(
    admin_client, archived, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:archival_archiverun_changelist"),
            {"action": "restore", "_selected_action": [archived.pk]},
            follow=True,
        )

    assert "Queued 1 restore(s)" in response.content.decode()
    restore = ArchiveRun.objects.get(action="restore")
    assert (restore.state, restore.rows, restore.restored_from_id) == (ArchiveState.RESTORED, 200, archived.pk)
    assert restore.requested_by == "admin"
    assert count_rows("frame_metadata_p20260524") == 200


def test_partition_health_page_lists_partitions_and_is_linked_from_the_index(admin_client, policies, make_partitions):
    make_partitions(datetime.now(UTC))
    insert_frames(datetime(2001, 1, 1, tzinfo=UTC), 3)  # lands in DEFAULT

    index = admin_client.get(reverse("admin:index"))
    page = admin_client.get(reverse("admin:archival_partitionhealth_changelist"))

    assert reverse("admin:archival_partitionhealth_changelist") in index.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert "frame_metadata_default" in html
    assert "has rows" in html
    frames = next(t for t in page.context["tables"] if t["health"].table == "frame_metadata")
    assert frames["health"].periods_ahead == 14
    assert frames["health"].default_has_rows is True


def test_job_runs_page_lists_runs(admin_client, policies):
    from archival import tasks

    tasks.ensure_partitions()

    response = admin_client.get(reverse("admin:its_camera_jobrun_changelist"))

    assert response.status_code == 200
    assert tasks.ENSURE_PARTITIONS in response.content.decode()


def test_the_restore_action_writes_through_the_archival_service_all_or_nothing(archived):
    from archival.services.restores import RestoreRefused, archive_restores_queue

    failed = ArchiveRun.objects.create(
        action="export",
        table="frame_metadata",
        partition="x",
        state=ArchiveState.FAILED,
        started_at=archived.started_at,
    )
    with pytest.raises(RestoreRefused, match=f"#{failed.pk}"):
        archive_restores_queue(runs=[archived, failed], requested_by="ops")
    assert not ArchiveRun.objects.filter(action="restore").exists()

    (queued,) = archive_restores_queue(runs=[archived], requested_by="ops")
    assert (queued.state, queued.restored_from_id, queued.requested_by) == (ArchiveState.QUEUED, archived.pk, "ops")
