"""Liveness, readiness and the full health status.

- `GET /health/live`: the process answers (touches nothing).
- `GET /health/ready`: for a load balancer. 503 only when this process cannot serve its core work, i.e. a
  *critical* check fails (the database). A failing non-critical check (Redis, partitions ahead, rollup lag)
  leaves it 200 with `"status": "degraded"` and the check named in `degraded`: taking every web process out
  of the load balancer because the broker blinked would turn a degraded service into an outage. The body
  says which check failed and a generic reason (`failed`, `timed out`, `skipped`), never the exception text:
  that can carry hosts, ports or DSNs, and this endpoint is public. The text is logged instead.
- `GET /health/status`: the same checks with their full text, for operators: allowed networks or the
  metrics token (like `/metrics`) or a staff session.

Checks run concurrently, each in its own thread, and the probe answers at HEALTH_CHECK_TIMEOUT_SECONDS at the
latest whatever a check is doing (a check still running then is reported `timed out`). Checks that read
through Django's connection pool declare `needs=("database",)`: they start only once the direct database
check has answered, and are `skipped` when it failed, so they never sit in the pool's wait (DB_POOL_TIMEOUT,
10 s) for a server that is down. That wait, twice in a row, is what made the probe take ~20 s.

Apps register their own checks from AppConfig.ready:

    @register_check("partitions", needs=("database",))
    def partitions_ahead() -> str: ...   # returns a short status, raises on failure
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connection, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from its_camera import metrics

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], str]

CHECK_UP = metrics.gauge(
    "its_health_check_up",
    "1 when the health check passed at its last run (readiness probe or /health/status), 0 when it failed.",
    ["check"],
    multiprocess_mode="livemostrecent",
)
CHECK_SECONDS = metrics.gauge(
    "its_health_check_seconds",
    "Duration of the health check's last run.",
    ["check"],
    multiprocess_mode="livemostrecent",
)


@dataclass(frozen=True)
class RegisteredCheck:
    name: str
    run: HealthCheck
    # Failing makes the process not ready (503). A callable is asked on every probe (a setting may decide).
    critical: bool | Callable[[], bool]
    # Checks that must pass before this one runs; when one fails this one is skipped.
    needs: tuple[str, ...]

    def is_critical(self) -> bool:
        return self.critical() if callable(self.critical) else self.critical


_checks: dict[str, RegisteredCheck] = {}


def register_check(
    name: str, *, critical: bool | Callable[[], bool] = False, needs: Sequence[str] = ()
) -> Callable[[HealthCheck], HealthCheck]:
    """Register a check (re-registering a name replaces it). Non-critical unless said: only a check
    without which the process cannot serve requests may take it out of the load balancer."""

    def decorator(check: HealthCheck) -> HealthCheck:
        _checks[name] = RegisteredCheck(name=name, run=check, critical=critical, needs=tuple(needs))
        return check

    return decorator


def registered_checks() -> dict[str, RegisteredCheck]:
    return dict(_checks)


@register_check("database", critical=True)
def database_reachable() -> str:
    # A direct connection with a short timeout rather than the pool: a probe must answer fast
    # even when the pool is exhausted or waiting on a dead server.
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    params = connection.get_connection_params()
    params.pop("options", None)  # PgBouncer refuses startup options; SET works everywhere
    params["connect_timeout"] = max(1, int(timeout))
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(timeout * 1000)}ms"])
        conn.execute("SELECT 1")
    return "ok"


@register_check("redis")
def redis_reachable() -> str:
    # Not critical: the broker, rate-limit counters and live events degrade without Redis; the API and
    # the admin keep serving from PostgreSQL (ingest rate limiting fails open, live events are dropped).
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


@dataclass
class CheckResult:
    ok: bool
    critical: bool
    ms: float
    status: str = ""  # the check's own short status when it passed
    reason: str = ""  # generic, safe to show anyone: failed, timed out, skipped
    error: str = ""  # the exception text: logged and shown on /health/status only

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, "critical": self.critical, "ms": self.ms}
        if self.ok:
            body["status"] = self.status
        else:
            body["reason"] = self.reason
        return body

    def full(self) -> dict[str, Any]:
        return {**self.public(), **({"error": self.error} if not self.ok else {})}


def _run_one(check: RegisteredCheck, prerequisites: list[Future[CheckResult]], deadline: float) -> CheckResult:
    try:
        for prerequisite in prerequisites:
            try:
                needed = prerequisite.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeoutError:
                return CheckResult(
                    ok=False, critical=False, ms=0.0, reason="timed out", error="a needed check timed out"
                )
            if not needed.ok:
                return CheckResult(ok=False, critical=False, ms=0.0, reason="skipped", error="a needed check failed")
        started = time.perf_counter()
        try:
            status = check.run()
        except Exception as exc:  # noqa: BLE001 - any failure is reported, never raised to the probe
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            logger.warning("Health check %s failed after %.0f ms: %s: %s", check.name, elapsed, type(exc).__name__, exc)
            return CheckResult(
                ok=False, critical=False, ms=elapsed, reason="failed", error=f"{type(exc).__name__}: {exc}".strip()
            )
        return CheckResult(ok=True, critical=False, ms=round((time.perf_counter() - started) * 1000, 1), status=status)
    finally:
        # The check ran on this thread's own connection (if any): hand it back to the pool.
        connections.close_all()


def run_checks(timeout: float | None = None) -> dict[str, CheckResult]:
    """Run every registered check concurrently; returns at `timeout` (HEALTH_CHECK_TIMEOUT_SECONDS) at the
    latest, with checks still running reported as timed out (their threads end on their own timeouts)."""
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS if timeout is None else timeout
    started = time.monotonic()
    deadline = started + timeout
    checks = list(_checks.values())
    # One pool per probe, not shared: a check hung on a dead server must not hold a slot the next probe needs.
    executor = ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="health")
    futures: dict[str, Future[CheckResult]] = {}
    try:
        ordered = _dependency_order(checks)
        for check in ordered:
            prerequisites = [futures[name] for name in check.needs if name in futures]
            futures[check.name] = executor.submit(_run_one, check, prerequisites, deadline)
        pending = set(futures.values())
        while pending and time.monotonic() < deadline:
            _, pending = wait(pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    results: dict[str, CheckResult] = {}
    for check in ordered:
        future = futures[check.name]
        if future.done() and not future.cancelled() and future.exception() is None:
            result = future.result()
        else:
            logger.warning("Health check %s timed out after %.1f s", check.name, timeout)
            result = CheckResult(
                ok=False, critical=False, ms=round((time.monotonic() - started) * 1000, 1), reason="timed out"
            )
            result.error = f"no answer within HEALTH_CHECK_TIMEOUT_SECONDS ({timeout:g} s)"
        result.critical = check.is_critical()
        CHECK_UP.labels(check=check.name).set(1 if result.ok else 0)
        CHECK_SECONDS.labels(check=check.name).set(result.ms / 1000)
        results[check.name] = result
    return results


def _dependency_order(checks: list[RegisteredCheck]) -> list[RegisteredCheck]:
    """Checks ordered so each comes after the checks it needs (unknown names are ignored; no cycles)."""
    by_name = {check.name: check for check in checks}
    ordered: list[RegisteredCheck] = []
    visiting: set[str] = set()

    def visit(check: RegisteredCheck) -> None:
        if check in ordered or check.name in visiting:
            return
        visiting.add(check.name)
        for name in check.needs:
            if name in by_name:
                visit(by_name[name])
        ordered.append(check)

    for check in checks:
        visit(check)
    return ordered


def readiness(results: dict[str, CheckResult]) -> tuple[str, list[str], list[str]]:
    """(status, failing critical checks, degraded checks): unavailable / degraded / ok."""
    failing = [name for name, result in results.items() if not result.ok and result.critical]
    degraded = [name for name, result in results.items() if not result.ok and not result.critical]
    return ("unavailable" if failing else "degraded" if degraded else "ok"), failing, degraded


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    status, failing, degraded = readiness(results)
    body: dict[str, Any] = {
        "status": status,
        "degraded": degraded,
        "checks": {name: result.public() for name, result in results.items()},
    }
    if failing:
        body["detail"] = "; ".join(f"{name}: {results[name].reason}" for name in failing)
        return JsonResponse(body, status=503, headers={"Retry-After": "5"})
    return JsonResponse(body)


def status_allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return metrics.scrape_allowed(request) or bool(user and user.is_active and user.is_staff)


@require_GET
def status_view(request: HttpRequest) -> JsonResponse:
    """Every check with its full text (errors included): allowed networks, the metrics token or staff."""
    if not status_allowed(request):
        return JsonResponse(
            {"detail": "Health status is served to allowed networks, with the metrics token or to staff."},
            status=403,
        )
    results = run_checks()
    status, failing, degraded = readiness(results)
    return JsonResponse(
        {
            "status": status,
            "failing": failing,
            "degraded": degraded,
            "timeout_seconds": settings.HEALTH_CHECK_TIMEOUT_SECONDS,
            "process": {"pid": os.getpid(), "threads": threading.active_count()},
            "checks": {name: result.full() for name, result in results.items()},
        }
    )
