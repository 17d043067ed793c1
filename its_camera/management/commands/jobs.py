"""`manage.py jobs status` lists every beat job with its last success; `manage.py jobs watchdog` raises
`job_overdue` for jobs that stopped succeeding (its_camera.jobs.jobs_watchdog).

The watchdog must not run inside beat or the worker it watches: run it as a process of its own
(`make run` does; in production a systemd service or a container beside the web processes):

    python manage.py jobs watchdog --every 60
"""

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils import timezone

from its_camera.jobs import job_statuses, jobs_watchdog


class Command(BaseCommand):
    help = "Beat jobs: `status` (last success of each) or `watchdog` (raise job_overdue for late ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "watchdog"])
        parser.add_argument(
            "--every", type=int, default=0, help="watchdog: check every N seconds until stopped (0: once)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "status":
            now = timezone.now()
            for status in job_statuses(now=now):
                seconds = status.seconds_since_success(now)
                since = "never succeeded" if seconds is None else f"succeeded {seconds:.0f} s ago"
                schedule = f"every {status.schedule}" if status.schedule else "disabled in beat"
                self.stdout.write(f"{status.job:<45} {schedule:<25} {since:<28} {'OVERDUE' if status.overdue else ''}")
            return
        every = options["every"]
        if every < 0 or every > 86_400:
            self.stderr.write("--every must be between 0 and 86400 seconds.")
            raise SystemExit(2)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while True:
            result = jobs_watchdog()
            if result.overdue:
                self.stdout.write(f"overdue: {', '.join(result.overdue)}")
            if not every or stop.wait(every):
                return
            close_old_connections()
