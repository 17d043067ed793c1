import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from its_camera.models import ApiKey
from its_camera.services.api_keys import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_key_is_stored_only_as_a_digest():
    issued = api_key_create(name="city dashboard", scopes=["cameras:read"])

    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert issued.raw_key.startswith(f"itsk_{stored.prefix}_")
    assert stored.hashed_key == hashlib.sha256(issued.raw_key.encode()).hexdigest()
    assert issued.raw_key not in str(ApiKey.objects.filter(pk=stored.pk).values().get())


def test_authenticate_accepts_the_key_and_rejects_lookalikes():
    issued = api_key_create(name="worker", scopes=["telemetry:write"])

    assert api_key_authenticate(raw_key=issued.raw_key) == issued.api_key
    assert api_key_authenticate(raw_key=issued.raw_key[:-1] + "x") is None
    assert api_key_authenticate(raw_key="not-a-key") is None
    assert api_key_authenticate(raw_key="") is None


def test_unknown_scope_is_refused_and_nothing_is_stored():
    with pytest.raises(ValueError, match="Unknown scope"):
        api_key_create(name="bad", scopes=["cameras:read", "root"])

    assert not ApiKey.objects.exists()


def test_revoked_key_no_longer_authenticates():
    issued = api_key_create(name="worker", scopes=["telemetry:write"])

    api_key_revoke(api_key=issued.api_key)

    assert api_key_authenticate(raw_key=issued.raw_key) is None
    assert ApiKey.objects.get().revoked_at is not None


def test_last_used_at_is_written_once_per_resolution_period(settings):
    settings.API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
    issued = api_key_create(name="worker", scopes=[])

    api_key_authenticate(raw_key=issued.raw_key)
    first_use = ApiKey.objects.get().last_used_at
    api_key_authenticate(raw_key=issued.raw_key)
    assert ApiKey.objects.get().last_used_at == first_use

    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=5))
    api_key_authenticate(raw_key=issued.raw_key)
    assert ApiKey.objects.get().last_used_at > first_use - timedelta(minutes=1)


def test_createapikey_prints_the_raw_key_last(capsys):
    call_command("createapikey", "--name", "ingest", "--scopes", "telemetry:write,cameras:read")

    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    api_key = api_key_authenticate(raw_key=last_line)
    assert api_key is not None
    assert api_key.name == "ingest"
    assert api_key.scopes == ["cameras:read", "telemetry:write"]
