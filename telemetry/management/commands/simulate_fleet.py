"""`manage.py simulate_fleet`: realistic traffic from a simulated camera fleet through the HTTP API."""

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.simulation import FleetSimulator


class Command(BaseCommand):
    help = (
        "Send frames with detections, status updates, fps/GPU metrics and heartbeats for N simulated cameras "
        "through the HTTP API, as inference workers would. Registers the cameras (tag 'simulated') if missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cameras", type=int, default=10)
        parser.add_argument("--fps", type=float, default=5.0, help="frames per second per camera")
        parser.add_argument("--duration", type=float, default=None, help="seconds (default: until stopped)")
        parser.add_argument("--url", default=os.environ.get("FLEET_API_URL", "http://127.0.0.1:8000/api/v1"))
        parser.add_argument(
            "--api-key",
            default=os.environ.get("FLEET_API_KEY"),
            help="a key with cameras:read, cameras:write and telemetry:write (default: the demo key of make run)",
        )
        parser.add_argument("--batch-size", type=int, default=settings.BULK_INSERT_BATCH_SIZE)
        parser.add_argument("--senders", type=int, default=2, help="concurrent HTTP connections")
        parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the API to answer")
        parser.add_argument(
            "--scene",
            default=None,
            help="detections from a registered scene instead of random boxes (e.g. 'traffic': objects moving "
            "along known paths through the cameras' counting lines and regions, docs/traffic.md)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = options["api_key"] or self._demo_key()
        base_url = options["url"].rstrip("/")
        self._wait_for(base_url, options["wait"])
        simulator = FleetSimulator(
            base_url=base_url,
            api_key=api_key,
            cameras=options["cameras"],
            fps=options["fps"],
            batch_size=options["batch_size"],
            senders=options["senders"],
            write=self.stdout.write,
            scene=options["scene"],
        )
        ids = self._register(simulator)
        self.stdout.write(f"fleet: {len(ids)} cameras at {options['fps']:g} fps each -> {base_url}")
        try:
            simulator.run(duration=options["duration"])
        except KeyboardInterrupt:
            self.stdout.write("fleet: stopped")

    def _register(self, simulator: FleetSimulator) -> list:
        # Under `make run` an exit would stop web, worker and beat too: keep trying instead.
        while True:
            try:
                return simulator.register_cameras()
            except (OSError, RuntimeError) as exc:
                self.stderr.write(f"fleet: could not register cameras ({exc}); retrying in 10 s")
                time.sleep(10)

    @staticmethod
    def _demo_key() -> str:
        credentials = Path(os.environ.get("ITS_LOCAL_DIR", settings.BASE_DIR / ".local")) / "credentials.json"
        try:
            return str(json.loads(credentials.read_text())["demo_api_key"])
        except (OSError, KeyError, ValueError):
            raise CommandError(f"No --api-key given and no demo key in {credentials}.") from None

    @staticmethod
    def _wait_for(base_url: str, seconds: float) -> None:
        health = base_url.split("/api/", 1)[0] + "/health/live"
        deadline = time.monotonic() + seconds
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2):  # noqa: S310 - a URL the operator gave
                    return
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise CommandError(f"The API at {base_url} did not answer within {seconds:g} s.") from None
                time.sleep(0.5)
