"""RtpEndpoint and MediaPlane over real UDP sockets on 127.0.0.1.

Proven: audio crosses a bridge of two legs bit-exact, at its frequency and level, without gaps, under
well-formed RTP headers; symmetric RTP latches the first source, drops strays and re-latches to the
SDP's address; every kind of bad input is counted by kind and reported to the owner once per burst,
never raised, and a flood does not stop the media tick; RFC 4733 events are received once per key
and sent with the RFC's marker, timestamp, duration and end-bit rules; in-band keys are sent and
detected; RTCP reports go out with the right report block and reports coming in are read; comfort
noise plays as noise; SRTP passes audio and rejects a tampered packet; released ports go back to
the pool. Each test uses its own ports in 44000-44999 (the plane's pool and the test peers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from appliance.clock import RealClock
from appliance.media import codecs, rtcp
from appliance.media.dtmf import TelephoneEvent
from appliance.media.dtmf_tones import DtmfDetector, dtmf_tone
from appliance.media.endpoint import RtpEndpoint
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.media.srtp import AES_CM_128_HMAC_SHA1_80, SrtpContext, SrtpKeys, new_crypto

HOST = "127.0.0.1"
RTP = struct.Struct("!BBHII")
FRAME = 160
TONE_HZ = 1000.0
TONE_DBOV = -12.0  # sine peak relative to full scale
EVENTS_PT = 101

Samples = npt.NDArray[np.int16]


# Helpers: the negotiated media, the owner, test peers, sound measurement.


@dataclass(frozen=True)
class Media:
    remote_port: int
    remote_rtcp_port: int
    codec: str = "PCMU"
    payload_type: int = 0
    clock_rate: int = 8000
    telephone_event: int | None = EVENTS_PT
    ptime: int = 20
    remote_address: str = HOST
    direction: str = "sendrecv"
    srtp: SrtpKeys | None = None


@dataclass
class Owner:
    keys: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)

    def key_received(self, key: str, kind: str) -> None:
        self.keys.append((key, kind))

    def media_event(self, name: str, detail: str = "") -> None:
        self.events.append((name, detail))

    def errors(self, kind: str) -> list[str]:
        return [detail for name, detail in self.events if name == "MediaError" and detail.startswith(kind + ":")]

    def named(self, name: str) -> int:
        return sum(1 for event, _ in self.events if event == name)


def _bind_pair(first: int, last: int) -> tuple[int, socket.socket, socket.socket]:
    for port in range(first + first % 2, last, 2):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtp.bind((HOST, port))
            rtcp_sock.bind((HOST, port + 1))
        except OSError:
            rtp.close()
            rtcp_sock.close()
            continue
        rtp.setblocking(False)
        rtcp_sock.setblocking(False)
        return port, rtp, rtcp_sock
    raise RuntimeError(f"no free port pair in {first}-{last}")


class Peer:
    """The far end of a leg: an RTP socket on an even port and its RTCP socket above, both read on the loop."""

    def __init__(self, first: int, last: int, srtp: SrtpContext | None = None) -> None:
        self.port, self.rtp, self.rtcp = _bind_pair(first, last)
        self.srtp = srtp
        self.received: list[bytes] = []
        self.sources: list[tuple[str, int]] = []
        self.rtcp_received: list[bytes] = []
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.rtp.fileno(), self._read_rtp)
        self._loop.add_reader(self.rtcp.fileno(), self._read_rtcp)

    def _read_rtp(self) -> None:
        with contextlib.suppress(OSError):
            data, source = self.rtp.recvfrom(4096)
            self.received.append(self.srtp.unprotect(data) if self.srtp is not None else data)
            self.sources.append(source)

    def _read_rtcp(self) -> None:
        with contextlib.suppress(OSError):
            self.rtcp_received.append(self.rtcp.recvfrom(4096)[0])

    def packet(self, payload: bytes, payload_type: int = 0, marker: bool = False, timestamp: int | None = None,
               ssrc: int | None = None) -> bytes:
        """The next packet of our stream (sequence +1; the timestamp advances by the payload unless given)."""
        self.seq = (self.seq + 1) & 0xFFFF
        ts = self.ts if timestamp is None else timestamp
        if timestamp is None:
            self.ts = (self.ts + len(payload)) & 0xFFFFFFFF
        header = RTP.pack(0x80, payload_type | (0x80 if marker else 0), self.seq, ts,
                          self.ssrc if ssrc is None else ssrc)
        data = header + payload
        return self.srtp.protect(data) if self.srtp is not None else data

    def send(self, port: int, data: bytes) -> None:
        self.rtp.sendto(data, (HOST, port))

    def close(self) -> None:
        for sock in (self.rtp, self.rtcp):
            self._loop.remove_reader(sock.fileno())
            sock.close()

    def headers(self) -> list[tuple[int, int, int, int, int]]:
        return [RTP.unpack_from(data) for data in self.received]

    def audio(self, payload_type: int = 0) -> bytes:
        return b"".join(data[12:] for data in self.received if data[1] & 0x7F == payload_type)


@contextlib.contextmanager
def peer(first: int, last: int, srtp: SrtpContext | None = None) -> Iterator[Peer]:
    p = Peer(first, last, srtp)
    try:
        yield p
    finally:
        p.close()


@contextlib.asynccontextmanager
async def media_plane(first: int, last: int, start: bool = True) -> AsyncIterator[MediaPlane]:
    """A plane on a real clock, with any exception escaping into the event loop failing the test."""
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))
    plane = MediaPlane(RealClock(loop), RtpPorts(first, last))
    try:
        if start:
            plane.start()
        yield plane
    finally:
        plane.close()
        loop.set_exception_handler(previous)
    assert not escaped, escaped


def leg(plane: MediaPlane, owner: Owner, p: Peer, **media: object) -> RtpEndpoint:
    endpoint = plane.endpoint(HOST, owner)
    endpoint.configure(Media(p.port, p.port + 1, **media))  # type: ignore[arg-type]
    return endpoint


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.002)


async def play(p: Peer, port: int, payloads: list[bytes], payload_type: int = 0) -> None:
    """Send one payload every 20 ms on a fixed grid, as a phone does."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k, payload in enumerate(payloads):
        delay = start + k * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        p.send(port, p.packet(payload, payload_type))


def tone(seconds: float, hz: float = TONE_HZ, dbov: float = TONE_DBOV, start: int = 0) -> Samples:
    n = np.arange(start, start + int(seconds * 8000))
    return np.rint(32767 * 10 ** (dbov / 20) * np.sin(2 * np.pi * hz * n / 8000)).astype(np.int16)


def pcmu(samples: Samples) -> list[bytes]:
    data = codecs.ulaw_encode(samples).tobytes()
    return [data[i:i + FRAME] for i in range(0, len(data), FRAME)]


def decode(data: bytes) -> Samples:
    return codecs.ulaw_decode(np.frombuffer(data, dtype=np.uint8))


def dbov(samples: Samples) -> float:
    """RMS level relative to a full-scale sine's RMS (so a sine's dBov is its peak relative to full scale)."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return float(20 * np.log10(max(rms, 1e-9) / (32767 / np.sqrt(2))))


def rms_dbov(samples: Samples) -> float:
    """RMS relative to full scale (RFC 3389's dBov for noise)."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return float(20 * np.log10(max(rms, 1e-9) / 32767))


def peak_hz(samples: Samples) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


def tone_frames(audio: bytes) -> list[bytes]:
    """The received 20 ms frames from the first one that carries sound."""
    frames = [audio[i:i + FRAME] for i in range(0, len(audio) - FRAME + 1, FRAME)]
    loud = [i for i, f in enumerate(frames) if dbov(decode(f)) > TONE_DBOV - 6]
    return frames[loud[0]:] if loud else []


async def pace(plane: MediaPlane, endpoint: RtpEndpoint, p: Peer, packets: list[bytes], chunk: int = 20,
               counted: Callable[[], int] | None = None) -> None:
    """Deliver packets a chunk (fewer than a tick's flood limit) at a time, ticking the endpoint between.

    With `counted`, each chunk waits until that count has grown by the chunk's size.
    """
    for i in range(0, len(packets), chunk):
        before = counted() if counted is not None else 0
        part = packets[i:i + chunk]
        for data in part:
            p.send(endpoint.port, data)
        if counted is not None:
            await wait_until(lambda: counted() >= before + len(part))  # noqa: B023 (awaited here)
        else:
            await asyncio.sleep(0.01)
        endpoint.pull(plane.now())


def silence_payload() -> bytes:
    return codecs.ulaw_encode(np.zeros(FRAME, dtype=np.int16)).tobytes()


# 1. Audio through a bridge.


async def test_audio_crosses_a_bridge_bit_exact_with_clean_headers() -> None:
    async with media_plane(44000, 44019) as plane:
        with peer(44020, 44039) as pa, peer(44020, 44039) as pb:
            owner_a, owner_b = Owner(), Owner()
            a = leg(plane, owner_a, pa)
            b = leg(plane, owner_b, pb)
            plane.send(a.id, b.id)
            plane.send(b.id, a.id)
            sent = pcmu(tone(1.2))
            await play(pa, a.port, sent)
            await asyncio.sleep(0.2)
            assert pb.received, "nothing came out of leg B"
            frames = tone_frames(pb.audio())
            # Continuity: every frame sent comes out once at full level, one after the other, then
            # the stream's end fades out (a 1 kHz tone repeats every 8 samples: every frame is the same).
            levels = [dbov(decode(f)) for f in frames]
            full = [i for i, level in enumerate(levels) if abs(level - TONE_DBOV) <= 1.0]
            # No loss, no concealment, no repeat; the only frame allowed to go is the one the jitter
            # buffer drops when it shrinks from its 40 ms start to 20 ms on this jitter-free link.
            assert a.jitter.late == 0 and a.jitter.duplicates == 0 and a.jitter.grown == 0
            assert a.jitter.shrunk <= 1
            assert len(full) == len(sent) - a.jitter.shrunk
            assert all(f in sent for f in frames[:len(full)])
            samples = decode(b"".join(frames[:len(full)]))
            assert abs(peak_hz(samples) - TONE_HZ) <= 10
            assert abs(dbov(samples) - TONE_DBOV) <= 1.0
            # The headers of what the plane sent.
            headers = pb.headers()
            assert {h[4] for h in headers} == {b.ssrc}
            assert all(h[0] == 0x80 and h[1] == 0 for h in headers)
            for prev, cur in itertools.pairwise(headers):
                assert cur[2] == (prev[2] + 1) & 0xFFFF
                assert cur[3] == (prev[3] + 160) & 0xFFFFFFFF
            assert set(pb.sources) == {(HOST, b.port)}
            assert owner_b.named("FirstAudioPacketReceived") == 0
            assert owner_a.named("FirstAudioPacketReceived") == 1
            assert a.errors == {} and b.errors == {}


# 2. Symmetric RTP.


async def test_symmetric_rtp_latches_drops_strays_and_relatches_to_the_sdp_address() -> None:
    async with media_plane(44040, 44059, start=False) as plane:
        with peer(44060, 44079) as sdp, peer(44060, 44079) as nat, peer(44060, 44079) as third:
            owner = Owner()
            endpoint = leg(plane, owner, sdp)
            audio = b"\x11" * FRAME
            endpoint.push(audio, plane.now())
            await wait_until(lambda: len(sdp.received) == 1)  # before any packet: to the SDP's address
            nat.send(endpoint.port, nat.packet(silence_payload()))
            await wait_until(lambda: owner.named("FirstAudioPacketReceived") == 1)
            endpoint.push(audio, plane.now())
            await wait_until(lambda: len(nat.received) == 1)  # latched to where packets come from
            third.send(endpoint.port, third.packet(silence_payload()))
            await wait_until(lambda: endpoint.errors.get("stray", 0) == 1)
            assert len(owner.errors("stray")) == 1
            endpoint.push(audio, plane.now())
            await wait_until(lambda: len(nat.received) == 2)
            assert third.received == []
            assert len(sdp.received) == 1
            # The SDP's own address always wins (the same phone, now reachable directly).
            sdp.ssrc, sdp.seq, sdp.ts = nat.ssrc, nat.seq, nat.ts
            sdp.send(endpoint.port, sdp.packet(silence_payload()))
            await asyncio.sleep(0.02)
            endpoint.push(audio, plane.now())
            await wait_until(lambda: len(sdp.received) == 2)
            assert len(nat.received) == 2
            # ... and the NAT address is now a stray.
            nat.send(endpoint.port, nat.packet(silence_payload()))
            await wait_until(lambda: endpoint.errors.get("stray", 0) == 2)
            endpoint.push(audio, plane.now())
            await wait_until(lambda: len(sdp.received) == 3)
            assert len(nat.received) == 2
            assert endpoint.errors == {"stray": 2}
            assert len(owner.errors("stray")) == 1



async def test_garbage_before_the_first_packet_does_not_divert_our_audio() -> None:
    async with media_plane(44080, 44099, start=False) as plane:
        with peer(44100, 44119) as sdp, peer(44100, 44119) as third:
            endpoint = leg(plane, Owner(), sdp)
            third.send(endpoint.port, b"\x00" * 40)
            await wait_until(lambda: endpoint.errors.get("garbage", 0) == 1)
            endpoint.push(b"\x11" * FRAME, plane.now())
            await asyncio.sleep(0.05)
            assert third.received == []
            assert len(sdp.received) == 1


# 3. Bad input.


def _bad_packets(p: Peer) -> dict[str, tuple[str, Callable[[], bytes]]]:
    def v1() -> bytes:
        return RTP.pack(0x40, 0, 1, p.ts, p.ssrc) + b"\xff" * FRAME

    def extension() -> bytes:  # X bit, extension header says 200 words follow, 4 do
        data = bytearray(RTP.pack(0x90, 0, 1, 0, p.ssrc) + struct.pack("!HH", 0xBEDE, 200) + b"\0" * 16)
        return bytes(data)

    def padding() -> bytes:  # P bit, padding count larger than the packet
        return RTP.pack(0xA0, 0, 1, 0, p.ssrc) + b"\xff" * 10 + b"\xc8"

    return {
        "garbage-bytes": ("garbage", lambda: bytes(random.getrandbits(8) & 0x3F for _ in range(100))),
        "short": ("garbage", lambda: b"\x80\x00\x00\x01\x02"),
        "rtp-v1": ("garbage", v1),
        "payload-type": ("payload-type", lambda: p.packet(b"\xff" * FRAME, payload_type=8, timestamp=p.ts)),
        "extension": ("truncated", extension),
        "padding": ("truncated", padding),
    }


@pytest.mark.parametrize("case", ["garbage-bytes", "short", "rtp-v1", "payload-type", "extension", "padding"])
async def test_bad_input_is_counted_reported_once_and_the_stream_survives(case: str) -> None:
    async with media_plane(44120, 44139, start=False) as plane:
        with peer(44140, 44159) as p:
            owner = Owner()
            endpoint = leg(plane, owner, p)
            kind, make = _bad_packets(p)[case]
            await pace(plane, endpoint, p, [p.packet(bytes([0x20 + i]) * FRAME) for i in range(10)], chunk=1)
            assert endpoint.stats.packets == 9
            await pace(plane, endpoint, p, [make() for _ in range(100)],
                       counted=lambda: sum(endpoint.errors.values()))
            assert endpoint.errors == {kind: 100}
            assert len(owner.errors(kind)) == 1
            assert owner.named("MediaError") == 1
            # The stream goes on: later good packets are played.
            good = [p.packet(bytes([0x40 + i]) * FRAME) for i in range(10)]
            for data in good:
                p.send(endpoint.port, data)
            await wait_until(lambda: endpoint.stats.packets == 19)
            played = [endpoint.pull(plane.now()) for _ in range(20)]
            assert any(x is not None and x[0] >= 0x40 for x in played)
            assert endpoint.errors == {kind: 100}


async def test_ssrc_change_is_reported_once_and_the_new_source_plays() -> None:
    async with media_plane(44160, 44179, start=False) as plane:
        with peer(44180, 44199) as p:
            owner = Owner()
            endpoint = leg(plane, owner, p)
            await pace(plane, endpoint, p, [p.packet(b"\x21" * FRAME) for _ in range(5)], chunk=1)
            # 100 changes of SSRC in a row (a peer restarting its stream over and over).
            ssrcs = [random.getrandbits(32) for _ in range(100)]
            await pace(plane, endpoint, p, [p.packet(b"\x22" * FRAME, ssrc=s) for s in ssrcs],
                       counted=lambda: endpoint.errors.get("ssrc", 0))
            assert endpoint.errors == {"ssrc": 100}
            assert len(owner.errors("ssrc")) == 1
            # The last source carries on and is heard.
            p.ssrc = ssrcs[-1]
            for i in range(6):
                p.send(endpoint.port, p.packet(bytes([0x30 + i]) * FRAME))
            await wait_until(lambda: endpoint.stats.packets >= 5)
            played = [endpoint.pull(plane.now()) for _ in range(8)]
            assert bytes([0x33]) * FRAME in played
            assert endpoint.errors == {"ssrc": 100}



async def test_rtcp_on_the_rtp_port_does_not_reset_the_stream() -> None:
    async with media_plane(44160, 44179, start=False) as plane:
        with peer(44180, 44199) as p:
            endpoint = leg(plane, Owner(), p)
            await pace(plane, endpoint, p, [p.packet(b"\x21" * FRAME) for _ in range(5)], chunk=1)
            sr = rtcp.SenderReport(p.ssrc, rtcp.ntp_timestamp(1.7e9), p.ts, 5, 800)
            p.send(endpoint.port, rtcp.serialize_compound([sr]))
            await wait_until(lambda: endpoint.errors.get("payload-type", 0) == 1)
            assert endpoint.errors == {"payload-type": 1}
            assert endpoint.stats.packets == 4


async def test_a_flood_is_dropped_while_the_tick_keeps_running() -> None:
    async with media_plane(44200, 44219) as plane:
        with peer(44220, 44239) as pa, peer(44220, 44239) as pb:
            owner = Owner()
            a = leg(plane, owner, pa)
            b = leg(plane, Owner(), pb)
            plane.send(a.id, b.id)
            await play(pa, a.port, pcmu(tone(0.2)))
            ticks = plane.stats.ticks
            flooded = asyncio.get_running_loop().time()
            flood = pa.packet(b"\x7f" * FRAME)
            for _ in range(4):
                for _ in range(500):
                    with contextlib.suppress(BlockingIOError):
                        pa.send(a.port, flood)
                await asyncio.sleep(0)
            await asyncio.sleep(0.1)
            assert plane.stats.ticks >= ticks + 3
            assert a.errors.get("flood", 0) > 0
            assert len(owner.errors("flood")) == 1
            received = len(pb.received)
            pa.ts = (pa.ts + round((asyncio.get_running_loop().time() - flooded) / 0.02) * FRAME) & 0xFFFFFFFF
            await play(pa, a.port, pcmu(tone(0.6, start=1600)))
            await asyncio.sleep(0.1)
            frames = tone_frames(b"".join(d[12:] for d in pb.received[received:]))
            assert len(frames) >= 25
            samples = decode(b"".join(frames[5:25]))
            assert abs(peak_hz(samples) - TONE_HZ) <= 10
            assert abs(dbov(samples) - TONE_DBOV) <= 1.0
            assert set(a.errors) == {"flood"}


# 4. RFC 4733 receive.


async def test_telephone_events_give_each_key_once() -> None:
    async with media_plane(44240, 44259, start=False) as plane:
        with peer(44260, 44279) as p:
            owner = Owner()
            endpoint = leg(plane, owner, p)
            start = p.ts

            def event(key: int, end: bool, duration: int, marker: bool = False, ts: int = start) -> bytes:
                return p.packet(TelephoneEvent(key, end, 10, duration).serialize(), EVENTS_PT, marker, ts)

            packets = [event(5, False, 160, marker=True), event(5, False, 480), event(5, False, 320),  # reordered
                       event(5, False, 640)] + [event(5, True, 800) for _ in range(3)]
            for data in packets:
                p.send(endpoint.port, data)
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            assert owner.keys == [("5", "rfc2833")]
            second = [event(9, False, 160, True, start + 1600)] + [event(9, True, 800, ts=start + 1600)] * 3
            for data in second:
                p.send(endpoint.port, data)
            await wait_until(lambda: len(owner.keys) == 2)
            await asyncio.sleep(0.02)
            assert owner.keys == [("5", "rfc2833"), ("9", "rfc2833")]
            assert endpoint.errors == {}


async def test_telephone_events_are_not_counted_as_loss() -> None:
    async with media_plane(44240, 44259, start=False) as plane:
        with peer(44260, 44279) as p:
            endpoint = leg(plane, Owner(), p)
            await pace(plane, endpoint, p, [p.packet(b"\x21" * FRAME) for _ in range(5)], chunk=1)
            ts = p.ts
            events = [p.packet(TelephoneEvent(1, i >= 4, 10, 160 * min(i + 1, 5)).serialize(), EVENTS_PT, i == 0, ts)
                      for i in range(7)]
            await pace(plane, endpoint, p, events, chunk=7)
            await pace(plane, endpoint, p, [p.packet(b"\x21" * FRAME) for _ in range(5)], chunk=1)
            assert endpoint.stats.packets == 16  # every packet of the stream but the first (RFC 3550 A.1 probation)
            assert endpoint.stats.cumulative_lost == 0
            assert endpoint.summary["lost_percent"] == 0


# 5. RFC 4733 send.


async def test_send_digits_as_telephone_events() -> None:
    async with media_plane(44280, 44299, start=False) as plane:
        with peer(44300, 44319) as p:
            endpoint = leg(plane, Owner(), p)
            audio = b"\x55" * FRAME
            now = plane.now()
            for _ in range(3):
                endpoint.push(audio, now)
            plane.send_digits(endpoint, "12#")
            for _ in range(40):
                endpoint.push(audio, now)
            await wait_until(lambda: len(p.received) == 43)
            headers = p.headers()
            assert {h[4] for h in headers} == {endpoint.ssrc}
            for prev, cur in itertools.pairwise(headers):
                assert cur[2] == (prev[2] + 1) & 0xFFFF
            kinds = ["a" if h[1] & 0x7F == 0 else "e" for h in headers]
            assert all(h[1] & 0x7F in (0, EVENTS_PT) for h in headers)
            # Group the events: each starts with the marker.
            groups: list[list[int]] = []
            for i, h in enumerate(headers):
                if h[1] & 0x7F == EVENTS_PT:
                    if h[1] & 0x80:
                        groups.append([])
                    assert groups, "an event packet before any marker"
                    groups[-1].append(i)
            assert len(groups) == 3
            keys = []
            for group in groups:
                assert group == list(range(group[0], group[-1] + 1)), "audio inside an event"
                assert len({headers[i][3] for i in group}) == 1
                assert sum(1 for i in group if headers[i][1] & 0x80) == 1
                events = [TelephoneEvent.parse(p.received[i][12:]) for i in group]
                keys.append(events[0].key)
                assert [e.end for e in events].count(True) == 3
                assert all(e.end for e in events[-3:]) and not any(e.end for e in events[:-3])
                durations = [e.duration for e in events[:-2]]
                assert durations == [160 * (k + 1) for k in range(len(durations))]
                assert events[-1].duration == events[-2].duration == events[-3].duration
                # The event's timestamp is that of the tick it started in.
                first = headers[group[0]]
                before = headers[group[0] - 1]
                assert first[3] == (before[3] + 160) & 0xFFFFFFFF
            assert keys == ["1", "2", "#"]
            assert kinds[:3] == ["a"] * 3
            assert kinds[-1] == "a" and kinds[groups[-1][-1] + 1:] == ["a"] * (43 - groups[-1][-1] - 1)
            assert all(p.received[i][12:] == audio for i, k in enumerate(kinds) if k == "a")
            # Audio after the events carries on the timeline.
            last = groups[-1][-1]
            assert headers[last + 1][3] == (headers[last][3] + 160 * (last - groups[-1][0] + 1)) & 0xFFFFFFFF


# 6. In-band DTMF.


async def test_inband_keys_sent_and_detected() -> None:
    async with media_plane(44320, 44339) as plane:
        with peer(44340, 44359) as p:
            owner = Owner()
            endpoint = leg(plane, owner, p, telephone_event=None)
            plane.send_digits(endpoint, "12#")
            plane.listen_for_tones(endpoint, True)
            signal = np.concatenate([np.zeros(800, dtype=np.int16), dtmf_tone("7"), np.zeros(1600, dtype=np.int16)])
            await play(p, endpoint.port, pcmu(signal))
            await asyncio.sleep(0.5)
            assert owner.keys == [("7", "inband")]
            detector = DtmfDetector()
            found: list[str] = []
            audio = p.audio()
            for i in range(0, len(audio) - FRAME + 1, FRAME):
                found += detector.feed(decode(audio[i:i + FRAME]))
            assert found == ["1", "2", "#"]
            assert all(h[1] & 0x7F == 0 for h in p.headers())


# 7. RTCP.


async def test_rtcp_reports_both_ways() -> None:
    async with media_plane(44360, 44379, start=False) as plane:
        with peer(44380, 44399) as p:
            endpoint = leg(plane, Owner(), p)
            packets = []
            for i in range(101):
                data = p.packet(b"\x21" * FRAME)
                if i % 10 != 5:  # 10 % lost
                    packets.append(data)
            got = 0

            def counted() -> int:
                return endpoint.stats.packets + 1

            for i in range(0, len(packets), 10):
                for data in packets[i:i + 10]:
                    p.send(endpoint.port, data)
                got += len(packets[i:i + 10])
                await wait_until(lambda: counted() >= got)  # noqa: B023 (awaited here)
                endpoint.pull(plane.now())
            for _ in range(20):
                endpoint.push(b"\x55" * FRAME, plane.now())
            endpoint._next_report = 0  # due now (the randomised interval is 2.5-7.5 s)
            endpoint.push(b"\x55" * FRAME, plane.now())
            await wait_until(lambda: len(p.rtcp_received) == 1)
            compound = rtcp.parse_compound(p.rtcp_received[0])
            assert len(compound) == 2
            sr, sdes = compound
            assert isinstance(sr, rtcp.SenderReport) and isinstance(sdes, rtcp.SourceDescription)
            assert sr.ssrc == endpoint.ssrc and sr.packet_count == 20 and sr.octet_count == 20 * FRAME
            assert sdes.chunks[0].ssrc == endpoint.ssrc and sdes.chunks[0].cname
            (block,) = sr.reports
            assert block.ssrc == p.ssrc
            assert abs(block.fraction_lost * 100 / 256 - 10) < 1
            assert block.packets_lost == 10
            assert endpoint.summary["lost_percent"] == 10.0
            # The peer's receiver report on our stream.
            await asyncio.sleep(0.2)
            report = rtcp.ReceptionReport(endpoint.ssrc, 64, 5, 1000, 80, rtcp.ntp_middle32(sr.ntp_timestamp),
                                          int(0.1 * 65536))
            rr = rtcp.ReceiverReport(p.ssrc, (report,))
            p.rtcp.sendto(rtcp.serialize_compound([rr, rtcp.SourceDescription((rtcp.SdesChunk.with_cname(
                p.ssrc, "peer"),))]), (HOST, endpoint.port + 1))
            await wait_until(lambda: endpoint.round_trip_ms is not None)
            assert endpoint.remote_fraction_lost == 25.0
            assert endpoint.remote_jitter_ms == 10.0
            assert endpoint.round_trip_ms is not None and 60 <= endpoint.round_trip_ms <= 200
            summary = endpoint.summary
            assert summary["remote_lost_percent"] == 25.0 and summary["remote_jitter_ms"] == 10.0
            assert summary["round_trip_ms"] == endpoint.round_trip_ms
            assert summary["packets_sent"] == 21 and summary["packets_received"] == 90
            assert endpoint.errors == {}
            # RTCP latched to the peer's RTCP socket: another port on the same host cannot take it over.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                other.bind((HOST, 0))
                bogus = rtcp.ReceptionReport(endpoint.ssrc, 255, 99, 1000, 8000, 0, 0)
                other.sendto(rtcp.serialize_compound([rtcp.ReceiverReport(p.ssrc, (bogus,))]),
                             (HOST, endpoint.port + 1))
                await wait_until(lambda: endpoint.errors.get("stray") == 1)
            assert endpoint.remote_fraction_lost == 25.0  # the stranger's report was not believed
            endpoint._next_report = 0
            endpoint.push(b"\x55" * FRAME, plane.now())
            await wait_until(lambda: len(p.rtcp_received) == 2)  # our reports still go to the peer


async def test_report_is_sent_when_due_by_public_timing() -> None:
    async with media_plane(44360, 44379, start=False) as plane:
        with peer(44380, 44399) as p:
            endpoint = leg(plane, Owner(), p)
            endpoint.push(b"\x55" * FRAME, plane.now())
            await asyncio.sleep(0.02)
            assert p.rtcp_received == []
            endpoint.push(b"\x55" * FRAME, plane.now() + 60)  # well past the 2.5-7.5 s interval
            await wait_until(lambda: len(p.rtcp_received) == 1)
            kinds = [type(x) for x in rtcp.parse_compound(p.rtcp_received[0])]
            assert kinds == [rtcp.SenderReport, rtcp.SourceDescription]


# RtpStopped / RtpResumed.


async def test_rtp_stopped_after_seven_seconds_and_resumed() -> None:
    async with media_plane(44400, 44419, start=False) as plane:
        with peer(44420, 44439) as p:
            owner = Owner()
            endpoint = leg(plane, owner, p)
            await pace(plane, endpoint, p, [p.packet(b"\x21" * FRAME) for _ in range(3)], chunk=1)
            assert owner.named("FirstAudioPacketReceived") == 1
            now = plane.now()
            endpoint.pull(now + 6.5)
            assert owner.named("RtpStopped") == 0
            endpoint.pull(now + 8)
            endpoint.pull(now + 9)
            assert owner.named("RtpStopped") == 1
            p.send(endpoint.port, p.packet(b"\x21" * FRAME))
            await wait_until(lambda: owner.named("RtpResumed") == 1)
            assert owner.named("FirstAudioPacketReceived") == 1


# 8. Comfort noise.


async def test_comfort_noise_plays_noise_not_the_last_frame() -> None:
    async with media_plane(44440, 44459) as plane:
        with peer(44460, 44479) as pa, peer(44460, 44479) as pb:
            a = leg(plane, Owner(), pa)
            b = leg(plane, Owner(), pb)
            plane.send(a.id, b.id)
            await play(pa, a.port, pcmu(tone(0.4)))
            await asyncio.sleep(0.02)
            pa.send(a.port, pa.packet(bytes([40]), payload_type=13))
            before = len(pb.received)
            await asyncio.sleep(0.5)
            gap = b"".join(d[12:] for d in pb.received[before:])
            frames = [gap[i:i + FRAME] for i in range(0, len(gap) - FRAME + 1, FRAME)]
            quiet = decode(b"".join(frames[6:]))  # after the buffered audio has played
            assert len(quiet) >= 10 * FRAME
            assert abs(rms_dbov(quiet) - -40) <= 2
            spectrum = np.abs(np.fft.rfft(quiet.astype(np.float64))) ** 2
            freqs = np.fft.rfftfreq(len(quiet), 1 / 8000)
            near_tone = spectrum[np.abs(freqs - TONE_HZ) < 50].sum() / spectrum.sum()
            assert near_tone < 0.1, "the gap sounds like the tone: concealment, not comfort noise"
            assert a.errors == {}


# 9. SRTP.


async def test_srtp_in_and_out_and_a_tampered_packet() -> None:
    a_local, b_local = new_crypto(1, AES_CM_128_HMAC_SHA1_80), new_crypto(1, AES_CM_128_HMAC_SHA1_80)
    pa_key, pb_key = new_crypto(1, AES_CM_128_HMAC_SHA1_80), new_crypto(1, AES_CM_128_HMAC_SHA1_80)
    async with media_plane(44480, 44499) as plane:
        with peer(44500, 44519, SrtpContext(pa_key, a_local)) as pa, \
                peer(44500, 44519, SrtpContext(pb_key, b_local)) as pb:
            a = leg(plane, Owner(), pa, srtp=SrtpKeys(a_local, pa_key))
            b = leg(plane, Owner(), pb, srtp=SrtpKeys(b_local, pb_key))
            plane.send(a.id, b.id)
            plane.send(b.id, a.id)
            sent = pcmu(tone(0.8))
            await play(pa, a.port, sent)
            await asyncio.sleep(0.15)
            frames = tone_frames(pb.audio())
            full = [f for f in frames if abs(dbov(decode(f)) - TONE_DBOV) <= 1.0]
            assert len(full) >= len(sent) - 1
            assert all(f in sent for f in full)
            samples = decode(b"".join(full))
            assert abs(peak_hz(samples) - TONE_HZ) <= 10
            assert abs(dbov(samples) - TONE_DBOV) <= 1.0
            assert a.errors == {}
            tampered = bytearray(pa.packet(b"\x21" * FRAME))
            tampered[20] ^= 0x01
            pa.send(a.port, bytes(tampered))
            await wait_until(lambda: a.errors.get("srtp", 0) == 1)
            assert a.errors == {"srtp": 1}
            # Plain RTP to an SRTP leg fails authentication too.
            pa.send(a.port, RTP.pack(0x80, 0, 1, 0, pa.ssrc) + b"\x21" * FRAME)
            await wait_until(lambda: a.errors.get("srtp", 0) == 2)


# 10. Port pool.


async def test_release_gives_the_ports_back_and_closes_the_sockets() -> None:
    async with media_plane(44520, 44523, start=False) as plane:
        with peer(44540, 44559) as p:
            endpoint = leg(plane, Owner(), p)
            other = plane.endpoint(HOST, Owner())
            assert plane.ports.in_use == 2
            port = endpoint.port
            plane.release(endpoint)
            assert plane.ports.in_use == 1
            plane.release(endpoint)
            assert plane.ports.in_use == 1
            assert endpoint._rtp.fileno() == -1 and endpoint._rtcp.fileno() == -1
            for which in (port, port + 1):  # free to bind again
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.bind((HOST, which))
                finally:
                    sock.close()
            again = plane.endpoint(HOST, Owner())
            assert again.port == port
            assert plane.health["ports_in_use"] == 2
            plane.release(other)
            plane.release(again)
            assert plane.ports.in_use == 0
