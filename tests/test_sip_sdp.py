"""SDP parsing and offer/answer, on bodies written the way real phones send them."""

from __future__ import annotations

import contextlib
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.sip.errors import SipParseError
from appliance.sip.offer_answer import (
    DEFAULT_CODECS,
    G722,
    PCMA,
    PCMU,
    NegotiatedMedia,
    NegotiationError,
    answer_offer,
    apply_answer,
    hold_offer,
    make_offer,
    reoffer,
    resume_offer,
    reverse,
)
from appliance.sip.sdp import (
    DIRECTIONS,
    MAX_ATTRIBUTES,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_BYTES,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    Rtcp,
    RtpMap,
    SessionDescription,
    Timing,
)


def sdp(text: str, eol: str = "\r\n") -> bytes:
    """A body from an indented block, one SDP line per source line."""
    return eol.join(textwrap.dedent(text).strip("\n").split("\n")).encode() + eol.encode()


# Linphone-like: opus and speex first, telephone-event at three rates, rtcp-mux, ICE and a video stream.
LINPHONE = sdp("""
    v=0
    o=alice 1234 5678 IN IP4 192.168.1.20
    s=Talk
    c=IN IP4 192.168.1.20
    t=0 0
    a=ice-pwd:31ec21eb38b2ec6d36e8dc7b
    a=ice-ufrag:7ac0e4b8
    a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
    m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
    a=rtpmap:96 opus/48000/2
    a=fmtp:96 useinbandfec=1
    a=rtpmap:97 speex/16000
    a=fmtp:97 vbr=on
    a=rtpmap:98 speex/8000
    a=fmtp:18 annexb=no
    a=rtpmap:101 telephone-event/48000
    a=rtpmap:99 telephone-event/16000
    a=rtpmap:100 telephone-event/8000
    a=rtcp:7079
    a=rtcp-mux
    a=candidate:1 1 UDP 2130706431 192.168.1.20 7078 typ host
    a=candidate:1 2 UDP 2130706430 192.168.1.20 7079 typ host
    a=rtcp-fb:* trr-int 1000
    m=video 9078 RTP/AVP 96 97
    a=rtpmap:96 VP8/90000
    a=rtpmap:97 H264/90000
    a=fmtp:97 profile-level-id=42801F
    a=rtcp-fb:* nack pli
""")

# Asterisk re-INVITE putting us on hold the RFC 2543 way: c=0.0.0.0 but still a=sendrecv.
ASTERISK_HOLD = sdp("""
    v=0
    o=root 1821 1822 IN IP4 10.0.0.5
    s=Asterisk PBX 16.2.1
    c=IN IP4 0.0.0.0
    t=0 0
    m=audio 16384 RTP/AVP 8 0 101
    a=rtpmap:8 PCMA/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
    a=ptime:20
    a=maxptime:150
    a=sendrecv
""")

# Cisco gateway on hold with a=sendonly, LF line ends and trailing blanks, G729 first, ptime 30.
CISCO_SENDONLY = (
    b"v=0\n"
    b"o=CiscoSystemsSIP-GW-UserAgent 4703 9059 IN IP4 172.16.0.2\n"
    b"s=SIP Call\n"
    b"c=IN IP4 172.16.0.2 \n"
    b"t=0 0\n"
    b"m=audio 17542 RTP/AVP 18 0 101 19\n"
    b"c=IN IP4 172.16.0.2\n"
    b"a=rtpmap:18 G729/8000\n"
    b"a=fmtp:18 annexb=no\n"
    b"a=rtpmap:0 PCMU/8000\n"
    b"a=rtpmap:101 telephone-event/8000\n"
    b"a=fmtp:101 0-15\n"
    b"a=rtpmap:19 CN/8000\n"
    b"a=ptime:30\t\n"
    b"a=sendonly\n"
    b"\n"
)

# Polycom: G722 first, session-level a=sendrecv, telephone-event on 127.
POLYCOM = sdp("""
    v=0
    o=- 1362401 1362401 IN IP4 10.1.1.50
    s=Polycom IP Phone
    c=IN IP4 10.1.1.50
    t=0 0
    a=sendrecv
    m=audio 2226 RTP/AVP 9 0 8 18 127
    a=rtpmap:9 G722/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:18 G729/8000
    a=fmtp:18 annexb=no
    a=rtpmap:127 telephone-event/8000
""")

# baresip over IPv6: static payload types without rtpmap, a=rtcp with an address, b=AS.
BARESIP_IPV6 = sdp("""
    v=0
    o=- 3847264 3847265 IN IP6 2001:db8::10
    s=-
    c=IN IP6 2001:db8::10
    t=0 0
    m=audio 10000 RTP/AVP 0 8 101
    b=AS:64
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=rtcp:10003 IN IP6 2001:db8::10
    a=ptime:20
""")

G729_ONLY = sdp("""
    v=0
    o=- 77 77 IN IP4 10.2.0.9
    s=-
    c=IN IP4 10.2.0.9
    t=0 0
    m=audio 30000 RTP/AVP 18 101
    a=rtpmap:18 G729/8000
    a=rtpmap:101 telephone-event/8000
""")

# SRTP first, then the same stream in plain RTP (best-effort SRTP as some PBXs send it).
SRTP_THEN_RTP = sdp("""
    v=0
    o=- 5 5 IN IP4 10.3.0.1
    s=-
    c=IN IP4 10.3.0.1
    t=0 0
    m=audio 40000 RTP/SAVP 0
    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
    m=audio 40002 RTP/AVP 8 0
""")

CAPTURED = [LINPHONE, ASTERISK_HOLD, POLYCOM, BARESIP_IPV6, G729_ONLY, SRTP_THEN_RTP]


# --- parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", CAPTURED)
def test_captured_bodies_round_trip_byte_for_byte(body: bytes) -> None:
    assert SessionDescription.parse(body).serialize() == body


def test_linphone_offer_fields() -> None:
    offer = SessionDescription.parse(LINPHONE)
    assert offer.origin == Origin("alice", 1234, 5678, "IN", "IP4", "192.168.1.20")
    assert offer.session_name == "Talk"
    assert offer.connection == Connection("IN", "IP4", "192.168.1.20")
    assert offer.timings == [Timing(0, 0)]
    assert offer.attribute_values("ice-ufrag") == ["7ac0e4b8"]
    audio, video = offer.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 7078, "RTP/AVP")
    assert audio.formats == ["96", "97", "98", "0", "8", "18", "101", "99", "100"]
    rtpmaps = audio.rtpmaps()
    assert list(rtpmaps) == [96, 97, 98, 0, 8, 18, 101, 99, 100]
    assert rtpmaps[96] == RtpMap(96, "opus", 48000, 2)
    assert rtpmaps[0] == RtpMap(0, "PCMU", 8000)  # static: no rtpmap line
    assert rtpmaps[18] == RtpMap(18, "G729", 8000)
    assert audio.fmtp(96) == "useinbandfec=1"
    assert audio.fmtp("18") == "annexb=no"
    assert audio.fmtp(0) is None
    assert audio.rtcp == Rtcp(7079)
    assert audio.has_attribute("rtcp-mux")
    assert audio.attribute_values("candidate")[1] == "1 2 UDP 2130706430 192.168.1.20 7079 typ host"
    assert audio.ptime is None and audio.maxptime is None
    assert offer.media_connection(audio) == offer.connection
    assert offer.media_direction(audio) == "sendrecv"
    assert video.rtpmaps()[96].encoding == "VP8"  # payload types are per m= section


def test_static_payload_types_without_rtpmap() -> None:
    media = SessionDescription.parse(BARESIP_IPV6).media[0]
    assert media.rtpmaps() == {
        0: RtpMap(0, "PCMU", 8000),
        8: RtpMap(8, "PCMA", 8000),
        101: RtpMap(101, "telephone-event", 8000),
    }
    assert media.bandwidths == [Bandwidth("AS", 64)]
    assert media.rtcp == Rtcp(10003, Connection("IN", "IP6", "2001:db8::10"))
    assert media.ptime == 20


def test_g722_clock_rate_is_8000() -> None:
    media = SessionDescription.parse(POLYCOM.replace(b"a=rtpmap:9 G722/8000\r\n", b"")).media[0]
    assert media.rtpmaps()[9] == RtpMap(9, "G722", 8000)


def test_tolerated_deviations_lf_trailing_blanks() -> None:
    offer = SessionDescription.parse(CISCO_SENDONLY)
    audio = offer.media[0]
    assert offer.connection == Connection("IN", "IP4", "172.16.0.2")
    assert audio.ptime == 30
    assert audio.direction == "sendonly"
    expected = CISCO_SENDONLY.replace(b" \n", b"\n").replace(b"\t\n", b"\n").replace(b"\n\n", b"\n")
    assert offer.serialize() == expected.replace(b"\n", b"\r\n")


def test_missing_t_line_is_accepted_and_written_back() -> None:
    body = POLYCOM.replace(b"t=0 0\r\n", b"")
    offer = SessionDescription.parse(body)
    assert offer.timings == []
    assert offer.serialize() == POLYCOM


def test_session_level_direction_is_inherited() -> None:
    offer = SessionDescription.parse(POLYCOM.replace(b"a=sendrecv", b"a=inactive"))
    audio = offer.media[0]
    assert audio.direction is None
    assert offer.media_direction(audio) == "inactive"
    audio.set_direction("recvonly")
    assert offer.media_direction(audio) == "recvonly"


def test_media_connection_overrides_session_connection() -> None:
    offer = SessionDescription.parse(ASTERISK_HOLD.replace(b"a=sendrecv", b"c=IN IP4 10.0.0.6"))
    assert offer.media_connection(offer.media[0]) == Connection("IN", "IP4", "10.0.0.6")
    assert offer.connection is not None and offer.connection.unspecified
    assert Connection("IN", "IP6", "::").unspecified
    assert not Connection("IN", "IP4", "pbx.example.com").unspecified


def test_unknown_and_uninterpreted_lines_are_kept_in_rfc_order() -> None:
    body = sdp("""
        v=0
        o=- 1 1 IN IP4 10.0.0.1
        s=Call
        i=A call
        u=http://example.com/
        e=ops@example.com
        p=+1 555 0100
        c=IN IP4 10.0.0.1
        b=CT:128
        t=3034423619 3042462419
        r=7d 1h 0 25h
        z=2882844526 -1h
        k=prompt
        y=0123456789
        a=tool:phone 1.0
        m=audio 5004/2 RTP/AVP 0
        i=voice
        b=TIAS:64000
        k=clear:secret
        x=something
        a=foo:
    """)
    parsed = SessionDescription.parse(body)
    assert parsed.serialize() == body
    assert parsed.timings == [Timing(3034423619, 3042462419, ("7d 1h 0 25h",))]
    assert parsed.media[0].port_count == 2
    assert parsed.media[0].attributes == [Attribute("foo", "")]
    assert ("y", "0123456789") in parsed.other_lines
    # Written out of order, the same lines come back in RFC order.
    shuffled = body.replace(b"i=A call\r\n", b"").replace(b"k=prompt\r\n", b"k=prompt\r\ni=A call\r\n")
    assert SessionDescription.parse(shuffled).serialize() == body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "SDP body is empty"),
        (b"\r\n\r\n", "SDP body is empty"),
        (b"v=1\r\n", "SDP line 1: expected 'v=0' first, got 'v=1'"),
        (b"o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", "SDP line 1: expected 'v=0' first"),
        (b"v=0\r\ns=-\r\n", "SDP body has no o= line"),
        (b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n", "SDP body has no s= line"),
        (b"v=0\r\nv=0\r\n", "SDP line 2: second v= line"),
        (b"v=0\r\no=- 1 1 IN IP4\r\n", "SDP line 2: o= needs 6 fields"),
        (b"v=0\r\no=- 1 one IN IP4 1.2.3.4\r\n", "SDP line 2: o= version must be a number, got 'one'"),
        (b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\no=- 1 1 IN IP4 1.2.3.4\r\n", "SDP line 3: second o= line"),
        (b"v=0\r\nhello\r\n", "SDP line 2: expected '<letter>=<value>', got 'hello'"),
        (b"v=0\r\n\xc3\xa9=x\r\n", "SDP line 2: expected '<letter>=<value>'"),
        (b"v=0\r\nc=IN IP4\r\n", "SDP line 2: c= needs 3 fields"),
        (b"v=0\r\nb=AS:lots\r\n", "SDP line 2: b= value must be a number, got 'lots'"),
        (b"v=0\r\nb=64\r\n", "SDP line 2: b= must be 'type:value'"),
        (b"v=0\r\nt=0\r\n", "SDP line 2: t= needs 2 fields"),
        (b"v=0\r\nr=7d 1h 0 25h\r\n", "SDP line 2: r= line before any t= line"),
        (b"v=0\r\n\xff\r\n", "SDP body is not UTF-8 (bad byte at offset 5)"),
    ],
)
def test_session_level_errors(body: bytes, message: str) -> None:
    with pytest.raises(SipParseError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        SessionDescription.parse(body)


HEAD = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"  # lines 1-5


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("m=audio abc RTP/AVP 0", "SDP line 6: m= port must be a number from 0 to 65535, got 'abc'"),
        ("m=audio 70000 RTP/AVP 0", "SDP line 6: m= port must be a number from 0 to 65535, got '70000'"),
        ("m=audio -1 RTP/AVP 0", "SDP line 6: m= port must be a number"),
        ("m=audio 4000/0 RTP/AVP 0", "SDP line 6: m= port count must be at least 1"),
        ("m=audio 4000 RTP/AVP", "SDP line 6: m= needs 'media port proto format...'"),
        ("m=audio 4000 RTP/AVP PCMU", "SDP line 6: RTP payload type in m= must be a number from 0 to 127"),
        ("m=audio 4000 RTP/AVP 128", "SDP line 6: RTP payload type in m= must be a number from 0 to 127"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtpmap:xx PCMU/8000", "SDP line 7: rtpmap payload type must be a number"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU", "SDP line 7: rtpmap must be 'PT name/rate[/channels]'"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8k", "SDP line 7: rtpmap clock rate must be a number"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/1/2", "SDP line 7: rtpmap must be 'PT name/rate"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtpmap:96 opus/48000/0", "SDP line 7: rtpmap channel count must be at least"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtpmap:", "SDP line 7: rtpmap must be"),
        ("m=audio 4000 RTP/AVP 0\r\na=fmtp:", "SDP line 7: fmtp must be 'format parameters'"),
        ("m=audio 4000 RTP/AVP 0\r\na=ptime:fast", "SDP line 7: ptime must be a positive number of milliseconds"),
        ("m=audio 4000 RTP/AVP 0\r\na=ptime:0", "SDP line 7: ptime must be a positive number"),
        ("m=audio 4000 RTP/AVP 0\r\na=maxptime:1e3", "SDP line 7: maxptime must be a positive number"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtcp:port", "SDP line 7: rtcp port must be a number"),
        ("m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4", "SDP line 7: c= needs 3 fields"),
        ("m=audio 4000 RTP/AVP 0\r\na=", "SDP line 7: attribute name must be a non-empty token"),
        ("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\na=recvonly", "SDP line 8: a=recvonly after a=sendonly"),
        ("a=inactive\r\na=inactive", "SDP line 7: a=inactive after a=inactive"),
        ("m=audio 4000 RTP/AVP 0\r\nt=0 0", "SDP line 7: t= line belongs before the first m= line"),
        ("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 1.1.1.1\r\nc=IN IP4 1.1.1.1", "SDP line 8: second c= line"),
    ],
)
def test_media_level_errors_name_the_line(lines: str, message: str) -> None:
    with pytest.raises(SipParseError) as caught:
        SessionDescription.parse(HEAD + lines + "\r\n")
    assert str(caught.value).startswith(message)


def test_media_without_any_connection_is_refused_unless_rejected() -> None:
    head = HEAD.replace("c=IN IP4 10.0.0.1\r\n", "")
    with pytest.raises(SipParseError, match=r"^SDP line 6: m=audio has no c= line and the session has none$"):
        SessionDescription.parse(head + "m=video 0 RTP/AVP 31\r\nm=audio 4000 RTP/AVP 0\r\n")
    parsed = SessionDescription.parse(head + "m=video 0 RTP/AVP 31\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\n")
    assert [m.port for m in parsed.media] == [0, 4000]


def test_size_limits() -> None:
    padding = "a=x-pad:" + "x" * 100 + "\r\n"
    too_big = HEAD + padding * (MAX_SDP_BYTES // len(padding) + 1)
    with pytest.raises(SipParseError, match=f"more than the {MAX_SDP_BYTES} accepted"):
        SessionDescription.parse(too_big.encode())
    with pytest.raises(SipParseError, match=f"more than the {MAX_SDP_BYTES} accepted"):
        SessionDescription.parse(too_big)
    sections = "m=audio 0 RTP/AVP 0\r\n" * (MAX_MEDIA_SECTIONS + 1)
    with pytest.raises(SipParseError, match=f"^SDP line {6 + MAX_MEDIA_SECTIONS}: more than {MAX_MEDIA_SECTIONS}"):
        SessionDescription.parse(HEAD + sections)
    assert len(SessionDescription.parse(HEAD + sections[: -len("m=audio 0 RTP/AVP 0\r\n")]).media) == 16
    attributes = "a=x\r\n" * (MAX_ATTRIBUTES + 1)
    with pytest.raises(SipParseError, match=f"^SDP line {6 + MAX_ATTRIBUTES}: more than {MAX_ATTRIBUTES} a= lines"):
        SessionDescription.parse(HEAD + attributes)


def test_parse_accepts_str_and_serialize_refuses_line_breaks() -> None:
    assert SessionDescription.parse(POLYCOM.decode()).serialize() == POLYCOM
    offer = SessionDescription.parse(POLYCOM)
    offer.session_name = "x\r\nm=video 1 RTP/AVP 0"
    with pytest.raises(ValueError, match="contains a line break"):
        offer.serialize()
    offer.session_name = "-"
    offer.media[0].attributes.append(Attribute("x-note", "a\nm=video 1 RTP/AVP 0"))
    with pytest.raises(ValueError, match="contains a line break"):
        offer.serialize()


# --- property tests ---------------------------------------------------------------------------------

_token = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_name = _token.filter(lambda t: ":" not in t).map(lambda t: "x-" + t)  # never a checked attribute
_text = st.text(st.characters(exclude_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=20).map(str.rstrip)
_attribute = st.builds(Attribute, _name, st.none() | _text)
_connection = st.builds(Connection, st.just("IN"), st.sampled_from(["IP4", "IP6"]), _token)
_bandwidth = st.builds(Bandwidth, st.sampled_from(["AS", "CT", "TIAS"]), st.integers(0, 10**9))
# Unique letters: i= u= z= k= may appear once per section.
_other = st.lists(st.tuples(st.sampled_from("iuepzkyx"), _text), max_size=3, unique_by=lambda line: line[0]).map(
    lambda lines: sorted(lines, key=lambda line: "iuepzkyx".index(line[0]))
)
_direction = st.none() | st.sampled_from(list(DIRECTIONS.values()))


@st.composite
def _media(draw: st.DrawFn) -> MediaDescription:
    pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=6, unique=True))
    media = MediaDescription(
        draw(st.sampled_from(["audio", "video", "text"])),
        draw(st.integers(1, 65535)),
        draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "RTP/AVPF"])),
        [str(pt) for pt in pts],
        port_count=draw(st.none() | st.integers(1, 4)),
        connection=draw(_connection),
        bandwidths=draw(st.lists(_bandwidth, max_size=2)),
        other_lines=[line for line in draw(_other) if line[0] in "ikx"],
    )
    for pt in pts:
        if draw(st.booleans()):
            encoding = draw(st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=8))
            rtpmap = RtpMap(pt, encoding, draw(st.integers(1, 96000)), draw(st.integers(1, 2)))
            media.attributes.append(rtpmap.attribute())
    media.attributes += draw(st.lists(_attribute, max_size=4))
    direction = draw(_direction)
    if direction is not None:
        media.set_direction(direction)
    if draw(st.booleans()):
        media.attributes.append(Attribute("ptime", str(draw(st.integers(1, 200)))))
    return media


@st.composite
def _session(draw: st.DrawFn) -> SessionDescription:
    session_id, version = draw(st.integers(0, 2**63)), draw(st.integers(0, 2**32))
    session = SessionDescription(
        origin=Origin(draw(_token), session_id, version, "IN", "IP4", draw(_token)),
        session_name=draw(_text),
        connection=draw(st.none() | _connection),
        bandwidths=draw(st.lists(_bandwidth, max_size=2)),
        timings=draw(st.lists(st.builds(Timing, st.integers(0, 2**40), st.integers(0, 2**40)), min_size=1, max_size=2)),
        attributes=draw(st.lists(_attribute, max_size=4)),
        media=draw(st.lists(_media(), max_size=4)),
        other_lines=draw(_other),
    )
    direction = draw(_direction)
    if direction is not None:
        session.set_direction(direction)
    return session


@settings(max_examples=200, deadline=None)
@given(_session())
def test_generated_descriptions_round_trip(session: SessionDescription) -> None:
    body = session.serialize()
    parsed = SessionDescription.parse(body)
    assert parsed == session
    assert parsed.serialize() == body


_LINES = sorted({line for body in CAPTURED for line in body.decode().split("\r\n") if line})
# An edit of a captured body: delete the line at a position (None), or insert a line there.
_EDIT = st.tuples(st.integers(0, 40), st.none() | st.sampled_from(_LINES) | _text.map(lambda text: "a=" + text))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CAPTURED), st.lists(_EDIT, max_size=4))
def test_edited_bodies_parse_stably_or_fail_cleanly(body: bytes, edits: list[tuple[int, str | None]]) -> None:
    lines = body.decode().split("\r\n")
    for position, line in edits:
        if line is None:
            del lines[position % len(lines)]
        else:
            lines.insert(position, line)
    try:
        parsed = SessionDescription.parse("\r\n".join(lines))
    except SipParseError:
        return
    once = parsed.serialize()
    assert SessionDescription.parse(once).serialize() == once


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        SessionDescription.parse(b"v=0\r\n" + data)


# --- offer/answer -----------------------------------------------------------------------------------

ME = "192.0.2.10"


def _answer(offer: bytes, direction: Direction | None = None) -> tuple[SessionDescription, NegotiatedMedia]:
    return answer_offer(SessionDescription.parse(offer), ME, 20000, session_id=42, version=7, direction=direction)


def test_our_offer_bytes() -> None:
    offer = make_offer(ME, 20000, session_id=42)
    assert offer.serialize() == sdp("""
        v=0
        o=- 42 0 IN IP4 192.0.2.10
        s=VoxGate
        c=IN IP4 192.0.2.10
        t=0 0
        m=audio 20000 RTP/AVP 0 8 9 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:9 G722/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-16
        a=ptime:20
        a=sendrecv
    """)
    ipv6 = make_offer("2001:db8::1", 20000, session_id=1, version=3, codecs=[PCMA], direction="recvonly", ptime=40)
    assert ipv6.origin == Origin("-", 1, 3, "IN", "IP6", "2001:db8::1")
    assert ipv6.connection == Connection("IN", "IP6", "2001:db8::1")
    assert ipv6.media[0].formats == ["8"]
    assert ipv6.media[0].ptime == 40
    assert ipv6.media[0].direction == "recvonly"


def test_make_offer_refuses_bad_codec_lists() -> None:
    with pytest.raises(ValueError, match="at least one audio codec"):
        make_offer(ME, 20000, session_id=1, codecs=[DEFAULT_CODECS[-1]])
    with pytest.raises(ValueError, match=r"payload types repeat in \[0, 0\]"):
        make_offer(ME, 20000, session_id=1, codecs=[PCMU, PCMU])


def test_answer_to_linphone_picks_first_supported_in_offer_order() -> None:
    answer, media = _answer(LINPHONE)
    assert answer.serialize() == sdp("""
        v=0
        o=- 42 7 IN IP4 192.0.2.10
        s=VoxGate
        c=IN IP4 192.0.2.10
        t=0 0
        m=audio 20000 RTP/AVP 0 100
        a=rtpmap:0 PCMU/8000
        a=rtpmap:100 telephone-event/8000
        a=fmtp:100 0-15
        a=ptime:20
        a=sendrecv
        m=video 0 RTP/AVP 96 97
    """)
    assert media == NegotiatedMedia(
        codec="PCMU",
        payload_type=0,
        clock_rate=8000,
        sample_rate=8000,
        telephone_event=100,  # the 8000 Hz one, with the offerer's number
        ptime=20,
        remote_address="192.168.1.20",
        remote_port=7078,
        remote_rtcp_port=7079,
        direction="sendrecv",
        on_hold=False,
    )


def test_polycom_gets_g722_at_16khz_with_its_event_payload_type() -> None:
    answer, media = _answer(POLYCOM)
    assert answer.media[0].formats == ["9", "127"]
    assert (media.codec, media.payload_type, media.clock_rate, media.sample_rate) == ("G722", 9, 8000, 16000)
    assert media.telephone_event == 127
    assert answer.media[0].fmtp(127) == "0-15"  # RFC 4733 default when the offer has no fmtp


def test_our_preference_is_not_imposed_when_offer_order_differs() -> None:
    _, media = _answer(ASTERISK_HOLD)
    assert media.codec == "PCMA"
    _, media = answer_offer(SessionDescription.parse(POLYCOM), ME, 1, session_id=1, supported=[PCMU, PCMA])
    assert media.codec == "PCMU"


def test_dynamic_payload_type_of_a_known_codec_is_kept() -> None:
    body = G729_ONLY.replace(b"RTP/AVP 18 101", b"RTP/AVP 18 96 101").replace(
        b"a=rtpmap:101", b"a=rtpmap:96 pcmu/8000\r\na=rtpmap:101"
    )
    answer, media = _answer(body)
    assert (media.codec, media.payload_type, media.telephone_event) == ("PCMU", 96, 101)
    assert answer.media[0].attribute_values("rtpmap") == ["96 PCMU/8000", "101 telephone-event/8000"]


def test_telephone_event_only_when_offered_at_the_codec_rate() -> None:
    answer, media = _answer(LINPHONE.replace(b"a=rtpmap:100 telephone-event/8000\r\n", b""))
    assert media.telephone_event is None
    assert answer.media[0].formats == ["0"]
    assert answer.media[0].attribute_values("fmtp") == []
    _, media = _answer(ASTERISK_HOLD.replace(b"a=fmtp:101 0-16", b"a=fmtp:101 32-36"))
    assert media.telephone_event is None  # no event in common with 0-16
    answer, _ = _answer(ASTERISK_HOLD.replace(b"a=fmtp:101 0-16", b"a=fmtp:101 0-11, 13,16-40"))
    assert answer.media[0].fmtp(101) == "0-11,13,16"


@pytest.mark.parametrize(
    ("offered", "wanted", "answered", "ours", "on_hold"),
    [
        ("sendrecv", None, "sendrecv", "sendrecv", False),
        ("sendonly", None, "recvonly", "recvonly", True),
        ("recvonly", None, "sendonly", "sendonly", False),
        ("inactive", None, "inactive", "inactive", True),
        ("sendrecv", "sendonly", "sendonly", "sendonly", False),
        ("sendonly", "sendonly", "inactive", "inactive", True),
        ("recvonly", "recvonly", "inactive", "inactive", False),
        ("sendrecv", "inactive", "inactive", "inactive", False),
    ],
)
def test_direction_table(
    offered: Direction, wanted: Direction | None, answered: Direction, ours: Direction, on_hold: bool
) -> None:
    answer, media = _answer(POLYCOM.replace(b"a=sendrecv", f"a={offered}".encode()), wanted)
    assert answer.media[0].direction == answered
    assert (media.direction, media.on_hold) == (ours, on_hold)


def test_old_style_hold_with_zero_address() -> None:
    answer, media = _answer(ASTERISK_HOLD)
    assert answer.media[0].direction == "sendrecv"
    assert media.on_hold
    assert media.remote_address == "0.0.0.0"
    assert media.direction == "recvonly"  # nowhere to send to
    assert media.ptime == 20


def test_cisco_sendonly_hold_and_ptime() -> None:
    answer, media = _answer(CISCO_SENDONLY)
    assert answer.media[0].direction == "recvonly"
    assert (media.codec, media.telephone_event, media.ptime, media.on_hold) == ("PCMU", 101, 30, True)
    assert media.direction == "recvonly"


def test_answer_copies_the_offers_timing() -> None:
    answer, _ = _answer(POLYCOM.replace(b"t=0 0", b"t=3034423619 0"))
    assert answer.timings == [Timing(3034423619, 0)]
    answer, _ = _answer(POLYCOM.replace(b"t=0 0\r\n", b""))
    assert answer.timings == [Timing(0, 0)]


def test_maxptime_caps_ptime() -> None:
    _, media = _answer(ASTERISK_HOLD.replace(b"a=maxptime:150", b"a=maxptime:10"))
    assert media.ptime == 10


def test_ipv6_answer() -> None:
    answer, media = answer_offer(SessionDescription.parse(BARESIP_IPV6), "2001:db8::1", 30000, session_id=9)
    assert answer.connection == Connection("IN", "IP6", "2001:db8::1")
    assert answer.origin.addrtype == "IP6"
    assert (media.remote_address, media.remote_port, media.remote_rtcp_port) == ("2001:db8::10", 10000, 10003)


def test_srtp_then_rtp_takes_the_srtp_stream() -> None:
    answer, media = _answer(SRTP_THEN_RTP)
    streams = [(m.port, m.proto, m.formats) for m in answer.media]
    assert streams == [(20000, "RTP/SAVP", ["0"]), (0, "RTP/AVP", ["8", "0"])]
    assert (media.remote_port, media.codec) == (40000, "PCMU")
    assert media.srtp is not None and media.srtp.remote.tag == 1


def test_srtp_stream_is_rejected_and_plain_one_taken_without_srtp() -> None:
    offer = SessionDescription.parse(SRTP_THEN_RTP)
    answer, media = answer_offer(offer, ME, 20000, session_id=42, srtp=False)
    assert [(m.port, m.proto, m.formats) for m in answer.media] == [(0, "RTP/SAVP", ["0"]), (20000, "RTP/AVP", ["8"])]
    assert answer.media[0].attributes == []
    assert (media.remote_port, media.codec, media.srtp) == (40002, "PCMA", None)


def test_only_the_first_audio_stream_is_taken() -> None:
    two = POLYCOM + b"m=audio 2228 RTP/AVP 0\r\n"
    answer, _ = _answer(two)
    assert [m.port for m in answer.media] == [20000, 0]


def test_no_common_codec_is_a_negotiation_error() -> None:
    with pytest.raises(NegotiationError, match=r"no audio stream in common: audio RTP/AVP: G729/8000, telephone-ev"):
        _answer(G729_ONLY)
    only_video = HEAD + "m=video 4000 RTP/AVP 31\r\n"
    with pytest.raises(NegotiationError, match="video RTP/AVP: H261/90000; we take PCMU/8000, PCMA/8000, G722/8000"):
        _answer(only_video.encode())
    with pytest.raises(NegotiationError, match=r"RTP/AVP \(port 0\)"):
        _answer(POLYCOM.replace(b"m=audio 2226", b"m=audio 0"))
    assert issubclass(NegotiationError, ValueError)


def test_offer_answer_round_trip_both_sides_agree() -> None:
    offer = make_offer(ME, 20000, session_id=1)
    answer, answerer = answer_offer(SessionDescription.parse(offer.serialize()), "198.51.100.7", 30000, session_id=2)
    offerer = apply_answer(offer, SessionDescription.parse(answer.serialize()))
    assert (offerer.codec, offerer.payload_type, offerer.telephone_event) == ("PCMU", 0, 101)
    assert (answerer.codec, answerer.payload_type, answerer.telephone_event) == ("PCMU", 0, 101)
    assert (offerer.remote_address, offerer.remote_port, offerer.remote_rtcp_port) == ("198.51.100.7", 30000, 30001)
    assert (answerer.remote_address, answerer.remote_port) == (ME, 20000)
    assert offerer.direction == answerer.direction == "sendrecv"


def test_apply_answer_uses_the_answers_payload_types_and_order() -> None:
    offer = make_offer(ME, 20000, session_id=1)
    answer = SessionDescription.parse(
        HEAD + "m=audio 5000 RTP/AVP 13 9 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=ptime:40\r\na=recvonly\r\n"
    )
    media = apply_answer(offer, answer)
    assert (media.codec, media.payload_type, media.telephone_event, media.ptime) == ("G722", 9, 96, 40)
    assert (media.direction, media.on_hold) == ("sendonly", False)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (HEAD, "answer has 0 m= lines, the offer had 1"),
        (HEAD + "m=video 5000 RTP/AVP 31\r\n", "m= line 1 of the answer is video, the offer's is audio"),
        (HEAD + "m=audio 5000 RTP/AVP 18\r\n", "m= line 1 of the answer has no codec the offer had"),
        (HEAD + "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n", "has no codec the offer had"),
        (HEAD + "m=audio 0 RTP/AVP 0\r\n", "the answer rejects every audio stream"),
    ],
)
def test_apply_answer_refuses_answers_that_do_not_fit(answer: str, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        apply_answer(make_offer(ME, 20000, session_id=1), SessionDescription.parse(answer))


def test_apply_answer_refuses_accepting_a_disabled_stream() -> None:
    offer = make_offer(ME, 20000, session_id=1)
    offer.media.append(MediaDescription("video", 0, "RTP/AVP", ["31"]))
    answer = HEAD + "m=audio 5000 RTP/AVP 0\r\nm=video 5002 RTP/AVP 31\r\n"
    with pytest.raises(NegotiationError, match="m= line 2 of the answer accepts a stream the offer had disabled"):
        apply_answer(offer, SessionDescription.parse(answer))


def test_hold_and_resume_reoffers() -> None:
    first = make_offer(ME, 20000, session_id=77, version=3)
    held = hold_offer(first)
    assert (held.origin.session_id, held.origin.version) == (77, 4)
    assert held.media[0].direction == "sendonly"
    assert first.media[0].direction == "sendrecv"  # the previous description is left alone
    answer, remote = _answer(held.serialize())
    assert answer.media[0].direction == "recvonly"
    assert remote.on_hold and remote.direction == "recvonly"
    ours = apply_answer(held, answer)
    assert (ours.direction, ours.on_hold) == ("sendonly", False)
    resumed = resume_offer(held)
    assert (resumed.origin.version, resumed.media[0].direction) == (5, "sendrecv")
    inactive = reoffer(resumed, "inactive")
    assert (inactive.origin.version, inactive.media[0].direction) == (6, "inactive")
    assert (hold_offer(inactive).media[0].direction, resume_offer(inactive).media[0].direction) == (
        "inactive",
        "recvonly",
    )
    assert hold_offer(reoffer(first, "recvonly")).media[0].direction == "inactive"


def test_reoffer_from_our_answer_keeps_rejected_streams() -> None:
    answer, _ = _answer(LINPHONE)
    held = hold_offer(answer)
    assert [(m.port, m.direction) for m in held.media] == [(20000, "sendonly"), (0, None)]
    assert held.origin.version == 8


def test_reverse() -> None:
    assert [reverse(d) for d in ("sendrecv", "sendonly", "recvonly", "inactive")] == [
        "sendrecv",
        "recvonly",
        "sendonly",
        "inactive",
    ]
    assert PCMU.matches(RtpMap(0, "pcmu", 8000)) and not PCMU.matches(RtpMap(0, "PCMU", 8000, 2))
    assert G722.clock_rate == 8000 and G722.sample_rate == 16000 and PCMA.payload_type == 8
