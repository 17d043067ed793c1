"""The application works through a real PgBouncer in transaction pooling mode, configured by
deploy/pgbouncer.ini: no server-side cursors, no startup options, no session state that leaks between
transactions. The server under test is a real uvicorn process whose DATABASE_URL points at PgBouncer."""

import configparser
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create
from telemetry.services.partitions import partitions_apply

DEPLOY_INI = Path(settings.BASE_DIR) / "deploy" / "pgbouncer.ini"
PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)

pytestmark = pytest.mark.skipif(
    PGBOUNCER is None, reason="PgBouncer is not installed (apt-get install pgbouncer; .ci/run installs it)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"process exited early:\n{log.read_text() if log.exists() else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"port {port} never opened:\n{log.read_text() if log.exists() else ''}")


def pgbouncer_os_user(host: str | None) -> str:
    """PgBouncer refuses to run as root. Over a unix socket it must also be allowed into the socket's
    directory: the embedded server keeps it in its data directory, readable by its own user only."""
    if host and host.startswith("/"):
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    return "postgres"


@pytest.fixture
def pgbouncer(transactional_db: None) -> Iterator[int]:
    """PgBouncer with deploy/pgbouncer.ini, its two pools pointed at the test database."""
    workdir = Path(tempfile.mkdtemp(prefix="its-pgbouncer-"))
    workdir.chmod(0o777)
    server = connection.get_connection_params()
    target = f"host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432} dbname={server['dbname']}"

    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # type: ignore[assignment,method-assign]
    config.read(DEPLOY_INI)
    for pool, definition in config["databases"].items():
        sizes = " ".join(part for part in definition.split() if part.startswith(("pool_size", "reserve_pool")))
        config["databases"][pool] = f"{target} {sizes}"
    port = free_port()
    (workdir / "userlist.txt").write_text(f'"{server.get("user", "postgres")}" ""\n')
    config["pgbouncer"].update(
        listen_port=str(port),
        auth_type="trust",
        auth_file=str(workdir / "userlist.txt"),
        logfile=str(workdir / "pgbouncer.log"),
        pidfile=str(workdir / "pgbouncer.pid"),
    )
    ini = workdir / "pgbouncer.ini"
    with ini.open("w") as handle:
        config.write(handle)
    as_user = ["runuser", "-u", pgbouncer_os_user(server.get("host")), "--"] if os.geteuid() == 0 else []
    process = subprocess.Popen([*as_user, PGBOUNCER, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, workdir / "pgbouncer.log")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["its_camera_web"])
def app_through_pgbouncer(request: pytest.FixtureRequest, pgbouncer: int) -> Iterator[str]:
    """The application served by uvicorn, every query going through one of PgBouncer's pools
    (`its_camera_web` unless a test parametrizes it indirectly)."""
    user = connection.get_connection_params().get("user", "postgres")
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="its-uvicorn-", suffix=".log")[1])
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{user}@127.0.0.1:{pgbouncer}/{request.param}",
        "DB_BEHIND_PGBOUNCER": "1",
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--log-level", "warning"],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.unlink(missing_ok=True)


def test_pgbouncer_runs_deploy_ini_in_transaction_mode(pgbouncer):
    with psycopg.connect(
        host="127.0.0.1", port=pgbouncer, dbname="pgbouncer", user="postgres", autocommit=True
    ) as admin:
        pools = {row[0]: row for row in admin.execute("SHOW DATABASES").fetchall()}
        modes = {row[0]: row for row in admin.execute("SHOW CONFIG").fetchall()}
    assert {"its_camera_web", "its_camera_ingest"} <= set(pools)
    assert modes["pool_mode"][1] == "transaction"


def test_admin_and_api_work_through_pgbouncer(app_through_pgbouncer, django_user_model):
    django_user_model.objects.create_superuser("operator", "", "correct horse battery")
    raw_key = api_key_create(name="through pgbouncer", scopes=list(ApiScope.values)).raw_key
    partitions_apply()  # readiness includes "partitions ahead" (archival)

    with httpx.Client(base_url=app_through_pgbouncer, timeout=10) as client:
        assert client.get("/health/ready").json()["status"] == "ok"
        for _ in range(20):  # many transactions, each on whichever server connection is free
            response = client.get("/api/v1/whoami", headers={"X-API-Key": raw_key})
            assert response.status_code == 200, response.text
        login_page = client.get("/admin/login/")
        response = client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": "operator",
                "password": "correct horse battery",
                "csrfmiddlewaretoken": login_page.cookies["csrftoken"],
            },
            headers={"Referer": f"{app_through_pgbouncer}/admin/login/"},
        )
        assert response.status_code == 302, response.text
        for page in ("/admin/", "/admin/its_camera/apikey/", "/admin/django_celery_beat/periodictask/"):
            assert client.get(page).status_code == 200, page


@pytest.mark.parametrize("app_through_pgbouncer", ["its_camera_ingest"], indirect=True)
def test_ingest_works_through_the_ingest_pool(app_through_pgbouncer):
    from telemetry.models import Detection, FrameMetadata

    raw_key = api_key_create(name="ingest through pgbouncer", scopes=list(ApiScope.values)).raw_key
    headers = {"X-API-Key": raw_key}
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    with httpx.Client(base_url=app_through_pgbouncer, headers=headers, timeout=30) as client:
        camera_id = client.post("/api/v1/cameras", json={"name": "pgbouncer camera"}).json()["id"]
        for batch in range(5):  # COPY in several transactions, each on whichever server connection is free
            frames = [
                {
                    "camera_id": camera_id,
                    "timestamp": (start + timedelta(seconds=batch * 100 + i)).isoformat(),
                    "frame_number": batch * 100 + i,
                    "detections": [{"object_type": "car", "confidence": 0.8, "bbox": [0, 0, 10, 10]}],
                }
                for i in range(100)
            ]
            response = client.post("/api/v1/frames", json=frames, headers={"Idempotency-Key": f"pgb-{batch}"})
            assert response.status_code == 201, response.text
        replay = client.post("/api/v1/frames", json=frames, headers={"Idempotency-Key": "pgb-4"})
        assert replay.status_code == 201
        status = client.patch(
            "/api/v1/frames/status",
            json=[{"camera_id": camera_id, "timestamp": start.isoformat(), "processing_status": "failed"}],
        )
        assert status.status_code == 200, status.text
        listed = client.get("/api/v1/frames", params={"camera_id": camera_id, "since": start.isoformat()})
        assert listed.status_code == 200, listed.text

    assert FrameMetadata.objects.filter(camera_id=camera_id).count() == 500
    assert Detection.objects.filter(camera_id=camera_id).count() == 500
    assert FrameMetadata.objects.get(camera_id=camera_id, timestamp=start).processing_status == "failed"


def test_a_snapshot_query_imports_a_transactions_snapshot_through_transaction_pooling(pgbouncer):
    """The tiering job's second connection (ADBC, its_camera.db.snapshot_query) works through PgBouncer in
    transaction mode: the import and the read are one transaction, on a server connection of the same server."""
    from psycopg import sql

    from its_camera.db.snapshot_query import SnapshotQuery

    user = connection.get_connection_params().get("user", "postgres")
    url = f"postgresql://{user}@127.0.0.1:{pgbouncer}/its_camera_web"
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("CREATE TABLE snapshot_probe (n bigint)")
        setup.execute("INSERT INTO snapshot_probe VALUES (1), (2)")
    try:
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT count(*) FROM snapshot_probe")
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("INSERT INTO snapshot_probe VALUES (3)")  # committed after the snapshot
            query = SnapshotQuery(cursor, sql.SQL("SELECT n FROM snapshot_probe ORDER BY n"), settings={})
            with query:
                read = [value for batch in query for value in batch.column(0).to_pylist()]
    finally:
        with psycopg.connect(url, autocommit=True) as cleanup:
            cleanup.execute("DROP TABLE snapshot_probe")
    assert read == [1, 2]
    assert query.rows == 2
