"""SRTP with SDES keys: the a=crypto attribute, SrtpContext, and SRTP in SDP offer/answer."""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from baresip_helpers import MODULE_PATH, free_port_block
from daemon_helpers import HOST, stop_process

from appliance.media.rtp import RtpPacket
from appliance.media.srtp import (
    AES_CM_128_HMAC_SHA1_32,
    AES_CM_128_HMAC_SHA1_80,
    KEY_SALT_LENGTH,
    CryptoAttribute,
    SrtpContext,
    SrtpError,
    SrtpKeys,
    new_crypto,
)
from appliance.sip.offer_answer import (
    NegotiatedMedia,
    NegotiationError,
    answer_offer,
    apply_answer,
    hold_offer,
    make_offer,
)
from appliance.sip.sdp import SessionDescription


def sdp(text: str) -> bytes:
    lines = [line.strip() for line in text.strip().splitlines()]
    return ("\r\n".join(lines) + "\r\n").encode()


# The INVITE body of baresip 1.0.0 (Debian baresip-core, srtp.so, account param mediaenc=srtp-mand),
# captured on 127.0.0.1 by a UDP socket standing in for the callee.
BARESIP_SRTP_OFFER = sdp("""
    v=0
    o=- 2117807534 1274371723 IN IP4 192.0.2.2
    s=-
    c=IN IP4 192.0.2.2
    t=0 0
    a=tool:baresip 1.0.0
    m=audio 3848 RTP/SAVP 0 8 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=sendrecv
    a=label:1
    a=rtcp-rsize
    a=ssrc:449504277 cname:sip:100@127.0.0.1
    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:J8rWz2Ra28hEGSGx3iT1BJM93JbHdt4DSofoubl1
    a=minptime:20
    a=ptime:20
""")
BARESIP_CRYPTO = "1 AES_CM_128_HMAC_SHA1_80 inline:J8rWz2Ra28hEGSGx3iT1BJM93JbHdt4DSofoubl1"
# RFC 4568's own examples (§4, §5.1, §7): lifetime, MKI and a session parameter.
RFC_EXAMPLE = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"
RFC_FEC = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP"
RFC_32 = "1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32"
# The shape Asterisk (res_srtp) writes: no lifetime, no MKI; the _32 suite under its own tag.
KEY_80 = base64.b64encode(bytes(range(30))).decode()
KEY_32 = base64.b64encode(bytes(range(100, 130))).decode()
ASTERISK_STYLE = f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}"
# A suite we do not run (46-byte key and salt): it must parse so that a list of offers can be scanned.
AES_256 = "1 AES_256_CM_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(46)).decode()
GCM = "3 AEAD_AES_256_GCM inline:" + base64.b64encode(bytes(44)).decode() + "|2^48 WSH=128"

CAPTURED = [BARESIP_CRYPTO, RFC_EXAMPLE, RFC_FEC, RFC_32, ASTERISK_STYLE, AES_256, GCM]


# --- a=crypto ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", CAPTURED)
def test_crypto_lines_round_trip(text: str) -> None:
    assert CryptoAttribute.parse(text).serialize() == text


def test_crypto_fields() -> None:
    crypto = CryptoAttribute.parse(RFC_EXAMPLE)
    assert (crypto.tag, crypto.suite, crypto.lifetime, crypto.mki) == (1, AES_CM_128_HMAC_SHA1_80, "2^20", "1:32")
    assert crypto.key == base64.b64decode("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
    assert len(crypto.key) == KEY_SALT_LENGTH
    assert CryptoAttribute.parse(RFC_FEC).session_params == ("FEC_ORDER=FEC_SRTP",)
    lifetime_only = CryptoAttribute.parse(f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|1048576")
    assert (lifetime_only.tag, lifetime_only.lifetime, lifetime_only.mki) == (7, "1048576", None)
    mki_only = CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}|1:4")
    assert (mki_only.lifetime, mki_only.mki) == (None, "1:4")
    unknown = CryptoAttribute.parse(GCM)
    assert (unknown.tag, unknown.suite, unknown.key) == (3, "AEAD_AES_256_GCM", b"")
    assert unknown.session_params == ("WSH=128",)


@pytest.mark.parametrize(
    ("text", "supported"),
    [
        (BARESIP_CRYPTO, True),
        (ASTERISK_STYLE, True),
        (f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|2^31", True),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80} WSH=64 KDR=0 -X_VENDOR", True),
        (RFC_EXAMPLE, False),  # MKI
        (RFC_FEC, False),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80} UNENCRYPTED_SRTP", False),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80} UNAUTHENTICATED_SRTP", False),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80} KDR=24", False),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80} NEW_PARAM", False),
        (AES_256, False),
        (GCM, False),
    ],
)
def test_supported(text: str, supported: bool) -> None:
    assert CryptoAttribute.parse(text).supported is supported


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "needs a tag, a suite and key-params"),
        ("1 AES_CM_128_HMAC_SHA1_80", "needs a tag, a suite and key-params"),
        (f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}", "tag 'x' is not 1 to 9 digits"),
        (f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}", "is not 1 to 9 digits"),
        (f"1 AES-CM inline:{KEY_80}", "suite 'AES-CM' is not a name"),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{KEY_80}", "only the inline: key method"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:", "only the inline: key method"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:****", "key of 4 characters is not base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:QUJ", "key of 3 characters is not base64: "),  # bad padding
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(16)).decode(),
            "AES_CM_128_HMAC_SHA1_80 needs a 30-byte key and salt, the crypto key has 16 bytes",
        ),
        (f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|2^x", "'2^x' is neither a lifetime nor an MKI"),
        (f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|1:4|2^20", "'2^20' is neither a lifetime nor an MKI"),
        (f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|2^20|1:4|1:4", "4 |-separated fields, at most 3"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}|2^20|1:4;inline:{KEY_32}|2^20|2:4", "more than one key"),
    ],
)
def test_bad_crypto_lines_are_refused(text: str, message: str) -> None:
    with pytest.raises(SrtpError, match=re.escape(message)) as caught:
        CryptoAttribute.parse(text)
    key = text.partition("inline:")[2].partition("|")[0]
    assert not key or key not in str(caught.value)  # keys stay out of messages, which reach logs


def test_new_crypto() -> None:
    first, second = new_crypto(1, AES_CM_128_HMAC_SHA1_80), new_crypto(1, AES_CM_128_HMAC_SHA1_80)
    assert first.supported and len(first.key) == KEY_SALT_LENGTH
    assert first.key != second.key
    assert CryptoAttribute.parse(first.serialize()) == first
    assert base64.b64encode(first.key).decode() not in repr(first)  # logs must not hold keys
    with pytest.raises(SrtpError, match="AES_256_CM_HMAC_SHA1_80 is not one of ours"):
        new_crypto(1, "AES_256_CM_HMAC_SHA1_80")
    with pytest.raises(SrtpError, match="tag 1000000000 is not 0 to 999999999"):
        new_crypto(10**9, AES_CM_128_HMAC_SHA1_80)
    assert issubclass(SrtpError, ValueError)


# --- SrtpContext ------------------------------------------------------------------------------------


def _rtp(sequence: int, ssrc: int = 0x1234ABCD) -> bytes:
    return RtpPacket(0, sequence, 160 * sequence, ssrc, bytes([sequence % 256]) * 160).serialize()


def _rtcp_rr(ssrc: int) -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)  # a receiver report with no report blocks


def _pair(suite: str = AES_CM_128_HMAC_SHA1_80) -> tuple[SrtpContext, SrtpContext]:
    a, b = new_crypto(1, suite), new_crypto(1, suite)
    return SrtpContext(a, b), SrtpContext(b, a)


@pytest.mark.parametrize(("suite", "tag_length"), [(AES_CM_128_HMAC_SHA1_80, 10), (AES_CM_128_HMAC_SHA1_32, 4)])
def test_protect_and_unprotect_both_ways(suite: str, tag_length: int) -> None:
    alice, bob = _pair(suite)
    for sequence in range(1, 4):
        packet = _rtp(sequence)
        protected = alice.protect(packet)
        assert len(protected) == len(packet) + tag_length
        assert protected[12:] != packet[12:]  # the payload is encrypted, the header is not
        assert RtpPacket.parse(bob.unprotect(protected)) == RtpPacket.parse(packet)
        reply = _rtp(sequence, ssrc=0x5555)
        assert alice.unprotect(bob.protect(reply)) == reply
    rtcp = _rtcp_rr(0x1234ABCD)
    assert bob.unprotect_rtcp(alice.protect_rtcp(rtcp)) == rtcp
    assert alice.unprotect_rtcp(bob.protect_rtcp(_rtcp_rr(0x5555))) == _rtcp_rr(0x5555)


def test_a_new_ssrc_midcall_is_accepted() -> None:
    alice, bob = _pair()
    assert bob.unprotect(alice.protect(_rtp(1, ssrc=1))) == _rtp(1, ssrc=1)
    assert bob.unprotect(alice.protect(_rtp(500, ssrc=2))) == _rtp(500, ssrc=2)


def test_tampered_replayed_and_foreign_packets_are_refused() -> None:
    alice, bob = _pair()
    protected = alice.protect(_rtp(1))
    tampered = bytearray(protected)
    tampered[20] ^= 0x01
    with pytest.raises(SrtpError, match="authentication failure"):
        bob.unprotect(bytes(tampered))
    assert bob.unprotect(protected) == _rtp(1)
    with pytest.raises(SrtpError, match="replay check failed"):
        bob.unprotect(protected)
    stranger, _ = _pair()
    with pytest.raises(SrtpError, match="authentication failure"):
        bob.unprotect(stranger.protect(_rtp(2)))
    srtcp = bytearray(alice.protect_rtcp(_rtcp_rr(7)))
    srtcp[-1] ^= 0x01
    with pytest.raises(SrtpError, match="cannot unprotect SRTCP"):
        bob.unprotect_rtcp(bytes(srtcp))
    with pytest.raises(SrtpError, match="cannot protect RTP"):
        alice.protect(_rtp(3)[:12] + bytes(1600))  # beyond libsrtp's buffer


def test_context_refuses_crypto_it_cannot_use() -> None:
    good = new_crypto(1, AES_CM_128_HMAC_SHA1_80)
    with pytest.raises(SrtpError, match=r"remote crypto 1 AES_CM_128_HMAC_SHA1_80 \(MKI 1:32, ''\) is not supported"):
        SrtpContext(good, CryptoAttribute.parse(RFC_EXAMPLE))
    with pytest.raises(SrtpError, match=r"local crypto 1 AES_256_CM_HMAC_SHA1_80 .* is not supported"):
        SrtpContext(CryptoAttribute.parse(AES_256), good)


def test_protect_unprotect_cost(capsys: pytest.CaptureFixture[str]) -> None:
    """Measured, not asserted (DESIGN §5.10): one 20 ms G.711 packet is 172 bytes of RTP."""
    alice, bob = _pair()
    count = 5000
    packets = [_rtp(sequence) for sequence in range(1, count + 1)]
    assert len(packets[0]) == 172
    started = time.perf_counter()
    for packet in packets:
        bob.unprotect(alice.protect(packet))
    per_packet = (time.perf_counter() - started) / count
    with capsys.disabled():
        print(f"\nSRTP protect+unprotect of a 172-byte packet: {per_packet * 1e6:.1f} us")


# --- offer/answer -----------------------------------------------------------------------------------

ME = "192.0.2.10"
HEAD = "v=0\r\no=- 5 5 IN IP4 10.3.0.1\r\ns=-\r\nc=IN IP4 10.3.0.1\r\nt=0 0\r\n"


def _answer(offer: bytes | str, *, srtp: bool = True) -> tuple[SessionDescription, NegotiatedMedia]:
    return answer_offer(SessionDescription.parse(offer), ME, 20000, session_id=42, srtp=srtp)


def _keys(media: NegotiatedMedia) -> SrtpKeys:
    assert media.srtp is not None
    return media.srtp


def test_baresip_srtp_offer_is_answered_with_our_key_and_its_tag() -> None:
    answer, media = _answer(BARESIP_SRTP_OFFER)
    (stream,) = answer.media
    assert (stream.port, stream.proto, stream.formats) == (20000, "RTP/SAVP", ["0", "101"])
    (line,) = stream.attribute_values("crypto")
    ours = CryptoAttribute.parse(line)
    keys = _keys(media)
    assert (ours.tag, ours.suite, ours.lifetime, ours.mki) == (1, AES_CM_128_HMAC_SHA1_80, None, None)
    assert keys.local == ours and keys.remote == CryptoAttribute.parse(BARESIP_CRYPTO)
    assert ours.key != keys.remote.key
    assert (media.codec, media.remote_port) == ("PCMU", 3848)
    _, again = _answer(BARESIP_SRTP_OFFER)
    assert _keys(again).local.key != ours.key  # a fresh key for every answer, re-answers included


def test_first_usable_crypto_line_is_taken() -> None:
    offer = HEAD + (
        "m=audio 4000 RTP/SAVPF 8\r\n"
        f"a=crypto:1 {AES_256.split(' ', 1)[1]}\r\n"
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:broken\r\n"
        f"a=crypto:3 {RFC_EXAMPLE.split(' ', 1)[1]}\r\n"
        f"a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}\r\n"
        f"a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}\r\n"
    )
    answer, media = _answer(offer)
    assert answer.media[0].proto == "RTP/SAVPF"
    (line,) = answer.media[0].attribute_values("crypto")
    assert line.startswith("4 AES_CM_128_HMAC_SHA1_32 inline:")
    assert _keys(media).remote.key == base64.b64decode(KEY_32)


def test_srtp_without_usable_crypto_is_rejected() -> None:
    unusable = (
        f"m=audio 4000 RTP/SAVP 0\r\na=crypto:1 {AES_256.split(' ', 1)[1]}\r\na=crypto:2 {RFC_32.split(' ', 1)[1]}\r\n"
    )
    suites = r"\(crypto: AES_256_CM_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32\);"
    with pytest.raises(NegotiationError, match=r"audio RTP/SAVP: PCMU/8000 " + suites):
        _answer(HEAD + unusable)
    with pytest.raises(NegotiationError, match=r"RTP/SAVP: PCMU/8000 \(crypto: none\)"):
        _answer(HEAD + "m=audio 4000 RTP/SAVP 0\r\n")
    answer, media = _answer(HEAD + unusable + "m=audio 4002 RTP/AVP 0\r\n")
    assert (answer.media[0].port, answer.media[0].proto, answer.media[0].attributes) == (0, "RTP/SAVP", [])
    assert (answer.media[1].port, media.remote_port, media.srtp) == (20000, 4002, None)


def test_srtp_can_be_turned_off_when_answering() -> None:
    with pytest.raises(NegotiationError, match=r"we take PCMU/8000, PCMA/8000, G722/8000 over RTP/AVP or RTP/AVPF$"):
        _answer(BARESIP_SRTP_OFFER, srtp=False)
    with pytest.raises(NegotiationError, match="or RTP/SAVP or RTP/SAVPF with AES_CM_128_HMAC_SHA1_80"):
        _answer(HEAD + "m=audio 4000 RTP/SAVP 0\r\n")


def test_our_srtp_offer() -> None:
    offer = make_offer(ME, 20000, session_id=1, srtp=True)
    (media,) = offer.media
    assert media.proto == "RTP/SAVP"
    cryptos = [CryptoAttribute.parse(value) for value in media.attribute_values("crypto")]
    assert [(c.tag, c.suite, c.supported) for c in cryptos] == [
        (1, AES_CM_128_HMAC_SHA1_80, True),
        (2, AES_CM_128_HMAC_SHA1_32, True),
    ]
    assert cryptos[0].key != cryptos[1].key
    again = make_offer(ME, 20000, session_id=1, srtp=True)
    assert again.media[0].attribute_values("crypto") != media.attribute_values("crypto")
    assert make_offer(ME, 20000, session_id=1).media[0].attribute_values("crypto") == []


def _crossing(offerer: NegotiatedMedia, answerer: NegotiatedMedia) -> None:
    ours, theirs = _keys(offerer), _keys(answerer)
    assert ours.local == theirs.remote
    assert ours.remote == theirs.local


def test_srtp_offer_answer_round_trip_crosses_keys_and_media_flows() -> None:
    offer = make_offer(ME, 20000, session_id=1, srtp=True)
    answer, answerer = answer_offer(SessionDescription.parse(offer.serialize()), "198.51.100.7", 30000, session_id=2)
    offerer = apply_answer(offer, SessionDescription.parse(answer.serialize()))
    _crossing(offerer, answerer)
    assert (_keys(offerer).local.tag, _keys(offerer).local.suite) == (1, AES_CM_128_HMAC_SHA1_80)
    assert (offerer.codec, answerer.codec) == ("PCMU", "PCMU")

    caller = SrtpContext.from_keys(_keys(offerer))
    callee = SrtpContext(_keys(answerer).local, _keys(answerer).remote)
    for sequence in (1, 2):
        assert callee.unprotect(caller.protect(_rtp(sequence))) == _rtp(sequence)
        assert caller.unprotect(callee.protect(_rtp(sequence, ssrc=9))) == _rtp(sequence, ssrc=9)
    assert callee.unprotect_rtcp(caller.protect_rtcp(_rtcp_rr(1))) == _rtcp_rr(1)
    sent = caller.protect(_rtp(3))
    with pytest.raises(SrtpError, match="authentication failure"):
        callee.unprotect(sent[:-1] + bytes([sent[-1] ^ 0x80]))
    callee.unprotect(sent)
    with pytest.raises(SrtpError, match="replay check failed"):
        callee.unprotect(sent)

    # A hold re-offer copies the offer, keys included, and the answer to it keeps working with them.
    hold = hold_offer(offer)
    assert hold.media[0].attribute_values("crypto") == offer.media[0].attribute_values("crypto")
    hold_answer, answerer = answer_offer(SessionDescription.parse(hold.serialize()), "198.51.100.7", 30000,
                                         session_id=2, version=1)
    offerer = apply_answer(hold, hold_answer)
    _crossing(offerer, answerer)
    assert _keys(offerer).local == CryptoAttribute.parse(offer.media[0].attribute_values("crypto")[0])
    assert offerer.direction == "sendonly"


def test_answer_taking_our_second_suite() -> None:
    offer = make_offer(ME, 20000, session_id=1, srtp=True)
    answer = SessionDescription.parse(
        HEAD + f"m=audio 5000 RTP/SAVP 8\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}\r\n"
    )
    keys = _keys(apply_answer(offer, answer))
    assert keys.local == CryptoAttribute.parse(offer.media[0].attribute_values("crypto")[1])
    assert keys.remote.key == base64.b64decode(KEY_32)


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("m=audio 5000 RTP/SAVP 0\r\n", r"accepts RTP/SAVP without a crypto line matching the offer's tags \[1, 2\]"),
        (f"m=audio 5000 RTP/SAVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}\r\n", "without a crypto"),
        (f"m=audio 5000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}\r\n", "without a crypto"),
        (f"m=audio 5000 RTP/SAVP 0\r\na=crypto:1 {RFC_EXAMPLE.split(' ', 1)[1]}\r\n", "without a crypto"),
        ("m=audio 5000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\r\n", "line 1 of the answer: "),
        ("m=audio 5000 RTP/AVP 0\r\n", "m= line 1 of the answer is RTP/AVP, the offer's is RTP/SAVP"),
    ],
)
def test_apply_answer_refuses_srtp_answers_that_do_not_fit(stream: str, message: str) -> None:
    offer = make_offer(ME, 20000, session_id=1, srtp=True)
    with pytest.raises(NegotiationError, match=message):
        apply_answer(offer, SessionDescription.parse(HEAD + stream))


def test_apply_answer_refuses_srtp_answer_to_a_plain_offer() -> None:
    offer = make_offer(ME, 20000, session_id=1)
    answer = SessionDescription.parse(
        HEAD + f"m=audio 5000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}\r\n"
    )
    with pytest.raises(NegotiationError, match="answer is RTP/SAVP, the offer's is RTP/AVP"):
        apply_answer(offer, answer)


def test_crypto_keys_do_not_leak_into_error_summaries() -> None:
    # Summaries name the suites only: error messages end up in logs, keys must not.
    with pytest.raises(NegotiationError) as caught:
        _answer(HEAD + f"m=audio 4000 RTP/SAVP 0\r\na=crypto:1 {RFC_32.split(' ', 1)[1]}\r\n")
    assert "NzB4d1" not in str(caught.value)
    offer = make_offer(ME, 20000, session_id=1, srtp=True)
    answer = HEAD + f"m=audio 5000 RTP/SAVP 0\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}\r\n"
    with pytest.raises(NegotiationError) as refused:
        apply_answer(offer, SessionDescription.parse(answer))
    assert KEY_80 not in str(refused.value)
    assert "7 AES_CM_128_HMAC_SHA1_80" in str(refused.value)


# --- a real peer ------------------------------------------------------------------------------------

BARESIP = shutil.which("baresip")


def _baresip_config(root: Path, sip_port: int) -> None:
    lines = [
        "poll_method epoll",
        f"sip_listen {HOST}:{sip_port}",
        f"net_interface {HOST}",
        "audio_source ausine,440",
        "ausrc_srate 48000",  # ausine runs at 48 kHz only
        "ausrc_channels 2",
        "audio_player aubridge,speaker",
        "audio_alert aubridge,bell",
        f"module_path {MODULE_PATH}",
        *(f"module {m}" for m in ("g711.so", "ausine.so", "aubridge.so", "srtp.so")),
        "module_tmp account.so",
        "module_app menu.so",
        "ringback_disabled yes",
    ]
    (root / "config").write_text("\n".join(lines) + "\n")
    (root / "accounts").write_text(f"<sip:100@{HOST}>;mediaenc=srtp-mand;regint=0\n")


def _ok(request: bytes, port: int, body: bytes = b"") -> bytes:
    """A 200 OK for `request` (INVITE or BYE), good enough for baresip."""
    headers: dict[str, str] = {}
    for line in request.partition(b"\r\n\r\n")[0].decode().split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    head = (
        f"SIP/2.0 200 OK\r\nVia: {headers['via']}\r\nFrom: {headers['from']}\r\nTo: {headers['to']};tag=srtp\r\n"
        f"Call-ID: {headers['call-id']}\r\nCSeq: {headers['cseq']}\r\nContact: <sip:200@{HOST}:{port}>\r\n"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _answer_bye(sip: socket.socket) -> None:
    sip.settimeout(3)
    with contextlib.suppress(TimeoutError):
        while True:
            request, peer = sip.recvfrom(65535)
            if request.startswith(b"BYE "):
                sip.sendto(_ok(request, sip.getsockname()[1]), peer)
                return


@pytest.mark.skipif(
    BARESIP is None or not (MODULE_PATH / "srtp.so").exists(), reason="needs baresip with its srtp module"
)
def test_baresip_srtp_call_both_ways(tmp_path: Path) -> None:
    """baresip (mediaenc=srtp-mand) calls us; we answer with answer_offer and exchange SRTP both ways."""
    _baresip_config(tmp_path, free_port_block())
    sip, rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sip, rtp:
        sip.bind((HOST, 0))
        rtp.bind((HOST, 0))
        sip.settimeout(10)
        rtp.settimeout(5)
        log = tmp_path / "baresip.log"
        with log.open("wb") as output:
            assert BARESIP is not None
            dial = f"/dial sip:200@{HOST}:{sip.getsockname()[1]}"
            proc = subprocess.Popen([BARESIP, "-f", str(tmp_path), "-e", dial], stdout=output, stderr=subprocess.STDOUT)
            try:
                invite, peer = sip.recvfrom(65535)
                offer = SessionDescription.parse(invite.partition(b"\r\n\r\n")[2])
                answer, media = answer_offer(offer, HOST, rtp.getsockname()[1], session_id=7)
                sip.sendto(_ok(invite, sip.getsockname()[1], answer.serialize()), peer)
                context = SrtpContext.from_keys(_keys(media))
                for _ in range(10):
                    packet = RtpPacket.parse(context.unprotect(rtp.recvfrom(2048)[0]))
                    assert (packet.payload_type, len(packet.payload)) == (0, 160)
                destination = (media.remote_address, media.remote_port)
                for sequence in range(1, 21):
                    rtp.sendto(context.protect(_rtp(sequence)), destination)
                    time.sleep(0.005)
                for sequence in range(21, 24):
                    protected = context.protect(_rtp(sequence))
                    rtp.sendto(protected[:-1] + bytes([protected[-1] ^ 1]), destination)
                time.sleep(0.5)
                proc.terminate()
                _answer_bye(sip)  # else baresip waits out its BYE transaction before exiting
            finally:
                stop_process(proc)
    text = log.read_text(errors="replace")
    assert "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)" in text
    # baresip names every packet it cannot decrypt: only our three tampered ones.
    assert text.count("srtp: failed to decrypt RTP packet") == 3, text
