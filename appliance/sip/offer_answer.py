"""SDP offer/answer (RFC 3264) for one audio stream: our offers, our answers, and what was agreed.

Policy, chosen for telephony interop:

- An answer carries exactly one audio codec, plus telephone-event when offered: the first codec in
  the *offer's* order that we support. RFC 3264 §6.1 lets the answerer reorder, but the order is the
  caller's choice (a Polycom offering G722 first wants wideband), and a single codec spares phones
  that cannot switch codecs mid-call.
- Payload type numbers in the answer are the offerer's, dynamic ones included (§6.1 SHOULD).
- Only the first usable audio m= line is accepted; every other one (video, a second audio stream,
  ...) is rejected with port 0, keeping its formats (§6). A phone offering the same audio as
  RTP/SAVP then RTP/AVP (best-effort SRTP as two m= lines) thus gets whichever comes first.
- RTP/AVP, and RTP/AVPF answered as offered (AVPF peers interwork with plain AVP behaviour; we send
  no feedback).
- SRTP with SDES keys (RFC 4568): RTP/SAVP and RTP/SAVPF are answered as offered when one a=crypto
  line is usable (`CryptoAttribute.supported`: AES_CM_128_HMAC_SHA1_80 or _32, no MKI); the answer
  holds one a=crypto with the first usable line's tag and suite and a fresh key of ours. An SRTP
  stream without a usable line is rejected like any other (`answer_offer(srtp=False)` rejects them
  all). A new key on every answer, re-INVITEs included, is allowed (RFC 4568 §7.1.4).
- Our SRTP offers (`make_offer(srtp=True)`) are RTP/SAVP with two a=crypto lines, tag 1
  AES_CM_128_HMAC_SHA1_80 and tag 2 AES_CM_128_HMAC_SHA1_32, each with a fresh key. Our keys live in
  the offer itself, so `apply_answer` reads them back from it, and re-offers copied from it keep
  them (RFC 4568 allows the reuse). An answer must keep the offer's choice of SRTP or plain RTP,
  and an SRTP one must carry a crypto line with one of our tags and its suite.
- `NegotiatedMedia` is the result on both sides: which codec to send with, where to, whether to
  send at all, and with which SRTP keys (`srtp`, None for plain RTP). A remote connection address
  of 0.0.0.0 (RFC 2543 hold, or "address not yet known", §8.4) means nowhere to send, so the
  direction then never includes sending.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from appliance.media.srtp import (
    AES_CM_128_HMAC_SHA1_32,
    AES_CM_128_HMAC_SHA1_80,
    CryptoAttribute,
    SrtpError,
    SrtpKeys,
    new_crypto,
)
from appliance.sip.errors import SipError
from appliance.sip.sdp import (
    DEFAULT_DIRECTION,
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
)

DEFAULT_PTIME = 20
SESSION_NAME = "VoxGate"
# The events a telephone-event receiver supports when its fmtp says nothing (RFC 4733, as RFC 2833).
DEFAULT_EVENTS = "0-15"
PROTOS = ("RTP/AVP", "RTP/AVPF")
SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")
# The crypto lines of our SRTP offers, tag -> suite, in order of preference (the 80-bit tag first).
OFFERED_SUITES: dict[int, str] = {1: AES_CM_128_HMAC_SHA1_80, 2: AES_CM_128_HMAC_SHA1_32}

logger = logging.getLogger(__name__)


class NegotiationError(SipError, ValueError):
    """Offer and answer have nothing in common (the SIP layer answers 488), or an answer contradicts its offer."""


@dataclass(frozen=True)
class Codec:
    """A format we can send and receive. `clock_rate` is the RTP timestamp rate, `sample_rate` the audio's."""

    name: str
    payload_type: int
    clock_rate: int
    sample_rate: int
    fmtp: str | None = None

    @property
    def is_telephone_event(self) -> bool:
        return self.name == "telephone-event"

    def matches(self, rtpmap: RtpMap) -> bool:
        # Encoding names are media subtypes, so case-insensitive (RFC 4855 §3).
        return (rtpmap.encoding.lower(), rtpmap.clock_rate, rtpmap.channels) == (self.name.lower(), self.clock_rate, 1)


PCMU = Codec("PCMU", 0, 8000, 8000)
PCMA = Codec("PCMA", 8, 8000, 8000)
# G.722 samples at 16 kHz but its RTP clock runs at 8000 Hz (RFC 3551 §4.5.2).
G722 = Codec("G722", 9, 8000, 16000)
# RFC 4733 DTMF: not an audio codec, it travels beside the chosen one (0-16: digits, *, #, A-D, flash).
TELEPHONE_EVENT = Codec("telephone-event", 101, 8000, 8000, fmtp="0-16")
# Ours, in order of preference.
DEFAULT_CODECS: tuple[Codec, ...] = (PCMU, PCMA, G722, TELEPHONE_EVENT)

_FLOWS: dict[Direction, tuple[bool, bool]] = {
    "sendrecv": (True, True),
    "sendonly": (True, False),
    "recvonly": (False, True),
    "inactive": (False, False),
}
_BY_FLOWS: dict[tuple[bool, bool], Direction] = {flows: direction for direction, flows in _FLOWS.items()}
# RFC 6337 §5.3: holding stops our sending and keeps receiving as it was; resuming undoes that.
_HOLD: dict[Direction, Direction] = {"sendrecv": "sendonly", "recvonly": "inactive"}
_RESUME: dict[Direction, Direction] = {"sendonly": "sendrecv", "inactive": "recvonly"}
_EVENT_RANGE = re.compile(r"([0-9]{1,3})(?:-([0-9]{1,3}))?")


@dataclass(frozen=True)
class NegotiatedMedia:
    """What both sides agreed on, from our side: send `codec` as `payload_type` to the remote address."""

    codec: str
    payload_type: int
    clock_rate: int
    sample_rate: int
    telephone_event: int | None
    ptime: int
    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    direction: Direction
    on_hold: bool
    srtp: SrtpKeys | None = None


def reverse(direction: Direction) -> Direction:
    """The same stream seen from the other end: sendonly <-> recvonly."""
    send, receive = _FLOWS[direction]
    return _BY_FLOWS[(receive, send)]


def _both(first: Direction, second: Direction) -> Direction:
    """Only the flows both directions allow."""
    (send_a, receive_a), (send_b, receive_b) = _FLOWS[first], _FLOWS[second]
    return _BY_FLOWS[(send_a and send_b, receive_a and receive_b)]


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _description(address: str, session_id: int, version: int) -> SessionDescription:
    addrtype = _addrtype(address)
    return SessionDescription(
        origin=Origin("-", session_id, version, "IN", addrtype, address),
        session_name=SESSION_NAME,
        connection=Connection("IN", addrtype, address),
        timings=[Timing(0, 0)],
    )


def make_offer(
    address: str,
    port: int,
    *,
    session_id: int,
    version: int = 0,
    codecs: Sequence[Codec] = DEFAULT_CODECS,
    direction: Direction = DEFAULT_DIRECTION,
    ptime: int = DEFAULT_PTIME,
    srtp: bool = False,
) -> SessionDescription:
    """An initial offer: one audio stream with `codecs` in their order of preference.

    RTP/AVP, or with `srtp` RTP/SAVP offering a fresh key for each suite of OFFERED_SUITES.
    """
    if all(codec.is_telephone_event for codec in codecs):
        raise ValueError("an offer needs at least one audio codec besides telephone-event")
    if len({codec.payload_type for codec in codecs}) != len(codecs):
        raise ValueError(f"payload types repeat in {[codec.payload_type for codec in codecs]}")
    offer = _description(address, session_id, version)
    proto = "RTP/SAVP" if srtp else "RTP/AVP"
    media = MediaDescription("audio", port, proto, [str(codec.payload_type) for codec in codecs])
    for codec in codecs:
        media.attributes.append(RtpMap(codec.payload_type, codec.name, codec.clock_rate).attribute())
        if codec.fmtp is not None:
            media.attributes.append(Attribute("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    if srtp:
        for tag, suite in OFFERED_SUITES.items():
            media.attributes.append(Attribute("crypto", new_crypto(tag, suite).serialize()))
    media.attributes.append(Attribute("ptime", str(ptime)))
    media.set_direction(direction)
    offer.media.append(media)
    return offer


def _events(fmtp: str | None) -> set[int] | None:
    """The events of a telephone-event fmtp ("0-15,66"), None when malformed."""
    events: set[int] = set()
    for item in (fmtp or DEFAULT_EVENTS).replace(" ", "").split(","):
        match = _EVENT_RANGE.fullmatch(item)
        if match is None:
            return None
        low = int(match[1])
        high = int(match[2] or low)
        if not low <= high <= 255:
            return None
        events.update(range(low, high + 1))
    return events


def _ranges(events: set[int]) -> str:
    """The fmtp text for a set of events: {0, 1, 2, 5} -> "0-2,5"."""
    items: list[str] = []
    for event in sorted(events):
        if event - 1 in events:
            continue
        high = event
        while high + 1 in events:
            high += 1
        items.append(str(event) if high == event else f"{event}-{high}")
    return ",".join(items)


class _Accepted(NamedTuple):
    payload_type: int
    codec: Codec
    event_pt: int | None
    events: str  # the telephone-event fmtp of the answer, when event_pt is set
    crypto: CryptoAttribute | None  # the offered crypto line we take, for SRTP


def _is_secure(media: MediaDescription) -> bool:
    return media.proto.upper() in SECURE_PROTOS


def _offered_cryptos(media: MediaDescription) -> list[CryptoAttribute]:
    """The crypto lines of an offered stream that we can use, in its order; malformed ones are skipped."""
    usable = []
    for value in media.attribute_values("crypto"):
        try:
            crypto = CryptoAttribute.parse(value)
        except SrtpError as error:
            # One bad line must not spoil the others: an offer may list suites we cannot even read.
            logger.debug("skipping offered crypto line: %s", error)
            continue
        if crypto.supported:
            usable.append(crypto)
    return usable


def _accept(offered: MediaDescription, supported: Sequence[Codec], srtp: bool) -> _Accepted | None:
    """For an offered stream we can take: the codec, telephone-event and crypto line we take, else None."""
    if offered.media != "audio" or offered.port == 0:
        return None
    crypto = None
    if _is_secure(offered):
        cryptos = _offered_cryptos(offered) if srtp else []
        if not cryptos:
            return None
        crypto = cryptos[0]
    elif offered.proto.upper() not in PROTOS:
        return None
    rtpmaps = offered.rtpmaps()
    audio = [codec for codec in supported if not codec.is_telephone_event]
    choice = next(((pt, c) for pt, rtpmap in rtpmaps.items() for c in audio if c.matches(rtpmap)), None)
    if choice is None:
        return None
    pt, codec = choice
    ours = next((c for c in supported if c.is_telephone_event and c.clock_rate == codec.clock_rate), None)
    if ours is not None:
        for event_pt, rtpmap in rtpmaps.items():
            if not ours.matches(rtpmap):
                continue
            theirs, mine = _events(offered.fmtp(event_pt)), _events(ours.fmtp)
            if theirs and mine and theirs & mine:
                return _Accepted(pt, codec, event_pt, _ranges(theirs & mine), crypto)
    return _Accepted(pt, codec, None, "", crypto)


def _negotiated(
    remote: SessionDescription,
    media: MediaDescription,
    codec: Codec,
    payload_type: int,
    event_pt: int | None,
    direction: Direction,
    srtp: SrtpKeys | None,
) -> NegotiatedMedia:
    """The result of a negotiation, from the remote description's accepted stream and our `direction`."""
    connection = remote.media_connection(media)
    if connection is None:
        raise NegotiationError(f"m={media.media} line has no connection address")
    remote_direction = remote.media_direction(media)
    if connection.unspecified:
        direction = _both(direction, "recvonly")
    rtcp = media.rtcp
    # a=ptime is what the remote wants to receive (RFC 4566 §6), so it sets what we send; maxptime caps it.
    ptime = media.ptime or DEFAULT_PTIME
    if media.maxptime is not None:
        ptime = min(ptime, media.maxptime)
    return NegotiatedMedia(
        codec=codec.name,
        payload_type=payload_type,
        clock_rate=codec.clock_rate,
        sample_rate=codec.sample_rate,
        telephone_event=event_pt,
        ptime=ptime,
        remote_address=connection.host,
        remote_port=media.port,
        remote_rtcp_port=rtcp.port if rtcp is not None else media.port + 1,
        direction=direction,
        on_hold=connection.unspecified or remote_direction in ("sendonly", "inactive"),
        srtp=srtp,
    )


def answer_offer(
    offer: SessionDescription,
    address: str,
    port: int,
    *,
    session_id: int,
    version: int = 0,
    supported: Sequence[Codec] = DEFAULT_CODECS,
    direction: Direction | None = None,
    ptime: int = DEFAULT_PTIME,
    srtp: bool = True,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Our answer to `offer`, receiving RTP at address:port, and what it agrees on.

    `direction` is what we want (None: sendrecv); the answer allows only the flows both the offer and
    we allow, so an offered sendonly is answered recvonly and inactive stays inactive. With `srtp`
    False, SRTP streams are rejected as if we had no keys.
    """
    answer = _description(address, session_id, version)
    # RFC 3264 §6: "The t= line in the answer MUST equal that of the offer."
    answer.timings = list(offer.timings) or answer.timings
    negotiated: NegotiatedMedia | None = None
    for offered in offer.media:
        accepted = None if negotiated is not None else _accept(offered, supported, srtp)
        if accepted is None:
            answer.media.append(MediaDescription(offered.media, 0, offered.proto, list(offered.formats)))
            continue
        pt, codec, event_pt, events, theirs = accepted
        ours = _both(direction or DEFAULT_DIRECTION, reverse(offer.media_direction(offered)))
        media = MediaDescription("audio", port, offered.proto, [str(pt)])
        media.attributes.append(RtpMap(pt, codec.name, codec.clock_rate).attribute())
        if event_pt is not None:
            media.formats.append(str(event_pt))
            media.attributes.append(RtpMap(event_pt, "telephone-event", codec.clock_rate).attribute())
            media.attributes.append(Attribute("fmtp", f"{event_pt} {events}"))
        keys = None
        if theirs is not None:
            # RFC 4568 §7.1.2: one crypto line, the offered tag and suite, and our own key.
            keys = SrtpKeys(local=new_crypto(theirs.tag, theirs.suite), remote=theirs)
            media.attributes.append(Attribute("crypto", keys.local.serialize()))
        media.attributes.append(Attribute("ptime", str(ptime)))
        media.set_direction(ours)
        answer.media.append(media)
        negotiated = _negotiated(offer, offered, codec, pt, event_pt, ours, keys)
    if negotiated is None:
        ours_text = _summary_codecs(supported, srtp)
        raise NegotiationError(f"no audio stream in common: {_summary(offer)}; we take {ours_text}")
    return answer, negotiated


def _summary(description: SessionDescription) -> str:
    """The offered streams for an error message: "audio RTP/AVP: G729/8000, telephone-event/8000"."""
    streams = []
    for media in description.media:
        names = ", ".join(f"{m.encoding}/{m.clock_rate}" for m in media.rtpmaps().values()) or " ".join(media.formats)
        if _is_secure(media):
            suites = [value.split()[1] for value in media.attribute_values("crypto") if len(value.split()) > 1]
            names += f" (crypto: {', '.join(suites) or 'none'})"
        streams.append(f"{media.media} {media.proto}{' (port 0)' if media.port == 0 else ''}: {names}")
    return "; ".join(streams) or "no m= lines"


def _summary_codecs(codecs: Sequence[Codec], srtp: bool) -> str:
    names = ", ".join(f"{c.name}/{c.clock_rate}" for c in codecs if not c.is_telephone_event)
    if not srtp:
        return f"{names} over {' or '.join(PROTOS)}"
    suites = ", ".join(OFFERED_SUITES.values())
    return f"{names} over {' or '.join(PROTOS)}, or {' or '.join(SECURE_PROTOS)} with {suites}"


def apply_answer(
    offer: SessionDescription, answer: SessionDescription, supported: Sequence[Codec] = DEFAULT_CODECS
) -> NegotiatedMedia:
    """What an answer to our `offer` agrees on; NegotiationError if it does not fit the offer.

    We send with the first format of the answer that we offered (RFC 3264 §7 SHOULD), with the
    answer's payload type numbers, since those are what the answerer expects to receive (§6.1).
    For SRTP, our key is the one `offer` holds under the tag the answer took.
    """
    if len(answer.media) != len(offer.media):
        raise NegotiationError(f"answer has {len(answer.media)} m= lines, the offer had {len(offer.media)}")
    pairs = list(enumerate(zip(offer.media, answer.media, strict=True), 1))
    for index, (offered, answered) in pairs:
        if answered.media != offered.media:
            raise NegotiationError(f"m= line {index} of the answer is {answered.media}, the offer's is {offered.media}")
        if offered.port == 0 and answered.port != 0:
            raise NegotiationError(f"m= line {index} of the answer accepts a stream the offer had disabled")
    accepted = next(((i, o, a) for i, (o, a) in pairs if a.port != 0 and a.media == "audio"), None)
    if accepted is None:
        raise NegotiationError("the answer rejects every audio stream of the offer")
    index, offered, answered = accepted
    offered_rtpmaps = list(offered.rtpmaps().values())
    audio = [c for c in supported if not c.is_telephone_event and any(map(c.matches, offered_rtpmaps))]
    rtpmaps = answered.rtpmaps()
    choice = next(((pt, c) for pt, rtpmap in rtpmaps.items() for c in audio if c.matches(rtpmap)), None)
    if choice is None:
        raise NegotiationError(f"m= line {index} of the answer has no codec the offer had: {_summary(answer)}")
    pt, codec = choice
    dtmf = [
        c
        for c in supported
        if c.is_telephone_event and c.clock_rate == codec.clock_rate and any(map(c.matches, offered_rtpmaps))
    ]
    event_pt = next((p for p, rtpmap in rtpmaps.items() for c in dtmf if c.matches(rtpmap)), None)
    ours = _both(offer.media_direction(offered), reverse(answer.media_direction(answered)))
    return _negotiated(answer, answered, codec, pt, event_pt, ours, _answered_keys(index, offered, answered))


def _answered_keys(index: int, offered: MediaDescription, answered: MediaDescription) -> SrtpKeys | None:
    """The SRTP keys of an accepted stream, None for plain RTP; NegotiationError if the answer breaks the offer."""
    if _is_secure(offered) != _is_secure(answered):
        # An answer turning our SRTP into plain RTP would be a silent downgrade; the reverse has no keys of ours.
        raise NegotiationError(f"m= line {index} of the answer is {answered.proto}, the offer's is {offered.proto}")
    if not _is_secure(offered):
        return None
    ours = {crypto.tag: crypto for crypto in _offered_cryptos(offered)}
    for value in answered.attribute_values("crypto"):
        try:
            theirs = CryptoAttribute.parse(value)
        except SrtpError as error:
            raise NegotiationError(f"m= line {index} of the answer: {error}") from None
        local = ours.get(theirs.tag)
        if local is not None and local.suite == theirs.suite and theirs.supported:
            return SrtpKeys(local=local, remote=theirs)
    # Tags and suites only: error messages reach logs, and keys must not.
    answered_lines = [" ".join(value.split()[:2]) for value in answered.attribute_values("crypto")]
    raise NegotiationError(
        f"m= line {index} of the answer accepts {answered.proto} without a crypto line matching the offer's tags "
        f"{sorted(ours)}: {answered_lines}"
    )


def reoffer(previous: SessionDescription, direction: Direction) -> SessionDescription:
    """A re-INVITE offer: `previous` (our last offer or answer) with a new direction and o= version + 1."""
    return _reoffer(previous, lambda _: direction)


def hold_offer(previous: SessionDescription) -> SessionDescription:
    """Put the remote on hold: stop sending, keep receiving as before (sendrecv -> sendonly, recvonly -> inactive)."""
    return _reoffer(previous, lambda current: _HOLD.get(current, current))


def resume_offer(previous: SessionDescription) -> SessionDescription:
    """Take the remote off hold: the reverse of hold_offer (sendonly -> sendrecv, inactive -> recvonly)."""
    return _reoffer(previous, lambda current: _RESUME.get(current, current))


def _reoffer(previous: SessionDescription, change: Callable[[Direction], Direction]) -> SessionDescription:
    offer = copy.deepcopy(previous)
    offer.origin = dataclasses.replace(offer.origin, version=offer.origin.version + 1)
    for media in offer.media:
        if media.port != 0:  # a rejected stream stays rejected (RFC 3264 §8.2) and needs no direction
            media.set_direction(change(offer.media_direction(media)))
    return offer
