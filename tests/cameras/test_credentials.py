"""Credential masking is an allow-list: what is shown is known to be harmless, everything else is masked; a
masked value sent back keeps its secret only while the stream's address is unchanged (docs/security.md)."""

import orjson
import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cameras.credentials import MASK, SHOWN_KEYS, config_filter_check, config_restore_masked, mask_config

SECRET = "Zq7SECRETvalue"  # what must never come out


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("rtsp://admin:pa55@10.1.1.1:554/live", f"rtsp://{MASK}@10.1.1.1:554/live"),
        ("https://tok3n@cams.example.com/x", f"https://{MASK}@cams.example.com/x"),
        ("rtsp://10.1.1.1/live?channel=2&access_token=s3", f"rtsp://10.1.1.1/live?channel=2&access_token={MASK}"),
        ("rtsp://10.1.1.1/live?s3cr3t", f"rtsp://10.1.1.1/live?{MASK}"),
        ("rtsp://10.1.1.1/live", "rtsp://10.1.1.1/live"),
        ("ffmpeg -i rtsp://u:pw@10.0.0.5/s -f null", f"ffmpeg -i rtsp://{MASK}@10.0.0.5/s -f null"),
        ("primary rtsp://a:b@h1/ backup rtsp://c:d@h2/", f"primary rtsp://{MASK}@h1/ backup rtsp://{MASK}@h2/"),
        ("not a url: user:pass", "not a url: user:pass"),
    ],
)
def test_urls_anywhere_in_a_shown_string_lose_their_credentials(value, masked):
    assert mask_config({"stream_url": value}) == {"stream_url": masked}


def test_only_known_keys_are_shown_every_other_value_is_masked_at_any_depth():
    config = {
        "pin": 1234,
        "access_key": "AKIA…",
        "password": "a",
        "credentials": {"user": "u", "pass": "p"},
        "onvif": {"port": 80, "secret": "c", "user": "admin"},
        "streams": [{"url": "ftp://u:p@host/", "passphrase": "x"}],
        "resolution": "1080p",
        "fps": 25,
        "thresholds": {"car": 0.5, "truck": "t0ken"},
    }

    assert mask_config(config) == {
        "pin": MASK,
        "access_key": MASK,
        "password": MASK,
        "credentials": MASK,
        "onvif": {"port": 80, "secret": MASK, "user": MASK},
        "streams": [{"url": f"ftp://{MASK}@host/", "passphrase": MASK}],
        "resolution": "1080p",
        "fps": 25,
        "thresholds": {"car": 0.5, "truck": MASK},
    }
    assert config["pin"] == 1234  # the original is not modified


def test_a_config_nested_past_the_limit_is_masked_below_it_without_recursing(settings):
    deep: dict = {}
    node = deep
    for _ in range(5000):  # far past Python's recursion limit
        node["onvif"] = {}
        node = node["onvif"]

    masked = mask_config(deep)

    depth, node = 0, masked
    while isinstance(node, dict):
        node, depth = node["onvif"], depth + 1
    assert node == MASK
    assert depth == settings.CAMERA_CONFIG_MAX_DEPTH


def test_a_masked_config_sent_back_unchanged_restores_every_secret():
    stored = {
        "stream_url": "rtsp://admin:pa55@10.1.1.1/live?token=t1&channel=1",
        "password": "a",
        "credentials": {"user": "u", "pass": "p"},
        "streams": [{"url": "ftp://u:p@host/"}],
        "fps": 25,
    }
    submitted = {**mask_config(stored), "fps": 30}  # a change elsewhere keeps the secrets

    assert config_restore_masked(submitted, stored) == {**stored, "fps": 30}


@pytest.mark.parametrize(
    "submitted",
    [
        {"stream_url": f"rtsp://{MASK}@203.0.113.9/live", "password": MASK},  # new host inside the URL
        {"stream_url": "rtsp://10.1.1.1/live", "host": "203.0.113.9", "password": MASK},  # new host beside it
        {"stream_url": "rtsp://203.0.113.9/live", "password": MASK},  # the URL changed, password masked
    ],
)
def test_a_placeholder_cannot_rebind_a_stored_secret_to_another_address(submitted):
    stored = {"stream_url": "rtsp://admin:pa55@10.1.1.1/live", "host": "10.1.1.1", "password": "a"}
    if "host" not in submitted:
        submitted["host"] = "10.1.1.1"

    with pytest.raises(ValidationError) as refused:
        config_restore_masked(submitted, stored)

    assert "config" in refused.value.message_dict


def test_new_credentials_with_a_new_address_are_taken_as_sent():
    stored = {"stream_url": "rtsp://admin:old@10.1.1.1/live", "password": "old"}
    submitted = {"stream_url": "rtsp://admin:new@10.2.2.2/live", "password": "new"}

    assert config_restore_masked(submitted, stored) == submitted


def test_a_placeholder_with_nothing_stored_is_dropped_not_saved():
    assert config_restore_masked({"password": MASK, "fps": 25}, {}) == {"fps": 25}


@pytest.mark.parametrize(
    "config_filter",
    [
        {"pin": "1234"},
        {"access_key": "AKIA"},
        {"password": "a"},
        {"stream_url": "rtsp://admin:pa55@10.1.1.1/live"},
        {"stream_url": "rtsp://10.1.1.1/live?token=t1"},
        {"onvif": {"user": "admin"}},
        ["not", "an", "object"],
    ],
)
def test_the_containment_filter_refuses_anything_readers_cannot_see(config_filter):
    with pytest.raises(ValidationError):
        config_filter_check(config_filter)


def test_the_containment_filter_accepts_shown_values():
    config_filter_check({"resolution": "1080p", "onvif": {"port": 80}, "stream_url": "rtsp://10.1.1.1/live"})


# --- Properties: whatever the config, a planted secret never comes out, and a round trip keeps it --------------

shown_keys = st.sampled_from(sorted(SHOWN_KEYS))
other_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=12).filter(
    lambda key: key.lower().replace("-", "_") not in SHOWN_KEYS
)
plain_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ./:-", max_size=20)
scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False)
secret_strings = st.sampled_from(
    [
        SECRET,
        f"rtsp://admin:{SECRET}@10.0.0.5/live",
        f"see rtsp://{SECRET}@cam.example/s for the stream",
        f"http://10.0.0.5/snap.jpg?channel=1&key={SECRET}",
        f"rtsp://10.0.0.5/live?{SECRET}",
    ]
)


def configs_with_secrets() -> st.SearchStrategy:
    leaves = scalars | plain_text
    values = st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(shown_keys | other_keys, children, max_size=3)
        ),
        max_leaves=12,
    )
    # Secrets under keys readers may not see, and inside strings under keys they may.
    secret_entries = st.dictionaries(other_keys, st.just(SECRET) | secret_strings, min_size=1, max_size=2)
    shown_secret_strings = st.dictionaries(shown_keys, secret_strings.filter(lambda s: "://" in s), max_size=2)
    return st.builds(
        lambda base, hidden, in_strings, nested_key, nested: {
            **base,
            **hidden,
            **in_strings,
            nested_key: {**nested, "secret": SECRET},
        },
        st.dictionaries(shown_keys | other_keys, values, max_size=4),
        secret_entries,
        shown_secret_strings,
        shown_keys,
        st.dictionaries(shown_keys, values, max_size=2),
    )


PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(configs_with_secrets())
def test_property_no_planted_secret_is_ever_shown(config):
    assert SECRET.encode() not in orjson.dumps(mask_config(config))


@PROPERTY_SETTINGS
@given(configs_with_secrets())
def test_property_a_masked_config_sent_back_as_is_restores_exactly_the_stored_one(config):
    assert config_restore_masked(mask_config(config), config) == config


@PROPERTY_SETTINGS
@given(configs_with_secrets(), st.sampled_from(["203.0.113.9", "evil.example:8554"]))
def test_property_no_stored_secret_follows_a_changed_address(config, new_host):
    config = {**config, "stream_url": f"rtsp://admin:{SECRET}@10.0.0.5/live"}
    submitted = mask_config(config)
    submitted["stream_url"] = submitted["stream_url"].replace("10.0.0.5", new_host)

    try:
        restored = config_restore_masked(submitted, config)
    except ValidationError:
        return  # refused: the secret must be sent again
    assert SECRET not in restored.get("stream_url", "")


@PROPERTY_SETTINGS
@given(configs_with_secrets())
def test_property_the_filter_cannot_name_a_planted_secret(config):
    for key, value in config.items():
        if SECRET.encode() in orjson.dumps(value):
            with pytest.raises(ValidationError):
                config_filter_check({key: value})
