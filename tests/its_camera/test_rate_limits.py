import socket

import pytest

from its_camera.api import throttling
from tests.conftest import ApiClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.its_camera.kernel_api_urls")]


@pytest.fixture(autouse=True)
def fresh_limits(settings, monkeypatch):
    settings.API_INGEST_RATE_LIMIT_PER_SECOND = 3
    monkeypatch.setattr(throttling, "_redis_down_until", 0.0)
    monkeypatch.setattr(throttling.time, "time", lambda: 1_900_000_000.25)  # one window for the whole test


def test_a_key_past_its_limit_gets_429_with_retry_after_and_others_are_unaffected(make_api_key):
    busy = ApiClient(make_api_key(name="busy").raw_key)
    quiet = ApiClient(make_api_key(name="quiet").raw_key)

    statuses = [busy.post("/api/kernel/ingest").status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]
    refused = busy.post("/api/kernel/ingest")
    assert refused.json() == {"detail": "Rate limit exceeded for this API key; retry later."}
    assert int(refused["Retry-After"]) >= 1
    assert quiet.post("/api/kernel/ingest").status_code == 200


def test_no_limit_when_set_to_zero(make_api_key, settings):
    settings.API_INGEST_RATE_LIMIT_PER_SECOND = 0
    client = ApiClient(make_api_key().raw_key)

    assert {client.post("/api/kernel/ingest").status_code for _ in range(10)} == {200}


def test_ingest_keeps_working_when_redis_is_down(make_api_key, settings, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    monkeypatch.setattr(throttling, "_clients", {})
    client = ApiClient(make_api_key().raw_key)

    assert {client.post("/api/kernel/ingest").status_code for _ in range(6)} == {200}
