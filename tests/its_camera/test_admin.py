import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from its_camera.models import ApiKey
from its_camera.services.api_keys import api_key_authenticate

pytestmark = pytest.mark.django_db


def test_admin_index_and_api_docs_render(admin_client, client):
    assert admin_client.get(reverse("admin:index")).status_code == 200
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"openapi.json" in docs.content
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "ITS Camera Platform API"


def test_admin_creates_a_key_and_shows_it_once(admin_client):
    response = admin_client.post(
        reverse("admin:its_camera_apikey_add"), {"name": "traffic dashboard", "scopes": ["cameras:read"]}, follow=True
    )

    assert response.status_code == 200
    shown = " ".join(str(message) for message in get_messages(response.wsgi_request))
    raw_key = re.search(r"itsk_\S+", shown).group(0)
    api_key = ApiKey.objects.get()
    assert api_key_authenticate(raw_key=raw_key) == api_key
    assert api_key.created_by.username == "admin"
    change_page = admin_client.get(reverse("admin:its_camera_apikey_change", args=[api_key.pk]))
    assert raw_key.encode() not in change_page.content


def test_admin_refuses_a_key_without_scopes(admin_client):
    response = admin_client.post(reverse("admin:its_camera_apikey_add"), {"name": "no scopes"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["scopes"]
    assert not ApiKey.objects.exists()


def test_admin_revoke_action(admin_client, make_api_key):
    issued = make_api_key("cameras:read")

    admin_client.post(
        reverse("admin:its_camera_apikey_changelist"),
        {"action": "revoke", "_selected_action": [issued.api_key.pk]},
    )

    assert api_key_authenticate(raw_key=issued.raw_key) is None


def test_beat_schedules_are_editable_in_admin(admin_client):
    assert admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 200
