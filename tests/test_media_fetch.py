"""Fetching player media from a real aiohttp server on 127.0.0.1: limits, errors and the cache."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from test_media_audiofile import make_file, peak_hz, tone

from appliance.media.audiofile import AudioFileError, decode_async
from appliance.media.fetch import CACHE_TTL_S, FETCH_TIMEOUT_S, MAX_BYTES, FetchError, MediaFetcher

FORMATS = ("wav", "mp3", "flac", "ogg")
TOO_BIG = 11 * 1000 * 1000  # 11 MB: over the 10 MiB limit
SHORT_TIMEOUT_S = 0.4  # stands in for FETCH_TIMEOUT_S, so that a timeout costs well under a second


@pytest.fixture(scope="module")
def media() -> dict[str, bytes]:
    made = {}
    for fmt in FORMATS:
        try:
            made[fmt] = make_file(fmt, np.repeat(tone(1000, 44100, seconds=1.0), 2, axis=1), 44100)
        except pytest.skip.Exception:
            continue  # sox cannot write it here; the tests of that format skip
    corrupt = bytearray(made["mp3"])
    corrupt[4:] = np.random.default_rng(3).integers(0, 256, len(corrupt) - 4, dtype=np.uint8).tobytes()
    made["corrupt"] = bytes(corrupt)
    return made


@dataclass
class Server:
    media: dict[str, bytes]
    port: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    hold_s: float = 0.0  # how long /media answers take, for concurrent gets

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] += 1
        if name not in self.media:
            raise web.HTTPNotFound()
        if self.hold_s:
            await asyncio.sleep(self.hold_s)
        return web.Response(body=self.media[name])

    async def sized(self, request: web.Request) -> web.Response:
        self.hits["sized"] += 1
        return web.Response(body=bytes(int(request.match_info["size"])))

    async def echo(self, request: web.Request) -> web.Response:
        self.hits["echo"] += 1
        return web.Response(body=request.headers.get("X-Token", "").encode() + await request.read())

    async def slow(self, request: web.Request) -> web.Response:
        # Voximplant's case: a server that takes 15 s; released at teardown instead of sleeping on.
        self.hits["slow"] += 1
        self.slow_started.set()
        await asyncio.wait_for(self.release.wait(), 15)
        return web.Response(body=b"late")

    async def slow_body(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        while not self.release.is_set():
            await response.write(b"x" * 100)
            await asyncio.sleep(0.05)
        return response

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=bytes(TOO_BIG))  # with Content-Length

    async def big_chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()  # no Content-Length: the limit must be counted while reading
        await response.prepare(request)
        block = bytes(1024 * 1024)
        for _ in range(TOO_BIG // len(block) + 1):
            try:
                await response.write(block)
            except ConnectionError:
                break
        return response

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/media/{request.match_info['name']}")

    async def loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def to_file(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")


@pytest.fixture
async def server(media: dict[str, bytes]) -> AsyncIterator[Server]:
    s = Server(dict(media))
    app = web.Application()
    app.router.add_get("/media/{name}", s.file)
    app.router.add_get("/sized/{size}", s.sized)
    app.router.add_post("/echo", s.echo)
    app.router.add_get("/slow", s.slow)
    app.router.add_get("/slow-body", s.slow_body)
    app.router.add_get("/big", s.big)
    app.router.add_get("/big-chunked", s.big_chunked)
    app.router.add_get("/redirect/{name}", s.redirect)
    app.router.add_get("/loop", s.loop)
    app.router.add_get("/to-file", s.to_file)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    s.port = runner.addresses[0][1]
    yield s
    s.release.set()
    await runner.cleanup()


def disk(directory: Path) -> dict[str, int]:
    """The cache directory's files and sizes (a few entries: fine to list from a test coroutine)."""
    return {p.name: p.stat().st_size for p in directory.iterdir()}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fetcher(tmp_path: Path) -> AsyncIterator[MediaFetcher]:
    f = MediaFetcher(tmp_path / "cache", 50 * 1024 * 1024, timeout_s=SHORT_TIMEOUT_S)
    yield f
    await f.close()


def test_the_limits_are_voximplants() -> None:
    assert FETCH_TIMEOUT_S == 12
    assert MAX_BYTES == 10 * 1024 * 1024
    assert CACHE_TTL_S == 14 * 24 * 3600


# --- fetching and decoding ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_each_format_is_fetched_and_decodes_to_the_tone(
    server: Server, fetcher: MediaFetcher, media: dict[str, bytes], fmt: str
) -> None:
    if fmt not in media:
        pytest.skip(f"cannot make {fmt} here")
    data = await fetcher.get(server.url(f"/media/{fmt}"))
    assert data == media[fmt]
    decoded = await decode_async(data, fmt)
    assert decoded.source_format == fmt
    assert abs(peak_hz(decoded.samples) - 1000) < 5
    assert abs(decoded.duration_ms - 1000) <= 60


async def test_a_corrupt_mp3_is_fetched_but_refused_by_the_decoder(server: Server, fetcher: MediaFetcher) -> None:
    data = await fetcher.get(server.url("/media/corrupt"))
    with pytest.raises(AudioFileError, match="corrupt"):
        await decode_async(data, "corrupt.mp3")


async def test_redirects_are_followed(server: Server, fetcher: MediaFetcher, media: dict[str, bytes]) -> None:
    assert await fetcher.get(server.url("/redirect/wav")) == media["wav"]


async def test_post_sends_headers_and_body_and_is_never_cached(server: Server, fetcher: MediaFetcher) -> None:
    for _ in range(2):
        data = await fetcher.get(server.url("/echo"), "post", [("X-Token", "t1")], b"say hello")
        assert data == b"t1say hello"
    assert server.hits["echo"] == 2


# --- errors ---------------------------------------------------------------------------------------


async def expect(kind: str, fetcher: MediaFetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher.get(url)
    assert caught.value.kind == kind, caught.value
    assert isinstance(caught.value, ValueError)
    return caught.value


async def test_a_slow_server_times_out(server: Server, fetcher: MediaFetcher) -> None:
    start = time.monotonic()
    error = await expect("timeout", fetcher, server.url("/slow"))
    assert SHORT_TIMEOUT_S <= time.monotonic() - start < SHORT_TIMEOUT_S + 0.5
    assert f"within {SHORT_TIMEOUT_S:g} s" in str(error)


async def test_the_timeout_covers_a_body_that_trickles(server: Server, fetcher: MediaFetcher) -> None:
    start = time.monotonic()
    await expect("timeout", fetcher, server.url("/slow-body"))
    assert time.monotonic() - start < SHORT_TIMEOUT_S + 0.5


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_more_than_10_mib_is_too_large(server: Server, fetcher: MediaFetcher, path: str) -> None:
    error = await expect("too large", fetcher, server.url(path))
    assert str(MAX_BYTES) in str(error)
    assert ("Content-Length" in str(error)) == (path == "/big")


async def test_exactly_the_limit_is_accepted(server: Server, fetcher: MediaFetcher) -> None:
    assert len(await fetcher.get(server.url(f"/sized/{MAX_BYTES}"))) == MAX_BYTES


async def test_http_errors_carry_the_status(server: Server, fetcher: MediaFetcher) -> None:
    error = await expect("http status 404", fetcher, server.url("/media/missing"))
    assert "Not Found" in str(error)


async def test_redirect_loops_and_redirects_off_http_fail(server: Server, fetcher: MediaFetcher) -> None:
    error = await expect("unreachable", fetcher, server.url("/loop"))
    assert "redirects" in str(error)
    await expect("bad url", fetcher, server.url("/to-file"))


async def test_a_closed_port_is_unreachable(fetcher: MediaFetcher) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await expect("unreachable", fetcher, f"http://127.0.0.1:{port}/x.mp3")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.mp3", "data:audio/wav;base64,AAAA", "prompt.mp3", "http:///x"]
)
async def test_only_http_and_https_urls_are_fetched(fetcher: MediaFetcher, url: str) -> None:
    await expect("bad url", fetcher, url)


async def test_bad_methods_and_headers_are_refused(fetcher: MediaFetcher) -> None:
    with pytest.raises(FetchError, match="bad request"):
        await fetcher.get("http://127.0.0.1:9/a", "PUT")
    with pytest.raises(FetchError, match="bad request"):
        await fetcher.get("http://127.0.0.1:9/a", headers=[("X-A", "1\r\nHost: evil")])


# --- the cache ------------------------------------------------------------------------------------


async def test_a_second_get_is_served_from_the_cache_whatever_the_headers(
    server: Server, fetcher: MediaFetcher, media: dict[str, bytes]
) -> None:
    url = server.url("/media/mp3")
    assert await fetcher.get(url, headers=[("X-Token", "a")]) == media["mp3"]
    assert await fetcher.get(url, headers=[("X-Token", "b")]) == media["mp3"]
    assert server.hits["mp3"] == 1


async def test_the_cache_survives_a_restart_on_disk_and_is_written_atomically(
    server: Server, tmp_path: Path, media: dict[str, bytes]
) -> None:
    url = server.url("/media/wav")
    first = MediaFetcher(tmp_path, 10**8)
    await first.get(url)
    await first.close()
    await first.close()  # safe twice
    assert list(disk(tmp_path)) == [hashlib.sha256(url.encode()).hexdigest() + ".media"]
    (tmp_path / "leftover.media.abc.tmp").write_bytes(b"half")  # as a crash mid-write leaves it
    second = MediaFetcher(tmp_path, 10**8)
    assert await second.get(url) == media["wav"]
    await second.close()
    assert server.hits["wav"] == 1
    assert not [name for name in disk(tmp_path) if name.endswith(".tmp")]


async def test_entries_older_than_the_ttl_are_refetched(server: Server, tmp_path: Path) -> None:
    clock = Clock()
    fetcher = MediaFetcher(tmp_path, 10**8, clock=clock)
    url = server.url("/media/flac" if "flac" in server.media else "/media/wav")
    name = url.rsplit("/", 1)[1]
    await fetcher.get(url)
    clock.now += CACHE_TTL_S - 1
    await fetcher.get(url)
    assert server.hits[name] == 1
    clock.now += 2
    await fetcher.get(url)
    await fetcher.get(url)
    assert server.hits[name] == 2
    await fetcher.close()


async def test_eviction_keeps_the_cache_within_its_size_least_recently_used_first(
    server: Server, tmp_path: Path
) -> None:
    size = 100_000
    fetcher = MediaFetcher(tmp_path, 2 * size + size // 2)  # room for two
    a, b, c = (server.url(f"/sized/{size + i}") for i in range(3))
    await fetcher.get(a)
    await fetcher.get(b)
    await fetcher.get(a)  # a is now the most recently used
    await fetcher.get(c)  # evicts b
    assert fetcher.cached_bytes <= 2 * size + size // 2
    assert sum(disk(tmp_path).values()) == fetcher.cached_bytes
    hits = server.hits["sized"]
    await fetcher.get(a)
    await fetcher.get(c)
    assert server.hits["sized"] == hits
    await fetcher.get(b)
    assert server.hits["sized"] == hits + 1
    await fetcher.close()


async def test_a_body_larger_than_the_whole_cache_is_returned_but_not_kept(server: Server, tmp_path: Path) -> None:
    fetcher = MediaFetcher(tmp_path, 1000)
    assert len(await fetcher.get(server.url("/sized/5000"))) == 5000
    assert fetcher.cached_bytes == 0 and not disk(tmp_path)
    await fetcher.close()


async def test_a_smaller_limit_evicts_at_start(server: Server, tmp_path: Path) -> None:
    big = MediaFetcher(tmp_path, 10**8)
    for i in range(3):
        await big.get(server.url(f"/sized/{1000 + i}"))
    await big.close()
    small = MediaFetcher(tmp_path, 2500)
    await small.get(server.url("/sized/1001"))
    assert small.cached_bytes <= 2500
    assert sum(disk(tmp_path).values()) <= 2500
    await small.close()


async def test_concurrent_gets_of_one_url_fetch_once(
    server: Server, fetcher: MediaFetcher, media: dict[str, bytes]
) -> None:
    server.hold_s = 0.2
    results = await asyncio.gather(*(fetcher.get(server.url("/media/wav")) for _ in range(8)))
    assert all(r == media["wav"] for r in results)
    assert server.hits["wav"] == 1


async def test_one_caller_giving_up_does_not_cancel_the_shared_download(
    server: Server, fetcher: MediaFetcher, media: dict[str, bytes]
) -> None:
    server.hold_s = 0.2
    url = server.url("/media/wav")
    quitter = asyncio.create_task(fetcher.get(url))
    stayer = asyncio.create_task(fetcher.get(url))
    await asyncio.sleep(0.05)
    quitter.cancel()
    assert await stayer == media["wav"]
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert server.hits["wav"] == 1


async def test_concurrent_failures_are_shared_and_not_cached(server: Server, fetcher: MediaFetcher) -> None:
    gets = (fetcher.get(server.url("/media/missing")) for _ in range(3))
    results = await asyncio.gather(*gets, return_exceptions=True)
    assert all(isinstance(r, FetchError) and r.kind == "http status 404" for r in results)
    assert server.hits["missing"] == 1
    await expect("http status 404", fetcher, server.url("/media/missing"))
    assert server.hits["missing"] == 2


async def test_close_cancels_a_download_in_flight(server: Server, tmp_path: Path) -> None:
    fetcher = MediaFetcher(tmp_path, 10**8, timeout_s=10)
    task = asyncio.create_task(fetcher.get(server.url("/slow")))
    await server.slow_started.wait()
    await fetcher.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(RuntimeError, match="closed"):
        await fetcher.get(server.url("/media/wav"))
