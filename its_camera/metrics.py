"""Prometheus metrics: one registry for the whole platform, `GET /metrics`, request metrics middleware.

Two kinds of metric, and how an app adds one (see docs/observability.md):

- **Counted in the process** (requests, ingest rows, batch latency, rejected batches, job outcomes):
  create it once at import time with `counter()`, `histogram()` or `gauge()` and update it where the
  thing happens. Creating the same name twice returns the same object.

      INGEST_ROWS = metrics.counter("its_ingest_rows_total", "Rows written by ingest.", ["table"])
      INGEST_ROWS.labels(table="frame_metadata").inc(2000)

- **Read from the database at scrape time** (cameras by connection status, open alerts, partitions
  ahead, rollup lag): register a collector that yields metric families; it runs on every scrape, so
  its queries must be cheap and bounded. A collector that fails is reported as
  `its_metrics_collector_up{collector="…"} 0` instead of breaking the scrape.

      @metrics.register_collector("partitions")
      def partitions_ahead() -> Iterable[Metric]:
          family = metrics.gauge_family("its_partitions_ahead", "Partitions ahead of now.", ["table"])
          family.add_metric(["frame_metadata"], 14)
          yield family

Several processes (uvicorn/gunicorn workers, Celery workers) on one host report correctly through
prometheus_client's multiprocess mode: set PROMETHEUS_MULTIPROC_DIR to an empty directory shared by
them before they start (`make run` does); `/metrics` then sums every process's files. Without it (one
process, tests) the in-process registry is served.
"""

import atexit
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import cache
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_metrics: dict[str, Any] = {}


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    """A counter (name ends in `_total` by convention); the same object for the same name."""
    if name not in _metrics:
        _metrics[name] = Counter(name, documentation, labelnames)
    return _metrics[name]


def histogram(
    name: str, documentation: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
) -> Histogram:
    """A histogram (seconds by convention, `_seconds`); the same object for the same name."""
    if name not in _metrics:
        _metrics[name] = Histogram(name, documentation, labelnames, buckets=buckets)
    return _metrics[name]


def gauge(name: str, documentation: str, labelnames: Sequence[str] = (), multiprocess_mode: str = "livesum") -> Gauge:
    """A gauge set by running processes. In multiprocess mode the default sums the live processes'
    values (e.g. connections held by every web worker); use "liveall" to keep one series per pid."""
    if name not in _metrics:
        _metrics[name] = Gauge(name, documentation, labelnames, multiprocess_mode=multiprocess_mode)  # type: ignore[arg-type]
    return _metrics[name]


def gauge_family(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    """A gauge computed at scrape time, for collectors: `family.add_metric([label values], value)`."""
    return GaugeMetricFamily(name, documentation, labels=list(labels))


MetricsCollector = Callable[[], Iterable[Metric]]
_collectors: dict[str, MetricsCollector] = {}


def register_collector(name: str) -> Callable[[MetricsCollector], MetricsCollector]:
    """Register a scrape-time collector under `name` (re-registering a name replaces it)."""

    def decorator(collect: MetricsCollector) -> MetricsCollector:
        _collectors[name] = collect
        return collect

    return decorator


class ScrapeTimeCollectors(Collector):
    """Runs every registered collector, each isolated: one failing query must not hide the others."""

    def collect(self) -> Iterable[Metric]:
        up = gauge_family("its_metrics_collector_up", "1 when the scrape-time collector answered.", ["collector"])
        for name, collect in list(_collectors.items()):
            try:
                families = list(collect())
            except Exception as exc:  # noqa: BLE001 - a scrape must answer even when one source fails
                logger.warning("Metrics collector %s failed: %s", name, exc)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


# --- Process metrics: HTTP requests and the database pool ----------------------------------------------

HTTP_REQUESTS = counter(
    "its_http_requests_total",
    "HTTP requests answered, by method, route pattern and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = histogram(
    "its_http_request_duration_seconds",
    "Time to the response headers (a stream counts until it starts), by method and route pattern.",
    ["method", "route"],
)
POOL_CONNECTIONS = gauge(
    "its_db_pool_connections",
    "Django's psycopg pool, summed over live processes: size (open), available (idle), in_use, max.",
    ["state"],
)
POOL_WAITING = gauge("its_db_pool_requests_waiting", "Requests waiting for a pooled connection, summed over processes.")


def pool_stats(alias: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """This process's pool counters (psycopg_pool's get_stats()); empty when pooling is off."""
    # Read the pool only if this process already has one: `connection.pool` would create it, and a pool made
    # before the settings are final (a request served during test collection) keeps connecting to the
    # database it was made for.
    wrapper = connections[alias]
    pool = getattr(type(wrapper), "_connection_pools", {}).get(alias)
    return dict(pool.get_stats()) if pool is not None else {}


def pool_gauges_update() -> None:
    stats = pool_stats()
    if not stats:
        return
    size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
    POOL_CONNECTIONS.labels(state="size").set(size)
    POOL_CONNECTIONS.labels(state="available").set(available)
    POOL_CONNECTIONS.labels(state="in_use").set(max(0, size - available))
    POOL_CONNECTIONS.labels(state="max").set(stats.get("pool_max", 0))
    POOL_WAITING.set(stats.get("requests_waiting", 0))


def _route(request: HttpRequest) -> str:
    # The URL pattern, never the raw path: label values must stay few (no ids in them).
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else "unmatched"


# Every label value from the outside world comes from a bounded set: an invented method ("FOO") would add a
# series per request otherwise, and series are never forgotten.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str | None) -> str:
    return method if method in KNOWN_METHODS else "other"


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"


def _record(request: HttpRequest, response: HttpResponse, started: float) -> None:
    route = _route(request)
    method = method_label(request.method)
    HTTP_LATENCY.labels(method=method, route=route).observe(time.perf_counter() - started)
    HTTP_REQUESTS.labels(method=method, route=route, status=status_label(response.status_code)).inc()
    pool_gauges_update()


@sync_and_async_middleware
def metrics_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], HttpResponse] | Callable[[HttpRequest], Awaitable[HttpResponse]]:
    """Counts every request and its latency by route pattern; works in sync and async stacks."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            started = time.perf_counter()
            response = await get_response(request)
            _record(request, response, started)
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = get_response(request)
        _record(request, response, started)
        return response

    return middleware


# --- GET /metrics -----------------------------------------------------------------------------------


@cache
def _allowed_networks(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def scrape_allowed(request: HttpRequest) -> bool:
    """A bearer token (METRICS_BEARER_TOKEN) from anywhere, or a client address in METRICS_ALLOWED_NETWORKS.

    The address is REMOTE_ADDR: behind a reverse proxy, allow the proxy's network or use the token."""
    token = settings.METRICS_BEARER_TOKEN
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def render_metrics() -> bytes:
    """The exposition text: every process's metrics (multiprocess mode) or this process's, then the
    scrape-time collectors."""
    pool_gauges_update()
    scrape_time = CollectorRegistry()
    scrape_time.register(ScrapeTimeCollectors())
    if MULTIPROCESS_DIR:
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
        return generate_latest(processes) + generate_latest(scrape_time)
    return generate_latest(REGISTRY) + generate_latest(scrape_time)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        return JsonResponse({"detail": "Metrics are served to allowed networks or with the metrics token."}, status=403)
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


if MULTIPROCESS_DIR:
    # A live gauge's file must go with its process, or a dead worker's pool would be summed forever.
    atexit.register(lambda: multiprocess.mark_process_dead(os.getpid()))
