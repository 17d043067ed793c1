"""`manage.py rollups status|refresh|rebuild`: see and drive the rollups by hand (docs/analytics.md).

    manage.py rollups status
    manage.py rollups refresh                      # one run of the beat job, now
    manage.py rollups rebuild --since 2026-11-01T00:00:00Z --until 2026-11-02T00:00:00Z

`rebuild` recomputes a range from the raw rows (rows later than the grace window, status updates of old
frames, restored archives); it does not move the watermark. Both take the beat job's advisory lock, so they
never run beside it.
"""

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from its_camera.db.locks import advisory_lock
from its_camera.jobs import job_lock_name
from its_camera.progress import ProgressReporter
from telemetry.selectors.analytics import rollup_lag, rollup_watermark
from telemetry.services.rollups import rollups_rebuild
from telemetry.tasks import REFRESH_ROLLUPS, refresh_rollups


def _aware(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Not an ISO 8601 date-time: {value!r}") from exc
    if timezone.is_naive(moment):
        raise CommandError(f"Give a time zone (e.g. {value}Z): {value!r}")
    return moment


class Command(BaseCommand):
    help = "Show the rollup watermark and lag, run a refresh now, or rebuild a range from the raw rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "refresh", "rebuild"])
        parser.add_argument("--since", type=_aware, help="rebuild: start (ISO 8601 with a time zone)")
        parser.add_argument("--until", type=_aware, help="rebuild: end, exclusive")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "status":
            row = rollup_watermark()
            if row is None:
                self.stdout.write("Rollups have not run yet.")
                return
            lag = rollup_lag()
            self.stdout.write(
                f"watermark {row.watermark.isoformat()}  lag {int(lag.total_seconds()) if lag else 0} s  "
                f"last run {row.last_run_at.isoformat() if row.last_run_at else 'never'}: {row.last_run_rows} rows, "
                f"{row.last_run_raw_rows} raw frames, {row.last_run_ms:.0f} ms"
                + (f"  last error: {row.last_error}" if row.last_error else "")
            )
            return
        if action == "refresh":
            self.stdout.write(str(refresh_rollups()))
            return
        since, until = options["since"], options["until"]
        if since is None or until is None:
            raise CommandError("rebuild needs --since and --until.")
        if since >= until:
            raise CommandError("--since must be before --until.")
        with advisory_lock(job_lock_name(REFRESH_ROLLUPS)) as acquired:
            if not acquired:
                raise CommandError("The rollup job is running; try again in a minute.")
            reporter = ProgressReporter(self.stdout, unit=" window(s)")
            result = rollups_rebuild(since=since, until=until, progress=reporter)
            reporter.finish()
        self.stdout.write(
            f"Rebuilt {result.steps} hour(s): {result.rows} rollup rows from {result.raw_frames} raw frames "
            f"in {result.seconds:.1f} s."
        )
