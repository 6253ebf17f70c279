"""A SIP call leg on a virtual clock, against a peer played by the test.

Proven: our 2xx to a re-INVITE (hold) is sent again until its ACK, a late copy of the first ACK
does not stop that, and the matching ACK does; a REFER is accepted (202), its implicit subscription
gets the first NOTIFY at once (RFC 3515) and the leg reports the transfer target.
"""

from __future__ import annotations

from sip_helpers import Wire

from appliance.clock import VirtualClock
from appliance.legs.leg import Hold, Leg, LegEvent, TransferRequested
from appliance.lines.line import LineIdentity
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.sip import digest
from appliance.sip.call import SipCall
from appliance.sip.dns import SipResolver
from appliance.sip.guard import GuardLimits, SourceGuard
from appliance.sip.lines import SipLines
from appliance.sip.message import Request, Response
from appliance.sip.stack import SipStack
from appliance.sip.transport import Peer
from appliance.sip.useragent import UserAgent
from appliance.store.sip import SipTrunk

PEER = Peer("udp", "127.0.0.9", 5060)
SDP = ("v=0\r\no=- 1 {version} IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n")


class Answering:
    """The router's part: take each incoming leg and answer it."""

    def __init__(self) -> None:
        self.legs: list[Leg] = []
        self.events: list[LegEvent] = []

    def route(self, line: LineIdentity, leg: Leg) -> None:
        self.legs.append(leg)
        leg.on_event = self.events.append
        leg.answer()


def _box(rtp_ports: int) -> tuple[VirtualClock, SipStack, Wire, Answering]:
    """A stack with a trunk at PEER whose calls are answered at once."""
    clock = VirtualClock(start=0.0)
    stack = SipStack(clock, SourceGuard(GuardLimits(), clock))
    wire = Wire(clock, stack.receive)
    stack.transports = wire
    lines = SipLines(clock, stack.guard, digest.DigestServer("voxgate", b"s" * 32, clock.time), SipResolver())
    lines.ua = UserAgent(stack, clock, MediaPlane(clock, RtpPorts(rtp_ports, rtp_ports + 100)), lines)
    lines.load([], [SipTrunk(1, "itsp", "127.0.0.9", 5060, "udp", "", "", False, None)])
    router = Answering()
    lines.incoming_calls = router
    return clock, stack, wire, router


def _invite(seq: int, to_tag: str = "", version: int = 1, direction: str = "sendrecv") -> bytes:
    body = SDP.format(version=version, direction=direction)
    to = "<sip:555@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"INVITE sip:555@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK-inv-{seq}\r\n"
        f"From: <sip:42@127.0.0.9>;tag=peer\r\nTo: {to}\r\nCall-ID: call-1\r\nCSeq: {seq} INVITE\r\n"
        f"Contact: <sip:42@127.0.0.9:5060>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _ack(seq: int, to_tag: str) -> bytes:
    return (
        f"ACK sip:555@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK-ack-{seq}\r\n"
        f"From: <sip:42@127.0.0.9>;tag=peer\r\nTo: <sip:555@127.0.0.1>;tag={to_tag}\r\nCall-ID: call-1\r\n"
        f"CSeq: {seq} ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def _run_until(clock: VirtualClock, when: float) -> None:
    while (next_time := clock.next_time()) is not None and next_time <= when:
        await clock.advance()


async def test_a_reinvite_answer_is_resent_until_its_own_ack() -> None:
    clock, stack, wire, router = _box(43200)

    def oks(seq: int) -> list[float]:
        return [t for t, _, m in wire.sent if isinstance(m, Response) and m.status == 200 and m.cseq.seq == seq
                and m.cseq.method == "INVITE"]

    stack.receive(_invite(1), PEER, None)
    [leg] = router.legs
    assert isinstance(leg, SipCall)
    tag = leg.dialog.local.tag if leg.dialog is not None else ""
    assert tag and len(oks(1)) == 1
    stack.receive(_ack(1, tag), PEER, None)

    stack.receive(_invite(2, tag, version=2, direction="sendonly"), PEER, None)
    assert len(oks(2)) == 1 and any(isinstance(e, Hold) for e in router.events)
    await _run_until(clock, 0.5)
    assert oks(2) == [0.0, 0.5]
    stack.receive(_ack(1, tag), PEER, None)  # a late copy of the first ACK
    await _run_until(clock, 1.5)
    assert oks(2) == [0.0, 0.5, 1.5]
    stack.receive(_ack(2, tag), PEER, None)
    await _run_until(clock, 20.0)
    assert oks(2) == [0.0, 0.5, 1.5]
    leg.hangup()


async def test_a_refer_is_accepted_and_its_subscription_notified() -> None:
    _, stack, wire, router = _box(43400)
    stack.receive(_invite(1), PEER, None)
    [leg] = router.legs
    assert isinstance(leg, SipCall) and leg.dialog is not None
    tag = leg.dialog.local.tag or ""
    stack.receive(_ack(1, tag), PEER, None)
    refer = (
        f"REFER sip:555@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK-refer\r\n"
        f"From: <sip:42@127.0.0.9>;tag=peer\r\nTo: <sip:555@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\n"
        "CSeq: 2 REFER\r\nRefer-To: <sip:777@127.0.0.9>\r\nContact: <sip:42@127.0.0.9:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    stack.receive(refer, PEER, None)
    statuses = [m.status for _, _, m in wire.sent if isinstance(m, Response) and m.cseq.method == "REFER"]
    assert statuses == [202]
    [notify] = [m for _, _, m in wire.sent if isinstance(m, Request) and m.method == "NOTIFY"]
    assert notify.headers.get("event") == "refer;id=2"
    assert notify.content_type == "message/sipfrag"
    assert notify.body == b"SIP/2.0 100 Trying\r\n"
    assert notify.to_addr.tag == "peer" and notify.from_addr.tag == tag
    transfers = [e for e in router.events if isinstance(e, TransferRequested)]
    assert [t.target for t in transfers] == ["sip:777@127.0.0.9"]
    leg.hangup()
