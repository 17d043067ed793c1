"""Where each table lives on a Citus cluster, and the one command that puts it there (docs/scaling.md).

Apps declare their tables at start-up (`register_reference_table`, `register_distributed_table`), so the
kernel knows no app. Every table not declared stays a plain table on the coordinator, by design: auth,
sessions, admin log, beat schedules, job runs, API keys, idempotency keys, retention policies, archive
runs, rollups, alerts. `citus_plan` compares the declarations with the cluster's catalog and lists only the
steps still to do, so `citus_distribute` can be run again at any time (idempotent) and `--dry-run` prints
exactly what a run would do.
"""

from dataclasses import dataclass, field

from django.db import connection, transaction
from psycopg import sql

__all__ = [
    "CitusNotAvailable",
    "DistributedTable",
    "citus_distribute",
    "citus_plan",
    "distributed_tables",
    "reference_tables",
    "register_distributed_table",
    "register_reference_table",
]


@dataclass(frozen=True)
class DistributedTable:
    table: str
    column: str
    colocate_with: str | None = None  # None: the first table of its co-location group


_REFERENCE: list[str] = []
_DISTRIBUTED: list[DistributedTable] = []


def register_reference_table(table: str) -> None:
    """A small table every node joins with (copied to every node). Register in foreign-key order: a
    referenced table before the tables that reference it."""
    if table not in _REFERENCE:
        _REFERENCE.append(table)


def register_distributed_table(table: str, *, column: str, colocate_with: str | None = None) -> None:
    """A table sharded by `column`; every primary key and unique constraint on it must include `column`
    (tests/its_camera/test_citus_schema.py checks the catalog). Partitions follow their parent."""
    if all(entry.table != table for entry in _DISTRIBUTED):
        _DISTRIBUTED.append(DistributedTable(table, column, colocate_with))


def reference_tables() -> list[str]:
    return list(_REFERENCE)


def distributed_tables() -> list[DistributedTable]:
    return list(_DISTRIBUTED)


class CitusNotAvailable(Exception):
    """The database is not a Citus coordinator ready to take tables (the message says what is missing)."""


@dataclass
class CitusStep:
    table: str
    action: str  # "reference" or "distribute"
    statement: sql.Composed
    done: bool = False

    def describe(self) -> str:
        return self.statement.as_string(connection.connection) if connection.connection else repr(self.statement)


@dataclass
class CitusPlan:
    workers: list[str]
    steps: list[CitusStep] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


def _placements() -> dict[str, tuple[str, str | None]]:
    """table -> (citus_table_type, distribution column) for every table Citus already knows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name::text, citus_table_type, distribution_column FROM citus_tables"
            " WHERE table_name::text NOT LIKE '%%.%%'"
        )
        return {name: (kind, column) for name, kind, column in cursor.fetchall()}


def citus_plan(*, shard_count: int | None = None) -> CitusPlan:
    """What `citus_distribute` would do on this database. Raises CitusNotAvailable on a server without the
    citus extension, or a coordinator that is not in its own metadata (coordinator-local tables such as
    alerts keep a foreign key to the cameras reference table; Citus needs a copy on the coordinator)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'")
        if cursor.fetchone() is None:
            raise CitusNotAvailable(
                "This database has no citus extension: it is not a Citus coordinator. Install Citus, set"
                " shared_preload_libraries = 'citus', run CREATE EXTENSION citus in this database and register"
                " the workers (docs/scaling.md)."
            )
        cursor.execute("SELECT 1 FROM pg_dist_node WHERE groupid = 0")
        if cursor.fetchone() is None:
            raise CitusNotAvailable(
                "The coordinator is not in Citus's metadata: run SELECT citus_set_coordinator_host('<host>', <port>)"
                " first (docs/scaling.md)."
            )
        cursor.execute(
            "SELECT nodename || ':' || nodeport FROM pg_dist_node"
            " WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodename, nodeport"
        )
        workers = [name for (name,) in cursor.fetchall()]
    placements = _placements()
    plan = CitusPlan(workers=workers)
    for table in _REFERENCE:
        if placements.get(table, ("",))[0] == "reference":
            plan.already.append(f"{table}: reference table")
            continue
        statement = sql.SQL("SELECT create_reference_table({})").format(sql.Literal(table))
        plan.steps.append(CitusStep(table, "reference", statement))
    for entry in _DISTRIBUTED:
        kind, column = placements.get(entry.table, ("", None))
        if kind == "distributed":
            if column != entry.column:
                raise CitusNotAvailable(
                    f"{entry.table} is already distributed by {column}, not {entry.column}: undistribute it first."
                )
            plan.already.append(f"{entry.table}: distributed by {column}")
            continue
        arguments = [sql.Literal(entry.table), sql.Literal(entry.column)]
        if entry.colocate_with:
            arguments.append(sql.SQL("colocate_with => {}").format(sql.Literal(entry.colocate_with)))
        elif shard_count:
            arguments.append(sql.SQL("shard_count => {}").format(sql.Literal(shard_count)))
        statement = sql.SQL("SELECT create_distributed_table({})").format(sql.SQL(", ").join(arguments))
        plan.steps.append(CitusStep(entry.table, "distribute", statement))
    return plan


def citus_distribute(*, plan: CitusPlan) -> list[CitusStep]:
    """Run the plan's steps, each in a transaction of its own (a run that fails half-way leaves the steps
    done so far done; the next run plans the rest). Returns the steps run."""
    for step in plan.steps:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(step.statement.as_string(cursor.cursor))
        step.done = True
    return plan.steps
