"""A long mutation fuzz of the SIP parser and stack: how many messages were tried, and what broke.

Each iteration takes a valid message from a small corpus (INVITE with SDP, REGISTER, BYE, ACK,
CANCEL, OPTIONS, responses; compact headers, folding, IPv6, tel URIs, quoted names) and applies 1-4
random mutations: byte flips, inserts and deletes, duplicated / dropped / swapped header lines,
truncation, huge values, random header names, CRLF games (bare LF, bare CR, early blank line,
folding), non-UTF-8 bytes, SIP punctuation, a wrong Content-Length, splices of two messages. The
input is fed to `parse_message` (an accepted message is also read through its typed views and
serialized and parsed again), then to a live `SipStack.receive` with the real `UserAgent` above it
and a transport that only records what would be sent. `SipParseError` (and its `BadMessage`) is the
documented way to refuse input; any other exception is a finding: its seed, iteration, traceback and
the input in hex are printed (once per distinct place), and the input is saved under --findings.
Iteration i of a seed always makes the same input, so `--replay I` reproduces one.

    .venv/bin/python tools/bench/sip_fuzz.py [--seed 1] [--duration 60] [--findings DIR] [--replay I]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.clock import VirtualClock
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.sip.call import SipCall
from appliance.sip.errors import SipParseError
from appliance.sip.guard import GuardLimits, SourceGuard
from appliance.sip.message import Request, Response, parse_message
from appliance.sip.stack import SipStack
from appliance.sip.transaction import ServerTransaction
from appliance.sip.transport import Peer, Transports
from appliance.sip.useragent import UserAgent

SDP = (b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
       b"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
       b"a=fmtp:101 0-15\r\na=sendrecv\r\n")


def _msg(head: str, body: bytes = b"") -> bytes:
    return head.strip("\n").replace("{len}", str(len(body))).replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


CORPUS: tuple[bytes, ...] = (
    _msg("""
INVITE sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-1-0;rport
From: sipp <sip:sipp@127.0.0.1:5070>;tag=1SIPpTag001
To: service <sip:service@127.0.0.1:5060>
Call-ID: 1-1@127.0.0.1
CSeq: 1 INVITE
Contact: sip:sipp@127.0.0.1:5070
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp
Content-Length: {len}
""", SDP),
    _msg("""
INVITE sip:+14155550100@voxgate.example.com;user=phone SIP/2.0
v: SIP/2.0/TCP [2001:db8::10]:5060;branch=z9hG4bKnashds8;received=192.0.2.1
v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK77ef4c2312983.1, SIP/2.0/UDP 192.0.2.3:5061;branch=z9hG4bK1
f: "Alice \\"A\\" Smith" <sip:alice@example.com>;tag=9fxced76sl
t: <tel:+1-415-555-0100;phone-context=example.com>
i: 3848276298220188511@atlanta.example.com
CSeq: 314159 INVITE
m: <sip:alice@[2001:db8::10]:5060;transport=tcp>;expires=60;+sip.instance="<urn:uuid:0f2a-11>"
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>
Record-Route: <sip:rr.example.com;lr;ftag=x>
Supported: timer, 100rel
Allow: INVITE, ACK, CANCEL, BYE
Session-Expires: 1800;refresher=uac
Max-Forwards: 69
c: application/sdp
l: {len}
""", SDP),
    _msg("""
REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKreg1;rport
Max-Forwards: 70
From: <sip:100@127.0.0.1>;tag=reg1
To: <sip:100@127.0.0.1>
Call-ID: reg-1@192.0.2.20
CSeq: 2 REGISTER
Contact: <sip:100@192.0.2.20:5062;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
Authorization: Digest username="100", realm="voxgate", nonce="abc123", uri="sip:127.0.0.1",
 response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"
Expires: 3600
User-Agent: Fuzz/1.0
Content-Length: 0
"""),
    _msg("""
REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKreg2
From: <sip:100@127.0.0.1>;tag=reg2
To: <sip:100@127.0.0.1>
Call-ID: reg-2@192.0.2.20
CSeq: 3 REGISTER
Contact: *
Expires: 0
Content-Length: 0
"""),
    _msg("""
BYE sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-1-7
From: sipp <sip:sipp@127.0.0.1:5070>;tag=1SIPpTag001
To: service <sip:service@127.0.0.1:5060>;tag=b2c3d4
Call-ID: 1-1@127.0.0.1
CSeq: 2 BYE
Contact: sip:sipp@127.0.0.1:5070
Max-Forwards: 70
Content-Length: 0
"""),
    _msg("""
ACK sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-1-5
From: sipp <sip:sipp@127.0.0.1:5070>;tag=1SIPpTag001
To: service <sip:service@127.0.0.1:5060>;tag=b2c3d4
Call-ID: 1-1@127.0.0.1
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
"""),
    _msg("""
CANCEL sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-1-0
From: sipp <sip:sipp@127.0.0.1:5070>;tag=1SIPpTag001
To: service <sip:service@127.0.0.1:5060>
Call-ID: 1-1@127.0.0.1
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0
"""),
    _msg("""
OPTIONS sips:user%20name:pw@example.com:5061;transport=tls;maddr=192.0.2.1?subject=hi&priority=urgent SIP/2.0
Via: SIP / 2.0 / TLS   example.com : 5061 ; branch = z9hG4bKopt ; received=192.0.2.1
From: Anonymous <sip:anonymous@anonymous.invalid>;tag=opt
To: sip:user@example.com
Call-ID: opt@example.com
CSeq: 7 OPTIONS
Accept: application/sdp, text/plain
Content-Length: 0
"""),
    _msg("""
SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKout1;rport=5060;received=127.0.0.1
Record-Route: <sip:rr.example.com;lr>
From: <sip:42@127.0.0.1>;tag=a1
To: <sip:service@127.0.0.1:5080>;tag=uas1
Call-ID: out-1@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:127.0.0.1:5080;transport=UDP>
Content-Type: application/sdp
Content-Length: {len}
""", SDP),
    _msg("""
SIP/2.0 180 Ringing
v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKout1
f: <sip:42@127.0.0.1>;tag=a1
t: <sip:service@127.0.0.1:5080>;tag=uas1
i: out-1@127.0.0.1
CSeq: 1 INVITE
l: 0
"""),
    _msg("""
SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKout2
From: <sip:42@127.0.0.1>;tag=a2
To: <sip:trunk@example.com>;tag=t401
Call-ID: out-2@127.0.0.1
CSeq: 1 INVITE
WWW-Authenticate: Digest realm="example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="",
\tstale=FALSE, algorithm=MD5, qop="auth,auth-int"
Content-Length: 0
"""),
    _msg("""
MESSAGE sip:100@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKmsg
From: "Bob" <sip:bob@example.com>;tag=m1
To: <sip:100@127.0.0.1>
Call-ID: msg@example.com
CSeq: 1 MESSAGE
Content-Type: text/plain;charset=utf-8
Content-Length: {len}
""", "héllo wörld".encode()),
)

HEADER_NAMES = (b"Via", b"v", b"From", b"f", b"To", b"t", b"Call-ID", b"i", b"CSeq", b"Contact", b"m",
                b"Content-Length", b"l", b"Max-Forwards", b"Expires", b"Route", b"Record-Route", b"Content-Type",
                b"Authorization", b"Proxy-Authorization", b"Require", b"Supported", b"X-\xff", b"", b" ", b"a b")
PUNCTUATION = b'<>";,=?@:%[]\\/ \t&*'
JUNK = (b"\xff", b"\xfe\xfe", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\r", b"\n", b"\r\n", b"\r\n\r\n",
        b"\r\n ", b"\r\n\t", b"%", b"%zz", b"%00", b"\"", b"<", b">", b";", b",", b"=", b"sip:", b"tel:", b"[", b"]",
        b"[::1]", b":99999", b":0", b";branch=", b";tag=", b"*", b"SIP/2.0", b"9999999999999", b"-1", b"\xe2\x80\xae")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """1-4 random mutations of a message."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        MUTATIONS[rng.randrange(len(MUTATIONS))](buf, rng)
    return bytes(buf)


def _pos(buf: bytearray, rng: random.Random) -> int:
    return rng.randint(0, len(buf))


def _flip(buf: bytearray, rng: random.Random) -> None:
    if buf:
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)


def _set_byte(buf: bytearray, rng: random.Random) -> None:
    if buf:
        buf[rng.randrange(len(buf))] = rng.randrange(256)


def _insert(buf: bytearray, rng: random.Random) -> None:
    at = _pos(buf, rng)
    buf[at:at] = rng.choice(JUNK) if rng.random() < 0.7 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))


def _delete(buf: bytearray, rng: random.Random) -> None:
    at = _pos(buf, rng)
    del buf[at : at + rng.randint(1, 16)]


def _punctuate(buf: bytearray, rng: random.Random) -> None:
    if buf:
        buf[rng.randrange(len(buf))] = rng.choice(PUNCTUATION)


def _lines(buf: bytearray) -> tuple[list[bytes], bytes]:
    head, sep, body = bytes(buf).partition(b"\r\n\r\n")
    return head.split(b"\r\n"), sep + body


def _put_lines(buf: bytearray, lines: list[bytes], rest: bytes) -> None:
    buf[:] = b"\r\n".join(lines) + rest


def _duplicate_line(buf: bytearray, rng: random.Random) -> None:
    lines, rest = _lines(buf)
    line = rng.choice(lines)
    lines.insert(rng.randint(min(1, len(lines)), len(lines)), line)
    _put_lines(buf, lines, rest)


def _drop_line(buf: bytearray, rng: random.Random) -> None:
    lines, rest = _lines(buf)
    if len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    _put_lines(buf, lines, rest)


def _swap_lines(buf: bytearray, rng: random.Random) -> None:
    lines, rest = _lines(buf)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    _put_lines(buf, lines, rest)


def _random_header(buf: bytearray, rng: random.Random) -> None:
    lines, rest = _lines(buf)
    if rng.random() < 0.5:
        name = rng.choice(HEADER_NAMES)
    else:
        name = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz-_.!%*+`'~ABC\xff") for _ in range(rng.randint(1, 12)))
    value = bytes(rng.choice(PUNCTUATION + b"abc019") for _ in range(rng.randint(0, 30)))
    lines.insert(rng.randint(min(1, len(lines)), len(lines)), name + rng.choice((b": ", b":", b" : ", b"")) + value)
    _put_lines(buf, lines, rest)


def _rename_header(buf: bytearray, rng: random.Random) -> None:
    lines, rest = _lines(buf)
    if len(lines) > 1:
        i = rng.randrange(1, len(lines))
        _, colon, value = lines[i].partition(b":")
        lines[i] = rng.choice(HEADER_NAMES) + (colon or b":") + value
    _put_lines(buf, lines, rest)


def _huge(buf: bytearray, rng: random.Random) -> None:
    at = _pos(buf, rng)
    buf[at:at] = rng.choice((b"a", b"9", b";x", b",", b"<", b"\"", b"%41", b" ", b";a=b", b"\r\n ")) * rng.choice(
        (100, 1000, 5000, 40000))


def _truncate(buf: bytearray, rng: random.Random) -> None:
    del buf[_pos(buf, rng) :]


def _crlf(buf: bytearray, rng: random.Random) -> None:
    choice = rng.randrange(5)
    if choice == 0:
        buf[:] = bytes(buf).replace(b"\r\n", b"\n")
    elif choice == 1:
        buf[:] = bytes(buf).replace(b"\r\n", b"\r", rng.randint(1, 3))
    elif choice == 2:
        buf[:0] = b"\r\n" * rng.randint(1, 5)
    elif choice == 3:  # fold a header line at a random space
        spaces = [i for i, c in enumerate(buf) if c == 0x20]
        if spaces:
            at = rng.choice(spaces)
            buf[at:at] = rng.choice((b"\r\n ", b"\r\n\t", b"\n ", b"\r\n"))
    else:
        at = bytes(buf).find(b"\r\n", rng.randrange(max(1, len(buf))))
        if at >= 0:
            buf[at:at] = b"\r\n"


def _content_length(buf: bytearray, rng: random.Random) -> None:
    lines, rest = _lines(buf)
    value = rng.choice((b"0", b"1", b"-1", b"99999", b"4294967296", b"12a", b"", b" 5 ", str(len(rest)).encode()))
    lines = [line for line in lines if not line.lower().startswith((b"content-length", b"l:"))]
    lines.insert(rng.randint(min(1, len(lines)), len(lines)), rng.choice((b"Content-Length: ", b"l: ")) + value)
    _put_lines(buf, lines, rest)


def _splice(buf: bytearray, rng: random.Random) -> None:
    other = rng.choice(CORPUS)
    buf[:] = bytes(buf[: _pos(buf, rng)]) + other[rng.randint(0, len(other)) :]


def _numbers(buf: bytearray, rng: random.Random) -> None:
    digits = [i for i, c in enumerate(buf) if 0x30 <= c <= 0x39]
    if digits:
        at = rng.choice(digits)
        buf[at : at + 1] = rng.choice((b"0", b"99999999999", b"65536", b"2147483648", b"-", b"\xd9\xa3"))


MUTATIONS: tuple[Callable[[bytearray, random.Random], None], ...] = (
    _flip, _set_byte, _insert, _insert, _delete, _punctuate, _punctuate, _duplicate_line, _drop_line, _swap_lines,
    _random_header, _rename_header, _huge, _truncate, _crlf, _crlf, _content_length, _splice, _numbers, _numbers,
)


class RecordingTransports(Transports):
    """A transport that sends nothing: it counts what the stack would have sent."""

    def __init__(self) -> None:
        super().__init__(lambda data, peer, connection: None)
        self.sent = 0

    def send(self, data: bytes, peer: Peer, failed: Callable[[], None] | None = None) -> None:
        self.sent += 1

    def address(self, transport: str, host: str) -> tuple[str, int]:
        return "127.0.0.1", 5060


class Directory:
    """Lines for the user agent: INVITEs from 192.0.2.0/24 are refused, others rejected after admission."""

    def admit_invite(self, invite: Request, tx: ServerTransaction, peer: Peer) -> object | None:
        tx.respond(invite.response(403))
        return None

    def incoming(self, line: object, call: SipCall) -> None:
        raise AssertionError("never admitted")

    def register(self, request: Request, tx: ServerTransaction, peer: Peer) -> None:
        response = request.response(200)
        for contact in request.contacts:
            response.headers.add("contact", contact.serialize())
        tx.respond(response)


def new_stack() -> tuple[SipStack, RecordingTransports]:
    clock = VirtualClock(start=0.0)
    limits = GuardLimits(trusted=[ipaddress.ip_network("0.0.0.0/0")])
    transports = RecordingTransports()
    stack = SipStack(clock, SourceGuard(limits, clock), transports)
    UserAgent(stack, clock, MediaPlane(clock, RtpPorts(40000, 40100)), Directory())
    return stack, transports


@dataclass
class Tally:
    tried: int = 0
    parse_errors: int = 0
    accepted: int = 0
    crashes: int = 0
    roundtrip_errors: int = 0
    sent: int = 0
    places: dict[str, int] = field(default_factory=dict)


def exercise(data: bytes, stack: SipStack, peer: Peer, tally: Tally) -> None:
    """Parse (and on success read, serialize, re-parse), then hand to the stack; raises what is not documented."""
    try:
        message = parse_message(data)
    except SipParseError:
        tally.parse_errors += 1
    else:
        tally.accepted += 1
        _read(message)
        try:
            again = parse_message(message.serialize())
            _read(again)
        except SipParseError:
            tally.roundtrip_errors += 1  # accepted, but what it serializes to is refused
    stack.receive(data, peer, None)


def _read(message: Request | Response) -> None:
    for view in (lambda: message.vias, lambda: message.contacts, lambda: message.addresses("route"),
                 lambda: message.addresses("record-route"), lambda: message.content_type, lambda: str(message)):
        with contextlib.suppress(SipParseError):
            view()


def input_for(seed: int, iteration: int) -> bytes:
    rng = random.Random(seed * 1_000_003 + iteration)
    return mutate(rng.choice(CORPUS), rng)


def report(seed: int, iteration: int, data: bytes, exc: BaseException, findings: Path, tally: Tally) -> None:
    tally.crashes += 1
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/appliance/" in f.filename]
    frames = frames or traceback.extract_tb(exc.__traceback__)
    inner, outer = frames[-1], frames[0]  # where it was raised, and the entry point it escaped from
    place = f"{type(exc).__name__} at {Path(inner.filename).name}:{inner.lineno} from " \
            f"{Path(outer.filename).name}:{outer.name}"
    tally.places[place] = tally.places.get(place, 0) + 1
    findings.mkdir(parents=True, exist_ok=True)
    (findings / f"seed{seed}-iter{iteration}.bin").write_bytes(data)
    if tally.places[place] == 1:  # the first of each place in full
        print(f"\nFINDING seed={seed} iteration={iteration}: {place}: {exc!r}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        print(f"input ({len(data)} bytes): {data[:2000].hex()}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run")
    parser.add_argument("--findings", type=Path, default=Path("sip-fuzz-findings"), help="where inputs that crash go")
    parser.add_argument("--replay", type=int, default=None, help="run one iteration of the seed and show its input")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the stack logs every malformed message it refuses
    peer = Peer("udp", "127.0.0.1", 5070)
    tally = Tally()
    stack, transports = new_stack()
    if args.replay is not None:
        data = input_for(args.seed, args.replay)
        print(f"input: {data!r}")
        exercise(data, stack, peer, tally)
        print(f"no crash: {tally}")
        return
    t0 = time.monotonic()
    deadline = t0 + args.duration
    iteration = 0
    while time.monotonic() < deadline:
        for _ in range(200):
            data = input_for(args.seed, iteration)
            try:
                exercise(data, stack, peer, tally)
            except Exception as exc:  # every undocumented exception is a finding
                report(args.seed, iteration, data, exc, args.findings, tally)
            iteration += 1
            tally.tried += 1
        if stack.transaction_count > 5000:  # timers never run here: start afresh so new requests are not 503
            tally.sent += transports.sent
            stack, transports = new_stack()
    tally.sent += transports.sent
    elapsed = time.monotonic() - t0
    print(f"seed {args.seed}, {elapsed:.1f} s")
    print(f"{'tried':>10} {'per s':>8} {'parse errors':>13} {'accepted':>9} {'re-parse errors':>16} "
          f"{'stack sent':>11} {'crashes':>8}")
    print(f"{tally.tried:>10} {tally.tried / elapsed:>8.0f} {tally.parse_errors:>13} {tally.accepted:>9} "
          f"{tally.roundtrip_errors:>16} {tally.sent:>11} {tally.crashes:>8}")
    for place, count in sorted(tally.places.items(), key=lambda kv: -kv[1]):
        print(f"  {count:>8} x {place}")
    if tally.crashes:
        print(f"inputs saved under {args.findings}/")
        sys.exit(1)


if __name__ == "__main__":
    main()
