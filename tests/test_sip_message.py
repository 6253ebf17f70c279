"""SIP message parsing: captured-style round trips, RFC 4475 torture vectors, a mutation fuzz, limits.

The RFC 4475 vectors are written here from the RFC's descriptions (same shape and the same traps,
not byte copies). Every invalid one asserts *which* error comes out: `BadMessage` when the start
line and headers could be read (so a 400 can be answered), a plain `SipParseError` otherwise.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.sip.errors import SipParseError
from appliance.sip.headers import CSeq, NameAddr, Param, Via, parse_params, split_list
from appliance.sip.message import (
    MAX_BODY_BYTES,
    MAX_HEADER_LINES,
    MAX_MESSAGE_BYTES,
    BadMessage,
    Request,
    Response,
    parse_message,
)
from appliance.sip.uri import SipUri


def sip(head: str, body: bytes = b"") -> bytes:
    """Header text with '\\n' line ends -> wire bytes with CRLF; '{len}' becomes the body length."""
    text = head.strip("\n").replace("{len}", str(len(body)))
    return text.replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n" + body


def typed(message: Request | Response) -> tuple[Any, ...]:
    """Everything a layer above reads from a message, as comparable values."""
    start: tuple[Any, ...] = (
        (message.method, message.uri) if isinstance(message, Request) else (message.status, message.reason)
    )
    return (
        start,
        message.call_id,
        message.cseq,
        message.from_addr,
        message.to_addr,
        message.vias,
        message.contacts,
        message.addresses("route"),
        message.addresses("record-route"),
        [(name, value) for name, value in message.headers.items() if name != "content-length"],
        message.body,
    )


def round_trip(data: bytes) -> Request | Response:
    first = parse_message(data)
    again = parse_message(first.serialize())
    assert typed(again) == typed(first)
    assert again.serialize() == first.serialize()
    return first


SDP = (
    b"v=0\r\no=- 3912345678 3912345678 IN IP4 192.168.1.20\r\ns=Zoiper\r\nc=IN IP4 192.168.1.20\r\n"
    b"t=0 0\r\nm=audio 52000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    b"a=sendrecv\r\n"
)

INVITE = sip(
    """
INVITE sip:2001@pbx.example.com;transport=UDP SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-524287-1---7f3c1d2e;rport
Max-Forwards: 70
Contact: <sip:1001@192.168.1.20:5060;transport=UDP>
To: <sip:2001@pbx.example.com>
From: "Alice \\"Al\\" O'Neil" <sip:1001@pbx.example.com;transport=UDP>;tag=8a1b2c3d
Call-ID: YzQ1ZTk4NjQ2YjM2ZmE0OTk4ZTcwNTQ5ZDkyZmQ2ZjE
CSeq: 1 INVITE
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE
Content-Type: application/sdp
Supported: replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri
User-Agent: Z 5.6.1 v2.10.20.5
Allow-Events: presence, kpml, talk
Content-Length: {len}
""",
    SDP,
)


def test_invite_with_sdp_from_softphone() -> None:
    message = round_trip(INVITE)
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == SipUri("sip", "2001", "pbx.example.com", None, {"transport": "UDP"})
    assert message.uri.transport == "udp"
    assert message.body == SDP
    assert message.content_type == "application/sdp"
    assert message.from_addr.display == 'Alice "Al" O\'Neil'
    assert message.from_addr.tag == "8a1b2c3d"
    assert message.to_addr.tag is None
    assert message.top_via == Via("UDP", "192.168.1.20", 5060, {"branch": "z9hG4bK-524287-1---7f3c1d2e", "rport": None})
    assert message.cseq == CSeq(1, "INVITE")
    assert message.int_header("max-forwards") == 70
    assert message.headers.get_all("allow")[:3] == ["INVITE", "ACK", "CANCEL"]
    assert len(message.headers.get_all("allow")) == 10
    assert message.headers.get_all("supported")[-1] == "X-cisco-serviceuri"
    assert message.contacts == [NameAddr(SipUri("sip", "1001", "192.168.1.20", 5060, {"transport": "UDP"}))]
    # the display name needs quotes and escapes when written back
    assert b'From: "Alice \\"Al\\" O\'Neil" <sip:1001@pbx.example.com;transport=UDP>;tag=8a1b2c3d' in (
        message.serialize()
    )


REGISTER = sip(
    """
REGISTER sip:pbx.example.com SIP/2.0
Via: SIP/2.0/TCP 10.0.0.7:49152;branch=z9hG4bK.xUe3ZcLmN;rport;alias
From: <sip:1001@pbx.example.com>;tag=Gk2D8aS1
To: sip:1001@pbx.example.com
CSeq: 21 REGISTER
Call-ID: 8pTqR2fFqM
Max-Forwards: 70
Supported: outbound, path
Contact: <sip:1001@10.0.0.7:49152;transport=tcp>;expires=3600;+sip.instance="<urn:uuid:0f2a-11>";reg-id=1
Authorization: Digest realm="pbx.example.com", nonce="5f1c2a", algorithm=MD5, username="1001", \
uri="sip:pbx.example.com", response="0a4f113b0a4f113b0a4f113b0a4f113b", cnonce="abc, def", nc=00000001, qop=auth
User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)
Content-Length: 0
""".replace("\\\n", "")
)


def test_register_with_authorization() -> None:
    message = round_trip(REGISTER)
    assert isinstance(message, Request)
    assert message.method == "REGISTER"
    assert message.uri == SipUri(host="pbx.example.com")
    assert message.to_addr == NameAddr(SipUri("sip", "1001", "pbx.example.com"))
    # Authorization is not a list header: its commas (one inside a quoted value) stay in one value
    auth = message.headers.get_all("authorization")
    assert len(auth) == 1
    assert auth[0].startswith('Digest realm="pbx.example.com", nonce=')
    assert 'cnonce="abc, def", nc=00000001, qop=auth' in auth[0]
    (contact,) = message.contacts
    assert contact.param("expires") == "3600"
    assert contact.params["+sip.instance"] == Param("<urn:uuid:0f2a-11>")
    assert contact.uri.transport == "tcp"
    assert message.top_via.params == {"branch": "z9hG4bK.xUe3ZcLmN", "rport": None, "alias": None}
    assert message.top_via.transport == "TCP"
    assert message.body == b""


OK_RECORD_ROUTE = sip(
    """
SIP/2.0 200 OK
Via: SIP/2.0/UDP proxy2.example.com:5060;branch=z9hG4bK721e.1;received=203.0.113.9
Via: SIP/2.0/UDP proxy1.example.com;branch=z9hG4bK2d4790.1
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK776asdhds;rport=5060;received=198.51.100.4
Record-Route: <sip:proxy2.example.com;lr>, <sip:proxy1.example.com;lr;ftag=8a1b2c3d>
Record-Route: <sip:edge.example.com;lr;transport=tcp>
From: Alice <sip:alice@example.com>;tag=1928301774
To: Bob <sip:bob@example.com>;tag=a6c85cf
Call-ID: a84b4c76e66710@pc33.example.com
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4>
Content-Length: 0
"""
)


def test_200_ok_with_record_route_and_vias() -> None:
    message = round_trip(OK_RECORD_ROUTE)
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (200, "OK")
    assert [v.host for v in message.vias] == ["proxy2.example.com", "proxy1.example.com", "192.168.1.20"]
    assert [v.port for v in message.vias] == [5060, None, 5060]
    assert message.vias[2].params == {"branch": "z9hG4bK776asdhds", "rport": "5060", "received": "198.51.100.4"}
    rr = message.addresses("record-route")
    assert [r.uri.host for r in rr] == ["proxy2.example.com", "proxy1.example.com", "edge.example.com"]
    assert rr[1].uri.params == {"lr": None, "ftag": "8a1b2c3d"}
    assert message.to_addr.tag == "a6c85cf"
    assert message.to_addr.display == "Bob"


UNAUTHORIZED = sip(
    """
SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1;received=198.51.100.4;rport=1024
From: <sip:1001@pbx.example.com>;tag=abc
To: <sip:1001@pbx.example.com>;tag=srv1
Call-ID: reg-1
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="pbx.example.com", nonce="aaa", algorithm=SHA-256, qop="auth,auth-int"
WWW-Authenticate: Digest realm="pbx.example.com", nonce="bbb", algorithm=MD5, qop="auth"
Content-Length: 0
"""
)


def test_401_keeps_each_www_authenticate_whole() -> None:
    message = round_trip(UNAUTHORIZED)
    assert isinstance(message, Response)
    assert message.status == 401
    challenges = message.headers.get_all("www-authenticate")
    assert challenges == [
        'Digest realm="pbx.example.com", nonce="aaa", algorithm=SHA-256, qop="auth,auth-int"',
        'Digest realm="pbx.example.com", nonce="bbb", algorithm=MD5, qop="auth"',
    ]
    assert message.serialize().count(b"\r\nWWW-Authenticate: Digest ") == 2


COMPACT = sip(
    """
MESSAGE sip:bob@example.com SIP/2.0
v: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bKcompact
f: "Alice" <sip:alice@example.com>;tag=77
t: sip:bob@example.com
i: compact-1@client.example.com
m: <sip:alice@client.example.com;transport=tls>
k: 100rel, timer
c: text/plain;charset=UTF-8
CSeq: 5 MESSAGE
Max-Forwards: 69
l: {len}
""",
    "héllo".encode(),
)


def test_compact_forms_are_expanded() -> None:
    message = round_trip(COMPACT)
    assert message.call_id == "compact-1@client.example.com"
    assert message.top_via.transport == "TLS"
    assert message.from_addr.display == "Alice"
    assert message.to_addr.uri.user == "bob"
    assert message.contacts[0].uri.params == {"transport": "tls"}
    assert message.headers.get_all("supported") == ["100rel", "timer"]
    assert message.content_type == "text/plain"
    assert message.body == "héllo".encode()
    assert message.headers.get("content-length") == str(len("héllo".encode()))
    wire = message.serialize()
    for name in (b"Via", b"From", b"To", b"Call-ID", b"Contact", b"Supported", b"Content-Type", b"Content-Length"):
        assert b"\r\n" + name + b": " in wire


FOLDED = sip(
    """
OPTIONS sip:carol@chicago.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.example.com
 ;branch=z9hG4bKhjhs8ass877
Max-Forwards: 70
To: <sip:carol@chicago.example.com>
From: Alice
\t<sip:alice@example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 63104
   OPTIONS
Subject: I know you're there,
         pick up the phone
         and talk to me!
Content-Length: 0
"""
)


def test_folded_header_lines() -> None:
    message = round_trip(FOLDED)
    assert message.top_via.branch == "z9hG4bKhjhs8ass877"
    assert message.from_addr == NameAddr(SipUri("sip", "alice", "example.com"), "Alice", {"tag": "1928301774"})
    assert message.cseq == CSeq(63104, "OPTIONS")
    assert message.headers.get("subject") == "I know you're there, pick up the phone and talk to me!"


VIA_TEMPLATE = """
SIP/2.0 180 Ringing
{vias}
From: <sip:a@example.com>;tag=1
To: <sip:b@example.com>;tag=2
Call-ID: via-forms
CSeq: 2 INVITE
Content-Length: 0
"""
VIA_ELEMENTS = [
    "SIP/2.0/UDP p1.example.com;branch=z9hG4bK1",
    "SIP/2.0/TCP p2.example.com:5070;branch=z9hG4bK2;received=192.0.2.1",
    "SIP/2.0/UDP [2001:db8::9:1]:5062;branch=z9hG4bK3;received=2001:db8::9:255",
]


def test_via_comma_list_equals_several_lines() -> None:
    one_line = parse_message(sip(VIA_TEMPLATE.format(vias="Via: " + " ,  ".join(VIA_ELEMENTS))))
    lines = parse_message(sip(VIA_TEMPLATE.format(vias="\n".join("Via: " + v for v in VIA_ELEMENTS))))
    mixed = parse_message(
        sip(VIA_TEMPLATE.format(vias=f"Via: {VIA_ELEMENTS[0]}, {VIA_ELEMENTS[1]}\nv: {VIA_ELEMENTS[2]}"))
    )
    assert one_line.vias == lines.vias == mixed.vias
    assert len(one_line.vias) == 3
    assert one_line.vias[2] == Via("UDP", "2001:db8::9:1", 5062, {"branch": "z9hG4bK3", "received": "2001:db8::9:255"})
    assert one_line.serialize() == lines.serialize()
    round_trip(one_line.serialize())


IPV6 = sip(
    """
REGISTER sip:[2001:db8::10] SIP/2.0
To: sip:user@[2001:db8::10]
From: "Joe \\\\ Backslash" <sip:user@[2001:DB8:0:0::10]:5070;transport=udp>;tag=81x2
Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111
Call-ID: SSG9559905523997077@hlau_4100
Max-Forwards: 70
Contact: "Caller" <sip:caller@[2001:db8::9:1]>
CSeq: 98176 REGISTER
Content-Length: 0
"""
)


def test_ipv6_via_and_uris() -> None:
    message = round_trip(IPV6)
    assert isinstance(message, Request)
    assert message.uri == SipUri(host="2001:db8::10")
    assert message.to_addr.uri.host == "2001:db8::10"
    assert message.from_addr.uri.host == "2001:db8::10"  # normalised from 2001:DB8:0:0::10
    assert message.from_addr.uri.port == 5070
    assert message.from_addr.display == "Joe \\ Backslash"
    assert message.top_via.host == "2001:db8::9:1"
    assert message.top_via.port is None
    assert message.contacts[0].uri.host == "2001:db8::9:1"
    assert b"Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111\r\n" in message.serialize()
    assert message.serialize().startswith(b"REGISTER sip:[2001:db8::10] SIP/2.0\r\n")


def test_split_list_and_parse_params_helpers() -> None:
    assert split_list('"Watson, Thomas" <sip:t@example.org>, <sip:a@b;x=1,2>, sip:c@d') == [
        '"Watson, Thomas" <sip:t@example.org>',
        "<sip:a@b;x=1,2>",
        "sip:c@d",
    ]
    assert split_list('"a \\", b" <sip:x@y>, z') == ['"a \\", b" <sip:x@y>', "z"]
    assert split_list(" , ,") == []
    assert parse_params(';tag = 1;lr; q="0;5"', "t") == {"tag": "1", "lr": None, "q": Param("0;5")}
    with pytest.raises(SipParseError):
        parse_params(";a=1 b", "t")
    with pytest.raises(SipParseError):
        parse_params(";a=", "t")


# --- RFC 4475 section 3.1.1: valid messages ---------------------------------------------------------

WSINV_BODY = (
    b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
)
WSINV = sip(
    r"""
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : {len}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33
""",
    WSINV_BODY,
)


def check_wsinv(m: Request | Response) -> None:
    assert isinstance(m, Request)
    assert m.uri.params == {"unknownparam": None}
    assert m.to_addr == NameAddr(SipUri("sip", "vivekg", "chair-dnrc.example.com"), None, {"tag": "1918181833n"})
    assert m.from_addr.display == 'J Rosenberg \\"'
    assert m.from_addr.tag == "98asjd8"
    assert m.int_header("max-forwards") == 68
    assert m.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("subject") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    (route,) = m.addresses("route")
    assert route.uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    (contact,) = m.contacts
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert m.body == WSINV_BODY


INTMETH_METHOD = "!interesting-Method0123456789_*+`.%indeed'~"
INTMETH_USER = "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
INTMETH = sip(
    f"""
{INTMETH_METHOD} sip:{INTMETH_USER}:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~
To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:{INTMETH_USER}@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="работающий";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/"][?}}{{
CSeq: 139122385 {INTMETH_METHOD}
Max-Forwards: 255
extensionHeader-!.%*+_`'~:\ufeff大停電
Content-Length: 0
"""
)


def check_intmeth(m: Request | Response) -> None:
    assert isinstance(m, Request)
    assert m.method == INTMETH_METHOD
    assert m.cseq == CSeq(139122385, INTMETH_METHOD)
    assert m.uri.user == INTMETH_USER
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.uri.params == {}
    assert m.uri.headers == {}
    assert m.to_addr.uri.user == INTMETH_USER
    assert m.to_addr.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_addr.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_addr.params["fromparam''~+*_!.-%"] == Param("работающий")
    assert m.from_addr.tag == "_token~1'+`*%!-."
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionheader-!.%*+_`'~") == "\ufeff大停電"


ESC01 = sip(
    """
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {len}
""",
    WSINV_BODY,
)


def check_esc01(m: Request | Response) -> None:
    assert isinstance(m, Request)
    assert m.uri.user == "sips:user@example.com"
    assert m.uri.host == "example.net"
    assert m.to_addr.uri.user == "user"
    assert m.from_addr.uri.user == "I have spaces"
    (contact,) = m.contacts
    assert contact.uri.user == "caller"
    assert contact.uri.params == {"lr": None, "name": "value%41"}
    assert m.content_type == "application/sdp"


ESC02 = sip(
    """
RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bK209824oau
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0
"""
)


def check_esc02(m: Request | Response) -> None:
    assert isinstance(m, Request)
    assert m.method == "RE%47IST%45R"  # not REGISTER: escaping means nothing in a method
    assert m.to_addr.display == "%Z%45"
    assert [c.uri.host for c in m.contacts] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("c%6fntact") == "<sip:alias2@host2.example.com>"  # an unknown header, not Contact


ESCNULL = sip(
    """
REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0
"""
)


def check_escnull(m: Request | Response) -> None:
    assert m.to_addr.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts] == ["\x00", "\x00\x00"]


LWSDISP = sip(
    """
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0
"""
)


def check_lwsdisp(m: Request | Response) -> None:
    assert m.from_addr.display == "caller"
    assert m.from_addr.uri.user == "caller"


LONG_TAG = "longreq" + "x" * 900
LONG_HEADER = "Long" * 1000
LONGREQ = sip(
    "\n".join(
        [
            "INVITE sip:user@example.com SIP/2.0",
            f'To: "I have a user name of {"extreme" * 40} proportion" <sip:user@example.com:6000;'
            f"unknownparam1=very{'long' * 60}value;unknownparam2=shortvalue>",
            f"From: sip:caller@example.net;tag={LONG_TAG}",
            f"Call-ID: longreq.{'one' * 300}",
            "CSeq: 3882340 INVITE",
            "Max-Forwards: 70",
            *[f"Via: SIP/2.0/TCP sip{i}.example.com;branch=z9hG4bK{'a' * 100}{i}" for i in range(40)],
            f"Unknown-{'Long' * 50}-Name: unknown-{'long' * 50}-value; unknown-{'long' * 30}-parameter-name = "
            f"unknown-{'long' * 30}-parameter-value",
            f"Long-Header: {LONG_HEADER}",
            "Contact: <sip:amazinglylongcallername@host5.example.net>",
            "Content-Type: application/sdp",
            "l: {len}",
        ]
    ),
    WSINV_BODY,
)


def check_longreq(m: Request | Response) -> None:
    assert m.to_addr.uri.params["unknownparam1"] == "very" + "long" * 60 + "value"
    assert m.to_addr.uri.port == 6000
    assert m.from_addr.tag == LONG_TAG
    assert len(m.vias) == 40
    assert m.vias[39].host == "sip39.example.com"
    assert m.headers.get("long-header") == LONG_HEADER
    assert m.body == WSINV_BODY


DBLREQ_INVITE = sip(
    """
INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: {len}
""",
    WSINV_BODY,
)
DBLREQ = (
    sip(
        """
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0
"""
    )
    + DBLREQ_INVITE
)


def check_dblreq(m: Request | Response) -> None:
    assert isinstance(m, Request)
    assert m.method == "REGISTER"  # the first message; the INVITE after Content-Length is not it
    assert m.body == b""
    assert m.contacts == [NameAddr(SipUri("sip", "j.user", "host.example.com"))]


SEMIURI = sip(
    """
OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0
"""
)


def check_semiuri(m: Request | Response) -> None:
    assert isinstance(m, Request)
    assert m.uri.user == "user;par=u@example.net"
    assert m.uri.host == "example.com"
    assert m.uri.params == {}
    assert len(m.headers.get_all("accept")) == 6


TRANSPORTS = sip(
    """
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0
"""
)


def check_transports(m: Request | Response) -> None:
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


MPART_BODY = (
    b"--7a9cbec02ceef655\r\nContent-Type: application/sdp\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + WSINV_BODY
    + b"\r\n--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
    b"\r\n0\x82\x01\x0c\x06\t*\x86H\x86\xf7\r\x01\x07\x02\xa0\x82\x00\xff\xfe\r\n\r\n\x00\x00"
    b"\r\n--7a9cbec02ceef655--\r\n"
)
MPART01 = sip(
    """
MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSD=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: {len}
""",
    MPART_BODY,
)


def check_mpart01(m: Request | Response) -> None:
    assert m.content_type == "multipart/mixed"
    assert m.body == MPART_BODY  # raw bytes, blank lines and all
    assert m.addresses("route")[0].uri.port == 5080
    assert m.top_via.params["rport"] is None


UNREASON = sip(
    """
SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: {len}
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>
""",
    WSINV_BODY,
)


def check_unreason(m: Request | Response) -> None:
    assert isinstance(m, Response)
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


NOREASON = (
    b"SIP/2.0 100 \r\nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n"
    b"Call-ID: noreason.asndj203insdf99223ndf\r\nCSeq: 35 INVITE\r\n"
    b"From: <sip:user@example.com>;tag=39ansfi3\r\nTo: <sip:user@example.edu>;tag=902jndnke3\r\n"
    b"Content-Length: 0\r\nContact: <sip:user@host105.example.com>\r\n\r\n"
)


def check_noreason(m: Request | Response) -> None:
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (100, "")


# RFC 4475 3.1.2.12 baddate: a bad Date is not our business (nothing reads Date), so it is accepted.
BADDATE = sip(
    """
INVITE sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=2234923
Max-Forwards: 70
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234
CSeq: 1392934 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: {len}
""",
    WSINV_BODY,
)


def check_baddate(m: Request | Response) -> None:
    assert m.headers.get("date") == "Fri, 01 Jan 2010 16:00:00 EST"


# RFC 4475 3.1.2.? badbranch (3.3.x, "branch not starting with z9hG4bK") is fine: RFC 2543 peers do that.
BADBRANCH = sip(
    """
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK
Via: SIP/2.0/UDP 192.0.2.2;branch=390skdjuw
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n
CSeq: 8 OPTIONS
l: 0
"""
)


def check_badbranch(m: Request | Response) -> None:
    assert [v.branch for v in m.vias] == ["z9hG4bK", "390skdjuw"]


# RFC 4475 3.1.2.14 badaspec: spaces inside <...>. The RFC lets a liberal parser ignore them; ours does.
BADASPEC = sip(
    """
OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0
"""
)


def check_badaspec(m: Request | Response) -> None:
    assert m.to_addr.uri == SipUri("sip", "t.watson", "example.org")
    assert m.to_addr.display == "Watson, Thomas"
    assert m.from_addr.display == "Bell, Alexander"


# RFC 4475 3.1.2.15 baddn: unquoted display names with non-token characters. The RFC finds a 400
# "reasonable"; we deliberately tolerate them in From/To (many phones send raw UTF-8 names unquoted).
BADDN = sip(
    """
OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0
"""
)


def check_baddn(m: Request | Response) -> None:
    assert m.from_addr.display == "Bell, Alexander"
    assert m.to_addr.uri.user == "t.watson"


# RFC 4475 3.1.2.11 escruri: escaped headers in the Request-URI. The RFC allows ignoring them instead
# of a 400; we tolerate the message and keep them in `uri.headers` for the layer above to ignore.
ESCRURI = sip(
    """
INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 149209342 INVITE
Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: {len}
""",
    WSINV_BODY,
)


def check_escruri(m: Request | Response) -> None:
    assert isinstance(m, Request)
    assert m.uri.host == "example.com"
    assert m.uri.headers == {"Route": "<sip:example.com>"}


# RFC 4475 3.1.2.5 scalar1low-ish: an absurd Retry-After in a response is not read by the parser.
SCALARLG_RESPONSE = sip(
    """
SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834 OPTIONS
Call-ID: scalar1.23094asdkjf2k3o4ro4
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0
"""
)


VALID = [
    pytest.param(WSINV, check_wsinv, id="wsinv"),
    pytest.param(INTMETH, check_intmeth, id="intmeth"),
    pytest.param(ESC01, check_esc01, id="esc01"),
    pytest.param(ESCNULL, check_escnull, id="escnull"),
    pytest.param(ESC02, check_esc02, id="esc02"),
    pytest.param(LWSDISP, check_lwsdisp, id="lwsdisp"),
    pytest.param(LONGREQ, check_longreq, id="longreq"),
    pytest.param(DBLREQ, check_dblreq, id="dblreq"),
    pytest.param(SEMIURI, check_semiuri, id="semiuri"),
    pytest.param(TRANSPORTS, check_transports, id="transports"),
    pytest.param(MPART01, check_mpart01, id="mpart01"),
    pytest.param(UNREASON, check_unreason, id="unreason"),
    pytest.param(NOREASON, check_noreason, id="noreason"),
    pytest.param(BADDATE, check_baddate, id="baddate"),
    pytest.param(BADBRANCH, check_badbranch, id="badbranch"),
    pytest.param(BADASPEC, check_badaspec, id="badaspec"),
    pytest.param(BADDN, check_baddn, id="baddn"),
    pytest.param(ESCRURI, check_escruri, id="escruri"),
]


@pytest.mark.parametrize(("data", "check"), VALID)
def test_rfc4475_valid(data: bytes, check: Any) -> None:
    message = parse_message(data)
    check(message)
    # what we write back parses to the same values and passes the same checks
    again = parse_message(message.serialize())
    assert typed(again) == typed(message)
    check(again)


def test_scalar_overflow_in_response_cseq() -> None:
    """RFC 4475 3.1.2.5 scalar1low: CSeq 9292394834 (over 2**31) in a response is refused, with the message."""
    with pytest.raises(BadMessage) as info:
        parse_message(SCALARLG_RESPONSE)
    assert isinstance(info.value.message, Response)
    assert info.value.message.status == 503


# --- RFC 4475 section 3.1.2: invalid messages ---------------------------------------------------------

BASE = """
OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
To: sip:user@example.com
From: sip:caller@example.net;tag=1
Max-Forwards: 70
Call-ID: invalid.1
CSeq: 1 OPTIONS
"""

BAD_MESSAGES = [  # (bytes, readable?) readable: BadMessage carrying the message; else plain SipParseError
    pytest.param(
        sip(
            """
INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: {len}
Content-Type: application/sdp
""",
            WSINV_BODY,
        ),
        True,
        id="badinv01",
    ),
    pytest.param(sip(BASE + "Content-Length: 9999", b"v=0\r\n"), True, id="clerr"),
    pytest.param(sip(BASE + "Content-Length: -999", b"v=0\r\n"), True, id="scalar02"),
    pytest.param(sip(BASE + "Content-Length: 99999999999999999999", b""), True, id="scalar02-overflow"),
    pytest.param(sip(BASE + "l: -1", b""), True, id="ncl"),
    pytest.param(
        sip(BASE.replace("CSeq: 1 OPTIONS", "CSeq: 36893488147419103232 OPTIONS") + "l: 0"),
        True,
        id="scalarlg-cseq",
    ),
    pytest.param(sip(BASE.replace("CSeq: 1 OPTIONS", "CSeq: -3 OPTIONS") + "l: 0"), True, id="scalar-negative-cseq"),
    pytest.param(
        sip(BASE.replace("Max-Forwards: 70", "Max-Forwards: 99999999999999") + "l: 0"), True, id="scalarlg-maxfwd"
    ),
    pytest.param(
        sip(BASE.replace("To: sip:user@example.com", 'To: "Mr. J. User <sip:j.user@example.com>') + "l: 0"),
        True,
        id="quotbal",
    ),
    pytest.param(
        sip(BASE.replace("OPTIONS sip:user@example.com", "OPTIONS <sip:user@example.com>")), False, id="ltgtruri"
    ),
    pytest.param(sip(BASE.replace("sip:user@example.com SIP", "sip:user@example.com; lr SIP", 1)), False, id="lwsruri"),
    pytest.param(sip(BASE.replace("OPTIONS sip:", "OPTIONS  sip:", 1)), False, id="lwsstart"),
    pytest.param(sip(BASE.replace("SIP/2.0\n", "SIP/2.0 \n", 1)), False, id="trws"),
    pytest.param(
        sip(
            """
REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0
"""
        ),
        True,
        id="regbadct",
    ),
    pytest.param(sip(BASE.replace("SIP/2.0\n", "SIP/7.0\n", 1) + "l: 0"), False, id="badvers"),
    pytest.param(sip(BASE.replace("CSeq: 1 OPTIONS", "CSeq: 8 INVITE") + "l: 0"), True, id="mismatch01"),
    pytest.param(
        sip(BASE.replace("OPTIONS sip:", "NEWMETHOD sip:").replace("CSeq: 1 OPTIONS", "CSeq: 8 INVITE") + "l: 0"),
        True,
        id="mismatch02",
    ),
    pytest.param(
        sip(
            """
SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
"""
        ),
        False,
        id="bigcode",
    ),
    pytest.param(
        sip(
            """
INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: {len}
""",
            WSINV_BODY,
        ),
        True,
        id="insuf",
    ),
    pytest.param(sip(BASE.replace("SIP/2.0\n", "SIP/2.0\nVia: SIP/2.0/UDP\n", 1) + "l: 0"), True, id="via-no-host"),
    pytest.param(sip(BASE + "Call-ID: second\nl: 0"), True, id="two-call-ids"),
    pytest.param(sip(BASE.replace("Call-ID: invalid.1", "Call-ID:") + "l: 0"), True, id="empty-call-id"),
    pytest.param(sip(BASE.replace("To: sip:user@example.com", "To: *") + "l: 0"), True, id="wildcard-to"),
    pytest.param(sip(BASE + "Bad Header: x\nl: 0"), False, id="header-name-with-space"),
    pytest.param(sip(BASE + "NoColon\nl: 0"), False, id="header-without-colon"),
    pytest.param(sip(" continued\n" + BASE.strip("\n")), False, id="fold-before-start-line"),
    pytest.param(BASE.replace("\n", "\r\n").encode(), False, id="no-blank-line"),
    pytest.param(sip(BASE.replace("sip:user@example.com SIP", "sip:2001:db8::10 SIP", 1)), False, id="ipv6-bug"),
    pytest.param(
        sip(BASE.replace("sip:user@example.com SIP", "http://example.com/ SIP", 1)), False, id="unknown-scheme"
    ),
    pytest.param(sip(BASE.replace("OPTIONS sip:", "OPT@IONS sip:", 1)), False, id="method-not-token"),
    pytest.param(b"SIP/2.0 99 Too Small\r\n\r\n", False, id="status-below-100"),
    pytest.param(b"SIP/2.0 2OO OK\r\n\r\n", False, id="status-not-digits"),
    pytest.param(b"", False, id="empty"),
]


@pytest.mark.parametrize(("data", "readable"), BAD_MESSAGES)
def test_rfc4475_invalid(data: bytes, readable: bool) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    if readable:
        assert isinstance(info.value, BadMessage), f"expected BadMessage, got {info.value!r}"
        assert isinstance(info.value.message, (Request, Response))
        assert info.value.message.headers.get("via") is not None or "via" in str(info.value).lower()
    else:
        assert not isinstance(info.value, BadMessage), f"unexpected BadMessage: {info.value}"


def test_badinv01_names_the_broken_via() -> None:
    """RFC 4475 3.1.2.1: the empty Via elements after the first must be caught, not just the top one."""
    data = BAD_MESSAGES[0].values[0]
    assert isinstance(data, bytes)
    with pytest.raises(BadMessage, match="Via"):
        parse_message(data)


def test_regbadct_contact_is_refused_with_message() -> None:
    data = next(p.values[0] for p in BAD_MESSAGES if p.id == "regbadct")
    assert isinstance(data, bytes)
    with pytest.raises(BadMessage) as info:
        parse_message(data)
    request = info.value.message
    assert isinstance(request, Request)
    assert request.method == "REGISTER"  # enough to answer 400


def test_mismatch_keeps_request_for_400() -> None:
    data = sip(BASE.replace("CSeq: 1 OPTIONS", "CSeq: 8 INVITE") + "l: 0")
    with pytest.raises(BadMessage, match="CSeq method INVITE") as info:
        parse_message(data)
    request = info.value.message
    assert isinstance(request, Request)
    response = request.response(400)
    assert response.headers.get("call-id") == "invalid.1"
    assert response.status == 400 and response.reason == "Bad Request"


def test_bare_lf_line_ends_are_tolerated() -> None:
    """RFC 3261 7.5 lets a receiver accept LF alone; some embedded phones send it."""
    data = (BASE.lstrip("\n") + "Content-Length: 3\n\nabc").encode()
    message = parse_message(data)
    assert message.body == b"abc"
    assert message.cseq == CSeq(1, "OPTIONS")


def test_leading_crlf_keepalives_are_skipped() -> None:
    message = parse_message(b"\r\n\r\n" + sip(BASE + "l: 0"))
    assert isinstance(message, Request)
    assert message.method == "OPTIONS"


def test_non_ascii_digits_are_not_numbers() -> None:
    """'²' and '٣' are str.isdigit(); they must be refused as SIP numbers, not crash int()."""
    for digit in ("²", "٣"):
        for data in (
            sip(BASE.replace("CSeq: 1", f"CSeq: {digit}") + "l: 0"),
            sip(BASE + f"l: {digit}"),
            sip(BASE.replace("Max-Forwards: 70", f"Max-Forwards: 7{digit}") + "l: 0"),
            sip(BASE.replace("host.example.com;", f"host.example.com:5{digit};") + "l: 0"),
            sip(BASE.replace("@example.com SIP", f"@example.com:5{digit} SIP", 1) + "l: 0"),
            f"SIP/2.0 2{digit}0 OK\r\n\r\n".encode(),
        ):
            with pytest.raises(SipParseError):
                parse_message(data)


# --- fuzz ----------------------------------------------------------------------------------------------

SEEDS = [INVITE, REGISTER, OK_RECORD_ROUTE, UNAUTHORIZED, COMPACT, FOLDED, IPV6, WSINV, INTMETH, ESC01, SEMIURI]

mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "replace"]),
    st.integers(min_value=0, max_value=10_000),
    st.binary(min_size=1, max_size=4)
    | st.sampled_from(
        [
            b"\r\n",
            b"\r\n ",
            b":",
            b";",
            b",",
            b"<",
            b">",
            b'"',
            b"\\",
            b"@",
            b"[",
            b"]",
            b"%",
            b"\xff",
            b"\xc2\xb2",
            b"\xd9\xa3",
            b" ",
            b"\x00",
            b"?",
            b"/",
            b"=",
            b"9" * 12,
        ]
    ),
)


def mutate(data: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for kind, where, chunk in changes:
        pos = where % (len(buf) + 1)
        if kind == "flip" and buf:
            pos %= len(buf)
            buf[pos] ^= 1 << (chunk[0] % 8)
        elif kind == "insert":
            buf[pos:pos] = chunk
        elif kind == "delete":
            del buf[pos : pos + len(chunk)]
        else:
            buf[pos : pos + len(chunk)] = chunk
    return bytes(buf)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), changes=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_messages_only_raise_sip_parse_error(seed: bytes, changes: list[tuple[str, int, bytes]]) -> None:
    data = mutate(seed, changes)
    try:
        message = parse_message(data)
    except SipParseError:
        return
    # whatever was accepted can be read through the typed views without any other exception
    for view in (
        lambda: message.vias,
        lambda: message.contacts,
        lambda: message.addresses("route"),
        lambda: message.addresses("record-route"),
        lambda: message.content_type,
    ):
        with contextlib.suppress(SipParseError):
            view()


def test_mutate_changes_bytes() -> None:
    assert mutate(b"abcdef", [("delete", 1, b"xx")]) == b"adef"
    assert mutate(b"abc", [("insert", 3, b"Z")]) == b"abcZ"
    assert mutate(b"abc", [("flip", 0, b"\x00")]) == b"`bc"


# --- limits --------------------------------------------------------------------------------------------


def test_message_over_max_bytes_is_refused() -> None:
    pad = "x" * (MAX_MESSAGE_BYTES + 1 - len(sip(BASE + "X-Pad: \nl: 0")))
    fits = sip(BASE + f"X-Pad: {pad[:-1]}\nl: 0")
    assert len(fits) == MAX_MESSAGE_BYTES
    assert parse_message(fits).headers.get("x-pad") == pad[:-1]
    too_big = sip(BASE + f"X-Pad: {pad}\nl: 0")
    assert len(too_big) == MAX_MESSAGE_BYTES + 1
    with pytest.raises(SipParseError, match="larger than") as info:
        parse_message(too_big)
    assert not isinstance(info.value, BadMessage)


def test_too_many_header_lines_is_refused() -> None:
    base_lines = BASE.strip("\n").count("\n") + 1  # start line + headers
    extra = MAX_HEADER_LINES - base_lines - 1  # leave room for Content-Length
    fits = sip(BASE + "".join(f"X-H{i}: {i}\n" for i in range(extra)) + "l: 0")
    assert len(parse_message(fits).headers.get_all("x-h0")) == 1
    too_many = sip(BASE + "".join(f"X-H{i}: {i}\n" for i in range(extra + 1)) + "l: 0")
    with pytest.raises(SipParseError, match="header lines"):
        parse_message(too_many)
    # folded continuation lines count too: they are lines an attacker makes us hold
    folded = sip(BASE + "X-Fold: a\n" + " b\n" * (extra + 1) + "l: 0")
    with pytest.raises(SipParseError, match="header lines"):
        parse_message(folded)


def test_body_over_max_bytes_is_refused_with_message() -> None:
    body = b"a" * MAX_BODY_BYTES
    message = parse_message(sip(BASE + "Content-Type: text/plain\nContent-Length: {len}", body))
    assert len(message.body) == MAX_BODY_BYTES
    big = body + b"a"
    with pytest.raises(BadMessage, match="body larger") as info:
        parse_message(sip(BASE + "Content-Type: text/plain\nContent-Length: {len}", big))
    assert isinstance(info.value.message, Request)
    # without Content-Length (datagram: the body is the rest) the limit holds too
    with pytest.raises(BadMessage, match="body larger"):
        parse_message(sip(BASE, big))


def test_content_length_shorter_than_datagram_truncates_body() -> None:
    message = parse_message(sip(BASE + "Content-Length: 3", b"abcdef"))
    assert message.body == b"abc"


# Found by tools/bench/sip_fuzz.py (seed 1): a URI user part or parameter holding bytes that are not
# UTF-8 parsed, but serializing it (repr, a response, a re-sent request) raised UnicodeEncodeError.
@pytest.mark.parametrize("data", [
    b"ACK sip:se\xf2vice@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-1-5\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:5070>;tag=1\r\nTo: <sip:service@127.0.0.1:5060>;tag=b2\r\n"
    b"Call-ID: 1-1@127.0.0.1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
    b"OPTIONS sip:u@example.com;user=ph\xeb&(\xf4one?h\xff=v\xfe SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
    b"From: <sip:a:p\xf3@example.com>;tag=1\r\nTo: <sip:u@example.com>\r\nCall-ID: c@x\r\nCSeq: 1 OPTIONS\r\n\r\n",
])
def test_uri_with_non_utf8_bytes_serializes_as_escapes(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Request)
    assert "%" in repr(message)
    text = message.serialize()
    assert parse_message(text).call_id == message.call_id
    message.from_addr.serialize()


def test_port_of_thousands_of_digits_is_a_parse_error() -> None:
    """Found by tools/bench/sip_fuzz.py (seed 1, iteration 50682): int() refused it with a plain ValueError."""
    data = sip(f"""
OPTIONS sip:u@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:{"9" * 5000};branch=z9hG4bKx
From: <sip:a@example.com>;tag=1
To: <sip:u@example.com>
Call-ID: c@x
CSeq: 1 OPTIONS
""")
    with pytest.raises(BadMessage, match="bad port"):
        parse_message(data)
    assert SipUri.parse("sip:u@h:005060").port == 5060
