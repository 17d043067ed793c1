"""Liveness and readiness probes.

`/health/live` answers as long as the process serves requests. `/health/ready` runs every
registered check, each bounded by HEALTH_CHECK_TIMEOUT_SECONDS, and answers 503 with the reason
when one fails. Apps register their own checks (partitions ahead, rollup lag) from AppConfig.ready:

    @register_check("partitions")
    def partitions_ahead() -> str: ...   # returns a short status, raises on failure
"""

import logging
import time
from collections.abc import Callable

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], str]
_checks: dict[str, HealthCheck] = {}


def register_check(name: str) -> Callable[[HealthCheck], HealthCheck]:
    def decorator(check: HealthCheck) -> HealthCheck:
        _checks[name] = check
        return check

    return decorator


@register_check("database")
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
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def run_checks() -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for name, check in _checks.items():
        started = time.perf_counter()
        try:
            results[name] = {"ok": True, "status": check()}
        except Exception as exc:  # noqa: BLE001 - any failure makes the service not ready
            logger.warning("Readiness check %s failed: %s", name, exc)
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return results


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    failing = [name for name, result in checks.items() if not result["ok"]]
    if failing:
        detail = "; ".join(f"{name}: {checks[name]['error']}" for name in failing)
        return JsonResponse({"status": "unavailable", "detail": detail, "checks": checks}, status=503)
    return JsonResponse({"status": "ok", "checks": checks})
