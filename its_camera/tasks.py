"""Platform tasks."""

import redis
from celery import shared_task
from django.conf import settings

PING = "its_camera.tasks.ping"


@shared_task(name=PING)
def ping(token: str) -> str:
    """Proves the path beat/API -> broker -> worker works end to end: the worker records `token` in Redis
    for a minute (`its:ping:<token>`), where the sender can look for it."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.set(f"its:ping:{token}", "pong", ex=60)
    finally:
        client.close()
    return token
