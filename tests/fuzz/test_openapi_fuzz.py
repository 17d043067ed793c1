"""API fuzzing: schemathesis generates requests from /api/v1/openapi.json (valid and invalid) for every
operation, the live stream and NDJSON bodies included, and sends them with a valid all-scopes key through the
real ASGI application (config.asgi: the body-limit middleware, Django, ninja) against the real test database.

It fails on any 5xx, on a status the document does not declare for the operation (its_camera/api/openapi.py),
on a response body or content type outside the document. Deterministic (derandomized, fixed example counts), so
a CI run is reproducible and bounded in time."""

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.asgi import application
from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", application)

EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """The document gives NDJSON bodies the JSON array's schema: send each item on its own line."""
    rows = value if isinstance(value, list) else [value]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()  # json: ints past 64 bits too


@pytest.fixture
def raw_key(transactional_db: None, settings: object) -> str:
    # Not `db`: the application serves requests in its own threads, which a test transaction would hide.
    settings.LIVE_EVENTS_MAX_STREAM_SECONDS = 0.2  # the stream ends on its own, so each call returns
    settings.LIVE_EVENTS_HEARTBEAT_SECONDS = 0.1
    settings.API_INGEST_RATE_LIMIT_PER_SECOND = 0  # 429s depend on timing: documented, but not fuzzed
    return api_key_create(name="fuzzer", scopes=list(ApiScope.values)).raw_key


def test_the_document_covers_the_stream_and_ndjson_bodies():
    document = schema.raw_schema
    stream = document["paths"]["/api/v1/cameras/status/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {"401", "403", "422", "503"} <= set(stream["responses"])
    frames_body = document["paths"]["/api/v1/frames"]["post"]["requestBody"]["content"]
    assert frames_body["application/x-ndjson"]["schema"]["minItems"] == 1


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors_and_every_status_and_response_is_documented(case, raw_key):
    case.call_and_validate(headers={"X-API-Key": raw_key}, checks=CHECKS)
