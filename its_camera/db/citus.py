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
    "citus_installed",
    "citus_plan",
    "citus_schema_problems",
    "declared_placement",
    "distributed_tables",
    "reference_tables",
    "register_citus_view",
    "register_distributed_table",
    "register_reference_table",
    "total_relation_size_sql",
]


@dataclass(frozen=True)
class DistributedTable:
    table: str
    column: str
    colocate_with: str | None = None  # None: the first table of its co-location group


_REFERENCE: list[str] = []
_DISTRIBUTED: list[DistributedTable] = []
_VIEWS: dict[str, str] = {}


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


def register_citus_view(view: str, *, definition: str) -> None:
    """A view whose single-node form joins LATERAL into a distributed table (which Citus refuses as an outer
    join): `citus distribute` replaces it with `definition` (same columns, a form Citus plans) while the view
    still has a LATERAL join, e.g. after a migration redefined it."""
    _VIEWS[view] = definition


def reference_tables() -> list[str]:
    return list(_REFERENCE)


def distributed_tables() -> list[DistributedTable]:
    return list(_DISTRIBUTED)


def citus_installed() -> bool:
    """True when this database has the citus extension (a coordinator, distributed or not yet)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
        return cursor.fetchone() is not None


def total_relation_size_sql(relation: str) -> str:
    """SQL for the total size (indexes and TOAST included) of `relation` (a fixed SQL expression of ours giving its
    oid), wherever its rows live. On a Citus coordinator a distributed table's rows, and each of its partitions',
    live in shards on the workers: pg_total_relation_size measures the coordinator's empty shell there, so the
    size is citus_total_relation_size's sum over the shards (one query per worker)."""
    if not citus_installed():
        return f"pg_total_relation_size({relation})"
    distributed = f"SELECT 1 FROM pg_dist_partition WHERE logicalrelid = {relation} AND partmethod = 'h'"  # noqa: S608
    # Citus refuses its size functions in a transaction that already wrote distributed rows (it logs a warning
    # with fail_on_error off): such a transaction gets the coordinator's measure, as before. The platform's own
    # readers (health pages, the API, retention's plan, the seal) each run before any write of their own.
    shards = (
        f"coalesce(citus_total_relation_size({relation}, fail_on_error => false), pg_total_relation_size({relation}))"
    )
    return f"CASE WHEN EXISTS ({distributed}) THEN {shards} ELSE pg_total_relation_size({relation}) END"


class CitusNotAvailable(Exception):
    """The database is not a Citus coordinator ready to take tables (the message says what is missing)."""


@dataclass
class CitusStep:
    table: str
    action: str  # "settings", "reference", "view" or "distribute"
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


def _sequential_modify_mode_set() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = current_database() AND s.setrole = 0"
            " AND 'citus.multi_shard_modify_mode=sequential' = ANY(s.setconfig)"
        )
        return cursor.fetchone() is not None


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
    if not _sequential_modify_mode_set():
        # A transaction that writes shards in parallel (a COPY spanning shards, a DDL on a distributed table)
        # and then writes cameras, zones or alerts (tables tied by foreign keys) is refused by Citus unless it
        # writes over one connection per node: ingest does exactly that (COPY, then cameras.last_seen_at).
        # Set for every new session of this database on the coordinator, so it holds behind PgBouncer too.
        statement = sql.SQL("ALTER DATABASE {} SET citus.multi_shard_modify_mode = 'sequential'").format(
            sql.Identifier(connection.settings_dict["NAME"])
        )
        plan.steps.append(CitusStep("(sessions)", "settings", statement))
    else:
        plan.already.append("sessions: citus.multi_shard_modify_mode = sequential")
    for table in _REFERENCE:
        if placements.get(table, ("",))[0] == "reference":
            plan.already.append(f"{table}: reference table")
            continue
        statement = sql.SQL("SELECT create_reference_table({})").format(sql.Literal(table))
        plan.steps.append(CitusStep(table, "reference", statement))
    for view, definition in _VIEWS.items():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_viewdef(to_regclass(%s))", [view])
            current = (cursor.fetchone() or [None])[0]
        if current is None:
            continue
        if "LATERAL" not in current.upper():
            plan.already.append(f"{view}: Citus form")
            continue
        statement = sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(sql.Identifier(view), sql.SQL(definition))
        plan.steps.append(CitusStep(view, "view", statement))
    for entry in _DISTRIBUTED:
        kind, column = placements.get(entry.table, ("", None))
        if kind == "distributed":
            if column != entry.column:
                raise CitusNotAvailable(
                    f"{entry.table} is already distributed by {column}, not {entry.column}: undistribute it first."
                )
            plan.already.append(f"{entry.table}: distributed by {column}")
            continue
        arguments: list[sql.Composable] = [sql.Literal(entry.table), sql.Literal(entry.column)]
        if entry.colocate_with:
            arguments.append(sql.SQL("colocate_with => {}").format(sql.Literal(entry.colocate_with)))
        elif shard_count:
            arguments.append(sql.SQL("shard_count => {}").format(sql.Literal(shard_count)))
        statement = sql.SQL("SELECT create_distributed_table({})").format(sql.SQL(", ").join(arguments))
        plan.steps.append(CitusStep(entry.table, "distribute", statement))
    return plan


def citus_distribute(*, plan: CitusPlan) -> list[CitusStep]:
    """Run the plan's steps, each in a transaction of its own (a run that fails half-way leaves the steps
    done so far done; the next run plans the rest). Returns the steps run. The session setting applies to
    connections opened afterwards: this one is given it too, for the steps after it."""
    for step in plan.steps:
        if step.action == "settings":
            with connection.cursor() as cursor:
                cursor.execute(step.statement.as_string(cursor.cursor))
                cursor.execute("SET citus.multi_shard_modify_mode = 'sequential'")
            step.done = True
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(step.statement.as_string(cursor.cursor))
        step.done = True
    return plan.steps


def _tables_and_partitions(cursor: object, table: str) -> list[str]:
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT %s UNION ALL SELECT child.relname::text FROM pg_inherits"
        " JOIN pg_class child ON child.oid = pg_inherits.inhrelid WHERE pg_inherits.inhparent = %s::regclass",
        [table, table],
    )
    return [name for (name,) in cursor.fetchall()]  # type: ignore[attr-defined]


def citus_schema_problems() -> list[str]:
    """What would stop `citus_distribute` on this database's schema, read from the catalog (no Citus needed):
    a primary key, unique constraint or unique index of a distributed table (or of one of its partitions)
    without the distribution column; a distribution column that may be NULL; a co-location partner that is
    not distributed by a column of the same type; a foreign key Citus refuses (reference or coordinator-local
    table to a distributed one, distributed to coordinator-local, reference to a non-reference table)."""
    problems: list[str] = []
    distributed = {entry.table: entry for entry in _DISTRIBUTED}
    reference = set(_REFERENCE)
    with connection.cursor() as cursor:
        for entry in _DISTRIBUTED:
            cursor.execute("SELECT to_regclass(%s)", [entry.table])
            if cursor.fetchone()[0] is None:
                problems.append(f"{entry.table}: declared distributed but does not exist")
                continue
            cursor.execute(
                "SELECT attnotnull, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attname = %s AND NOT attisdropped",
                [entry.table, entry.column],
            )
            column = cursor.fetchone()
            if column is None:
                problems.append(f"{entry.table}: no column {entry.column}")
                continue
            if not column[0]:
                problems.append(f"{entry.table}.{entry.column}: may be NULL (a distribution column cannot)")
            if entry.colocate_with:
                partner = distributed.get(entry.colocate_with)
                if partner is None:
                    problems.append(f"{entry.table}: co-located with {entry.colocate_with}, not a distributed table")
                else:
                    cursor.execute(
                        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                        " WHERE attrelid = %s::regclass AND attname = %s",
                        [partner.table, partner.column],
                    )
                    partner_type = cursor.fetchone()
                    if partner_type is None or partner_type[0] != column[1]:
                        problems.append(f"{entry.table}: {entry.column} {column[1]} cannot co-locate with {partner}")
            for relation in _tables_and_partitions(cursor, entry.table):
                cursor.execute(
                    "SELECT index.relname, pg_get_indexdef(pg_index.indexrelid),"
                    " bool_or(attribute.attname = %s) FROM pg_index"
                    " JOIN pg_class index ON index.oid = pg_index.indexrelid"
                    " LEFT JOIN pg_attribute attribute ON attribute.attrelid = pg_index.indrelid"
                    "  AND attribute.attnum = ANY(pg_index.indkey)"
                    " WHERE pg_index.indrelid = %s::regclass AND pg_index.indisunique GROUP BY 1, 2",
                    [entry.column, relation],
                )
                for index, definition, has_column in cursor.fetchall():
                    if not has_column:
                        problems.append(f"{relation}: unique index {index} lacks {entry.column}: {definition}")
        cursor.execute(
            "SELECT source.relname::text, target.relname::text, con.conname FROM pg_constraint con"
            " JOIN pg_class source ON source.oid = con.conrelid JOIN pg_class target ON target.oid = con.confrelid"
            " JOIN pg_namespace ns ON ns.oid = source.relnamespace"
            " WHERE con.contype = 'f' AND ns.nspname = current_schema() AND con.conparentid = 0"
        )
        for source, target, name in cursor.fetchall():
            source_kind = "distributed" if source in distributed else "reference" if source in reference else "local"
            target_kind = "distributed" if target in distributed else "reference" if target in reference else "local"
            refused = (
                (target_kind == "distributed" and source_kind != "distributed")
                or (source_kind == "distributed" and target_kind == "local")
                or (source_kind == "reference" and target_kind != "reference")
            )
            if refused:
                problems.append(f"foreign key {name}: {source_kind} {source} -> {target_kind} {target}")
    return problems


def declared_placement(table: str) -> str:
    """ "distributed", "reference" or "local" (every table not declared stays on the coordinator)."""
    if any(entry.table == table for entry in _DISTRIBUTED):
        return "distributed"
    return "reference" if table in _REFERENCE else "local"
