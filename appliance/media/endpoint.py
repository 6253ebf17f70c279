"""A leg's media endpoint: its RTP and RTCP sockets, and what goes in and out of them each tick.

Receiving runs on the event loop as packets come (one good packet per wake-up, bad ones drained up
to a bound; the loop calls again while more are queued, so a flooded port can neither starve the
others nor crowd its own good packets out of the kernel's buffer): header checks, SRTP, the latched
source, telephone events, comfort noise, reception statistics, then the jitter buffer. Each media
tick the mixer `pull`s one tick of payload (None: conceal) and `push`es one tick of encoded audio,
which goes out with our own SSRC, sequence and timestamp, or is replaced by RFC 4733 events while
keys are being sent.

Symmetric RTP: we send to the address the SDP named until a packet arrives, then to the address
packets come from (the peer may be behind NAT). The first source after each negotiation is latched,
and one from the SDP's own address always wins; packets from anywhere else are dropped as stray,
so a third party cannot take the stream over (RTP bleed).

Bad input is counted by kind and reported to the owner as a media error (the first of each kind at
once, then at most once per `REPORT_EVERY` seconds), never raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Protocol

from appliance.media import rtcp
from appliance.media.dtmf import EVENTS, DtmfError, DtmfReceiver, DtmfSender
from appliance.media.jitter import JitterBuffer
from appliance.media.srtp import SrtpContext, SrtpError, SrtpKeys

log = logging.getLogger(__name__)

HEADER = struct.Struct("!BBHII")
MAX_DATAGRAM = 2048
COMFORT_NOISE = 13  # RFC 3389's static payload type
RTP_TIMEOUT = 7.0  # seconds without RTP before Call.RtpStopped (as Voximplant)
REPORT_EVERY = 10.0  # seconds between two reports of the same kind of bad input
BAD_READS_PER_WAKEUP = 32  # bad packets are drained in bursts, so a flood cannot crowd good ones out
FLOOD_PER_TICK = 25  # packets per tick (500/s, 10x a 20 ms stream) beyond which a source floods us
CNAME = "voxgate"
_WALL_OFFSET = time.time() - time.monotonic()


class Negotiated(Protocol):
    """What offer/answer agreed for the stream (the SIP layer's NegotiatedMedia fits)."""

    @property
    def codec(self) -> str: ...
    @property
    def payload_type(self) -> int: ...
    @property
    def clock_rate(self) -> int: ...
    @property
    def telephone_event(self) -> int | None: ...
    @property
    def ptime(self) -> int: ...
    @property
    def remote_address(self) -> str: ...
    @property
    def remote_port(self) -> int: ...
    @property
    def remote_rtcp_port(self) -> int: ...
    @property
    def direction(self) -> str: ...
    @property
    def srtp(self) -> SrtpKeys | None: ...


class Owner(Protocol):
    """Who hears about the endpoint: the leg it belongs to."""

    def key_received(self, key: str, kind: str) -> None:
        """A DTMF key from the peer; `kind` is "rfc2833" or "inband"."""

    def media_event(self, name: str, detail: str = "") -> None:
        """FirstAudioPacketReceived, RtpStopped, RtpResumed, or MediaError with what went wrong."""


class RtpEndpoint:
    """One leg's RTP/RTCP; a media unit whose audio the mixer decodes and encodes in batches."""

    def __init__(self, unit_id: str, port: int, rtp_sock: socket.socket, rtcp_sock: socket.socket,
                 owner: Owner, now: Callable[[], float]) -> None:
        self.id = unit_id
        self.port = port
        self._rtp = rtp_sock
        self._rtcp = rtcp_sock
        self.owner = owner
        self._now = now
        self.on_change: Callable[[], None] = lambda: None  # the mixer re-plans when codec or direction change
        self.codec: str | None = None  # None until negotiated: the endpoint is then silent both ways
        self.sending = False
        self.receiving = False
        self._pt = -1
        self._events_pt = -1
        self._ptime_bytes = 0
        self._remote: tuple[str, int] | None = None
        self._sdp_remote: tuple[str, int] | None = None
        self._remote_rtcp: tuple[str, int] | None = None
        self._rtcp_latched = False
        self._latched = False
        self._srtp: SrtpContext | None = None
        # Receiving.
        self.jitter = JitterBuffer()
        self.stats = rtcp.ReceptionStats(8000)
        self._their_ssrc: int | None = None
        self._dtmf_in = DtmfReceiver()
        self.comfort_noise: int | None = None  # -dBov of the noise the peer asked for while it is silent
        self._last_packet = 0.0
        self._heard = False
        self._stopped = False
        self._per_tick = 0
        self._dropped = False  # the packet just read was refused
        self._last_sr: tuple[int, float] | None = None
        # Sending.
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._pending = b""  # encoded audio waiting for a whole packet when ptime is not one tick
        self._dtmf_out = DtmfSender()
        self._keys_out = False  # keys queued or being sent (checked every tick, so a plain flag)
        self.packets_sent = 0
        self.octets_sent = 0
        self._next_report = now() + rtcp.next_report_delay(random.Random())
        # Peer's view of our stream, from its reports.
        self.remote_fraction_lost = 0.0
        self.remote_jitter_ms = 0.0
        self.round_trip_ms: float | None = None
        self.remote_packets_lost: int | None = None  # cumulative, as the peer's last report says; None: no report
        self.remote_expected = 0  # packets of ours the peer expected by that report
        self._first_seq = (self._seq + 1) & 0xFFFF
        # Bad input, by kind: counts, and what was last reported.
        self.errors: dict[str, int] = {}
        self._reported: dict[str, tuple[float, int]] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(rtp_sock.fileno(), self._rtp_readable)
        self._loop.add_reader(rtcp_sock.fileno(), self._rtcp_readable)
        self._closed = False

    # What offer/answer agreed: called after every (re-)negotiation.

    def configure(self, media: Negotiated) -> None:
        codec = media.codec.upper()
        if codec != self.codec and self.codec is not None:
            self.jitter.reset()
        self.codec = codec
        self._pt = media.payload_type
        self._events_pt = media.telephone_event if media.telephone_event is not None else -1
        self._ptime_bytes = media.clock_rate * media.ptime // 1000  # one byte per RTP clock unit
        self.sending = media.direction in ("sendrecv", "sendonly")
        self.receiving = media.direction in ("sendrecv", "recvonly")
        remote = (media.remote_address, media.remote_port)
        if remote != self._sdp_remote:
            self._sdp_remote = self._remote = remote
            self._remote_rtcp = (media.remote_address, media.remote_rtcp_port)
            self._rtcp_latched = False
            self._latched = False
        self._srtp = SrtpContext.from_keys(media.srtp) if media.srtp is not None else None
        self.on_change()

    @property
    def telephone_events(self) -> bool:
        """Whether keys travel as RFC 4733 events (else the mixer plays them in-band)."""
        return self._events_pt >= 0

    # Receiving.

    def _rtp_readable(self) -> None:
        for _ in range(BAD_READS_PER_WAKEUP):
            try:
                data, source = self._rtp.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error queued on the socket: nothing to read
                return
            self._dropped = False
            self._packet(data, source)
            if not self._dropped:
                return  # a good packet: the next one (if any) waits for the next wake-up

    def _packet(self, data: bytes, source: tuple[str, int]) -> None:
        if source != self._remote and self._latched and source != self._sdp_remote:
            self._bad("stray", f"from {source[0]}:{source[1]}, not the latched {self._remote}")
            return
        self._per_tick += 1
        if self._per_tick > FLOOD_PER_TICK:
            self._bad("flood", f"more than {FLOOD_PER_TICK} packets in one tick")
            return
        if len(data) < HEADER.size or data[0] >> 6 != 2:
            self._bad("garbage", f"{len(data)} bytes that are not RTP")
            return
        if self._srtp is not None:
            try:
                data = self._srtp.unprotect(data)
            except SrtpError as exc:
                self._bad("srtp", str(exc))
                return
        first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
        payload_type = second & 0x7F
        if payload_type not in (self._pt, self._events_pt, COMFORT_NOISE):
            what = "RTCP on the RTP port" if 72 <= payload_type <= 76 else f"payload type {payload_type}"
            self._bad("payload-type", f"{what} was not negotiated")
            return
        start = 12 + 4 * (first & 0x0F)
        end = len(data)
        if first & 0x10:
            if end < start + 4:
                self._bad("truncated", "header extension beyond the packet")
                return
            start += 4 + 4 * int.from_bytes(data[start + 2:start + 4])
        if first & 0x20:
            end -= data[-1]
        if start > end:
            self._bad("truncated", "header or padding longer than the packet")
            return
        # A valid packet of this stream: its source is where we send from now on (symmetric RTP).
        if source != self._remote:
            self._remote = source
            if not self._rtcp_latched:
                self._remote_rtcp = (source[0], source[1] + 1)
        self._latched = True
        now = self._now()
        self._last_packet = now
        if self._stopped:
            self._stopped = False
            self.owner.media_event("RtpResumed")
        if ssrc != self._their_ssrc:
            if self._their_ssrc is not None:
                self._bad("ssrc", f"the peer's SSRC changed from {self._their_ssrc:08x} to {ssrc:08x}")
                self.jitter.reset()
                self.stats = rtcp.ReceptionStats(8000)
            self._their_ssrc = ssrc
        self.stats.received(sequence, timestamp, now)  # events and comfort noise share the sequence
        if payload_type == self._pt:
            if not self.receiving:
                return
            self.comfort_noise = None
            self.jitter.put(timestamp, data[start:end], now)
            if not self._heard:
                self._heard = True
                self.owner.media_event("FirstAudioPacketReceived")
        elif payload_type == self._events_pt:
            self._event(ssrc, timestamp, data[start:end])
        else:
            self.comfort_noise = data[start] & 0x7F if end > start else 127

    def _event(self, ssrc: int, timestamp: int, payload: bytes) -> None:
        try:
            key = self._dtmf_in.receive(ssrc, timestamp, payload)
        except DtmfError as exc:
            self._bad("truncated", str(exc))
            return
        if key is not None:
            self.owner.key_received(key, "rfc2833")

    def _rtcp_readable(self) -> None:
        try:
            data, source = self._rtcp.recvfrom(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        # Like RTP, RTCP latches to the first valid sender at the peer's address (its port may be NAT's).
        expected = self._remote_rtcp
        if source != expected and (self._rtcp_latched or (expected is not None and source[0] != expected[0])):
            self._bad("stray", f"RTCP from {source[0]}:{source[1]}")
            return
        if self._srtp is not None:
            try:
                data = self._srtp.unprotect_rtcp(data)
            except SrtpError as exc:
                self._bad("srtp", f"RTCP: {exc}")
                return
        try:
            packets = rtcp.parse_compound(data)
        except rtcp.RtcpError as exc:
            self._bad("rtcp", str(exc))
            return
        now = self._now()
        self._remote_rtcp = source
        self._rtcp_latched = True
        for packet in packets:
            if isinstance(packet, rtcp.SenderReport):
                self._last_sr = (rtcp.ntp_middle32(packet.ntp_timestamp), now)
            if isinstance(packet, (rtcp.SenderReport, rtcp.ReceiverReport)):
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self._their_view(block, now)

    def _their_view(self, block: rtcp.ReceptionReport, now: float) -> None:
        self.remote_fraction_lost = block.fraction_lost * 100 / 256
        self.remote_jitter_ms = block.jitter * 1000 / 8000
        self.remote_packets_lost = block.packets_lost
        self.remote_expected = max(0, block.highest_sequence - self._first_seq + 1)
        rtt = rtcp.round_trip_time(block, rtcp.ntp_middle32(rtcp.ntp_timestamp(self._wall(now))))
        if rtt is not None:
            self.round_trip_ms = rtt * 1000

    @staticmethod
    def _wall(now: float) -> float:
        """Wall time for NTP fields, from the monotonic reading the plane gives."""
        return _WALL_OFFSET + now

    # Each tick.

    def pull(self, now: float) -> bytes | None:
        """This tick's payload from the jitter buffer, or None (nothing heard, or lost: conceal)."""
        self._per_tick = 0
        if now - self._last_packet > RTP_TIMEOUT and self._heard and not self._stopped and self.receiving:
            self._stopped = True
            self.owner.media_event("RtpStopped")
        return self.jitter.get(now) if self.receiving else None

    def push(self, payload: bytes, now: float) -> None:
        """Send one tick of encoded audio (or, while keys are being sent, their events instead)."""
        ts = self._ts
        self._ts = (ts + len(payload)) & 0xFFFFFFFF
        if now >= self._next_report:
            self._report(now)
        if not self.sending or self._remote is None:
            return
        if self._keys_out:
            events = self._dtmf_out.tick(ts, len(payload))
            self._keys_out = self._dtmf_out.busy
            if events is not None:
                for marker, event_ts, event in events:
                    self._send(self._events_pt, marker, event_ts, event)
                self._pending = b""
                return
        size = self._ptime_bytes
        if size == len(payload) and not self._pending:
            self._send(self._pt, False, ts, payload)
            return
        data = self._pending + payload
        start = ts - len(self._pending)
        while len(data) >= size:
            self._send(self._pt, False, start & 0xFFFFFFFF, data[:size])
            data = data[size:]
            start += size
        self._pending = data

    def _send(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> None:
        self._seq = (self._seq + 1) & 0xFFFF
        packet = HEADER.pack(0x80, payload_type | (0x80 if marker else 0), self._seq, timestamp, self.ssrc) + payload
        if self._srtp is not None:
            packet = self._srtp.protect(packet)
        try:
            self._rtp.sendto(packet, self._remote)  # type: ignore[arg-type]
        except OSError:  # the peer's port is closed (ICMP) or the network is down: RTP is best effort
            return
        self.packets_sent += 1
        self.octets_sent += len(payload)

    def send_digits(self, digits: str) -> bool:
        """Queue keys as RFC 4733 events; False when none were negotiated (the caller plays tones)."""
        if not self.telephone_events:
            return False
        self._dtmf_out.queue("".join(d for d in digits.upper() if d in EVENTS))
        self._keys_out = self._dtmf_out.busy
        return True

    def _report(self, now: float) -> None:
        """Our RTCP report: SR when we have sent since the last one, else RR; with SDES CNAME."""
        self._next_report = now + rtcp.next_report_delay(random.Random())
        if self._remote_rtcp is None:
            return
        blocks: list[rtcp.ReceptionReport] = []
        if self._their_ssrc is not None and self.stats.packets:
            blocks.append(self.stats.report_block(self._their_ssrc, self._last_sr, now))
        packets: list[rtcp.RtcpPacket] = []
        if self.packets_sent:
            packets.append(rtcp.SenderReport(self.ssrc, rtcp.ntp_timestamp(self._wall(now)), self._ts,
                                             self.packets_sent & 0xFFFFFFFF, self.octets_sent & 0xFFFFFFFF,
                                             tuple(blocks)))
        else:
            packets.append(rtcp.ReceiverReport(self.ssrc, tuple(blocks)))
        packets.append(rtcp.SourceDescription((rtcp.SdesChunk.with_cname(self.ssrc, CNAME),)))
        data = rtcp.serialize_compound(packets)
        if self._srtp is not None:
            data = self._srtp.protect_rtcp(data)
        try:
            self._rtcp.sendto(data, self._remote_rtcp)
        except OSError:
            return

    # Bad input.

    def _bad(self, kind: str, detail: str) -> None:
        self._dropped = True
        count = self.errors.get(kind, 0) + 1
        self.errors[kind] = count
        now = self._now()
        last = self._reported.get(kind)
        if last is not None and now - last[0] < REPORT_EVERY:
            return
        since = count - (last[1] if last is not None else 0)
        self._reported[kind] = (now, count)
        log.info("%s: bad media (%s, %d since last report): %s", self.id, kind, since, detail)
        self.owner.media_event("MediaError", f"{kind}: {detail} ({since} packets)")

    def close(self) -> None:
        """Stop reading and writing; the sockets belong to the port pool, which closes them."""
        if self._closed:
            return
        self._closed = True
        if self._heard and self.packets_sent:
            self._report(self._now())
        self._loop.remove_reader(self._rtp.fileno())
        self._loop.remove_reader(self._rtcp.fileno())

    @property
    def quality(self) -> dict[str, dict[str, float | int | None]]:
        """Call quality both ways, for the panel. `local`: what we measure of the peer's stream (RFC 3550
        A.3 loss, A.8 jitter). `remote`: what the peer's last RTCP report said of ours (None until one
        came), and the round trip measured from it. loss_percent is over the whole call;
        fraction_lost_percent over the last report interval."""
        stats = self.stats
        lost, expected = stats.cumulative_lost, stats.expected
        local: dict[str, float | int | None] = {
            "packets_received": stats.packets, "packets_lost": lost,
            "loss_percent": round(100 * max(0, lost) / expected, 2) if expected else 0.0,
            "fraction_lost_percent": round(stats.fraction_lost_percent, 2), "jitter_ms": round(stats.jitter_ms, 2),
        }
        remote_lost = self.remote_packets_lost
        reported = remote_lost is not None
        remote: dict[str, float | int | None] = {
            "packets_sent": self.packets_sent, "packets_lost": remote_lost,
            "loss_percent": (round(100 * max(0, remote_lost) / self.remote_expected, 2) if self.remote_expected
                             else 0.0) if remote_lost is not None else None,
            "fraction_lost_percent": round(self.remote_fraction_lost, 2) if reported else None,
            "jitter_ms": round(self.remote_jitter_ms, 2) if reported else None,
            "round_trip_ms": round(self.round_trip_ms, 3) if self.round_trip_ms is not None else None,
        }
        return {"local": local, "remote": remote}

    @property
    def summary(self) -> dict[str, object]:
        """Loss and jitter both ways, for the call record and the panel."""
        return {
            "codec": self.codec, "packets_received": self.stats.packets, "packets_sent": self.packets_sent,
            "lost_percent": round(100 * max(0, self.stats.cumulative_lost) / max(1, self.stats.expected), 2),
            "jitter_ms": round(self.stats.jitter_ms, 2),
            "remote_lost_percent": round(self.remote_fraction_lost, 2),
            "remote_jitter_ms": round(self.remote_jitter_ms, 2), "round_trip_ms": self.round_trip_ms,
            "jitter_buffer_ms": self.jitter.delay_ms, "concealed": self.jitter.lost, "late": self.jitter.late,
            "errors": dict(self.errors),
        }

