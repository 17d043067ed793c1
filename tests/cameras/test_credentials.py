import pytest

from cameras.credentials import MASK, config_restore_masked, contains_credentials, mask_config


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("rtsp://admin:pa55@10.1.1.1:554/live", f"rtsp://admin:{MASK}@10.1.1.1:554/live"),
        ("https://tok3n@cams.example.com/x", f"https://{MASK}@cams.example.com/x"),
        ("rtsp://10.1.1.1/live?channel=2&access_token=s3", f"rtsp://10.1.1.1/live?channel=2&access_token={MASK}"),
        ("rtsp://10.1.1.1/live", "rtsp://10.1.1.1/live"),
        ("not a url: user:pass", "not a url: user:pass"),
    ],
)
def test_urls_lose_their_credentials(value, masked):
    assert mask_config({"stream_url": value}) == {"stream_url": masked}


def test_secret_keys_are_masked_at_any_depth_and_other_values_kept():
    config = {
        "password": "a",
        "Stream_Token": "b",
        "credentials": {"user": "u", "pass": "p"},
        "onvif": {"port": 80, "secret": "c"},
        "backups": [{"url": "ftp://u:p@host/"}],
        "resolution": "1080p",
        "thresholds": {"car": 0.5},
    }

    assert mask_config(config) == {
        "password": MASK,
        "Stream_Token": MASK,
        "credentials": MASK,
        "onvif": {"port": 80, "secret": MASK},
        "backups": [{"url": f"ftp://u:{MASK}@host/"}],
        "resolution": "1080p",
        "thresholds": {"car": 0.5},
    }
    assert config["password"] == "a"  # the original is not modified


def test_a_masked_config_sent_back_restores_every_secret():
    stored = {
        "stream_url": "rtsp://admin:pa55@10.1.1.1/live?token=t1&ch=1",
        "password": "a",
        "credentials": {"user": "u", "pass": "p"},
        "backups": [{"url": "ftp://u:p@host/"}],
    }

    assert config_restore_masked(mask_config(stored), stored) == stored


def test_changed_values_win_over_stored_ones():
    stored = {"stream_url": "rtsp://admin:old@10.1.1.1/live", "password": "old"}
    submitted = {"stream_url": f"rtsp://admin:{MASK}@10.2.2.2/live", "password": "new"}

    assert config_restore_masked(submitted, stored) == {
        "stream_url": "rtsp://admin:old@10.2.2.2/live",
        "password": "new",
    }


def test_a_placeholder_with_nothing_stored_is_dropped_not_saved():
    assert config_restore_masked({"password": MASK, "fps": 25}, {}) == {"fps": 25}


def test_contains_credentials():
    assert contains_credentials({"token": "x"})
    assert contains_credentials({"stream_url": "rtsp://u:p@h/"})
    assert not contains_credentials({"resolution": "1080p", "model": {"name": "yolo"}})
