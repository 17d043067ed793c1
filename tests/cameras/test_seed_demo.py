from io import StringIO

import pytest
from django.core.management import call_command

from cameras.models import Camera, RealtimeCameraStatus, Zone
from its_camera.devservices import START_UP_COMMANDS

pytestmark = pytest.mark.django_db


def test_seed_demo_fills_an_empty_registry_once():
    call_command("seed_demo", stdout=StringIO())
    first = set(Camera.objects.values_list("name", flat=True))

    output = StringIO()
    call_command("seed_demo", stdout=output)

    assert Zone.objects.count() == 4
    assert len(first) == 20
    assert set(Camera.objects.values_list("name", flat=True)) == first
    assert "nothing to do" in output.getvalue()
    camera = Camera.objects.order_by("name").first()
    assert camera.tags
    assert camera.zone_id is not None
    assert camera.latitude is not None
    assert camera.config["stream_url"].startswith("rtsp://viewer:")
    statuses = set(RealtimeCameraStatus.objects.values_list("connection_status", flat=True))
    assert statuses == {"streaming", "recent", "stale"}


def test_seed_demo_leaves_an_existing_fleet_alone():
    Zone.objects.create(name="Real zone")
    Camera.objects.create(name="Real camera")

    call_command("seed_demo", stdout=StringIO())

    assert list(Camera.objects.values_list("name", flat=True)) == ["Real camera"]
    assert Zone.objects.count() == 1


def test_make_run_seeds_the_demo_fleet_on_start():
    assert ("seed_demo",) in START_UP_COMMANDS
