import redis

from its_camera.devservices import embedded_redis


def test_embedded_redis_starts_keeps_its_data_dir_and_stops(tmp_path):
    with embedded_redis(tmp_path / "redis") as url:
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        assert client.get("k") == b"v"

    assert (tmp_path / "redis" / "dump.rdb").exists()  # saved on shutdown, reused next run
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        stopped = False
    except redis.ConnectionError:
        stopped = True
    assert stopped
