"""Small factories for camera-registry tests (no factory library: plain functions with defaults)."""

import itertools
from typing import Any

from cameras.models import Camera, Zone

_sequence = itertools.count(1)


def make_zone(**fields: Any) -> Zone:
    fields.setdefault("name", f"Zone {next(_sequence)}")
    return Zone.objects.create(**fields)


def make_camera(**fields: Any) -> Camera:
    number = next(_sequence)
    fields.setdefault("name", f"Camera {number:05d}")
    fields.setdefault("location", f"Intersection {number}")
    return Camera.objects.create(**fields)
