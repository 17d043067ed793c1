"""Queue restores of archived partitions: the write behind the admin's restore action (the restore itself is
archives.archive_restore, run by the `restore_archive` task)."""

from collections.abc import Iterable
from functools import partial

from django.db import transaction
from django.utils import timezone

from archival.choices import ArchiveAction, ArchiveReason, ArchiveState
from archival.models import ArchiveRun

__all__ = ["RestoreRefused", "archive_restores_queue"]


class RestoreRefused(Exception):
    """Some of the runs asked for have no archive to restore; nothing was queued."""

    def __init__(self, runs: list[ArchiveRun]) -> None:
        self.runs = runs
        names = ", ".join(f"#{run.pk}" for run in runs[:10])
        verb = "is" if len(runs) == 1 else "are"
        super().__init__(
            f"Nothing queued: {names} {verb} not an export whose partition was dropped (only those have an "
            "archive to restore)."
        )


def archive_restores_queue(*, runs: Iterable[ArchiveRun], requested_by: str) -> list[ArchiveRun]:
    """One QUEUED restore ArchiveRun per export run, each sent to the worker once the transaction commits.
    All or nothing: if any run has no archive to restore, RestoreRefused and nothing is written."""
    from archival.tasks import restore_archive  # the task module imports the services

    selected = sorted(runs, key=lambda run: run.started_at)
    refused = [run for run in selected if not run.is_restorable]
    if refused:
        raise RestoreRefused(refused)
    with transaction.atomic():
        queued = [
            ArchiveRun.objects.create(
                action=ArchiveAction.RESTORE,
                reason=ArchiveReason.OPERATOR,
                table=run.table,
                partition=run.partition,
                range_start=run.range_start,
                range_end=run.range_end,
                policy=run.policy,
                policy_name=run.policy_name,
                restored_from=run,
                state=ArchiveState.QUEUED,
                requested_by=requested_by[:150],
                started_at=timezone.now(),
            )
            for run in selected
        ]
        for run in queued:
            transaction.on_commit(partial(restore_archive.delay, run.pk))
    return queued
