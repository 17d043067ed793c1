"""What of a camera's `config` anyone may see, and how a masked config sent back keeps its secrets safely.

Masking is an allow-list (docs/security.md): a config key is shown only when it is known to hold no secret
(resolution, fps, stream_url, thresholds … see SHOWN_KEYS, extended by the CAMERA_CONFIG_SHOWN_KEYS setting);
every other key keeps its name and shows `********`. Inside shown strings, every URL, wherever it sits in
the string, loses its user-info (`rtsp://********@10.0.0.5/stream`) and the values of its query parameters
except a few known harmless ones (`?channel=2&token=********`). A config nested deeper than
CAMERA_CONFIG_MAX_DEPTH (stored before that limit existed) shows `********` below it rather than failing.

Three rules follow from it:
- a reader sees `mask_config(config)`, in the API and in the admin alike;
- the `config` containment filter accepts only a filter that masking leaves unchanged (`config_filter_check`):
  it can confirm only what a reader already sees, never guess a secret;
- a write that sends placeholders back (`config_restore_masked`) keeps the stored secret only where the value
  around it is unchanged: a URL whose masked form equals the stored URL's, and only while every address in the
  config (URLs, host, port …) is the one stored. Sending the mask with a new host is refused (422): the secret
  must be given again, so a `cameras:write` key cannot point a stored password at a host of its choosing.
"""

import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

__all__ = [
    "MASK",
    "SHOWN_KEYS",
    "config_filter_check",
    "config_restore_masked",
    "is_shown_key",
    "mask_config",
    "mask_text",
]

MASK = "********"

# Keys whose values are shown (any depth; compared case-insensitively, "-" read as "_"). A dict under a shown
# key is filtered again by the same list; a string has its URLs' credentials masked.
SHOWN_KEYS = frozenset(
    {
        # stream
        "stream_url", "substream_url", "rtsp_url", "snapshot_url", "onvif_url", "url", "uri", "stream",
        "streams", "substream", "protocol", "transport", "codec", "encoding", "format", "profile", "channel",
        "resolution", "width", "height", "fps", "max_fps", "min_fps", "bitrate", "bitrate_kbps", "gop",
        "keyframe_interval", "latency_ms", "buffer_ms", "timeout_s", "timeout_ms", "retries", "onvif", "ptz",
        "preset", "host", "hostname", "ip", "address", "port", "path",
        # device
        "vendor", "manufacturer", "model", "model_name", "model_version", "firmware", "version", "name", "type",
        "kind", "description", "notes", "enabled", "rotation", "flip", "mirror", "orientation", "heading",
        "direction", "lanes", "mount_height_m", "tilt", "pan", "zoom", "timezone",
        # inference
        "detector", "tracker", "inference", "classes", "labels", "threshold", "thresholds", "confidence",
        "confidence_threshold", "min_confidence", "nms_threshold", "iou_threshold", "frame_skip", "interval_ms",
        "batch_size", "roi", "regions", "polygon", "points", "x", "y",
    }
)  # fmt: skip
# Keys whose value is a map of names to numbers (per-class thresholds): its numbers are shown whatever the name.
NUMERIC_MAP_KEYS = frozenset({"thresholds", "class_thresholds", "confidence_thresholds", "min_confidence"})
# Keys that say where the stream is: a stored secret is reused only while these (and every URL) are unchanged.
ADDRESS_KEYS = frozenset({"host", "hostname", "ip", "address", "port", "path", "onvif", "stream", "streams"})
SHOWN_QUERY_PARAMETERS = frozenset({"channel", "subtype", "stream", "profile", "resolution", "fps", "transport", "tcp"})

URL_IN_TEXT = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^\s/?#@]*@)?(?P<rest>[^\s?#]*)(?P<query>\?[^\s#]*)?",
    re.IGNORECASE,
)


def _normal(key: object) -> str:
    return str(key).strip().lower().replace("-", "_")


def is_shown_key(key: object) -> bool:
    extra = settings.CAMERA_CONFIG_SHOWN_KEYS
    normal = _normal(key)
    return normal in SHOWN_KEYS or normal in {_normal(name) for name in extra}


def _mask_query(query: str) -> str:
    pairs = []
    for pair in query[1:].split("&"):
        name, has_value, _ = pair.partition("=")
        if not has_value:
            pairs.append(MASK if pair else pair)  # a bare `?token` is a value, not a name
        elif _normal(name) in SHOWN_QUERY_PARAMETERS:
            pairs.append(pair)
        else:
            pairs.append(f"{name}={MASK}")
    return "?" + "&".join(pairs)


def mask_text(text: str) -> str:
    """`text` with every URL in it stripped of its user-info and of non-allow-listed query values."""

    def replace(match: re.Match[str]) -> str:
        userinfo = f"{MASK}@" if match["userinfo"] else ""
        query = _mask_query(match["query"]) if match["query"] else ""
        return f"{match['scheme']}{userinfo}{match['rest']}{query}"

    return URL_IN_TEXT.sub(replace, text) if "://" in text else text


def _mask_shown(value: Any, depth: int, *, numeric_map: bool = False) -> Any:
    if isinstance(value, dict | list) and depth + 1 > settings.CAMERA_CONFIG_MAX_DEPTH:
        # Deeper than a config may be (stored before the limit existed): show nothing rather than recurse.
        return MASK
    if isinstance(value, dict):
        if numeric_map:
            return {
                key: item if isinstance(item, int | float) else _mask_value(key, item, depth + 1)
                for key, item in value.items()
            }
        return {key: _mask_value(key, item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_shown(item, depth + 1, numeric_map=numeric_map) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value  # numbers, booleans, null


def _mask_value(key: object, value: Any, depth: int) -> Any:
    if not is_shown_key(key):
        return MASK
    return _mask_shown(value, depth, numeric_map=_normal(key) in NUMERIC_MAP_KEYS)


def mask_config(config: Any) -> Any:
    """What a reader may see of `config`: shown keys with their URLs' credentials masked, every other key's
    value replaced by MASK. A copy; the original is not modified."""
    if not isinstance(config, dict):
        return MASK if config not in (None, {}) else config
    return {key: _mask_value(key, item, 1) for key, item in config.items()}


def config_filter_check(config_filter: Any) -> None:
    """Raise ValidationError unless a containment filter on `config` only names what readers see."""
    if not isinstance(config_filter, dict):
        raise ValidationError({"config": ['config must be a JSON object, e.g. {"resolution": "1080p"}.']})
    if mask_config(config_filter) != config_filter:
        raise ValidationError(
            {"config": ["Filtering is allowed on shown config keys only, without credentials (docs/security.md)."]}
        )


# --- Writes: placeholders sent back -----------------------------------------------------------------------


def _contains_mask(value: Any) -> bool:
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, dict):
        return any(_contains_mask(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_mask(item) for item in value)
    return False


def _refuse(path: str, reason: str) -> ValidationError:
    return ValidationError({"config": [f"{path}: {reason}"]})


def _restore(submitted: Any, stored: Any, path: str) -> tuple[Any, bool]:
    """(submitted with placeholders replaced by stored values, whether any was)."""
    if isinstance(submitted, dict):
        stored_dict = stored if isinstance(stored, dict) else {}
        restored: dict[str, Any] = {}
        used = False
        for key, item in submitted.items():
            here = f"{path}.{key}"
            if item == MASK:
                if key in stored_dict:  # a placeholder with nothing stored behind it is dropped
                    restored[key] = stored_dict[key]
                    used = True
                continue
            restored[key], item_used = _restore(item, stored_dict.get(key), here)
            used = used or item_used
        return restored, used
    if isinstance(submitted, list):
        stored_list = stored if isinstance(stored, list) else []
        items = []
        used = False
        for index, item in enumerate(submitted):
            stored_item = stored_list[index] if index < len(stored_list) else None
            if item == MASK and index < len(stored_list):  # an item shown whole as the placeholder (too deep)
                items.append(stored_item)
                used = True
                continue
            restored_item, item_used = _restore(item, stored_item, f"{path}[{index}]")
            items.append(restored_item)
            used = used or item_used
        return items, used
    if isinstance(submitted, str) and MASK in submitted:
        # A string with a placeholder inside (a URL's user-info or token): kept only if it is exactly what the
        # stored value shows; a changed host, path or parameter needs the credentials again.
        if isinstance(stored, str) and mask_text(stored) == submitted:
            return stored, True
        raise _refuse(path, f"contains {MASK} but is not the stored value: send the whole value with its credentials.")
    return submitted, False


def _addresses(value: Any, path: str = "config", *, under_address: bool = False) -> Iterator[tuple[str, str]]:
    """(path, masked value) of everything that says where the stream is: URLs and address keys' values."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _addresses(item, f"{path}.{key}", under_address=under_address or _normal(key) in ADDRESS_KEYS)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _addresses(item, f"{path}[{index}]", under_address=under_address)
    elif under_address or (isinstance(value, str) and "://" in value):
        yield path, mask_text(str(value))


def config_restore_masked(submitted: Any, original: Any) -> Any:
    """`submitted` with every placeholder replaced by the stored value at the same place in `original`.

    Raises ValidationError (a 422, nothing written) when a placeholder would keep a stored secret while the
    stream's address changed: a URL holding MASK that differs from the stored one, or any URL or address key
    (host, port …) that changed in a config that sends a placeholder back."""
    if not _contains_mask(submitted):
        return submitted
    restored, used = _restore(submitted, original, "config")
    if used and dict(_addresses(restored)) != dict(_addresses(original)):
        raise _refuse(
            "config",
            f"the stream address changed, so the stored credentials shown as {MASK} are not kept: "
            "send them again with the new address.",
        )
    return restored
