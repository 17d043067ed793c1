"""Per-API-key rate limits, counted in Redis so every web process shares one budget per key.

A fixed one-second window (`INCR` + `EXPIRE` in one round trip) is exact across processes and costs
O(1) per request, unlike ninja's SimpleRateThrottle, which reads and rewrites a list of timestamps in
the cache on every call. When Redis is unreachable the limit is not enforced: ingest keeps working
through a Redis outage and the failure is logged.

    @router.post("/frames", auth=..., throttle=ApiKeyRateThrottle("ingest", per_second=settings.X))
"""

import logging
import time

import redis
from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}
_redis_down_until = 0.0  # after a failure, skip Redis for a moment rather than pay its timeout per request


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    if url not in _clients:
        timeout = settings.API_RATE_LIMIT_REDIS_TIMEOUT_SECONDS
        _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    return _clients[url]


class ApiKeyRateThrottle(BaseThrottle):
    def __init__(self, scope: str, *, setting: str) -> None:
        self.scope = scope
        self.setting = setting  # read per request, so tests and operators can change it
        self._retry_after = 1

    def allow_request(self, request: HttpRequest) -> bool:
        limit = int(getattr(settings, self.setting))
        api_key = getattr(request, "auth", None)
        if limit <= 0 or api_key is None:
            return True
        global _redis_down_until
        if time.monotonic() < _redis_down_until:
            return True
        # The window is the wall clock's second, shared by every process; the pause after a failure is an interval.
        key = f"ratelimit:{self.scope}:{api_key.prefix}:{int(time.time())}"
        try:
            pipeline = _redis().pipeline()
            pipeline.incr(key)
            pipeline.expire(key, 2)
            count, _ = pipeline.execute()
        except redis.RedisError as exc:
            _redis_down_until = time.monotonic() + 5
            logger.warning("Rate limit for %s not enforced for 5 s, Redis unavailable: %s", self.scope, exc)
            return True
        self._retry_after = 1
        return int(count) <= limit

    def wait(self) -> float | None:
        return self._retry_after
