"""Camera registry at 10,000 cameras: lookup, every list filter, heartbeat, the realtime status view.

    flock /tmp/its-bench.lock .venv/bin/python bench/cameras.py [--cameras 10000] [--iterations 300] [--keep]

Creates its own database (`<DATABASE_NAME>_bench_cameras` next to DATABASE_URL's), migrates it, seeds
10,000 cameras in 50 zones with tags, configs and positions, then times each operation three ways:

- raw SQL: the exact SQL our selector/service generates, sent through a bare psycopg cursor (the
  reference: what the database alone costs, plus one round trip);
- ours: the selector/service call (query building, ORM, model instances);
- HTTP: the API endpoint on a real uvicorn server (auth, validation, serialisation, credential masking),
  over one keep-alive connection; client, server and PostgreSQL share this machine's cores.

For each it prints p50/p99, the ratio to raw SQL, and the indexes in the EXPLAIN plan next to the one
the operation is meant to use. The bench database is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from _support import PROJECT_DIR, bench_database, free_port

DATABASE = bench_database("cameras")

import psycopg  # noqa: E402

TAGS = [
    "intersection", "highway", "bridge", "tunnel", "ptz", "night-vision", "lpr", "bus-lane", "school-zone",
    "bike-lane", "pedestrian", "parking", "ramp", "toll", "downtown", "residential", "industrial", "port",
    "airport", "rail-crossing",
]  # fmt: skip
VENDORS = ["axis", "hikvision", "bosch", "hanwha", "dahua", "avigilon"]
RESOLUTIONS = ["720p", "1080p", "1080p", "4k"]
MODELS = ["yolov8n", "yolov8s", "rtdetr", "ssd-mobilenet"]
STREETS = ["broadway", "5th-ave", "park-ave", "canal-st", "houston-st", "atlantic-ave", "west-st", "water-st"]
# 50 zones: a 10 x 5 grid over greater New York.
MIN_LAT, MAX_LAT, MIN_LON, MAX_LON = 40.50, 40.90, -74.25, -73.75
GRID_COLUMNS, GRID_ROWS = 10, 5
TARGETS_MS = {"lookup": 2.0, "list": 10.0, "update": 3.0}


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(camera_count: int, rng: random.Random) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from cameras.models import Camera, Zone

    zones = []
    for row in range(GRID_ROWS):
        for column in range(GRID_COLUMNS):
            zones.append(
                Zone(
                    name=f"zone-{row}-{column}",
                    min_latitude=MIN_LAT + row * (MAX_LAT - MIN_LAT) / GRID_ROWS,
                    max_latitude=MIN_LAT + (row + 1) * (MAX_LAT - MIN_LAT) / GRID_ROWS,
                    min_longitude=MIN_LON + column * (MAX_LON - MIN_LON) / GRID_COLUMNS,
                    max_longitude=MIN_LON + (column + 1) * (MAX_LON - MIN_LON) / GRID_COLUMNS,
                )
            )
    Zone.objects.bulk_create(zones)
    now = timezone.now()
    cameras = []
    for number in range(camera_count):
        latitude, longitude = rng.uniform(MIN_LAT, MAX_LAT), rng.uniform(MIN_LON, MAX_LON)
        row = min(int((latitude - MIN_LAT) / (MAX_LAT - MIN_LAT) * GRID_ROWS), GRID_ROWS - 1)
        column = min(int((longitude - MIN_LON) / (MAX_LON - MIN_LON) * GRID_COLUMNS), GRID_COLUMNS - 1)
        resolution = rng.choice(RESOLUTIONS)
        cameras.append(
            Camera(
                name=f"cam-{number:05d} {rng.choice(STREETS)}",
                status=rng.choices(["online", "offline", "maintenance", "error"], weights=[70, 15, 5, 10])[0],
                is_active=rng.random() < 0.9,
                location=f"{rng.choice(STREETS)} / {rng.choice(STREETS)}",
                latitude=latitude,
                longitude=longitude,
                zone=zones[row * GRID_COLUMNS + column],
                tags=rng.sample(TAGS, rng.randint(1, 4)),
                config={
                    "stream_url": f"rtsp://viewer:pw{number}@10.0.{number // 256}.{number % 256}/s1",
                    "resolution": resolution,
                    "fps": 15 if resolution == "4k" else rng.choice([25, 30]),
                    "vendor": rng.choice(VENDORS),
                    "model": {"name": rng.choice(MODELS), "confidence_threshold": round(rng.uniform(0.3, 0.7), 2)},
                },
                last_seen_at=now - timedelta(seconds=rng.choice([2, 10, 25, 60, 200, 600, 7200])),
                last_fps=rng.choice([None, 14.9, 24.8, 29.97]),
            )
        )
    Camera.objects.bulk_create(cameras, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE cameras")
        cursor.execute("VACUUM ANALYZE zones")
    return {"camera_ids": [camera.pk for camera in cameras], "zone_ids": [zone.pk for zone in zones]}


# --- timing -----------------------------------------------------------------------------------------


@dataclass
class Timing:
    p50: float
    p99: float


def measure(operation: Callable[[int], Any], iterations: int) -> Timing:
    for warm in range(min(20, iterations)):
        operation(warm)
    samples = []
    gc.collect()
    for index in range(iterations):
        started = time.perf_counter_ns()
        operation(index)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    return Timing(p50=statistics.median(samples), p99=samples[min(len(samples) - 1, int(len(samples) * 0.99))])


def plan_indexes(raw: psycopg.Connection, sql: str, params: Any) -> list[str]:
    cursor = psycopg.ClientCursor(raw)
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
    plan = cursor.fetchone()[0][0]["Plan"]
    found: list[str] = []

    def walk(node: dict) -> None:
        label = node.get("Index Name") or (node["Node Type"] if node["Node Type"] == "Seq Scan" else None)
        if label == "Seq Scan":
            label = f"Seq Scan on {node.get('Relation Name')}"
        if label and label not in found:
            found.append(label)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return found


# --- HTTP server ---------------------------------------------------------------------------------------


UVICORN = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
UVICORN += ["--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "600"]


class Server:
    def __init__(self) -> None:
        self.port = free_port()
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [*UVICORN, "--port", str(self.port)],
            cwd=PROJECT_DIR,
            env=environment,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method: str, path: str, key: str, body: Any = None) -> Any:
        headers = {"X-API-Key": key}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            self.connection.close()  # the server dropped an idle keep-alive connection: reconnect once
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return data

    def stop(self) -> None:
        self.connection.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- the operations ----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    kind: str  # lookup / list / update: which target applies
    intended: tuple[str, ...]  # indexes the plan is meant to use (any of them)
    statements: Callable[[int], list[tuple[str, Any]]]  # i -> the SQL ours sends, for the raw reference and EXPLAIN
    ours: Callable[[int], Any]
    http: Callable[[int], tuple[str, str, Any]] | None  # i -> (method, path, body); None: no endpoint of its own


def compiled(queryset: Any) -> tuple[str, Any]:
    return queryset.query.sql_with_params()


def build_cases(data: dict[str, Any], rng: random.Random, iterations: int) -> list[Case]:
    from cameras.models import Camera
    from cameras.selectors.cameras import (
        BoundingBox,
        CameraFilters,
        GeoPoint,
        WithinCircle,
        camera_get,
        camera_list,
        camera_near_page,
        camera_status_list,
    )
    from cameras.services.cameras import camera_heartbeat

    camera_ids = data["camera_ids"]
    zone_ids = data["zone_ids"]
    count = iterations + 20
    ids = [rng.choice(camera_ids) for _ in range(count)]
    zones = [rng.choice(zone_ids) for _ in range(count)]
    tag_pairs = [rng.sample(TAGS, 2) for _ in range(count)]
    # Three keys, nested (about 1 camera in 100): a selective containment. With a loose one (a single
    # common key) the planner rightly walks the name index instead and filters until the page is full.
    configs = [
        {"vendor": rng.choice(VENDORS), "resolution": "4k", "model": {"name": rng.choice(MODELS)}} for _ in range(count)
    ]
    points = [(rng.uniform(MIN_LAT, MAX_LAT), rng.uniform(MIN_LON, MAX_LON)) for _ in range(count)]
    boxes = [BoundingBox(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01) for lat, lon in points]  # about 2 x 2 km
    searches = [f"{rng.randint(0, 999):03d}" for _ in range(count)]
    page = 100  # the API's default page size; every list query fetches page + 1 to know if there is more

    def list_case(
        name: str, intended: tuple[str, ...], filters: Callable[[int], CameraFilters], query: Callable[[int], str]
    ) -> Case:
        return Case(
            name,
            "list",
            intended,
            statements=lambda i: [compiled(camera_list(filters=filters(i))[: page + 1])],
            ours=lambda i: list(camera_list(filters=filters(i))[: page + 1]),
            http=lambda i: ("GET", f"/api/v1/cameras?{query(i)}", None),
        )

    def near_statements(i: int) -> list[tuple[str, Any]]:
        # The two queries camera_near_page sends: the nearest-first walk to the 101st camera, then the circle.
        queryset = camera_list(filters=CameraFilters(near=GeoPoint(*points[i])))
        edge_query = queryset.order_by("distance").values_list("distance", flat=True)[page : page + 1]
        (edge,) = list(edge_query)
        center = queryset.query.annotations["distance"].get_source_expressions()[1]
        circle_query = queryset.filter(WithinCircle(center, edge)).order_by("distance", "pk")[: page + 1]
        return [compiled(edge_query), compiled(circle_query)]

    cases = [
        Case(
            "lookup by id",
            "lookup",
            ("cameras_pkey",),
            statements=lambda i: [compiled(Camera.objects.select_related("zone").filter(pk=ids[i]).order_by("pk")[:1])],
            ours=lambda i: camera_get(camera_id=ids[i]),
            http=lambda i: ("GET", f"/api/v1/cameras/{ids[i]}", None),
        ),
        # An unselective filter on a list sorted by name: walking the unique name index and filtering
        # until 101 rows matched beats collecting every match and sorting; either plan is intended.
        list_case(
            "list status=error",
            ("idx_cameras_name", "idx_cameras_status"),
            lambda i: CameraFilters(status=["error"]),
            lambda i: "status=error",
        ),
        list_case(
            "list zone",
            ("idx_cameras_zone_active",),
            lambda i: CameraFilters(zone_id=zones[i]),
            lambda i: f"zone={zones[i]}",
        ),
        list_case(
            "list is_active=false",
            ("idx_cameras_name", "idx_cameras_active_location"),
            lambda i: CameraFilters(is_active=False),
            lambda i: "is_active=false",
        ),
        list_case(
            "list tag (2, all of)",
            ("idx_cameras_tags_gin",),
            lambda i: CameraFilters(tags=tag_pairs[i]),
            lambda i: f"tag={tag_pairs[i][0]}&tag={tag_pairs[i][1]}",
        ),
        list_case(
            "list config contains (3 keys)",
            ("idx_cameras_config_gin",),
            lambda i: CameraFilters(config=configs[i]),
            lambda i: "config=" + quote(json.dumps(configs[i])),
        ),
        list_case(
            "list bbox (2x2 km)",
            ("idx_cameras_location_gist",),
            lambda i: CameraFilters(bbox=boxes[i]),
            lambda i: "bbox={},{},{},{}".format(  # noqa: UP032 - four attributes read better this way
                boxes[i].min_longitude, boxes[i].min_latitude, boxes[i].max_longitude, boxes[i].max_latitude
            ),
        ),
        Case(
            "list near (KNN + circle)",
            "list",
            ("idx_cameras_location_gist",),
            statements=near_statements,
            ours=lambda i: camera_near_page(
                camera_list(filters=CameraFilters(near=GeoPoint(*points[i]))), after=None, limit=page
            ),
            http=lambda i: ("GET", f"/api/v1/cameras?near={points[i][0]},{points[i][1]}", None),
        ),
        list_case(
            "list name search",
            ("idx_cameras_name_trgm",),
            lambda i: CameraFilters(search=searches[i]),
            lambda i: f"search={searches[i]}",
        ),
        list_case(
            "list zone+status+tag",
            ("idx_cameras_zone_active", "idx_cameras_tags_gin"),
            lambda i: CameraFilters(zone_id=zones[i], status=["online"], tags=[tag_pairs[i][0]]),
            lambda i: f"zone={zones[i]}&status=online&tag={tag_pairs[i][0]}",
        ),
        # Since telemetry's view looks up the latest fps per camera, walking the name index and stopping at
        # 101 rows (101 lookups) can beat collecting the zone's ~200 cameras and sorting them.
        Case(
            "status view, zone page",
            "list",
            ("idx_cameras_zone_active", "idx_cameras_name"),
            statements=lambda i: [compiled(camera_status_list(zone_id=zones[i])[: page + 1])],
            ours=lambda i: list(camera_status_list(zone_id=zones[i])[: page + 1]),
            http=lambda i: ("GET", f"/api/v1/cameras/status?zone={zones[i]}", None),
        ),
        # connection_status is computed from last_seen_at at query time; last_seen_at has no index on
        # purpose (heartbeats would stop being HOT updates), so this one reads every active camera.
        Case(
            "status view, stale page",
            "list",
            ("Seq Scan on cameras", "idx_cameras_name"),
            statements=lambda i: [compiled(camera_status_list(connection_status="stale")[: page + 1])],
            ours=lambda i: list(camera_status_list(connection_status="stale")[: page + 1]),
            http=lambda i: ("GET", "/api/v1/cameras/status?connection_status=stale", None),
        ),
        Case(
            "heartbeat (status update)",
            "update",
            ("cameras_pkey",),
            statements=lambda i: [
                (
                    'UPDATE "cameras" SET "last_seen_at" = %s, "status" = %s, "last_fps" = %s '
                    'WHERE "cameras"."id" = %s',
                    [datetime.now(UTC), "online", 25.0, ids[i]],
                )
            ],
            ours=lambda i: camera_heartbeat(camera_id=ids[i], status="online", fps=25.0),
            http=lambda i: ("POST", f"/api/v1/cameras/{ids[i]}/heartbeat", {"status": "online", "fps": 25.0}),
        ),
        # The same UPDATE without the service's live-status hook (docs/live.md: a Redis round trip, and a
        # camera lookup while Redis has no state for it), to show what each part costs.
        Case(
            "heartbeat UPDATE alone",
            "update",
            ("cameras_pkey",),
            statements=lambda i: [
                (
                    'UPDATE "cameras" SET "last_seen_at" = %s, "status" = %s, "last_fps" = %s '
                    'WHERE "cameras"."id" = %s',
                    [datetime.now(UTC), "online", 25.0, ids[i]],
                )
            ],
            ours=lambda i: Camera.objects.filter(pk=ids[i]).update(
                last_seen_at=datetime.now(UTC), status="online", last_fps=25.0
            ),
            http=None,
        ),
    ]
    return cases


def run(camera_count: int, iterations: int) -> None:
    from django.db import connection
    from django.test import Client

    from cameras.models import Camera
    from its_camera.choices import ApiScope
    from its_camera.services.api_keys import api_key_create

    rng = random.Random(42)
    started = time.perf_counter()
    data = seed(camera_count, rng)
    print(
        f"seeded {Camera.objects.count():,} cameras in 50 zones in {time.perf_counter() - started:.1f} s "
        f"(database {DATABASE.name})"
    )
    key = api_key_create(name="bench", scopes=list(ApiScope.values)).raw_key
    in_process = Client(HTTP_X_API_KEY=key, SERVER_NAME="127.0.0.1")
    cases = build_cases(data, rng, iterations)
    raw = psycopg.connect(DATABASE.url, autocommit=True)
    server = Server()
    gc.freeze()
    rows = []
    try:
        for case in cases:
            statements = {i: case.statements(i) for i in range(iterations + 20)}
            indexes: list[str] = []
            with raw.transaction():
                for sql, params in statements[0]:
                    indexes += [name for name in plan_indexes(raw, sql, params) if name not in indexes]
                raise psycopg.Rollback()  # EXPLAIN ANALYZE of an UPDATE must not change the data
            cursor = psycopg.ClientCursor(raw)

            def raw_operation(i: int, cursor: psycopg.ClientCursor = cursor, statements: dict = statements) -> None:
                for sql, params in statements[i]:
                    cursor.execute(sql, params)
                    if cursor.description:
                        cursor.fetchall()

            def in_process_operation(i: int, case: Case = case) -> None:
                assert case.http is not None
                method, path, body = case.http(i)
                if method == "GET":
                    response = in_process.get(path)
                else:
                    response = in_process.post(path, data=json.dumps(body), content_type="application/json")
                if response.status_code >= 300:
                    raise RuntimeError(f"{path}: {response.status_code}")

            raw_timing = measure(raw_operation, iterations)
            ours_timing = measure(case.ours, iterations)
            in_process_timing = http_timing = None
            if case.http is not None:
                in_process_timing = measure(in_process_operation, iterations)
                connection.close()  # hand the pooled connection back between cases
                http = case.http
                http_timing = measure(lambda i, http=http: server.request(*http(i)[:2], key, http(i)[2]), iterations)
            rows.append((case, indexes, raw_timing, ours_timing, in_process_timing, http_timing))
            print(f"  measured {case.name}", file=sys.stderr, flush=True)
    finally:
        server.stop()
        raw.close()

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print()
    print(f"machine: {os.cpu_count()} cores, load average (1/5/15 min) at the end: {load}; other work shares them.")
    print(
        f"p50 / p99 in ms, {iterations} runs each, {camera_count:,} cameras, list pages of 100 (+1 to see a next page)."
    )
    print("raw SQL = the same SQL on a bare psycopg connection (reference); ours = selector/service through the ORM;")
    print("API = the endpoint through Django's handler in this process (test Client, no network);")
    print("HTTP = the endpoint on uvicorn over a keep-alive socket. Targets apply to ours (seed, SPEC §6).")
    print()
    columns = ["operation", "raw SQL (ref)", "ours", "ours/raw p99", "API in-process", "HTTP uvicorn", "target p99"]
    columns += ["ours ok", "plan uses", "intended"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for case, indexes, raw_t, ours_t, api_t, http_t in rows:
        target = TARGETS_MS[case.kind]
        matched = any(name in indexes for name in case.intended)
        cells = [
            case.name,
            f"{raw_t.p50:.2f} / {raw_t.p99:.2f}",
            f"{ours_t.p50:.2f} / {ours_t.p99:.2f}",
            f"{ours_t.p99 / raw_t.p99:.1f}x",
            f"{api_t.p50:.2f} / {api_t.p99:.2f}" if api_t else "—",
            f"{http_t.p50:.2f} / {http_t.p99:.2f}" if http_t else "—",
            f"< {target:g} ms",
            "yes" if ours_t.p99 < target else "NO",
            ", ".join(indexes),
            ("yes: " if matched else "NO: ") + " or ".join(case.intended),
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    DATABASE.recreate()
    try:
        setup_django()
        run(args.cameras, args.iterations)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            DATABASE.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
