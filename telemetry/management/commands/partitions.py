"""`manage.py partitions plan|apply`: the telemetry tables' partitions (see telemetry/partitioning.py)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from its_camera.progress import ProgressReporter
from telemetry.services.partitions import PartitionAction, PartitionPlanItem, partitions_apply, partitions_plan


class Command(BaseCommand):
    help = "Plan or create the partitions of the telemetry tables (boundaries at 00:00 UTC)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{plan,apply}")
        actions.add_parser("plan", help="show the partitions that exist and those that would be created")
        actions.add_parser("apply", help="create the missing partitions (idempotent)")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "plan":
            self._print(partitions_plan())
            return
        reporter = ProgressReporter(self.stdout, unit=" partition(s)")
        items = partitions_apply(progress=reporter)
        reporter.finish()
        if items is None:
            raise CommandError("Another partition run holds the lock; nothing done.")
        self._print([item for item in items if item.action != PartitionAction.EXISTS])
        created = sum(item.action == PartitionAction.CREATE for item in items)
        moved = sum(item.moved_rows for item in items)
        self.stdout.write(self.style.SUCCESS(f"Created {created} partition(s); moved {moved} row(s) out of DEFAULT."))

    def _print(self, items: list[PartitionPlanItem]) -> None:
        for item in items:
            line = f"{item.action:<8} {item.partition:<36} [{item.start:%Y-%m-%d %H:%M}, {item.end:%Y-%m-%d %H:%M}) UTC"
            if item.detail:
                line += f"  ({item.detail})"
            if item.moved_rows:
                line += f"  moved {item.moved_rows} row(s) from DEFAULT"
            self.stdout.write(line)
        for item in items:
            if item.action == PartitionAction.OVERLAPS:
                self.stderr.write(
                    f"warning: {item.partition} not created: overlaps {item.detail} (partition size changed?)"
                )
