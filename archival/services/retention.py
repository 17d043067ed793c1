"""Apply the retention policies: partitions via export-verify-drop (or drop), plain tables in batches."""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from archival.choices import ArchiveAction, ArchiveState
from archival.conf import archival_setting
from archival.models import ArchiveRun, RetentionPolicy
from archival.selectors.retention import PolicyPlan, retention_plan
from archival.services.archives import partition_retire
from archival.services.tiering import cold_file_delete
from archival.targets import PLAIN_TABLES, PlainTable, is_partitioned
from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera.db.locks import advisory_lock
from its_camera.progress import ProgressCallback, progress_noop

__all__ = ["RETENTION_LOCK", "RetentionResult", "plain_rows_delete", "retention_apply"]

logger = logging.getLogger(__name__)

RETENTION_LOCK = "archival.apply_retention"


@dataclass
class RetentionResult:
    runs: list[ArchiveRun] = field(default_factory=list)
    deferred: int = 0  # due, but past this run's bound: the next run does them
    interrupted: int = 0  # runs left RUNNING by a worker that died, marked failed

    @property
    def failed(self) -> list[ArchiveRun]:
        return [run for run in self.runs if run.state == ArchiveState.FAILED]

    def summary(self) -> dict[str, int]:
        return {
            "runs": len(self.runs),
            "dropped": sum(run.state == ArchiveState.DROPPED for run in self.runs),
            "deleted_rows": sum(run.rows or 0 for run in self.runs if run.state == ArchiveState.DELETED),
            "failed": len(self.failed),
            "deferred": self.deferred,
            "interrupted": self.interrupted,
        }


def plain_rows_delete(*, policy: RetentionPolicy, target: PlainTable, cutoff: datetime) -> ArchiveRun:
    """Delete a plain table's rows older than `cutoff` in batches of ARCHIVE_DELETE_BATCH_SIZE, one short
    transaction each, at most ARCHIVE_DELETE_MAX_BATCHES per run (the rest waits for the next run)."""
    batch_size = archival_setting("ARCHIVE_DELETE_BATCH_SIZE")
    run = ArchiveRun.objects.create(
        policy=policy,
        policy_name=policy.name,
        action=ArchiveAction.DELETE,
        table=target.table,
        range_end=cutoff,
        state=ArchiveState.RUNNING,
        started_at=timezone.now(),
    )
    started = time.perf_counter()
    condition = sql.SQL(target.condition) if target.condition else sql.SQL("TRUE")  # fixed text from targets.py
    # SKIP LOCKED: a row someone is updating right now is left for the next batch rather than waited on.
    statement = sql.SQL(
        "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {time} < {cutoff} AND {condition}"
        " LIMIT {limit} FOR UPDATE SKIP LOCKED)"
    ).format(
        table=sql.Identifier(target.table),
        key=sql.Identifier(target.key_column),
        time=sql.Identifier(target.time_column),
        cutoff=sql.Literal(cutoff),
        condition=condition,
        limit=sql.Literal(batch_size),
    )
    deleted = 0
    try:
        for _ in range(archival_setting("ARCHIVE_DELETE_MAX_BATCHES")):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.cursor.execute(statement)
                batch = cursor.cursor.rowcount
            deleted += batch
            if batch < batch_size:
                break
    except Exception as exc:
        logger.exception("Deleting old rows of %s failed", target.table)
        run.state, run.error = ArchiveState.FAILED, f"{type(exc).__name__}: {exc}"[:5000]
    else:
        run.state = ArchiveState.DELETED
    run.rows = deleted
    run.finished_at = timezone.now()
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    run.save()
    return run


def _mark_interrupted_runs() -> int:
    """Runs still RUNNING while we hold the retention lock were left by a worker that died mid-run. Their
    transaction was rolled back by PostgreSQL, so their partition is intact; say so."""
    return ArchiveRun.objects.filter(
        state=ArchiveState.RUNNING,
        action__in=[ArchiveAction.EXPORT, ArchiveAction.DROP, ArchiveAction.DELETE, ArchiveAction.TIER],
    ).update(
        state=ArchiveState.FAILED,
        finished_at=timezone.now(),
        error="Interrupted: the worker stopped before this run finished; the partition was left in place.",
    )


def _apply_policy(
    plan: PolicyPlan, result: RetentionResult, *, progress: ProgressCallback = progress_noop
) -> list[ArchiveRun]:
    policy = plan.policy
    runs: list[ArchiveRun] = []
    stage = f"retention {policy.name}"
    if not is_partitioned(policy.table):
        if plan.actions:
            progress(f"{stage} (deleting rows of {policy.table})", 0, 1)
            runs.append(plain_rows_delete(policy=policy, target=PLAIN_TABLES[policy.table], cutoff=plan.cutoff))  # type: ignore[index]
            progress(stage, 1, 1)
        return runs
    this_run = [action for action in plan.actions if not action.beyond_this_run]
    for action in plan.actions:
        if action.beyond_this_run:
            result.deferred += 1
            continue
        assert action.start is not None
        assert action.end is not None
        progress(f"{stage} ({action.action} {action.partition})", len(runs), len(this_run))
        if action.action == ArchiveAction.DELETE_COLD:
            runs.append(cold_file_delete(policy=policy, partition=action.partition, reason=action.reason))
            progress(f"{stage} ({runs[-1].state} {action.partition})", len(runs), len(this_run))
            continue
        run = partition_retire(
            policy=policy,
            partition=action.partition,
            start=action.start,
            end=action.end,
            reason=action.reason,
            estimated_rows=action.estimated_rows,
        )
        runs.append(run)
        progress(f"{stage} ({run.state} {action.partition})", len(runs), len(this_run))
        if run.state == ArchiveState.FAILED:
            # Storage or lock trouble usually hits every partition alike: stop here, the next run retries.
            result.deferred += sum(1 for a in plan.actions if not a.beyond_this_run) - len(runs)
            break
    return runs


def retention_apply(
    *, now: datetime | None = None, policy_name: str | None = None, progress: ProgressCallback = progress_noop
) -> RetentionResult | None:
    """Run every enabled policy (or the one named) once, bounded by ARCHIVE_MAX_PARTITIONS_PER_RUN partitions
    per policy. Returns None when another retention run holds the lock (nothing done). A policy with a failed
    run raises an `archival_failed` alert; a clean run resolves it."""
    now = now or timezone.now()
    with advisory_lock(RETENTION_LOCK) as acquired:
        if not acquired:
            logger.info("Retention already running elsewhere; skipped")
            return None
        result = RetentionResult(interrupted=_mark_interrupted_runs())
        policies = RetentionPolicy.objects.filter(enabled=True)
        if policy_name is not None:
            policies = policies.filter(name=policy_name)
        limit = archival_setting("ARCHIVE_MAX_PARTITIONS_PER_RUN")
        for plan in retention_plan(now=now, policies=list(policies), limit=limit):
            runs = _apply_policy(plan, result, progress=progress)
            result.runs.extend(runs)
            failed = [run for run in runs if run.state == ArchiveState.FAILED]
            if failed:
                first = failed[0]
                alert_raise(
                    kind=AlertKind.ARCHIVAL_FAILED,
                    subject=plan.policy.name,
                    severity=AlertSeverity.CRITICAL,
                    message=f"Retention {plan.policy.name}: {first.partition or first.table} failed: {first.error}"[
                        :2000
                    ],
                    details={"archive_runs": [run.pk for run in failed], "table": plan.policy.table},
                )
            else:
                alert_resolve(kind=AlertKind.ARCHIVAL_FAILED, subject=plan.policy.name)
        logger.info("Retention run: %s", result.summary())
        return result
