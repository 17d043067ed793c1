"""Read-replica routing against a real streaming replica: a primary made with initdb, a replica made
with pg_basebackup, both on this machine. Writes land on the primary; reads inside replica_reads()
are served by the replica; reads outside it stay on the primary (read-your-writes)."""

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from its_camera.db.routers import ReadReplicaRouter, replica_reads
from tests.commands import manage
from tests.deploy.postgres_tools import free_port, run_postgres_tool


@pytest.fixture(scope="module")
def primary_and_replica() -> Iterator[tuple[str, str]]:
    workdir = Path(tempfile.mkdtemp(prefix="its-replica-"))
    workdir.chmod(0o777)
    primary, replica = workdir / "primary", workdir / "replica"
    primary_port, replica_port = free_port(), free_port()
    run_postgres_tool("initdb", "-D", str(primary), "-A", "trust", "-U", "postgres")
    with (primary / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nport = {primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{workdir}'\n"
            "wal_level = replica\nmax_wal_senders = 4\nshared_buffers = 32MB\nfsync = off\n"
        )
    run_postgres_tool("pg_ctl", "-D", str(primary), "-l", str(workdir / "primary.log"), "-w", "start")
    try:
        run_postgres_tool(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary_port),
            "-U",
            "postgres",
            "-D",
            str(replica),
            "-R",
            "-X",
            "stream",
        )
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {replica_port}\nhot_standby = on\n")
        run_postgres_tool("pg_ctl", "-D", str(replica), "-l", str(workdir / "replica.log"), "-w", "start")
        with psycopg.connect(host="127.0.0.1", port=primary_port, user="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE its_camera")
        yield (
            f"postgres://postgres@127.0.0.1:{primary_port}/its_camera",
            f"postgres://postgres@127.0.0.1:{replica_port}/its_camera",
        )
    finally:
        for data in (replica, primary):
            if (data / "postmaster.pid").exists():
                run_postgres_tool("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)


ROUTING_PROBE = """
import json, time
from django.db import connections
from cameras.models import Zone
from its_camera.db.routers import replica_reads

def in_recovery(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        return cursor.fetchone()[0]

Zone.objects.create(name="written on the primary")
deadline = time.monotonic() + 15
with replica_reads():
    while not Zone.objects.filter(name="written on the primary").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    seen_on_replica = Zone.objects.filter(name="written on the primary").exists()
    read_alias = Zone.objects.all().db
    Zone.objects.create(name="written inside replica_reads")  # writes still go to the primary
print(json.dumps({
    "read_alias": read_alias,
    "alias_outside": Zone.objects.all().db,
    "seen_on_replica": seen_on_replica,
    "replica_in_recovery": in_recovery("replica"),
    "primary_in_recovery": in_recovery("default"),
    "zones_on_primary": Zone.objects.count(),
}))
"""


def test_reads_go_to_the_replica_and_writes_to_the_primary(primary_and_replica):
    primary_url, replica_url = primary_and_replica
    manage("migrate", "--noinput", DATABASE_URL=primary_url)

    output = manage(
        "shell", "--no-imports", "-c", ROUTING_PROBE, DATABASE_URL=primary_url, REPLICA_DATABASE_URL=replica_url
    )

    probe = json.loads(output.strip().splitlines()[-1])
    assert probe == {
        "read_alias": "replica",
        "alias_outside": "default",
        "seen_on_replica": True,
        "replica_in_recovery": True,
        "primary_in_recovery": False,
        "zones_on_primary": 2,
    }


def test_without_a_replica_every_read_stays_on_the_primary():
    router = ReadReplicaRouter()
    with replica_reads():
        assert router.db_for_read(object) is None  # type: ignore[arg-type]
    assert router.db_for_write(object) == "default"  # type: ignore[arg-type]
    assert router.allow_migrate("replica", "cameras") is False
