"""Bodies under /api/ are allowed before they are read (its_camera/body_limits.py), driven through the real
ASGI application (config.asgi) with a scripted client: the test sees every chunk the server asked for."""

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config.asgi import application
from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create
from telemetry.models import FrameMetadata

MIB = 1024 * 1024


class ScriptedClient:
    """Sends a body in chunks only when the server asks for them, and records the answer."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.asked = 0
        self.messages: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.asked += 1
        if not self.chunks:
            await asyncio.sleep(3600)  # a client that never sends the rest
        chunk = self.chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.messages if m["type"] == "http.response.start")

    @property
    def detail(self) -> Any:
        body = b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")
        return orjson.loads(body)["detail"]


def call(path: str, headers: dict[str, str], chunks: list[bytes], method: str = "POST") -> ScriptedClient:
    client = ScriptedClient(chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(asyncio.wait_for(application(scope, client.receive, client.send), timeout=30))
    return client


@pytest.fixture
def write_key(transactional_db: None) -> str:
    return api_key_create(name="camera", scopes=[ApiScope.TELEMETRY_WRITE]).raw_key


def test_an_anonymous_200_mib_body_is_refused_401_before_one_byte_is_read(transactional_db):
    # Given an anonymous client announcing 200 MiB (the limit is 32 MiB: a size that passes is tried below)
    client = call("/api/v1/frames", {"content-length": str(200 * MIB)}, [b"x" * MIB] * 200)

    # Then it is answered from the headers alone
    assert client.status == 413
    assert client.asked == 0


def test_an_anonymous_body_within_the_size_limit_but_large_is_refused_401_unread(transactional_db):
    client = call("/api/v1/frames", {"content-length": str(20 * MIB)}, [b"x" * MIB] * 20)

    assert client.status == 401
    assert "API key" in client.detail
    assert client.asked == 0


def test_a_revoked_or_unknown_key_does_not_get_its_large_body_read(transactional_db):
    headers = {"content-length": str(5 * MIB), "x-api-key": "itsk_not-a-real-key"}

    client = call("/api/v1/metrics", headers, [b"x" * MIB] * 5)

    assert client.status == 401
    assert client.asked == 0


def test_a_chunked_anonymous_body_is_refused_unread(transactional_db):
    client = call("/api/v1/frames", {"transfer-encoding": "chunked"}, [b"[" * 1024])

    assert client.status == 401
    assert client.asked == 0


def test_a_streamed_body_is_cut_at_the_limit_with_a_413_and_nothing_written(write_key, settings):
    # Given a valid key streaming a chunked body past the ingest limit (lowered to 1 MiB here)
    settings.TELEMETRY_MAX_BODY_BYTES = MIB
    headers = {"transfer-encoding": "chunked", "x-api-key": write_key, "content-type": "application/json"}

    client = call("/api/v1/frames", headers, [b" " * (256 * 1024)] * 40)

    # Then reading stopped just past the limit: 5 chunks of 256 KiB, not 40
    assert client.status == 413
    assert client.asked == 5
    assert FrameMetadata.objects.count() == 0


def test_an_invalid_content_length_is_a_400(transactional_db):
    assert call("/api/v1/frames", {"content-length": "lots"}, [b""]).status == 400


def test_small_anonymous_bodies_still_reach_the_api_and_get_its_401(transactional_db):
    client = call("/api/v1/frames", {"content-length": "2", "content-type": "application/json"}, [b"[]"])

    assert client.status == 401
    assert client.asked >= 1  # read by Django as before: small bodies cost nothing


@hypothesis_settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/api/v1/frames", "/api/v1/metrics", "/api/v1/frames/status", "/api/v1/cameras"]),
    megabytes=st.integers(min_value=3, max_value=4096),
    authorization=st.sampled_from([{}, {"x-api-key": "itsk_bogus"}, {"authorization": "Bearer nope"}]),
)
def test_property_no_anonymous_large_body_is_ever_read(transactional_db, path, megabytes, authorization):
    client = call(path, {"content-length": str(megabytes * MIB), **authorization}, [b"x" * MIB])

    assert client.status in (401, 413)
    assert client.asked == 0
