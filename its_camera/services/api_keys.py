"""Create, authenticate and revoke API keys.

A key reads `itsk_<prefix>_<secret>`. The prefix is stored in clear to find the row; the whole key
is stored only as a SHA-256 digest (the secret is 256 random bits, so a slow hash adds nothing) and
compared in constant time.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from its_camera.choices import ApiScope
from its_camera.models import ApiKey

KEY_TAG = "itsk"


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    raw_key: str


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise ValueError(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(ApiScope.values)}")
    return sorted(set(scopes))


def api_key_issue(*, api_key: ApiKey) -> str:
    """Give an unsaved ApiKey (name and scopes set) a fresh secret and save it; returns the raw key."""
    prefix = secrets.token_hex(6)
    raw_key = f"{KEY_TAG}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key.scopes = _validate_scopes(list(api_key.scopes))
    api_key.prefix = prefix
    api_key.hashed_key = _digest(raw_key)
    api_key.save()
    return raw_key


def api_key_create(*, name: str, scopes: list[str], created_by: User | None = None) -> IssuedApiKey:
    """Create a key. The raw key is in the result only: it cannot be recovered later."""
    api_key = ApiKey(name=name, scopes=scopes, created_by=created_by)
    raw_key = api_key_issue(api_key=api_key)
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The live key matching `raw_key`, or None. Records last use at most once per resolution period,
    so a busy ingest key does not write a row per request."""
    tag, _, rest = raw_key.partition("_")
    prefix, _, secret = rest.partition("_")
    if tag != KEY_TAG or not prefix or not secret:
        return None
    api_key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, _digest(raw_key)):
        return None
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is None or api_key.last_used_at < stale_before:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale_before)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
