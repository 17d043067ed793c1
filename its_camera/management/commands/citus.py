"""`manage.py citus distribute [--dry-run]`: place the platform's tables on a Citus cluster (docs/scaling.md).

Reference tables first (in foreign-key order), then the distributed tables, co-located by camera; the
partitions of a partitioned table follow it, DEFAULT included. Steps already done are skipped, so running it
again is harmless; `--dry-run` prints the plan and changes nothing. Refuses, saying why, on a database that
is not a Citus coordinator.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from its_camera.db.citus import CitusNotAvailable, citus_distribute, citus_plan, distributed_tables, reference_tables


class Command(BaseCommand):
    help = "Citus: `distribute` the platform's tables (reference tables, then tables distributed by camera)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["distribute"])
        parser.add_argument("--dry-run", action="store_true", help="Print the plan; change nothing.")
        parser.add_argument(
            "--shard-count", type=int, default=None, help="Shards of the co-location group (Citus default: 32)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        shard_count = options["shard_count"]
        if shard_count is not None and not 1 <= shard_count <= 4096:
            raise CommandError("--shard-count must be between 1 and 4096.")
        try:
            plan = citus_plan(shard_count=shard_count)
        except CitusNotAvailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"workers: {', '.join(plan.workers) or 'none (single-node Citus: shards on the coordinator)'}"
        )
        self.stdout.write(f"reference tables: {', '.join(reference_tables())}")
        self.stdout.write(
            "distributed tables: "
            + ", ".join(f"{entry.table} by {entry.column}" for entry in distributed_tables())
            + " (co-located; partitions included)"
        )
        self.stdout.write("every other table stays on the coordinator")
        for line in plan.already:
            self.stdout.write(f"  done already: {line}")
        if not plan.steps:
            self.stdout.write("Nothing to do: every table is placed.")
            return
        for step in plan.steps:
            self.stdout.write(f"  {'would run' if options['dry_run'] else 'run'}: {step.describe()}")
        if options["dry_run"]:
            return
        citus_distribute(plan=plan)
        self.stdout.write(f"Done: {len(plan.steps)} step(s).")
