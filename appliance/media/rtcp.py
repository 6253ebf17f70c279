"""RTCP (RFC 3550 section 6): SR, RR, SDES and BYE packets, compound packets, and receiver statistics.

A compound packet is walked packet by packet using each header's length, so packet types we do not
interpret (feedback 205/206, APP, XR, ...) are stepped over rather than refused: peers add them freely
and a call must not lose its reports because of them. What is refused is anything that is not RTCP
at all: a wrong version, a packet type outside 192-223 (RFC 5761: that is RTP), a length or padding
that does not fit the datagram, or a body shorter than its counts claim.

`ReceptionStats` is appendix A.1 (sequence validation), A.3 (loss) and A.8 (jitter) of RFC 3550,
written for the per-packet hot path: one instance per received source, attribute arithmetic only.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

HEADER = struct.Struct("!BBH")
REPORT = struct.Struct("!IIIIII")
SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP timestamp, RTP timestamp, packet count, octet count
SSRC = struct.Struct("!I")
VERSION = 2
FIRST_TYPE, LAST_TYPE = 192, 223  # every RTCP packet type; RTP payload types 64-95 with the marker land here
SR, RR, SDES, BYE = 200, 201, 202, 203
MAX_COUNT = 31  # the 5-bit RC/SC field: report blocks, SDES chunks or BYE sources per packet
MAX_TEXT = 255  # octets in an SDES item or a BYE reason (one length octet)
LOST_MIN, LOST_MAX = -0x800000, 0x7FFFFF  # cumulative packets lost is a signed 24-bit field
CNAME = 1  # SDES item types (RFC 3550 section 6.5); 0 ends a chunk's item list
NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01

REPORT_INTERVAL = 5.0  # seconds; a fixed interval is fine for two-party calls (section 6.2 scales it for groups)

SEQ_MOD = 1 << 16
MIN_SEQUENTIAL = 2  # packets in sequence before a new source is believed (A.1)
MAX_DROPOUT = 3000  # a forward jump larger than this is a restart, not loss
MAX_MISORDER = 100  # a packet further behind than this is a restart, not reordering


class RtcpError(ValueError):
    """Bytes that are not RTCP, or a packet that cannot be written."""


def _header(packet_type: int, count: int, body: bytes) -> bytes:
    if count > MAX_COUNT:
        raise RtcpError(f"{count} items in one RTCP packet, at most {MAX_COUNT}")
    return HEADER.pack(VERSION << 6 | count, packet_type, len(body) // 4) + body


def _text(value: str, what: str) -> bytes:
    # surrogateescape: a peer's text that is not UTF-8 still parses, and serializes back byte for byte.
    data = value.encode("utf-8", "surrogateescape")
    if len(data) > MAX_TEXT:
        raise RtcpError(f"{what} of {len(data)} bytes, at most {MAX_TEXT}")
    return data


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


@dataclass(frozen=True, slots=True)
class ReceptionReport:
    ssrc: int
    fraction_lost: int  # lost/expected since the previous report, in 1/256
    packets_lost: int  # cumulative, signed: duplicates can make it negative
    highest_sequence: int  # extended: cycles << 16 | highest sequence number
    jitter: int  # RTP timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP timestamp, 0 if none
    dlsr: int  # delay since that SR, in 1/65536 s

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReceptionReport:
        if len(data) < offset + REPORT.size:
            raise RtcpError("report block beyond the end of the packet")
        ssrc, loss, highest, jitter, lsr, dlsr = REPORT.unpack_from(data, offset)
        lost = loss & 0xFFFFFF
        return cls(ssrc, loss >> 24, lost - (lost & 0x800000) * 2, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise RtcpError(f"fraction lost {self.fraction_lost} is not 0-255")
        if not LOST_MIN <= self.packets_lost <= LOST_MAX:
            raise RtcpError(f"packets lost {self.packets_lost} does not fit 24 bits signed")
        loss = self.fraction_lost << 24 | self.packets_lost & 0xFFFFFF
        return REPORT.pack(self.ssrc, loss, self.highest_sequence, self.jitter, self.lsr, self.dlsr)


def _reports(body: bytes, offset: int, count: int) -> tuple[ReceptionReport, ...]:
    return tuple(ReceptionReport.parse(body, offset + i * REPORT.size) for i in range(count))


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format, see ntp_timestamp()
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReceptionReport, ...] = ()
    extension: bytes = b""  # profile-specific, kept so a packet serializes back as it came

    @classmethod
    def parse(cls, data: bytes) -> SenderReport:
        return _parse_one(data, SR, cls._from_body)

    @classmethod
    def _from_body(cls, count: int, body: bytes) -> SenderReport:
        if len(body) < SENDER_INFO.size:
            raise RtcpError(f"sender report of {len(body)} bytes is shorter than its sender info")
        end = SENDER_INFO.size + count * REPORT.size
        ssrc, ntp, rtp, packets, octets = SENDER_INFO.unpack_from(body)
        return cls(ssrc, ntp, rtp, packets, octets, _reports(body, SENDER_INFO.size, count), body[end:])

    def serialize(self) -> bytes:
        info = SENDER_INFO.pack(self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count,
                                self.octet_count)
        body = info + b"".join(r.serialize() for r in self.reports) + _pad(self.extension)
        return _header(SR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReceptionReport, ...] = ()
    extension: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> ReceiverReport:
        return _parse_one(data, RR, cls._from_body)

    @classmethod
    def _from_body(cls, count: int, body: bytes) -> ReceiverReport:
        if len(body) < SSRC.size:
            raise RtcpError("receiver report without its SSRC")
        end = SSRC.size + count * REPORT.size
        return cls(SSRC.unpack_from(body)[0], _reports(body, SSRC.size, count), body[end:])

    def serialize(self) -> bytes:
        body = SSRC.pack(self.ssrc) + b"".join(r.serialize() for r in self.reports) + _pad(self.extension)
        return _header(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, str], ...]  # (item type, text) in wire order

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> SdesChunk:
        return cls(ssrc, ((CNAME, cname),))

    @property
    def cname(self) -> str | None:
        return next((text for kind, text in self.items if kind == CNAME), None)

    def serialize(self) -> bytes:
        parts = [SSRC.pack(self.ssrc)]
        for kind, text in self.items:
            if not 0 < kind <= 255:
                raise RtcpError(f"SDES item type {kind} is not 1-255")
            data = _text(text, "SDES item")
            parts.append(bytes((kind, len(data))) + data)
        chunk = b"".join(parts) + b"\x00"  # the item list ends with a null octet, then pads to a word
        return _pad(chunk)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]

    @classmethod
    def parse(cls, data: bytes) -> SourceDescription:
        return _parse_one(data, SDES, cls._from_body)

    @classmethod
    def _from_body(cls, count: int, body: bytes) -> SourceDescription:
        chunks = []
        offset = 0
        for _ in range(count):
            if len(body) < offset + SSRC.size:
                raise RtcpError("SDES chunk beyond the end of the packet")
            ssrc = SSRC.unpack_from(body, offset)[0]
            offset += SSRC.size
            items = []
            while True:
                if offset >= len(body):
                    raise RtcpError(f"SDES chunk for {ssrc:#010x} has no terminating null octet")
                kind = body[offset]
                if kind == 0:
                    break
                if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                    raise RtcpError(f"SDES item type {kind} beyond the end of the packet")
                end = offset + 2 + body[offset + 1]
                items.append((kind, body[offset + 2:end].decode("utf-8", "surrogateescape")))
                offset = end
            offset += 1 + (-(offset + 1) % 4)  # the null and the padding up to the next chunk's word
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))

    def serialize(self) -> bytes:
        return _header(SDES, len(self.chunks), b"".join(c.serialize() for c in self.chunks))


@dataclass(frozen=True, slots=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: str | None = None

    @classmethod
    def parse(cls, data: bytes) -> Goodbye:
        return _parse_one(data, BYE, cls._from_body)

    @classmethod
    def _from_body(cls, count: int, body: bytes) -> Goodbye:
        offset = count * SSRC.size
        if len(body) < offset:
            raise RtcpError(f"BYE for {count} sources has room for {len(body) // 4}")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        if len(body) == offset:
            return cls(ssrcs)
        end = offset + 1 + body[offset]
        if end > len(body):
            raise RtcpError(f"BYE reason of {body[offset]} bytes beyond the end of the packet")
        return cls(ssrcs, body[offset + 1:end].decode("utf-8", "surrogateescape"))

    def serialize(self) -> bytes:
        body = b"".join(SSRC.pack(s) for s in self.ssrcs)
        if self.reason is not None:
            reason = _text(self.reason, "BYE reason")
            body += _pad(bytes((len(reason),)) + reason)
        return _header(BYE, len(self.ssrcs), body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye
_Parser = Callable[[int, bytes], RtcpPacket]
PARSERS: dict[int, _Parser] = {
    SR: SenderReport._from_body, RR: ReceiverReport._from_body,
    SDES: SourceDescription._from_body, BYE: Goodbye._from_body,
}


def _walk(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield (packet type, count, body without header and padding) for each packet of a compound."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER.size:
            raise RtcpError(f"{len(data) - offset} bytes at offset {offset} are shorter than an RTCP header")
        first, packet_type, words = HEADER.unpack_from(data, offset)
        if first >> 6 != VERSION:
            raise RtcpError(f"RTCP version {first >> 6} at offset {offset}, not 2")
        if not FIRST_TYPE <= packet_type <= LAST_TYPE:
            raise RtcpError(f"packet type {packet_type} at offset {offset} is not RTCP")
        end = offset + 4 * (words + 1)
        if end > len(data):
            raise RtcpError(f"packet type {packet_type} at offset {offset} claims {end - offset} bytes, "
                            f"{len(data) - offset} left")
        body_end = end
        if first & 0x20:
            padding = data[end - 1]
            if padding == 0 or padding > end - offset - HEADER.size:
                raise RtcpError(f"padding of {padding} bytes does not fit packet type {packet_type}")
            body_end -= padding
        yield packet_type, first & 0x1F, data[offset + HEADER.size:body_end]
        offset = end


_P = TypeVar("_P")


def _parse_one(data: bytes, packet_type: int, parser: Callable[[int, bytes], _P]) -> _P:
    packets = list(_walk(data))
    if len(packets) != 1 or packets[0][0] != packet_type:
        raise RtcpError(f"expected one RTCP packet of type {packet_type}, got types {[p[0] for p in packets]}")
    return parser(packets[0][1], packets[0][2])


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """The SR, RR, SDES and BYE packets of a compound packet, in order; other types are skipped."""
    if not data:
        raise RtcpError("empty RTCP packet")
    return [PARSERS[kind](count, body) for kind, count, body in _walk(data) if kind in PARSERS]


def serialize_compound(packets: Sequence[RtcpPacket]) -> bytes:
    return b"".join(p.serialize() for p in packets)


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp (seconds since 1900 in the high word, binary fraction in the low word)."""
    seconds = int(unix_time)
    fraction = int((unix_time - seconds) * (1 << 32))
    return ((seconds + NTP_UNIX_OFFSET) << 32 | fraction) & 0xFFFFFFFFFFFFFFFF


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: what LSR echoes and round-trip time is measured in (1/65536 s)."""
    return ntp >> 16 & 0xFFFFFFFF


def round_trip_time(report: ReceptionReport, arrival_ntp_middle32: int) -> float | None:
    """Seconds of round trip from a report on our SR (RFC 3550 6.4.1: A - LSR - DLSR), None if unknown.

    A negative result means the peer's DLSR or our clock is off; it is no measurement, so None too.
    """
    if report.lsr == 0:
        return None
    delay = (arrival_ntp_middle32 - report.lsr - report.dlsr) & 0xFFFFFFFF
    return None if delay & 0x80000000 else delay / 65536


def next_report_delay(rng: random.Random) -> float:
    # Randomised to 0.5-1.5 times the interval (RFC 3550 6.3.1) so that legs started together do not report in step.
    return REPORT_INTERVAL * rng.uniform(0.5, 1.5)


class ReceptionStats:
    """What we know about one source we receive: validity, loss and jitter for our report blocks."""

    __slots__ = ("_bad_seq", "_base_seq", "_cycles", "_expected_prior", "_fraction", "_jitter", "_max_seq",
                 "_probation", "_rate", "_received", "_received_prior", "_transit")

    def __init__(self, clock_rate: int) -> None:
        self._rate = clock_rate
        self._probation = MIN_SEQUENTIAL
        self._max_seq = -1  # no packet yet: matches no sequence number
        self._base_seq = 0
        self._bad_seq = SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._fraction = 0  # of the last report block, 1/256
        self._jitter = 0.0  # RTP timestamp units
        self._transit = 0.0  # arrival in timestamp units minus RTP timestamp, of the previous valid packet

    def received(self, sequence: int, timestamp: int, arrival: float) -> bool:
        """Count one RTP packet (arrival: monotonic seconds); False if A.1 says it is not (yet) valid."""
        if self._probation:
            return self._on_probation(sequence, timestamp, arrival)
        udelta = (sequence - self._max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:
            if sequence < self._max_seq:
                self._cycles += SEQ_MOD
            self._max_seq = sequence
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            # A big jump: believe it only if the next packet follows it, else it was a stray.
            if sequence != self._bad_seq:
                self._bad_seq = (sequence + 1) & 0xFFFF
                return False
            self._restart(sequence, timestamp, arrival)
            return True
        # else a duplicate or reordered packet: counted, which is how loss can go negative (A.3)
        self._received += 1
        # A.8 in floating point. A difference of transits over 2**31 is the RTP timestamp wrapping, not jitter.
        transit = arrival * self._rate - timestamp
        d = transit - self._transit
        self._transit = transit
        if d < 0:
            d = -d
        if d > 0x80000000:
            d = 0x100000000 - d
        self._jitter += (d - self._jitter) * 0.0625
        return True

    def _on_probation(self, sequence: int, timestamp: int, arrival: float) -> bool:
        if sequence == (self._max_seq + 1) & 0xFFFF and self._max_seq >= 0:
            self._probation -= 1
            self._max_seq = sequence
            if self._probation == 0:
                self._restart(sequence, timestamp, arrival)
                return True
        else:
            self._probation = MIN_SEQUENTIAL - 1
            self._max_seq = sequence
        return False

    def _restart(self, sequence: int, timestamp: int, arrival: float) -> None:
        """init_seq() of A.1 plus the packet that caused it; the jitter estimate carries on from here."""
        self._probation = 0
        self._base_seq = self._max_seq = sequence
        self._bad_seq = SEQ_MOD + 1
        self._cycles = 0
        self._received = 1
        self._received_prior = self._expected_prior = 0
        self._transit = arrival * self._rate - timestamp

    @property
    def packets(self) -> int:
        return self._received

    @property
    def extended_highest(self) -> int:
        return self._cycles + self._max_seq if not self._probation else 0

    @property
    def expected(self) -> int:
        return self._cycles + self._max_seq - self._base_seq + 1 if not self._probation else 0

    @property
    def cumulative_lost(self) -> int:
        return max(LOST_MIN, min(LOST_MAX, self.expected - self._received))

    @property
    def fraction_lost_percent(self) -> float:
        """Loss over the interval of the last report block (0 before the first), in percent."""
        return self._fraction * 100 / 256

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000 / self._rate

    def report_block(self, ssrc: int, last_sr: tuple[int, float] | None, now: float) -> ReceptionReport:
        """The report block on this source (A.3); starts a new interval for the fraction lost."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior, self._received_prior = expected, self._received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            self._fraction = 0
        else:
            self._fraction = min(255, (lost_interval << 8) // expected_interval)
        lsr, dlsr = 0, 0
        if last_sr is not None:
            lsr = last_sr[0]
            dlsr = min(0xFFFFFFFF, max(0, int((now - last_sr[1]) * 65536)))
        return ReceptionReport(ssrc, self._fraction, self.cumulative_lost, self.extended_highest & 0xFFFFFFFF,
                               min(int(self._jitter), 0xFFFFFFFF), lsr, dlsr)
