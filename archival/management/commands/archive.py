"""`manage.py archive run [--dry-run] [--policy NAME]`, `archive restore <run id | manifest>`,
`archive verify <run id>` (see docs/archival.md); cold tier: `archive tier`, `archive restore --cold <partition>`,
`archive verify --cold [--partition NAME]`, `archive late-duplicates <partition> [--delete]` (see docs/storage.md)."""

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from archival.choices import ArchiveState
from archival.conf import archival_setting
from archival.models import ArchiveRun, RetentionPolicy
from archival.selectors.retention import retention_plan
from archival.services.archives import ArchiveError, archive_restore, archive_verify, manifest_load
from archival.services.retention import retention_apply
from archival.services.tiering import cold_files_verify, cold_restore, partitions_tier
from its_camera.progress import ProgressReporter
from telemetry.selectors.cold import REPEAT_KEYS, ColdDataUnavailable, NotLateRowsOfAColdRange, late_rows_repeating_cold
from telemetry.services.tiering import late_rows_repeating_cold_delete


def _moment(value: str | None) -> datetime:
    if not value:
        return timezone.now()
    moment = datetime.fromisoformat(value)
    if timezone.is_naive(moment):
        raise CommandError("--now must carry a time zone, e.g. 2026-11-25T00:00:00+00:00")
    return moment


def _size(value: int | None) -> str:
    if value is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


class Command(BaseCommand):
    help = "Apply retention policies (export, verify, drop), or restore / verify an archive."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{run,tier,restore,verify,late-duplicates}"
        )
        run = actions.add_parser("run", help="apply the enabled retention policies once")
        run.add_argument("--dry-run", action="store_true", help="show what would be exported, dropped or deleted")
        run.add_argument("--policy", help="only this policy (by name)")
        run.add_argument("--now", help="pretend it is this moment (ISO 8601 with offset)")
        tier = actions.add_parser("tier", help="write sealed partitions past their cold age as Parquet, then drop them")
        tier.add_argument("--now", help="pretend it is this moment (ISO 8601 with offset)")
        restore = actions.add_parser("restore", help="re-create an archived partition and load its rows back")
        restore.add_argument(
            "source", help="an ArchiveRun id, or a manifest (storage name or absolute path); with --cold a partition"
        )
        restore.add_argument("--cold", action="store_true", help="bring a cold partition (by name) back to hot")
        restore.add_argument("--hold-days", type=int, help="days retention leaves the restored partition alone")
        verify = actions.add_parser("verify", help="re-read an archive from storage and check it against its manifest")
        verify.add_argument("run_id", type=int, nargs="?")
        verify.add_argument("--cold", action="store_true", help="re-verify every cold file (or --partition's)")
        verify.add_argument("--partition", help="with --cold: only this partition")
        late = actions.add_parser(
            "late-duplicates", help="list (or --delete) late rows of a cold range that repeat rows of its cold file"
        )
        late.add_argument("partition", help="the attached partition of a cold range the tiering refused to merge")
        late.add_argument("--delete", action="store_true", help="delete them (the rows stored first are kept)")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action.replace('-', '_')}")(**options)

    def _run(self, *, dry_run: bool, policy: str | None, now: str | None, **options: Any) -> None:
        moment = _moment(now)
        if policy is not None:
            found = RetentionPolicy.objects.filter(name=policy).first()
            if found is None:
                raise CommandError(f"No retention policy named {policy!r}")
            if not found.enabled:
                raise CommandError(f"Retention policy {policy!r} is disabled; enable it in the admin first")
        if dry_run:
            policies = list(RetentionPolicy.objects.filter(enabled=True, **({"name": policy} if policy else {})))
            plans = retention_plan(
                now=moment, policies=policies, limit=archival_setting("ARCHIVE_MAX_PARTITIONS_PER_RUN")
            )
            for plan in plans:
                cap = (
                    f", {_size(plan.table_bytes)} of {_size(plan.policy.size_cap_bytes)} cap" if plan.cap_ratio else ""
                )
                self.stdout.write(
                    f"{plan.policy.name}: {plan.policy.table}, keep {plan.policy.keep_for_display}, "
                    f"cut-off {plan.cutoff:%Y-%m-%d %H:%M} UTC{cap}"
                )
                for item in plan.actions:
                    what = item.partition or f"~{item.estimated_rows} row(s)"
                    later = "  (next run)" if item.beyond_this_run else ""
                    self.stdout.write(
                        f"  would {item.action:<7} {what}  [{item.reason}, {_size(item.total_bytes)}]{later}"
                    )
                if not plan.actions:
                    self.stdout.write("  nothing to do")
            self.stdout.write("Dry run: nothing changed.")
            return
        reporter = ProgressReporter(self.stdout, unit=" partition(s)")
        result = retention_apply(now=moment, policy_name=policy, progress=reporter)
        reporter.finish()
        if result is None:
            raise CommandError("Another retention run holds the lock; nothing done.")
        for run in result.runs:
            line = f"{run.state:<8} {run.action:<7} {run.partition or run.table}  rows={run.rows} bytes={run.bytes}"
            self.stdout.write(
                line + (f"  {run.location}" if run.location else "") + (f"  ERROR {run.error}" if run.error else "")
            )
        summary = result.summary()
        self.stdout.write(self.style.SUCCESS(f"Retention run: {summary}"))
        if result.failed:
            raise CommandError(f"{len(result.failed)} archive run(s) failed; the partitions were left in place.")

    def _tier(self, *, now: str | None, **options: Any) -> None:
        result = partitions_tier(now=_moment(now))
        if result is None:
            raise CommandError("Another tiering or retention run holds the lock; nothing done.")
        for run in result.runs:
            line = f"{run.state:<8} {run.action:<7} {run.partition}  rows={run.rows} bytes={run.bytes}"
            self.stdout.write(
                line + (f"  {run.location}" if run.location else "") + (f"  ERROR {run.error}" if run.error else "")
            )
        self.stdout.write(self.style.SUCCESS(f"Tiering run: {result.summary()}"))
        if result.failed:
            raise CommandError(f"{len(result.failed)} partition(s) failed; they were left in PostgreSQL.")

    def _restore(self, *, source: str, hold_days: int | None, cold: bool, **options: Any) -> None:
        if cold:
            if len(source) > 128:
                raise CommandError("A partition name is at most 128 characters")
            done = cold_restore(partition=source, requested_by="manage.py archive restore --cold")
            if done.state != ArchiveState.RESTORED:
                raise CommandError(f"Restore failed (archive run {done.pk}): {done.error}")
            self.stdout.write(
                self.style.SUCCESS(f"Restored {done.rows} row(s) into {done.partition} (archive run {done.pk}).")
            )
            return
        if hold_days is not None and hold_days < 0:
            raise CommandError("--hold-days cannot be negative")
        if source.isdigit():
            export = ArchiveRun.objects.filter(pk=int(source)).first()
            if export is None:
                raise CommandError(f"No archive run {source}")
            reporter = ProgressReporter(self.stdout, unit=" B")
            run = archive_restore(
                source=export, requested_by="manage.py archive restore", hold_days=hold_days, progress=reporter
            )
        else:
            reporter = ProgressReporter(self.stdout, unit=" B")
            run = archive_restore(
                manifest_location=source,
                requested_by="manage.py archive restore",
                hold_days=hold_days,
                progress=reporter,
            )
        reporter.finish()
        if run.state != ArchiveState.RESTORED:
            raise CommandError(f"Restore failed (archive run {run.pk}): {run.error}")
        self.stdout.write(
            self.style.SUCCESS(f"Restored {run.rows} row(s) into {run.partition} (archive run {run.pk}).")
        )

    def _verify(self, *, run_id: int | None, cold: bool, partition: str | None, **options: Any) -> None:
        if cold:
            failed = cold_files_verify(partition=partition)
            for tier in failed:
                self.stderr.write(f"{tier.partition}: {tier.rows} row(s) unreadable: {tier.verify_error}")
            if failed:
                raise CommandError(f"{len(failed)} cold file(s) failed: {', '.join(t.partition for t in failed)}")
            self.stdout.write(self.style.SUCCESS("Every cold file matches what was written."))
            return
        if run_id is None:
            raise CommandError("Give an archive run id, or --cold")
        run = ArchiveRun.objects.filter(pk=run_id).first()
        if run is None or not run.manifest_location:
            raise CommandError(f"Archive run {run_id} has no archive")
        try:
            manifest = manifest_load(run.manifest_location)
            archive_verify(manifest=manifest)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"{manifest.data_file}: {manifest.rows} rows, SHA-256 {manifest.sha256}: OK")
        )

    def _late_duplicates(self, *, partition: str, delete: bool, **options: Any) -> None:
        if len(partition) > 128:
            raise CommandError("A partition name is at most 128 characters")
        try:
            if delete:
                table, keys = late_rows_repeating_cold_delete(partition=partition)
            else:
                table, keys = late_rows_repeating_cold(partition=partition)
        except (NotLateRowsOfAColdRange, ColdDataUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        for key in keys:
            self.stdout.write("  " + ", ".join(str(value) for value in key))
        named = f"({', '.join(REPEAT_KEYS.get(table, ()))})"
        if not keys:
            self.stdout.write(self.style.SUCCESS(f"No late row of {partition} repeats a cold row."))
        elif delete:
            self.stdout.write(self.style.SUCCESS(f"Deleted the late rows of {len(keys)} repeated {named} key(s)."))
        else:
            self.stdout.write(
                f"{len(keys)} {named} key(s) of {partition} repeat cold rows; --delete deletes the late ones."
            )
