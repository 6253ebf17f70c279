"""Media for players fetched over HTTP with Voximplant's limits, and kept in an on-disk cache.

Limits (reference section 4.8): a playback file is at most 10 MB and must arrive within 12 s. The
12 s cover everything (name lookup, connecting, redirects, the body): a slow server delays a
player's start, and a scenario waiting for PlaybackReady should fail in bounded time.

The cache follows Voximplant's (reference section 3.4): keyed by URL only, headers ignored, entries
kept up to two weeks. Only GET responses are cached; a POST is a request to compute something (a
TTS service, say), so it is always sent and its answer is never stored. Entries live in one file
each, named by the SHA-256 of the URL, written to a temporary name and renamed so that a crash never
leaves half a file under a real name. The file's mtime is the time it was fetched (by the injected
clock). Eviction is least recently used by total size; the use order lives in memory and starts
from the mtimes when the directory is first scanned.

Concurrent gets of one URL share a single download: it runs as a task owned by the fetcher (so one
caller giving up does not cancel it for the others); `close()` cancels and awaits those tasks.
All disk access runs on worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from yarl import URL

from appliance.media.graph import MediaError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S: Final = 12.0  # Voximplant's download timeout for playback URLs ("Timeout is reached")
MAX_BYTES: Final = 10 * 1024 * 1024  # Voximplant's 10 MB playback file limit (read as MiB: the larger)
MAX_REDIRECTS: Final = 5  # enough for http->https and a CDN hop or two; a loop fails fast
CACHE_TTL_S: Final = 14 * 24 * 3600  # Voximplant keeps URL media "up to 2 weeks"
DEFAULT_CACHE_BYTES: Final = 256 * 1024 * 1024  # a few hundred prompts; the data partition is shared
READ_CHUNK: Final = 64 * 1024
METHODS: Final = ("GET", "POST")  # URLPlayerRequestMethod
SCHEMES: Final = ("http", "https")
_SUFFIX: Final = ".media"
_TMP_SUFFIX: Final = ".tmp"


class FetchError(MediaError, ValueError):
    """A download that failed. `kind` is one of "timeout", "too large", "http status N", "unreachable",
    "bad url" or "bad request" (a method or header the fetcher refuses)."""

    def __init__(self, kind: str, url: str, detail: str = "") -> None:
        super().__init__(f"{url}: {kind}" + (f" ({detail})" if detail else ""))
        self.kind = kind
        self.url = url


@dataclass(slots=True)
class _Entry:
    size: int
    fetched_at: float


class MediaFetcher:
    """Downloads and caches player media. One per appliance; `close()` when done (safe twice)."""

    def __init__(
        self,
        cache_dir: Path,
        max_cache_bytes: int = DEFAULT_CACHE_BYTES,
        *,
        timeout_s: float = FETCH_TIMEOUT_S,
        max_bytes: int = MAX_BYTES,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dir = cache_dir
        self._max_cache_bytes = max_cache_bytes
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # key -> entry, least recently used first
        self._cached_bytes = 0
        self._scanned = False
        self._scan_lock = asyncio.Lock()
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    async def get(
        self,
        url: str,
        method: str = "GET",
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> bytes:
        """The body at `url`, from the cache when a fresh copy is there (GET only). Raises FetchError."""
        if self._closed:
            raise RuntimeError("MediaFetcher is closed")
        method = method.upper()
        if method not in METHODS:
            raise FetchError("bad request", url, f"method {method!r}; allowed: {', '.join(METHODS)}")
        _check_url(url)
        header_list = list(headers)
        _check_headers(url, header_list)
        if method == "POST":
            return await self._download(url, method, header_list, body)
        if body is not None:
            raise FetchError("bad request", url, "a GET request has no body")
        await self._scan()
        key = _key(url)
        cached = await self._read_cached(key)
        if cached is not None:
            return cached
        task = self._inflight.get(key)
        if task is None:
            # Later callers with other headers share this download: the cache ignores headers anyway.
            task = asyncio.create_task(self._fetch_and_store(key, url, header_list), name=f"fetch {url}")
            self._inflight[key] = task
            task.add_done_callback(self._fetch_done)
        return await asyncio.shield(task)

    def _fetch_done(self, task: asyncio.Task[bytes]) -> None:
        key = next((k for k, t in self._inflight.items() if t is task), None)
        if key is not None:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, as every caller may have given up waiting

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, FetchError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- HTTP ------------------------------------------------------------------------------------

    async def _download(self, url: str, method: str, headers: list[tuple[str, str]], body: bytes | None) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self._timeout_s)
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                timeout=timeout,
            ) as resp:
                if not 200 <= resp.status < 300:
                    raise FetchError(f"http status {resp.status}", url, resp.reason or "")
                length = resp.content_length
                if length is not None and length > self._max_bytes:
                    raise FetchError("too large", url, f"Content-Length {length}, the limit is {self._max_bytes}")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(READ_CHUNK):
                    data += chunk
                    if len(data) > self._max_bytes:
                        raise FetchError("too large", url, f"more than {self._max_bytes} bytes")
                return bytes(data)
        except TimeoutError as e:
            raise FetchError("timeout", url, f"no complete answer within {self._timeout_s:g} s") from e
        except aiohttp.TooManyRedirects as e:
            raise FetchError("unreachable", url, f"more than {MAX_REDIRECTS} redirects") from e
        except aiohttp.NonHttpUrlRedirectClientError as e:
            raise FetchError("bad url", url, f"redirected to {e}") from e
        except aiohttp.InvalidURL as e:
            raise FetchError("bad url", url, str(e)) from e
        except aiohttp.ClientError as e:
            raise FetchError("unreachable", url, str(e) or type(e).__name__) from e

    # --- cache -----------------------------------------------------------------------------------

    async def _fetch_and_store(self, key: str, url: str, headers: list[tuple[str, str]]) -> bytes:
        data = await self._download(url, "GET", headers, None)
        if len(data) > self._max_cache_bytes:
            return data  # would evict everything and still not fit
        now = self._clock()
        try:
            await asyncio.to_thread(_write_atomic, self._path(key), data, now)
        except OSError as e:  # a full or read-only data partition costs the cache, not the playback
            log.warning("cannot cache %s: %s", url, e)
            return data
        old = self._entries.pop(key, None)
        if old is not None:
            self._cached_bytes -= old.size
        self._entries[key] = _Entry(len(data), now)
        self._cached_bytes += len(data)
        await self._evict()
        return data

    async def _read_cached(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry.fetched_at > self._ttl_s:
            return None  # stale: refetched, and replaced when the new copy arrives
        try:
            data = await asyncio.to_thread(self._path(key).read_bytes)
        except OSError as e:
            log.warning("media cache entry %s unreadable, refetching: %s", key, e)
            self._forget(key)
            return None
        if key in self._entries:  # it may have been evicted while the thread read it
            self._entries.move_to_end(key)
        return data

    async def _evict(self) -> None:
        victims: list[Path] = []
        while self._cached_bytes > self._max_cache_bytes and self._entries:
            key = next(iter(self._entries))
            self._forget(key)
            victims.append(self._path(key))
        if victims:
            await asyncio.to_thread(_unlink_all, victims)

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._cached_bytes -= entry.size

    async def _scan(self) -> None:
        async with self._scan_lock:
            if self._scanned:
                return
            found = await asyncio.to_thread(_scan_dir, self._dir)
            for key, size, mtime in sorted(found, key=lambda f: f[2]):
                self._entries[key] = _Entry(size, mtime)
                self._cached_bytes += size
            self._scanned = True
            await self._evict()  # the limit may have been lowered since the last run

    def _path(self, key: str) -> Path:
        return self._dir / (key + _SUFFIX)


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _check_url(url: str) -> None:
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as e:
        raise FetchError("bad url", url, str(e)) from e
    if parsed.scheme not in SCHEMES:
        raise FetchError("bad url", url, f"scheme {parsed.scheme!r}; only {' and '.join(SCHEMES)} are fetched")
    if not parsed.host:
        raise FetchError("bad url", url, "no host")


def _check_headers(url: str, headers: list[tuple[str, str]]) -> None:
    # A CR or LF in a script-supplied header would split the request (header injection).
    for name, value in headers:
        if not name or any(c in name for c in "\r\n\0:") or any(c in value for c in "\r\n\0"):
            raise FetchError("bad request", url, f"malformed header {name!r}")


def _write_atomic(path: Path, data: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
    try:
        tmp.write_bytes(data)
        os.utime(tmp, (mtime, mtime))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _scan_dir(directory: Path) -> list[tuple[str, int, float]]:
    """(key, size, mtime) of each entry; temporary files left by a crash are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    found = []
    for path in directory.iterdir():
        if path.name.endswith(_TMP_SUFFIX):
            path.unlink(missing_ok=True)
        elif path.name.endswith(_SUFFIX) and path.is_file():
            st = path.stat()
            found.append((path.name.removesuffix(_SUFFIX), st.st_size, st.st_mtime))
    return found
