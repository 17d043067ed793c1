"""Demo fleet for a fresh install (`make run` runs this on every start; it only acts on an empty registry)."""

import random
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from cameras.choices import CameraStatus
from cameras.models import Camera
from cameras.services.cameras import camera_create, camera_heartbeat
from cameras.services.zones import zone_create

# (name, description, (min_lat, min_lon, max_lat, max_lon)) around lower Manhattan and Brooklyn.
DEMO_ZONES = [
    ("Midtown", "Avenues between 34th and 59th Street", (40.748, -73.995, 40.768, -73.965)),
    ("Downtown", "Financial district and the bridges", (40.700, -74.020, 40.720, -73.995)),
    ("Brooklyn Heights", "Bridge ramps and Atlantic Avenue", (40.688, -74.000, 40.703, -73.985)),
    ("Harbour", "Piers, ferry terminals and the tunnel mouths", (40.690, -74.025, 40.710, -74.010)),
]
STREETS = ["Broadway", "5th Ave", "Park Ave", "Canal St", "Houston St", "Atlantic Ave", "West St", "Water St"]
TAGS = ["intersection", "ptz", "night-vision", "bus-lane", "bridge", "tunnel", "school-zone", "lpr"]
RESOLUTIONS = ["720p", "1080p", "1080p", "4k"]


class Command(BaseCommand):
    help = "Create demo zones and about 20 cameras when there are no cameras yet (safe to run on every start)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--cameras", type=int, default=20, help="How many demo cameras (default 20).")

    @transaction.atomic
    def handle(self, *args: Any, cameras: int, **options: Any) -> None:
        if Camera.objects.exists():
            self.stdout.write("seed_demo: cameras already registered, nothing to do.")
            return
        rng = random.Random(20261125)  # noqa: S311 - demo data, the same on every install
        zones = [
            zone_create(
                name=name,
                description=description,
                min_latitude=box[0],
                min_longitude=box[1],
                max_latitude=box[2],
                max_longitude=box[3],
                center_latitude=round((box[0] + box[2]) / 2, 6),
                center_longitude=round((box[1] + box[3]) / 2, 6),
            )
            for name, description, box in DEMO_ZONES
        ]
        now = timezone.now()
        for number in range(1, cameras + 1):
            zone_index = number % len(zones)
            _, _, box = DEMO_ZONES[zone_index]
            street, cross = rng.sample(STREETS, 2)
            resolution = rng.choice(RESOLUTIONS)
            camera = camera_create(
                name=f"CAM-{number:03d} {street} & {cross}",
                location=f"{street} / {cross}",
                latitude=round(rng.uniform(box[0], box[2]), 6),
                longitude=round(rng.uniform(box[1], box[3]), 6),
                zone_id=zones[zone_index].pk,
                status=CameraStatus.OFFLINE,
                # Demo credentials show how the API and admin mask them.
                config={
                    "stream_url": f"rtsp://viewer:demo-pass-{number}@10.20.{zone_index}.{number}:554/stream1",
                    "resolution": resolution,
                    "fps": 30 if resolution != "4k" else 15,
                    "model": {"name": "yolov8n", "confidence_threshold": round(rng.uniform(0.3, 0.6), 2)},
                },
                tags=rng.sample(TAGS, rng.randint(1, 3)),
            )
            # A spread of last-seen times, so the fleet status page has something of each kind.
            if number % 5 == 0:
                continue  # never seen
            age = timedelta(seconds=rng.choice([5, 12, 20, 90, 200, 1800]))
            camera_heartbeat(camera_id=camera.pk, fps=float(camera.config["fps"]), now=now - age)
        self.stdout.write(f"seed_demo: created {len(zones)} zones and {cameras} cameras.")
