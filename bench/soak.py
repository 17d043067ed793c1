"""Soak: `make run`'s whole stack under the seed's fleet (100 cameras x 30 fps) for `--minutes` (default 10).

    flock /tmp/bench.lock .venv/bin/python bench/soak.py [--minutes 10] [--cameras 100] [--fps 30] [--keep]

Starts `python -m its_camera.devservices run` (web, worker, beat, watchdog, embedded PostgreSQL and Redis) in a
fresh directory of its own (`.local/soak/`, so the dev database is not filled with gigabytes of frames, and
nothing of `make run` is shared), on a free port, with its small demo fleet off. Then:

- the fleet: telemetry.simulation.FleetSimulator, the code behind `manage.py simulate_fleet`, in this process,
  with every response read: frames (with detections), status updates, metrics every 5 s, heartbeats every 10 s;
- every beat job: each periodic task of the schedule is also enqueued once at the start, so the hourly and
  daily ones run under load too, besides whatever beat fires on its own;
- every 10 s: rollup lag (`its_rollup_lag_seconds` from /metrics), readiness, and memory of each process of the
  stack (RSS of the process tree, and PSS, which counts shared pages such as PostgreSQL's buffers once).

It prints achieved frames/s beside the fleet's target rate, errors, frame-batch latency p50/p99, rollup lag
(max), memory growth per process, job runs by outcome, and rows stored beside rows sent (frames, detections,
metrics; counted in the database for the fleet's cameras). Goal: the rate held with 0 errors, rows stored =
rows sent, no process growing without bound (judged on the second half's slope, after warm-up).

The stack's directory is removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
PYTHON = sys.executable
SAMPLE_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"[soak] {message}", flush=True)


# --- the stack ------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    local_dir: Path
    base_url: str
    state: dict[str, Any]
    credentials: dict[str, Any]
    log_path: Path

    def named_pids(self) -> dict[str, int]:
        """web, worker, beat, watchdog (from the launcher's log), redis and postgres (from their servers)."""
        pids: dict[str, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("[platform] ") and " started (pid " in line:
                name = line.split()[1]
                pids[name] = int(line.rsplit("pid ", 1)[1].rstrip(")"))
        postmaster = self.local_dir / "postgres" / "postmaster.pid"
        if postmaster.exists():
            pids["postgres"] = int(postmaster.read_text().splitlines()[0])
        import redis

        pids["redis"] = int(redis.Redis.from_url(self.state["REDIS_URL"]).info("server")["process_id"])
        return pids


def start_stack(local_dir: Path) -> Stack:
    if local_dir.exists():
        shutil.rmtree(local_dir)
    local_dir.mkdir(parents=True)
    port = free_port()
    environment = {**os.environ, "ITS_LOCAL_DIR": str(local_dir), "FLEET_SIMULATOR": "0", "PORT": str(port)}
    for variable in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        environment.pop(variable, None)
    log_path = local_dir / "run.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [PYTHON, "-m", "its_camera.devservices", "run", "--port", str(port)],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600  # first start: initdb, migrations, demo data
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stack exited during start-up; see {log_path}")
        if "Admin:" in log_path.read_text(errors="replace"):
            break
        time.sleep(1)
    else:
        raise RuntimeError(f"the stack did not start in 10 minutes; see {log_path}")
    state = json.loads((local_dir / "services.json").read_text())
    credentials = json.loads((local_dir / "credentials.json").read_text())
    return Stack(process, local_dir, base_url, state, credentials, log_path)


def stop_stack(stack: Stack) -> None:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
        try:
            stack.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
    lines = [line for line in stack.log_path.read_text(errors="replace").splitlines() if "stopped" in line]
    log("stack stopped: " + "; ".join(line.removeprefix("[platform] ") for line in lines[-3:]))


# --- memory ---------------------------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children[parent].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of the process tree under pid, in KiB (0 for processes that are gone)."""
    rss = pss = 0
    for member in descendants(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


# --- sampling -------------------------------------------------------------------------------------------------


@dataclass
class Samples:
    rollup_lag: list[float] = field(default_factory=list)
    readiness: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    memory: dict[str, list[tuple[float, int, int]]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)


def metric_value(exposition: str, name: str) -> float | None:
    for line in exposition.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def sample_forever(stack: Stack, samples: Samples, stop: threading.Event, started: float) -> None:
    pids = stack.named_pids()
    while not stop.wait(SAMPLE_SECONDS):
        elapsed = time.monotonic() - started
        for name, pid in pids.items():
            rss, pss = memory_kib(pid)
            samples.memory[name].append((elapsed, rss, pss))
        try:
            with urllib.request.urlopen(f"{stack.base_url}/metrics", timeout=10) as response:  # noqa: S310
                lag = metric_value(response.read().decode(), "its_rollup_lag_seconds")
            if lag is not None:
                samples.rollup_lag.append(lag)
        except OSError as exc:
            samples.errors.append(f"/metrics: {exc}")
        try:
            with urllib.request.urlopen(f"{stack.base_url}/health/ready", timeout=10) as response:  # noqa: S310
                body = json.loads(response.read())
            samples.readiness[body["status"] + (f" ({', '.join(body['degraded'])})" if body["degraded"] else "")] += 1
        except urllib.error.HTTPError as exc:
            samples.readiness[f"HTTP {exc.code}"] += 1
        except OSError as exc:
            samples.readiness["no answer"] += 1
            samples.errors.append(f"/health/ready: {exc}")


# --- the fleet ------------------------------------------------------------------------------------------------


def make_fleet(stack: Stack, cameras: int, fps: float) -> Any:
    from telemetry.simulation import ApiSession, FleetSimulator

    class SoakFleet(FleetSimulator):
        """The simulator, counting rows sent and acknowledged, errors by kind, and frame-batch latency."""

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.lock = threading.Lock()
            self.sent: dict[str, int] = defaultdict(int)
            self.acknowledged: dict[str, int] = defaultdict(int)
            self.errors: dict[str, int] = defaultdict(int)
            self.requests = 0
            self.frame_batch_ms: list[float] = []

        def _send(self, method: str, path: str, payload: Any, frames: int = 0) -> None:
            rows = {}
            if path == "/frames":
                rows = {"frames": len(payload), "detections": sum(len(frame["detections"]) for frame in payload)}
            elif path == "/metrics":
                rows = {"metrics": len(payload)}
            with self.lock:
                for kind, count in rows.items():
                    self.sent[kind] += count
            import msgspec

            self.batches.put((method, path, msgspec.json.encode(payload), frames))

        def _sender(self) -> None:
            session = ApiSession(self.base_url, self.api_key)
            while True:
                item = self.batches.get()
                if item is None:
                    return
                method, path, body, _frames = item
                started = time.perf_counter()
                kind = path if not path.startswith("/cameras/") else "/cameras/{id}/heartbeat"
                try:
                    status, answer = session.request(method, path, body, idempotency_key=str(uuid.uuid4()))
                except (OSError, http.client.HTTPException) as exc:
                    status, answer = 0, str(exc)
                elapsed_ms = (time.perf_counter() - started) * 1000
                with self.lock:
                    self.requests += 1
                    if status not in (200, 201):
                        self.errors[f"{method} {kind}: HTTP {status}"] += 1
                        continue
                    if path == "/frames":
                        self.frame_batch_ms.append(elapsed_ms)
                        self.acknowledged["frames"] += int(answer["frames"])
                        self.acknowledged["detections"] += int(answer["detections"])
                    elif path == "/metrics":
                        self.acknowledged["metrics"] += int(answer["metrics"]) + int(answer.get("duplicates", 0))

        def _report(self, seconds: float) -> None:
            with self.lock:
                frames, errors = self.acknowledged["frames"], sum(self.errors.values())
            log(f"fleet: {frames:,} frames acknowledged so far, {errors} errors")

    fleet = SoakFleet(
        base_url=f"{stack.base_url}/api/v1",
        api_key=stack.credentials["demo_api_key"],
        cameras=cameras,
        fps=fps,
        name_prefix="soak",
        write=log,
    )
    return fleet


# --- the database ---------------------------------------------------------------------------------------------


def setup_django(stack: Stack) -> None:
    os.environ["DATABASE_URL"] = stack.state["DATABASE_URL"]
    os.environ["REDIS_URL"] = stack.state["REDIS_URL"]
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    os.environ["DEBUG"] = "False"
    import django

    django.setup()


def enqueue_every_beat_job() -> list[str]:
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    names = []
    for task in PeriodicTask.objects.filter(enabled=True).exclude(task__startswith="celery."):
        app.send_task(task.task, args=json.loads(task.args or "[]"), kwargs=json.loads(task.kwargs or "{}"))
        names.append(task.task)
    return sorted(set(names))


def stored_rows(camera_ids: list[uuid.UUID], since: datetime) -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for kind, table in (("frames", "frame_metadata"), ("detections", "detections"), ("metrics", "system_metrics")):
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE camera_id = ANY(%s) AND "timestamp" >= %s',
                [camera_ids, since],
            )
            counts[kind] = int(cursor.fetchone()[0])
    return counts


def job_runs(since: datetime) -> dict[str, dict[str, int]]:
    from django.db.models import Count

    from its_camera.models import JobRun

    runs: dict[str, dict[str, int]] = defaultdict(dict)
    for row in JobRun.objects.filter(started_at__gte=since).values("job", "outcome").annotate(n=Count("id")):
        runs[row["job"]][row["outcome"]] = row["n"]
    return runs


# --- the report -----------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def slope_mib_per_minute(points: list[tuple[float, int, int]], column: int) -> float:
    """Least-squares slope over the second half of the run (after warm-up), MiB a minute."""
    half = points[len(points) // 2 :]
    if len(half) < 2:
        return float("nan")
    xs = [point[0] / 60 for point in half]
    ys = [point[column] / 1024 for point in half]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator if denominator else 0.0


def report(
    args: argparse.Namespace, fleet: Any, samples: Samples, seconds: float, stored: dict[str, int], runs: Any
) -> bool:
    target = args.cameras * args.fps
    achieved = fleet.acknowledged["frames"] / seconds
    errors = sum(fleet.errors.values())
    print()
    print(
        f"Soak: {args.cameras} cameras x {args.fps:g} fps for {seconds / 60:.1f} min ({os.cpu_count()} cores, shared)"
    )
    print(f"{'':<28} {'ours':>14} {'reference':>14} {'ratio':>7}")
    print(f"{'frames/s (target: fleet)':<28} {achieved:>14,.0f} {target:>14,.0f} {achieved / target:>7.3f}")
    nominal = args.minutes * 60
    print(
        f"(over the whole run, including {seconds - nominal:.1f} s after the fleet's last second until its last batch "
        f"was answered; over the fleet's {nominal:.0f} s alone: {fleet.acknowledged['frames'] / nominal:,.0f})"
    )
    for kind in ("frames", "detections", "metrics"):
        sent = fleet.sent[kind]
        ratio = stored[kind] / sent if sent else float("nan")
        print(f"{kind + ' stored / sent':<28} {stored[kind]:>14,} {sent:>14,} {ratio:>7.4f}")
    print(
        f"requests {fleet.requests:,}, errors {errors}"
        + (": " + ", ".join(f"{k} x{v}" for k, v in sorted(fleet.errors.items())) if errors else "")
    )
    batches = fleet.frame_batch_ms
    print(
        f"frame batches: {len(batches):,}, "
        f"p50 {percentile(batches, 0.5):.0f} ms, p99 {percentile(batches, 0.99):.0f} ms"
    )
    lag = max(samples.rollup_lag) if samples.rollup_lag else float("nan")
    print(f"rollup lag: max {lag:.0f} s over {len(samples.rollup_lag)} samples (its_rollup_lag_seconds)")
    print(f"readiness samples: {dict(samples.readiness)}")
    print(f"\n{'process (tree)':<12} {'RSS start':>10} {'RSS end':>9} {'RSS max':>9} {'PSS start':>10} {'PSS end':>9} "
          f"{'PSS MiB/min, 2nd half':>22}")  # fmt: skip
    growing = []
    for name, points in sorted(samples.memory.items()):
        if not points:
            continue
        first, last = points[0], points[-1]
        slope = slope_mib_per_minute(points, 2)
        rss_max = max(point[1] for point in points)
        print(
            f"{name:<12} {first[1] / 1024:>9.0f}M {last[1] / 1024:>8.0f}M {rss_max / 1024:>8.0f}M "
            f"{first[2] / 1024:>9.0f}M {last[2] / 1024:>8.0f}M {slope:>22.2f}"
        )
        if slope > 1.0 and name != "postgres":  # PostgreSQL's PSS grows as it touches its shared buffers
            growing.append(name)
    print("\njob runs during the soak (JobRun):")
    for job, outcomes in sorted(runs.items()):
        print(f"  {job:<48} {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")
    failed_jobs = [job for job, outcomes in runs.items() if outcomes.get("failed")]
    goals = {
        "rate held (>= 99 % of target)": achieved >= 0.99 * target * fleet_active_share(fleet, seconds),
        "0 errors": errors == 0,
        "rows stored = rows sent": all(
            stored[kind] == fleet.sent[kind] for kind in ("frames", "detections", "metrics")
        ),
        "no process growing (> 1 MiB/min PSS, 2nd half)": not growing,
        "no job failed": not failed_jobs,
    }
    print()
    for goal, met in goals.items():
        print(f"  {'met ' if met else 'MISSED'}  {goal}")
    if growing:
        print(f"  growing: {growing}")
    if failed_jobs:
        print(f"  failed jobs: {failed_jobs}")
    if samples.errors:
        print(f"  sampler errors: {samples.errors[:5]}")
    return all(goals.values())


def fleet_active_share(fleet: Any, seconds: float) -> float:
    """The simulator's first camera drops out for a minute every three: the target excludes its absence."""
    cameras = fleet.camera_count
    if cameras <= 1:
        return 1.0
    dropped = sum(1 for second in range(int(seconds)) if second % 180 >= 120)
    return (cameras - dropped / max(1, int(seconds))) / cameras


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="keep .local/soak (the stack's data and run.log)")
    args = parser.parse_args()

    local_dir = PROJECT_DIR / ".local" / "soak"
    log(f"starting the stack in {local_dir}")
    stack = start_stack(local_dir)
    try:
        log(f"stack up at {stack.base_url}; processes {stack.named_pids()}")
        setup_django(stack)
        fleet = make_fleet(stack, args.cameras, args.fps)
        camera_ids = fleet.register_cameras()
        since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        log(f"every beat job enqueued once: {', '.join(enqueue_every_beat_job())}")
        samples, stop = Samples(), threading.Event()
        started = time.monotonic()
        sampler = threading.Thread(target=sample_forever, args=(stack, samples, stop, started), daemon=True)
        sampler.start()
        fleet.run(duration=args.minutes * 60, report_every=60)
        seconds = time.monotonic() - started
        stop.set()
        sampler.join(timeout=30)
        stored = stored_rows(camera_ids, since)
        runs = job_runs(since - timedelta(minutes=1))
        ok = report(args, fleet, samples, seconds, stored, runs)
    finally:
        from django.db import connections

        connections.close_all()
        stop_stack(stack)
        if not args.keep:
            shutil.rmtree(local_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
