"""Realistic fleet traffic: what an inference worker sends for a camera (frames with detections, status
updates, fps/GPU metrics, heartbeats), sent through the HTTP API. Used by `manage.py simulate_fleet`
(and so by `make run`) and, for its row generator, by bench/ingest.py.
"""

import http.client
import json
import logging
import queue
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import msgspec

__all__ = ["FleetSimulator", "Scene", "frame_rows", "generate_frames", "register_scene", "scenes"]

logger = logging.getLogger(__name__)

OBJECT_TYPES = ["car", "car", "car", "truck", "bus", "person", "person", "bicycle", "motorcycle", "van"]
SIMULATED_TAG = "simulated"


class Scene(Protocol):
    """What a camera sees, for simulations that need known ground truth (traffic.simulation): the detections of
    camera `camera_id` at `moment`, as the API takes them."""

    def detections(self, *, camera_id: uuid.UUID, moment: datetime) -> list[dict[str, Any]]: ...


# Scenes registered by higher apps at start-up (traffic registers "traffic"), so `simulate_fleet --scene NAME`
# can use them without telemetry importing those apps.
SceneFactory = Callable[[list[uuid.UUID]], Scene]
_scenes: dict[str, SceneFactory] = {}


def register_scene(name: str, factory: SceneFactory) -> None:
    """Make `factory(camera_ids) -> Scene` available as `simulate_fleet --scene NAME`."""
    _scenes[name] = factory


def scenes() -> dict[str, SceneFactory]:
    return dict(_scenes)


def generate_frames(
    camera_ids: list[uuid.UUID],
    *,
    fps: float,
    start: datetime,
    seconds: float,
    detections_per_frame: int | None = None,
    failure_rate: float = 0.0,
    rng: random.Random | None = None,
    scene: Scene | None = None,
) -> Iterator[dict[str, Any]]:
    """Frames of every camera for `seconds` from `start`, in time order, as the API takes them.
    `detections_per_frame` None: 0 to 8 objects per frame, as traffic varies. With a `scene`, the detections
    are the scene's (objects moving along known paths) instead of random boxes."""
    rng = rng or random.Random(0)  # noqa: S311 - simulated traffic, not security
    step = timedelta(seconds=1 / fps)
    frame_count = int(seconds * fps)
    for index in range(frame_count):
        moment = start + step * index
        for camera_number, camera_id in enumerate(camera_ids):
            failed = failure_rate and rng.random() < failure_rate
            count = 0 if failed else (detections_per_frame if detections_per_frame is not None else rng.randint(0, 8))
            detections = []
            if scene is not None:
                detections = [] if failed else scene.detections(camera_id=camera_id, moment=moment)
                count = 0
            for number in range(count):
                x = rng.uniform(0, 1800)
                y = rng.uniform(0, 1000)
                detections.append(
                    {
                        "object_type": rng.choice(OBJECT_TYPES),
                        "confidence": round(rng.uniform(0.3, 0.99), 3),
                        "bbox": [
                            round(x, 1),
                            round(y, 1),
                            round(x + rng.uniform(20, 120), 1),
                            round(y + rng.uniform(20, 80), 1),
                        ],
                        "track_id": camera_number * 100_000 + (index // 30) * 10 + number,
                    }
                )
            yield {
                "camera_id": str(camera_id),
                "timestamp": moment.isoformat(),
                "frame_number": index,
                "processing_status": "failed" if failed else "completed",
                "processing_time_ms": round(rng.uniform(8, 40), 2),
                "width": 1920,
                "height": 1080,
                "quality_score": round(rng.uniform(0.7, 1.0), 3),
                "detections": detections,
            }


def frame_rows(frames: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode(frames)


@dataclass
class SenderStats:
    frames: int = 0
    batches: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, *, frames: int, elapsed_ms: float, ok: bool) -> None:
        with self.lock:
            if ok:
                self.frames += frames
                self.batches += 1
                self.latencies_ms.append(elapsed_ms)
            else:
                self.errors += 1

    def take(self) -> tuple[int, int, int, list[float]]:
        with self.lock:
            taken = (self.frames, self.batches, self.errors, self.latencies_ms)
            self.frames = self.batches = self.errors = 0
            self.latencies_ms = []
            return taken


class ApiSession:
    """One keep-alive HTTP connection to the API, retrying a request (same Idempotency-Key) on a
    connection error or a 5xx, as an integration should."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.prefix = parts.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            factory = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            connection = factory(self.host, self.port, timeout=self.timeout)
            connection.connect()
            # http.client writes headers and body separately; with Nagle on, the body waits for the
            # server's delayed ACK (40 ms a request).
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connection = connection
        return self.connection

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        idempotency_key: str | None = None,
        attempts: int = 3,
    ) -> tuple[int, Any]:
        headers = {"X-API-Key": self.api_key, "Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in range(attempts):
            try:
                connection = self._connect()
                connection.request(method, self.prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status >= 500 and attempt + 1 < attempts:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                return response.status, json.loads(payload) if payload else None
            except (OSError, http.client.HTTPException):
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
                if attempt + 1 == attempts:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise RuntimeError("unreachable")


class FleetSimulator:
    """`cameras` cameras at `fps` frames a second each, sent in batches of up to `batch_size` frames by
    `senders` threads. One camera (the first, when there are several) drops out for a minute every three
    minutes; about 1 % of frames fail; 2 % are sent as `processing` and completed by a status update a
    second later; every 5 s each camera reports fps and GPU metrics, every 10 s it sends a heartbeat."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        cameras: int,
        fps: float,
        batch_size: int = 2000,
        senders: int = 2,
        name_prefix: str = "sim",
        write: Callable[[str], None] = print,
        seed: int = 0,
        scene: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.camera_count = cameras
        self.fps = fps
        self.batch_size = batch_size
        self.senders = senders
        self.name_prefix = name_prefix
        self.write = write
        self.rng = random.Random(seed)  # noqa: S311 - simulated traffic
        self.stats = SenderStats()
        self.batches: queue.Queue[tuple[str, str, bytes, int] | None] = queue.Queue(maxsize=senders * 4)
        self.camera_ids: list[uuid.UUID] = []
        if scene is not None and scene not in _scenes:
            raise ValueError(f"Unknown scene {scene!r}; registered: {', '.join(sorted(_scenes)) or 'none'}")
        self.scene_name = scene
        self.scene: Scene | None = None

    # --- cameras -------------------------------------------------------------------------------
    def register_cameras(self) -> list[uuid.UUID]:
        """The simulated cameras' ids, registering through the cameras API those that are missing."""
        session = ApiSession(self.base_url, self.api_key)
        existing: dict[str, uuid.UUID] = {}
        path: str | None = "/cameras?" + urlencode({"tag": SIMULATED_TAG, "page_size": 1000})
        while path:
            status, page = session.request("GET", path)
            if status != 200:
                raise RuntimeError(f"Listing cameras failed: HTTP {status} {page}")
            existing.update({camera["name"]: uuid.UUID(camera["id"]) for camera in page["results"]})
            next_url = page.get("next")
            path = next_url.split("/api/v1", 1)[-1] if next_url else None
        ids = []
        for number in range(self.camera_count):
            name = f"{self.name_prefix}-camera-{number + 1:04d}"
            if name not in existing:
                body = {
                    "name": name,
                    "location": f"Simulated intersection {number + 1}",
                    "latitude": round(40.70 + (number % 50) * 0.002, 6),
                    "longitude": round(-74.00 + (number // 50) * 0.002, 6),
                    "tags": [SIMULATED_TAG],
                    "config": {"fps": self.fps, "resolution": "1080p"},
                    "status": "online",
                }
                status, created = session.request("POST", "/cameras", msgspec.json.encode(body))
                if status != 201:
                    raise RuntimeError(f"Registering {name} failed: HTTP {status} {created}")
                existing[name] = uuid.UUID(created["id"])
            ids.append(existing[name])
        self.camera_ids = ids
        if self.scene_name is not None:
            self.scene = _scenes[self.scene_name](ids)
        return ids

    # --- sending -------------------------------------------------------------------------------
    def _sender(self) -> None:
        session = ApiSession(self.base_url, self.api_key)
        while True:
            item = self.batches.get()
            if item is None:
                return
            method, path, body, frames = item
            started = time.perf_counter()
            try:
                status, answer = session.request(method, path, body, idempotency_key=str(uuid.uuid4()))
                ok = status in (200, 201)
                if not ok:
                    logger.warning("%s %s: HTTP %s %s", method, path, status, str(answer)[:300])
            except (OSError, http.client.HTTPException) as exc:
                logger.warning("%s %s failed: %s", method, path, exc)
                ok = False
            self.stats.record(frames=frames, elapsed_ms=(time.perf_counter() - started) * 1000, ok=ok)

    def _send(self, method: str, path: str, payload: Any, frames: int = 0) -> None:
        self.batches.put((method, path, msgspec.json.encode(payload), frames))

    def _dropped_out(self, camera_index: int, elapsed: float) -> bool:
        return self.camera_count > 1 and camera_index == 0 and elapsed % 180 >= 120

    def _tick(self, second: int, start: datetime, elapsed: float, pending_status: list[dict[str, Any]]) -> None:
        if pending_status:
            self._send("PATCH", "/frames/status", pending_status)
        active = [cid for index, cid in enumerate(self.camera_ids) if not self._dropped_out(index, elapsed)]
        moment = start + timedelta(seconds=second)
        frames = list(
            generate_frames(
                active, fps=self.fps, start=moment, seconds=1, failure_rate=0.01, rng=self.rng, scene=self.scene
            )
        )
        next_pending = []
        for frame in frames:
            if frame["processing_status"] == "completed" and self.rng.random() < 0.02:
                frame["processing_status"] = "processing"
                next_pending.append(
                    {
                        "camera_id": frame["camera_id"],
                        "timestamp": frame["timestamp"],
                        "processing_status": "completed",
                        "processing_time_ms": frame["processing_time_ms"],
                    }
                )
        pending_status[:] = next_pending
        for first in range(0, len(frames), self.batch_size):
            batch = frames[first : first + self.batch_size]
            self._send("POST", "/frames", batch, frames=len(batch))
        if second % 5 == 0:
            now = moment.isoformat()
            metrics = []
            for index, camera_id in enumerate(active):
                fps = round(self.fps * self.rng.uniform(0.93, 1.0), 2)
                labels = {"gpu": str(index % 2), "model": "yolov8n"}
                metrics.append({"camera_id": str(camera_id), "timestamp": now, "name": "fps", "value": fps})
                metrics.append(
                    {
                        "camera_id": str(camera_id),
                        "timestamp": now,
                        "name": "gpu_utilization",
                        "value": round(self.rng.uniform(0.4, 0.97), 3),
                        "labels": labels,
                        "alert_level": "warning" if self.rng.random() < 0.01 else "none",
                    }
                )
            if metrics:
                self._send("POST", "/metrics", metrics)
        if second % 10 == 0:
            for camera_id in active:
                self._send("POST", f"/cameras/{camera_id}/heartbeat", {"status": "online", "fps": self.fps})

    def run(self, *, duration: float | None = None, report_every: float = 10.0) -> None:
        """Send traffic in real time until `duration` seconds have passed (forever when None)."""
        if not self.camera_ids:
            self.register_cameras()
        threads = [threading.Thread(target=self._sender, daemon=True) for _ in range(self.senders)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        start = datetime.now(UTC).replace(microsecond=0)
        last_report = started
        pending_status: list[dict[str, Any]] = []
        second = 0
        try:
            while duration is None or second < duration:
                self._tick(second, start, time.monotonic() - started, pending_status)
                second += 1
                delay = started + second - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if time.monotonic() - last_report >= report_every:
                    self._report(time.monotonic() - last_report)
                    last_report = time.monotonic()
        finally:
            if pending_status:
                self._send("PATCH", "/frames/status", pending_status)
            for _ in threads:
                self.batches.put(None)
            for thread in threads:
                thread.join(timeout=60)
            self._report(max(time.monotonic() - last_report, 1e-3))
            report = getattr(self.scene, "report", None)
            if callable(report):  # a scene with known ground truth says what the platform should count
                self.write(report())

    def _report(self, seconds: float) -> None:
        frames, batches, errors, latencies = self.stats.take()
        latencies.sort()

        def percentile(fraction: float) -> float:
            return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] if latencies else 0.0

        self.write(
            f"fleet: {frames / seconds:,.0f} frames/s from {self.camera_count} cameras, {batches} requests, "
            f"{errors} errors, latency p50 {percentile(0.5):.0f} ms p99 {percentile(0.99):.0f} ms"
        )
