"""Stream credentials inside a camera's `config`: masked on the way out, restored on the way in.

Integrators and operators see `config` with secrets replaced by a placeholder: values under secret-
looking keys (password, token, secret, credentials, api_key …), the user-info of URLs
(`rtsp://admin:pw@10.0.0.5/stream` → `rtsp://admin:********@10.0.0.5/stream`) and secret query
parameters (`?token=…`). When a masked config comes back unchanged (an admin form saved, a GET
edited and PATCHed), `config_restore_masked` puts the stored secrets back, so a placeholder is never
written over a real password.
"""

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "********"

SECRET_KEY_PATTERN = re.compile(
    r"pass(word|wd|phrase)?$|^pwd$|secret|token|credential|api[_-]?key|private[_-]?key|^auth|authorization|cookie",
    re.IGNORECASE,
)
URL_PATTERN = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_PATTERN.search(key))


def _split_userinfo(netloc: str) -> tuple[str, str]:
    userinfo, _, host = netloc.rpartition("@")
    return userinfo, host


def mask_url(url: str) -> str:
    """The URL with its password (or bare user-info, which is often a token) and secret query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # unparseable: it might still hold a secret, so show none of it
    userinfo, host = _split_userinfo(parts.netloc)
    netloc = parts.netloc
    if userinfo:
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_key(name) for name, _ in pairs):
            query = urlencode([(name, MASK if is_secret_key(name) else value) for name, value in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_config(value: Any) -> Any:
    """A copy of `value` (a config dict, or any JSON value inside it) with every credential masked."""
    if isinstance(value, dict):
        return {key: MASK if is_secret_key(str(key)) else mask_config(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_config(item) for item in value]
    if isinstance(value, str) and URL_PATTERN.match(value):
        return mask_url(value)
    return value


def contains_credentials(value: Any) -> bool:
    """True when `value` holds anything `mask_config` would hide (used to refuse filtering on secrets)."""
    return bool(mask_config(value) != value)


def _restore_url(submitted: str, original: Any) -> str:
    if MASK not in submitted or not isinstance(original, str) or not URL_PATTERN.match(original):
        return submitted
    try:
        new, old = urlsplit(submitted), urlsplit(original)
    except ValueError:
        return submitted
    new_userinfo, new_host = _split_userinfo(new.netloc)
    old_userinfo, _ = _split_userinfo(old.netloc)
    netloc = new.netloc
    if MASK in new_userinfo and old_userinfo:
        new_user, _, new_password = new_userinfo.partition(":")
        _, old_has_password, old_password = old_userinfo.partition(":")
        if new_userinfo == MASK:
            netloc = f"{old_userinfo}@{new_host}"  # the whole user-info was masked: keep it as stored
        elif new_password == MASK and old_has_password:
            netloc = f"{new_user}:{old_password}@{new_host}"
    query = new.query
    if MASK in query:
        old_values = dict(parse_qsl(old.query, keep_blank_values=True))
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(name, old_values.get(name, value) if value == MASK else value) for name, value in pairs])
    return urlunsplit((new.scheme, netloc, new.path, query, new.fragment))


def config_restore_masked(submitted: Any, original: Any) -> Any:
    """`submitted` with every placeholder replaced by the stored value at the same place in `original`.

    A placeholder with nothing stored behind it is dropped from dicts (a secret cannot be set to
    the mask itself); anything the caller really changed is kept as sent."""
    if isinstance(submitted, dict):
        stored = original if isinstance(original, dict) else {}
        restored = {}
        for key, item in submitted.items():
            if item == MASK:
                if key in stored:
                    restored[key] = stored[key]
                continue
            restored[key] = config_restore_masked(item, stored.get(key))
        return restored
    if isinstance(submitted, list):
        stored_list = original if isinstance(original, list) else []
        return [
            config_restore_masked(item, stored_list[index] if index < len(stored_list) else None)
            for index, item in enumerate(submitted)
        ]
    if isinstance(submitted, str) and URL_PATTERN.match(submitted):
        return _restore_url(submitted, original)
    return submitted
