import socket
import time

import pytest
from django.db import connection

from telemetry.services.partitions import partitions_apply


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_live_answers_without_touching_services(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_when_database_and_redis_answer(client):
    partitions_apply()  # the "partitions" check (archival) wants the current and next partitions

    response = client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["redis"]["ok"]


@pytest.mark.django_db
def test_ready_is_503_fast_when_redis_is_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    started = time.monotonic()
    response = client.get("/health/ready")

    assert time.monotonic() - started < settings.HEALTH_CHECK_TIMEOUT_SECONDS + 1
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["detail"].startswith("redis:")


@pytest.mark.django_db
def test_ready_is_503_fast_when_database_is_down(client, settings, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", closed_port())

    started = time.monotonic()
    response = client.get("/health/ready")

    assert time.monotonic() - started < settings.HEALTH_CHECK_TIMEOUT_SECONDS + 1
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False
