"""API fuzzing: schemathesis generates requests from /api/v1/openapi.json (valid and invalid) for every
operation, sends them with a valid all-scopes key, and fails on any 5xx or on a response that breaks the
documented schema. Runs in-process against the WSGI application and the real test database."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from config.wsgi import application
from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def raw_key(transactional_db: None) -> str:
    # Not `db`: the WSGI app closes its connection after each request, which a test transaction forbids.
    return api_key_create(name="fuzzer", scopes=list(ApiScope.values)).raw_key


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors_and_responses_match_the_schema(case, raw_key):
    case.call_and_validate(headers={"X-API-Key": raw_key}, checks=[not_a_server_error, response_schema_conformance])
