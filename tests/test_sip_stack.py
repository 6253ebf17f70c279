"""The stack's own limits, on a virtual clock: live transactions per source address.

Proven: an untrusted address holding MAX_TRANSACTIONS_PER_SOURCE transactions gets 503 for the next
request while another address is still served; once its transactions end, it is served again; a
trusted address (a trunk or proxy) has no such limit.
"""

from __future__ import annotations

import ipaddress

from sip_helpers import Wire

from appliance.clock import VirtualClock
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.sip import digest
from appliance.sip.dns import SipResolver
from appliance.sip.guard import GuardLimits, SourceGuard
from appliance.sip.lines import SipLines
from appliance.sip.message import Response
from appliance.sip.stack import MAX_TRANSACTIONS_PER_SOURCE, SipStack
from appliance.sip.transport import Peer
from appliance.sip.useragent import UserAgent


def _stack(clock: VirtualClock) -> tuple[SipStack, Wire]:
    limits = GuardLimits(requests_per_window=100_000, trusted=[ipaddress.ip_network("127.0.0.8/32")])
    stack = SipStack(clock, SourceGuard(limits, clock))
    wire = Wire(clock, stack.receive)
    stack.transports = wire
    lines = SipLines(clock, stack.guard, digest.DigestServer("voxgate", b"s" * 32, clock.time), SipResolver())
    lines.ua = UserAgent(stack, clock, MediaPlane(clock, RtpPorts(43000, 43100)), lines)
    return stack, wire


def _options(stack: SipStack, host: str, n: int) -> None:
    request = (
        f"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {host}:5060;branch=z9hG4bK-{host}-{n}\r\n"
        f"From: <sip:x@{host}>;tag=f{n}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {host}-{n}\r\nCSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    stack.receive(request.encode(), Peer("udp", host, 5060), None)


def _last_status(wire: Wire, host: str) -> int:
    answers = [m for _, p, m in wire.sent if p.host == host and isinstance(m, Response)]
    return answers[-1].status


async def test_one_address_cannot_hold_more_than_its_share_of_transactions() -> None:
    clock = VirtualClock(start=0.0)
    stack, wire = _stack(clock)
    for n in range(MAX_TRANSACTIONS_PER_SOURCE):
        _options(stack, "127.0.0.7", n)
        assert _last_status(wire, "127.0.0.7") == 200
    _options(stack, "127.0.0.7", MAX_TRANSACTIONS_PER_SOURCE)
    assert _last_status(wire, "127.0.0.7") == 503
    _options(stack, "127.0.0.6", 0)
    assert _last_status(wire, "127.0.0.6") == 200
    for n in range(MAX_TRANSACTIONS_PER_SOURCE + 10):
        _options(stack, "127.0.0.8", n)  # trusted
        assert _last_status(wire, "127.0.0.8") == 200
    while await clock.advance():  # timer J: the completed transactions end 32 s later
        pass
    assert stack.transaction_count == 0
    _options(stack, "127.0.0.7", 10_000)
    assert _last_status(wire, "127.0.0.7") == 200
