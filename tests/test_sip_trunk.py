"""Trunks on a virtual clock, against a registrar played by the test: what goes on the wire, and when.

Proven: a trunk registers by answering the digest challenge (checked by our own digest server),
refreshes before the binding runs out, backs off 30 s doubling after failures, stops after one
refused answer to a challenge, honours 423 Min-Expires, moves its Contact to the address the registrar
saw (NAT), unregisters when stopped, pings with OPTIONS and reports reachability; calls through a
trunk go to its host with its credentials; a trunk host name resolves before calls, and an INVITE
that gets no answer moves on to the next resolved address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sip_helpers import Wire

from appliance.clock import VirtualClock
from appliance.lines.line import Originate
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.sip import digest
from appliance.sip.dns import SipResolver, Target, Transport
from appliance.sip.guard import GuardLimits, SourceGuard
from appliance.sip.lines import SipLines
from appliance.sip.message import Request
from appliance.sip.stack import SipStack
from appliance.sip.transport import Peer
from appliance.sip.trunk import Registration, TrunkLine
from appliance.sip.useragent import UserAgent
from appliance.store.sip import SipTrunk

REGISTRAR = Peer("udp", "127.0.0.2", 5060)
PASSWORD = "trunk-password"


class NamedHosts(SipResolver):
    def __init__(self, targets: dict[str, list[Target]]) -> None:
        super().__init__()
        self.targets = targets

    async def resolve(self, host: str, port: int | None = None, transport: Transport | None = None,
                      secure: bool = False) -> list[Target]:
        return self.targets[host]


@dataclass
class Rig:
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(start=1000.0))
    server: digest.DigestServer = field(init=False)
    resolver: SipResolver = field(default_factory=SipResolver)

    def __post_init__(self) -> None:
        self.server = digest.DigestServer("registrar.test", b"k" * 32, self.clock.time)
        self.stack = SipStack(self.clock, SourceGuard(GuardLimits(), self.clock))
        self.wire = Wire(self.clock, self.stack.receive)
        self.stack.transports = self.wire
        local_auth = digest.DigestServer("voxgate", b"s" * 32, self.clock.time)
        self.lines = SipLines(self.clock, self.stack.guard, local_auth, self.resolver)
        self.ua = UserAgent(self.stack, self.clock, MediaPlane(self.clock, RtpPorts(41000, 41100)), self.lines)
        self.lines.ua = self.ua

    def trunk(self, register: bool = True, password: str = PASSWORD, host: str = REGISTRAR.host) -> TrunkLine:
        trunk = SipTrunk(1, "itsp", host, 5060, "udp", "acct", password, register, None)
        self.lines.load([], [trunk])
        return self.lines.trunks["itsp"]

    def requests(self, method: str) -> list[tuple[float, Peer, Request]]:
        return [(t, p, m) for t, p, m in self.wire.sent if isinstance(m, Request) and m.method == method]

    def last(self, method: str) -> Request:
        return self.requests(method)[-1][2]

    def reply(self, request: Request, status: int, **headers: str) -> None:
        response = request.response(status)
        if status > 100 and request.to_addr.tag is None:
            response.headers.set("to", request.to_addr.with_tag("reg").serialize())
        for name, value in headers.items():
            response.headers.set(name.replace("_", "-"), value)
        self.stack.receive(response.serialize(), REGISTRAR, None)

    def challenge(self, request: Request, status: int = 401) -> None:
        name = "www_authenticate" if status == 401 else "proxy_authenticate"
        self.reply(request, status, **{name: self.server.challenge("MD5").serialize()})

    def verdict(self, request: Request, header: str = "authorization") -> digest.Verdict:
        credentials = digest.Credentials.parse(request.headers.get(header) or "")
        return self.server.check(credentials, request.method,
                                 lambda user, family: digest.ha1(user, "registrar.test", PASSWORD, family))

    async def run_until(self, when: float) -> None:
        while (next_time := self.clock.next_time()) is not None and next_time <= when:
            await self.clock.advance()
        self.clock.jump_to(when)
        await self.clock.settle()


async def test_registers_through_a_challenge_and_refreshes_before_expiry() -> None:
    rig = Rig()
    line = rig.trunk()
    first = rig.last("REGISTER")
    assert "authorization" not in first.headers
    assert first.uri.serialize() == "sip:127.0.0.2:5060"
    assert first.to_addr.uri.serialize() == "sip:acct@127.0.0.2"
    assert first.headers.get("expires") == "600"
    rig.challenge(first)
    second = rig.last("REGISTER")
    assert second.cseq.seq == first.cseq.seq + 1 and second.call_id == first.call_id
    assert rig.verdict(second) is digest.Verdict.OK
    rig.reply(second, 200, contact=f"{second.headers.get('contact')};expires=120")
    assert line.registration is Registration.REGISTERED
    assert line.status()["expires_in"] == 120 and line.status()["detail"] == "200 OK"
    await rig.run_until(1059.0)
    assert len(rig.requests("REGISTER")) == 2
    await rig.run_until(1060.0)
    assert len(rig.requests("REGISTER")) == 3  # refreshed with a minute left
    assert rig.last("REGISTER").cseq.seq == second.cseq.seq + 1


async def test_wrong_password_fails_once_and_retries_with_growing_back_off() -> None:
    rig = Rig()
    line = rig.trunk(password="wrong")
    waits = []
    for _ in range(3):
        rig.challenge(rig.last("REGISTER"))
        refused = rig.last("REGISTER")
        assert rig.verdict(refused) is digest.Verdict.WRONG
        sent_before = len(rig.requests("REGISTER"))
        rig.challenge(refused)  # challenged again: no third try with the same password
        assert len(rig.requests("REGISTER")) == sent_before
        assert line.registration is Registration.FAILED
        assert "check the trunk's username and password" in str(line.status()["detail"])
        failed_at = rig.clock.time()
        while len(rig.requests("REGISTER")) == sent_before:
            await rig.clock.advance()
        waits.append(rig.clock.time() - failed_at)
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120, waits


async def test_interval_too_brief_takes_min_expires() -> None:
    rig = Rig()
    rig.trunk()
    rig.reply(rig.last("REGISTER"), 423, min_expires="1800")
    assert rig.last("REGISTER").headers.get("expires") == "1800"


async def test_contact_moves_to_the_address_the_registrar_saw() -> None:
    rig = Rig()
    line = rig.trunk()
    first = rig.last("REGISTER")
    assert "127.0.0.1:5060" in (first.headers.get("contact") or "")
    response = first.response(200)
    response.headers.set("to", first.to_addr.with_tag("reg").serialize())
    via = first.top_via.with_params(received="203.0.113.7", rport="40001")
    response.headers.set("via", via.serialize())
    response.headers.set("contact", f"{first.headers.get('contact')};expires=600")
    rig.stack.receive(response.serialize(), REGISTRAR, None)
    again = rig.last("REGISTER")
    assert again is not first
    assert again.headers.get("contact") == "<sip:acct@203.0.113.7:40001>"
    assert line.registration is Registration.REGISTERING


async def test_stopping_a_registered_trunk_unregisters() -> None:
    rig = Rig()
    line = rig.trunk()
    first = rig.last("REGISTER")
    rig.reply(first, 200, contact=f"{first.headers.get('contact')};expires=600")
    assert line.registration is Registration.REGISTERED
    rig.lines.stop()
    assert rig.last("REGISTER").headers.get("expires") == "0"


async def test_options_keep_alives_report_reachability() -> None:
    rig = Rig()
    line = rig.trunk(register=False)
    assert line.status()["registration"] == "off"
    ping = rig.last("OPTIONS")
    assert ping.uri.serialize() == "sip:127.0.0.2:5060"
    rig.reply(ping, 200)
    assert line.status()["reachable"] is True
    await rig.run_until(1030.0)
    assert len(rig.requests("OPTIONS")) >= 2  # the next ping, 30 s on; then silence...
    await rig.run_until(1100.0)
    assert line.status()["reachable"] is False and line.status()["rtt_ms"] is None


async def test_calls_through_a_trunk_use_its_host_and_answer_its_challenge() -> None:
    rig = Rig()
    rig.trunk(register=False)
    call = rig.lines.dial("sip", "sip:555@itsp", Originate(caller="42"), "")
    invite = rig.last("INVITE")
    assert invite.uri.serialize() == "sip:555@127.0.0.2:5060"
    assert invite.from_addr.uri.serialize() == "sip:42@127.0.0.2"
    rig.challenge(invite, 407)
    again = rig.last("INVITE")
    assert again is not invite and again.cseq.seq == 2 and again.call_id == invite.call_id
    assert rig.verdict(again, "proxy-authorization") is digest.Verdict.OK
    assert rig.requests("ACK")[-1][2].cseq.seq == 1  # the 407 was acknowledged by its transaction
    call.hangup()


async def test_a_named_trunk_resolves_and_an_unanswered_invite_moves_on() -> None:
    first, second = Target("udp", "127.0.0.3", 5060), Target("udp", "127.0.0.4", 5070)
    rig = Rig(resolver=NamedHosts({"sip.itsp.test": [first, second]}))
    line = rig.trunk(register=False, host="sip.itsp.test")
    await rig.clock.settle()
    assert line.via() == [Peer("udp", "127.0.0.3", 5060), Peer("udp", "127.0.0.4", 5070)]
    assert line.addresses == {"127.0.0.3", "127.0.0.4"}
    call = rig.lines.dial("sip", "sip:555@itsp", Originate(caller="42"), "")
    invites = rig.requests("INVITE")
    assert [p for _, p, _ in invites] == [Peer("udp", "127.0.0.3", 5060)]
    assert invites[0][2].uri.serialize() == "sip:555@sip.itsp.test:5060"
    while len(rig.requests("INVITE")) < 8:  # timer A retransmissions, then timer B: 32 s of silence
        await rig.clock.advance()
    moved = [(t, p) for t, p, _ in rig.requests("INVITE") if p.host == "127.0.0.4"]
    assert moved and moved[0][0] - invites[0][0] >= 32
    call.hangup()


async def test_callsip_to_a_host_name_waits_for_dns() -> None:
    rig = Rig(resolver=NamedHosts({"pbx.test": [Target("udp", "127.0.0.5", 5062)]}))
    call = rig.lines.dial("sip", "sip:200@pbx.test", Originate(caller="42"), "")
    assert rig.requests("INVITE") == []
    await rig.clock.settle()
    [(_, peer, invite)] = rig.requests("INVITE")
    assert peer == Peer("udp", "127.0.0.5", 5062) and invite.uri.serialize() == "sip:200@pbx.test"
    call.hangup()
