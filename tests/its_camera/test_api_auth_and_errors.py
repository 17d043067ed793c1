import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from its_camera.choices import ApiScope
from its_camera.models import ApiKey
from its_camera.services.api_keys import api_key_revoke
from tests.conftest import ApiClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.its_camera.kernel_api_urls")]


def assert_json_error(response, status: int) -> object:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"} or "detail" in body
    return body["detail"]


def test_no_key_is_401(anonymous_api_client):
    detail = assert_json_error(anonymous_api_client.get("/api/kernel/read"), 401)
    assert "API key" in detail


def test_unknown_key_is_401():
    assert_json_error(ApiClient("itsk_000000000000_nope").get("/api/kernel/read"), 401)


def test_key_with_the_scope_is_let_in_by_header_or_bearer(make_api_key):
    raw_key = make_api_key(ApiScope.CAMERAS_READ).raw_key

    assert ApiClient(raw_key).get("/api/kernel/read").json() == {"ok": True}
    assert ApiClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}").get("/api/kernel/read").json() == {"ok": True}


def test_wrong_scope_is_403(make_api_key):
    client = ApiClient(make_api_key(ApiScope.TELEMETRY_WRITE).raw_key)

    detail = assert_json_error(client.get("/api/kernel/read"), 403)
    assert "cameras:read" in detail


def test_revoked_key_is_401(make_api_key):
    issued = make_api_key(ApiScope.CAMERAS_READ)
    api_key_revoke(api_key=issued.api_key)

    assert_json_error(ApiClient(issued.raw_key).get("/api/kernel/read"), 401)


def test_whoami_tells_the_caller_its_key(make_api_key):
    issued = make_api_key(ApiScope.CAMERAS_READ, name="signal controller")

    body = ApiClient(issued.raw_key).get("/api/v1/whoami").json()

    assert body["name"] == "signal controller"
    assert body["prefix"] == issued.api_key.prefix
    assert body["scopes"] == ["cameras:read"]


def test_validation_error_is_422_with_field_details(api_client):
    detail = assert_json_error(api_client.post_json("/api/kernel/echo", {"name": "x", "count": "many"}), 422)
    assert any("count" in error["loc"] for error in detail)


def test_malformed_json_is_400(api_client):
    response = api_client.post("/api/kernel/echo", data="{not json", content_type="application/json")
    assert_json_error(response, 400)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/api/v1/no-such-endpoint", 404), ("delete", "/api/v1/whoami", 405), ("get", "/api/elsewhere", 404)],
)
def test_django_level_errors_under_api_are_json(anonymous_api_client, method, path, status):
    assert_json_error(getattr(anonymous_api_client, method)(path), status)


def test_unexpected_exception_is_a_json_500_not_a_page():
    client = ApiClient(raise_request_exception=False)
    detail = assert_json_error(client.get("/api/kernel/boom"), 500)
    assert "something unexpected" not in detail  # internals are logged, not shown


@pytest.mark.django_db(transaction=True)  # the refused statement breaks an enclosing test transaction
def test_a_value_the_database_refuses_is_422_and_nothing_is_stored(anonymous_api_client):
    response = anonymous_api_client.post_json("/api/kernel/store-text", {"name": "nul\u0000byte", "count": 1})

    detail = assert_json_error(response, 422)
    assert "NUL" in detail
    assert not ApiKey.objects.exists()


def test_database_outage_is_503_with_retry_after(anonymous_api_client):
    response = anonymous_api_client.get("/api/kernel/db-down")
    assert_json_error(response, 503)
    assert response["Retry-After"]


def test_cursor_pagination_walks_every_row_once_without_counting(make_api_key, anonymous_api_client):
    names = [f"key-{n:02d}" for n in range(8)]
    for name in names:
        make_api_key(name=name)

    seen, url, pages = [], "/api/kernel/keys", 0
    while url:
        with CaptureQueriesContext(connection) as queries:
            page = anonymous_api_client.get(url).json()
        assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
        seen += [item["name"] for item in page["results"]]
        url, pages = page["next"], pages + 1
        if pages == 1:
            make_api_key(name="key-00a")  # inserted behind the cursor: must not shift later pages

    assert pages == 3
    assert sorted(set(seen)) == sorted(seen)
    assert set(names) <= set(seen)


def test_bad_cursor_is_a_client_error(anonymous_api_client):
    response = anonymous_api_client.get("/api/kernel/keys", {"cursor": "%%%"})
    assert 400 <= response.status_code < 500
    assert "detail" in json.loads(response.content)
