"""Request rate limits of the management API: a token bucket per API key and one per source address.

A bucket holds `burst` requests and refills at `rate` per second; a request finding it empty is
answered 429 with how long to wait. Failed authentications draw from a smaller bucket of their own
per source, so guessing keys is slow whatever the general limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

IDLE_SECONDS = 600.0  # buckets untouched this long are full again: forget them


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._swept = time.monotonic()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one request from `key`'s bucket: 0 if allowed, else the seconds until one is."""
        bucket = self._refill(key, time.monotonic() if now is None else now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def waiting(self, key: str, now: float | None = None) -> float:
        """The seconds until `key` may make a request (0: now), taking nothing."""
        bucket = self._refill(key, time.monotonic() if now is None else now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def _refill(self, key: str, now: float) -> _Bucket:
        self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        return bucket

    def _sweep(self, now: float) -> None:
        if now - self._swept < IDLE_SECONDS:
            return
        self._swept = now
        for key in [k for k, b in self._buckets.items() if now - b.at > IDLE_SECONDS]:
            del self._buckets[key]
