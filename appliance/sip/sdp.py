"""SDP session descriptions (RFC 8866, which replaced RFC 4566): parse, inspect, serialize.

`SessionDescription.parse` reads a body as phones send it; `serialize` writes it back with CRLF line
ends in the RFC's line order (v o s i u e p c b t r z k a, then each m= section: m i c b k a). Lines
and attributes this module does not interpret are kept, so a body round-trips.

Parsing is tolerant where real phones deviate harmlessly, and strict where a mistake would change
where media goes or how it is decoded:

- LF line ends, trailing whitespace and blank lines are accepted.
- A missing t= line is accepted (some gateways omit it, and offer/answer ignores timing); serialize
  then writes "t=0 0", which the RFC requires.
- Lines with a type letter outside RFC 8866 are kept, not refused: no call should fail over a line
  that nobody reads.
- A rejected media section (port 0) may lack a c= line; any other needs one, its own or the session's.
- v= must come first and be 0; o= and s= are required, o= with a numeric session id and version
  (offer/answer compares versions); m=, c=, b=, t= and the rtpmap, fmtp, ptime, maxptime and rtcp
  attributes must be well-formed; a section has at most one direction attribute.

Bodies larger than MAX_SDP_BYTES, or with more than MAX_MEDIA_SECTIONS m= lines or MAX_ATTRIBUTES a=
lines, are refused early, so hostile input costs little.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from appliance.sip.errors import SipParseError

MAX_SDP_BYTES = 16 * 1024
MAX_MEDIA_SECTIONS = 16
MAX_ATTRIBUTES = 256

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: dict[str, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "sendonly",
    "recvonly": "recvonly",
    "inactive": "inactive",
}
DEFAULT_DIRECTION: Direction = "sendrecv"

# Bounded so that a hostile 10,000-digit "number" cannot reach int() (which refuses > 4300 digits
# with a bare ValueError anyway).
_NUMBER = re.compile(r"[0-9]{1,30}")
_MILLISECONDS = re.compile(r"([0-9]{1,6})(?:\.[0-9]{1,6})?")
_SESSION_ONLY = frozenset("vosuepzrt")
_ONCE_PER_SECTION = frozenset("vosiuczk")
_RFC_ORDER = "vosiuepcbtrzka"
_C_RANK = _RFC_ORDER.index("c")


def _number(text: str, what: str, maximum: int | None = None) -> int:
    if not _NUMBER.fullmatch(text) or (maximum is not None and int(text) > maximum):
        limit = f" from 0 to {maximum}" if maximum is not None else ""
        raise SipParseError(f"{what} must be a number{limit}, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class RtpMap:
    """One a=rtpmap value: payload type -> encoding name, RTP clock rate and channel count."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int = 1

    @classmethod
    def parse(cls, text: str) -> RtpMap:
        pt, _, encoding = text.partition(" ")
        parts = encoding.strip().split("/")
        if not 2 <= len(parts) <= 3 or not parts[0]:
            raise SipParseError(f"rtpmap must be 'PT name/rate[/channels]', got {text!r}")
        channels = _number(parts[2], "rtpmap channel count") if len(parts) == 3 else 1
        if channels == 0:
            raise SipParseError(f"rtpmap channel count must be at least 1, got {text!r}")
        return cls(_number(pt, "rtpmap payload type", 127), parts[0], _number(parts[1], "rtpmap clock rate"), channels)

    def attribute(self) -> Attribute:
        channels = f"/{self.channels}" if self.channels != 1 else ""
        return Attribute("rtpmap", f"{self.payload_type} {self.encoding}/{self.clock_rate}{channels}")


# RFC 3551 tables 4 and 5: payload types that need no rtpmap line. G722's clock rate is 8000 although
# the codec samples at 16 kHz: RFC 3551 §4.5.2 keeps an error of RFC 1890 for compatibility.
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    rtpmap.payload_type: rtpmap
    for rtpmap in map(
        RtpMap.parse,
        [
            "0 PCMU/8000", "3 GSM/8000", "4 G723/8000", "5 DVI4/8000", "6 DVI4/16000", "7 LPC/8000",
            "8 PCMA/8000", "9 G722/8000", "10 L16/44100/2", "11 L16/44100", "12 QCELP/8000", "13 CN/8000",
            "14 MPA/90000", "15 G728/8000", "16 DVI4/11025", "17 DVI4/22050", "18 G729/8000", "25 CelB/90000",
            "26 JPEG/90000", "28 nv/90000", "31 H261/90000", "32 MPV/90000", "33 MP2T/90000", "34 H263/90000",
        ],
    )
}


@dataclass(frozen=True)
class Attribute:
    """An a= line: `a=name:value`, or `a=name` (value None) for a flag such as a=sendrecv."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        name, colon, value = text.partition(":")
        if not name or " " in name:
            raise SipParseError(f"attribute name must be a non-empty token, got {text!r}")
        return cls(name, value if colon else None)

    def line(self) -> str:
        return f"a={self.name}" if self.value is None else f"a={self.name}:{self.value}"


@dataclass(frozen=True)
class Origin:
    """The o= line; `version` grows by one with every changed description a side sends (RFC 3264 §8)."""

    username: str
    session_id: int
    version: int
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, text: str) -> Origin:
        parts = text.split()
        if len(parts) != 6:
            raise SipParseError(f"o= needs 6 fields (user id version nettype addrtype address), got {len(parts)}")
        user, session_id, version, nettype, addrtype, address = parts
        session_id_number = _number(session_id, "o= session id")
        return cls(user, session_id_number, _number(version, "o= version"), nettype, addrtype, address)

    def value(self) -> str:
        return f"{self.username} {self.session_id} {self.version} {self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True)
class Connection:
    """A c= line. `address` is kept as sent, multicast /ttl/count suffixes included."""

    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, text: str) -> Connection:
        parts = text.split()
        if len(parts) != 3:
            raise SipParseError(f"c= needs 3 fields (nettype addrtype address), got {len(parts)}")
        return cls(*parts)

    def value(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def unspecified(self) -> bool:
        """0.0.0.0 (or ::): nowhere to send to; RFC 2543 used it to put a call on hold."""
        try:
            return ipaddress.ip_address(self.host).is_unspecified
        except ValueError:  # a host name
            return False


@dataclass(frozen=True)
class Bandwidth:
    """A b= line, e.g. b=AS:64 (kbit/s) or b=TIAS:64000 (bit/s)."""

    bwtype: str
    value: int

    @classmethod
    def parse(cls, text: str) -> Bandwidth:
        bwtype, colon, value = text.partition(":")
        if not colon or not bwtype:
            raise SipParseError(f"b= must be 'type:value', got {text!r}")
        return cls(bwtype, _number(value, "b= value"))


@dataclass(frozen=True)
class Timing:
    """A t= line with the r= lines that follow it (kept as text: nobody schedules phone calls)."""

    start: int
    stop: int
    repeats: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Timing:
        parts = text.split()
        if len(parts) != 2:
            raise SipParseError(f"t= needs 2 fields (start stop), got {len(parts)}")
        return cls(_number(parts[0], "t= start time"), _number(parts[1], "t= stop time"))


@dataclass(frozen=True)
class Rtcp:
    """An a=rtcp value (RFC 3605): where the RTCP of a stream goes when it is not RTP port + 1."""

    port: int
    connection: Connection | None = None

    @classmethod
    def parse(cls, text: str) -> Rtcp:
        port, _, rest = text.strip().partition(" ")
        return cls(_number(port, "rtcp port", 65535), Connection.parse(rest) if rest else None)


def _fmtp_format(text: str) -> str:
    fmt = text.split(" ", 1)[0]
    if not fmt:
        raise SipParseError(f"fmtp must be 'format parameters', got {text!r}")
    return fmt


def _milliseconds(text: str, what: str) -> int:
    match = _MILLISECONDS.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise SipParseError(f"{what} must be a positive number of milliseconds, got {text!r}")
    return int(match[1])


# Each checker raises on a malformed value; parse runs them so the error can name the line.
_ATTRIBUTE_CHECKS: dict[str, Callable[[str], object]] = {
    "rtpmap": RtpMap.parse,
    "fmtp": _fmtp_format,
    "ptime": lambda text: _milliseconds(text, "ptime"),
    "maxptime": lambda text: _milliseconds(text, "maxptime"),
    "rtcp": Rtcp.parse,
}


def _rank(line: tuple[str, str]) -> int:
    # Letters outside RFC 8866 go after all known ones, just before the a= lines.
    position = _RFC_ORDER.find(line[0])
    return position if position >= 0 else len(_RFC_ORDER)


class _Section:
    """What the session level and a media section share: c=, b=, a= and uninterpreted lines."""

    connection: Connection | None
    bandwidths: list[Bandwidth]
    attributes: list[Attribute]
    other_lines: list[tuple[str, str]]

    def attribute_values(self, name: str) -> list[str]:
        """The values of every a=name line, in order; "" for a flag."""
        return [a.value or "" for a in self.attributes if a.name == name]

    def has_attribute(self, name: str) -> bool:
        return any(a.name == name for a in self.attributes)

    def _first(self, name: str) -> str | None:
        values = self.attribute_values(name)
        return values[0] if values else None

    @property
    def direction(self) -> Direction | None:
        """This section's own direction attribute, None when it has none."""
        return next((DIRECTIONS[a.name] for a in self.attributes if a.name in DIRECTIONS), None)

    def set_direction(self, direction: Direction) -> None:
        self.attributes = [a for a in self.attributes if a.name not in DIRECTIONS]
        self.attributes.append(Attribute(direction))

    def _lines(self, head: list[str], timing: list[str]) -> list[str]:
        """`head`, then this section's lines in RFC 8866 order, with `timing` (t= and r=) after b=."""
        other = sorted(self.other_lines, key=_rank)
        out = head + [f"{letter}={value}" for letter, value in other if _rank((letter, value)) < _C_RANK]
        if self.connection is not None:
            out.append(f"c={self.connection.value()}")
        out += [f"b={b.bwtype}:{b.value}" for b in self.bandwidths]
        out += timing
        out += [f"{letter}={value}" for letter, value in other if _rank((letter, value)) > _C_RANK]
        return out + [a.line() for a in self.attributes]


@dataclass
class MediaDescription(_Section):
    """An m= section: `m=<media> <port>[/<port_count>] <proto> <formats...>` and its lines.

    `other_lines` holds the lines this module does not interpret (i=, k=, unknown letters), in order.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse_m_line(cls, text: str) -> MediaDescription:
        parts = text.split()
        if len(parts) < 4:
            raise SipParseError(f"m= needs 'media port proto format...', got {text!r}")
        media, port_text, proto, *formats = parts
        port, slash, count = port_text.partition("/")
        port_count = _number(count, "m= port count") if slash else None
        if port_count == 0:
            raise SipParseError("m= port count must be at least 1")
        section = cls(media, _number(port, "m= port", 65535), proto, formats, port_count)
        if section.is_rtp:
            for fmt in formats:
                _number(fmt, "RTP payload type in m=", 127)
        return section

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        return self._lines([f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"], [])

    @property
    def is_rtp(self) -> bool:
        """RTP/AVP, RTP/SAVP, RTP/AVPF, UDP/TLS/RTP/SAVPF...: formats are payload type numbers."""
        return "RTP" in self.proto.upper().split("/")

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> mapping, in m= order; static types without an rtpmap line come from RFC 3551."""
        if not self.is_rtp:
            return {}
        declared = {m.payload_type: m for m in map(RtpMap.parse, self.attribute_values("rtpmap"))}
        found: dict[int, RtpMap] = {}
        for pt in (_number(fmt, "RTP payload type", 127) for fmt in self.formats):
            rtpmap = declared.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
            if rtpmap is not None:
                found[pt] = rtpmap
        return found

    def fmtp(self, fmt: int | str) -> str | None:
        """The parameters of a=fmtp for one format (payload type), None without such a line."""
        for value in self.attribute_values("fmtp"):
            name, _, params = value.partition(" ")
            if name == str(fmt):
                return params.strip()
        return None

    @property
    def ptime(self) -> int | None:
        value = self._first("ptime")
        return None if value is None else _milliseconds(value, "ptime")

    @property
    def maxptime(self) -> int | None:
        value = self._first("maxptime")
        return None if value is None else _milliseconds(value, "maxptime")

    @property
    def rtcp(self) -> Rtcp | None:
        value = self._first("rtcp")
        return None if value is None else Rtcp.parse(value)


# Stands in for o= while parsing, until the o= line is read; parse refuses a body without one.
_NO_ORIGIN = Origin("-", 0, 0, "IN", "IP4", "0.0.0.0")


@dataclass
class SessionDescription(_Section):
    """A whole SDP body: session-level lines, then the media sections.

    `other_lines` holds the session lines this module does not interpret (i= u= e= p= z= k= and
    unknown letters), in order; serialize puts each where RFC 8866 places its letter.
    """

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse a body; SipParseError names the line at fault. For str, the size limit counts characters."""
        if len(data) > MAX_SDP_BYTES:
            unit = "bytes" if isinstance(data, bytes) else "characters"
            raise SipParseError(f"SDP body is {len(data)} {unit}, more than the {MAX_SDP_BYTES} accepted")
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SipParseError(f"SDP body is not UTF-8 (bad byte at offset {exc.start})") from None
        return _Parser().run(data.split("\n"))

    def serialize(self) -> bytes:
        timing = []
        for t in self.timings or [Timing(0, 0)]:
            timing += [f"t={t.start} {t.stop}", *(f"r={repeat}" for repeat in t.repeats)]
        out = self._lines(["v=0", f"o={self.origin.value()}", f"s={self.session_name}"], timing)
        for media in self.media:
            out += media.lines()
        # A value holding a line break would smuggle extra lines into the body.
        for line in out:
            if "\r" in line or "\n" in line:
                raise ValueError(f"SDP line {line!r} contains a line break")
        return ("\r\n".join(out) + "\r\n").encode("utf-8")

    def media_direction(self, media: MediaDescription) -> Direction:
        """Direction of a media section: its own, else the session's, else sendrecv (RFC 3264 §5.1)."""
        return media.direction or self.direction or DEFAULT_DIRECTION

    def media_connection(self, media: MediaDescription) -> Connection | None:
        """Where a media section's RTP goes: its own c= line, else the session's."""
        return media.connection or self.connection


class _Parser:
    """One pass over the lines; `seen` tracks the lines that may appear once per section."""

    def __init__(self) -> None:
        self.session = SessionDescription(origin=_NO_ORIGIN)
        self.seen: set[str] = set()
        self.session_seen = self.seen  # stays the session's set when `seen` moves on to media sections
        self.media_lines: list[int] = []
        self.attribute_count = 0

    def run(self, lines: list[str]) -> SessionDescription:
        started = False
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip(" \t\r")
            if not line:
                continue
            if not started:
                if line != "v=0":
                    raise SipParseError(f"SDP line {number}: expected 'v=0' first, got {line[:40]!r}")
                started = True
                self.seen.add("v")
                continue
            if len(line) < 2 or line[1] != "=" or not line[0].isascii() or not line[0].isalpha():
                raise SipParseError(f"SDP line {number}: expected '<letter>=<value>', got {line[:40]!r}")
            try:
                self._line(number, line[0], line[2:])
            except SipParseError as exc:
                raise SipParseError(f"SDP line {number}: {exc}") from None
        if not started:
            raise SipParseError("SDP body is empty")
        for letter in "os":
            if letter not in self.session_seen:
                raise SipParseError(f"SDP body has no {letter}= line")
        for number, media in zip(self.media_lines, self.session.media, strict=True):
            if media.port != 0 and self.session.media_connection(media) is None:
                raise SipParseError(f"SDP line {number}: m={media.media} has no c= line and the session has none")
        return self.session

    def _line(self, number: int, letter: str, value: str) -> None:
        session = self.session
        if letter == "m":
            if len(session.media) == MAX_MEDIA_SECTIONS:
                raise SipParseError(f"more than {MAX_MEDIA_SECTIONS} media sections")
            session.media.append(MediaDescription.parse_m_line(value))
            self.media_lines.append(number)
            self.seen = set()
            return
        section: _Section = session.media[-1] if session.media else session
        if session.media and letter in _SESSION_ONLY:
            raise SipParseError(f"{letter}= line belongs before the first m= line")
        if letter in _ONCE_PER_SECTION:
            if letter in self.seen:
                raise SipParseError(f"second {letter}= line in the same section")
            self.seen.add(letter)
        match letter:
            case "o":
                session.origin = Origin.parse(value)
            case "s":
                session.session_name = value
            case "t":
                session.timings.append(Timing.parse(value))
            case "r":
                if not session.timings:
                    raise SipParseError("r= line before any t= line")
                last = session.timings[-1]
                session.timings[-1] = dataclasses.replace(last, repeats=(*last.repeats, value))
            case "c":
                section.connection = Connection.parse(value)
            case "b":
                section.bandwidths.append(Bandwidth.parse(value))
            case "a":
                self._attribute(section, value)
            case _:
                section.other_lines.append((letter, value))

    def _attribute(self, section: _Section, value: str) -> None:
        self.attribute_count += 1
        if self.attribute_count > MAX_ATTRIBUTES:
            raise SipParseError(f"more than {MAX_ATTRIBUTES} a= lines")
        attribute = Attribute.parse(value)
        if attribute.name in DIRECTIONS and section.direction is not None:
            raise SipParseError(f"a={attribute.name} after a={section.direction} in the same section")
        check = _ATTRIBUTE_CHECKS.get(attribute.name)
        if check is not None:
            check(attribute.value or "")
        section.attributes.append(attribute)
