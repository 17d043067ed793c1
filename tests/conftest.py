"""Fixtures shared by every test. Tests run against real PostgreSQL and Redis (see `make test`)."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from its_camera.choices import ApiScope
from its_camera.services.api_keys import IssuedApiKey, api_key_create


class ApiClient(Client):
    """A test client that sends an API key and JSON bodies."""

    def __init__(self, raw_key: str | None = None, **defaults: Any) -> None:
        if raw_key:
            defaults["HTTP_X_API_KEY"] = raw_key
        super().__init__(**defaults)

    def post_json(self, path: str, data: Any, **extra: Any) -> Any:
        return self.post(path, data=data, content_type="application/json", **extra)

    def patch_json(self, path: str, data: Any, **extra: Any) -> Any:
        return self.patch(path, data=data, content_type="application/json", **extra)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Runs just before pytest-django creates the test database. A connection pool made earlier (a module that
    serves a request at import, as the API fuzzer does) would keep connecting to the non-test database: Django
    renames the database in its settings but does not rebuild the pool, so close every pool here."""
    for connection in connections.all():
        connection.close_pool()


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools_last(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Servers started by tests (live_server, uvicorn) leave pooled connections open to the test database;
    close the pools before pytest-django drops it."""
    yield
    with django_db_blocker.unblock():
        for connection in connections.all():
            connection.close_pool()


@pytest.fixture
def make_api_key(db: None) -> Callable[..., IssuedApiKey]:
    def make(*scopes: str, name: str = "test integration") -> IssuedApiKey:
        return api_key_create(name=name, scopes=list(scopes))

    return make


@pytest.fixture
def api_client(make_api_key: Callable[..., IssuedApiKey]) -> ApiClient:
    """A client whose key holds every scope."""
    return ApiClient(make_api_key(*ApiScope.values).raw_key)


@pytest.fixture
def anonymous_api_client() -> ApiClient:
    return ApiClient()
