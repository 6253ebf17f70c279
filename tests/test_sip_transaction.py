"""SIP transactions against RFC 3261 section 17 (and the RFC 6026 Accepted state), on a virtual clock.

Every datagram a transaction sends is recorded with the virtual time it left, so the retransmission
schedules (timers A, E, G) and the wait timers (B, D, F, H, I, J, K, L, M) are checked exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from appliance.clock import VirtualClock
from appliance.sip.message import Request, Response, parse_message
from appliance.sip.transaction import ClientTransaction, ServerTransaction, State, Transaction

BRANCH = "z9hG4bK-tx-1"


def _state(tx: Transaction) -> State:
    """Read the state through a call, so mypy does not narrow it across the transaction's methods."""
    return tx.state


def _request(method: str = "INVITE", seq: int = 1) -> Request:
    data = (
        f"{method} sip:bob@192.0.2.20 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch={BRANCH}\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-upstream\r\n"
        "Route: <sip:proxy.example.com;lr>\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: call-1@example.com\r\n"
        f"CSeq: {seq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def _response(request: Request, status: int, to_tag: str = "b2") -> Response:
    response = request.response(status)
    if status > 100:
        response.headers.set("to", f"{request.headers.get('to')};tag={to_tag}")
    # Round-trip through bytes, as a response from the network would arrive.
    parsed = parse_message(response.serialize())
    assert isinstance(parsed, Response)
    return parsed


@dataclass
class Rig:
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(start=0.0))
    sent: list[tuple[float, bytes]] = field(default_factory=list)
    ended: list[Transaction] = field(default_factory=list)
    responses: list[tuple[float, int]] = field(default_factory=list)
    failures: list[tuple[float, int]] = field(default_factory=list)

    def send(self, data: bytes) -> None:
        self.sent.append((self.clock.time(), data))

    def end(self, tx: Transaction) -> None:
        self.ended.append(tx)

    def on_response(self, response: Response) -> None:
        self.responses.append((self.clock.time(), response.status))

    def on_failure(self, code: int, reason: str) -> None:
        assert reason
        self.failures.append((self.clock.time(), code))

    def client(self, method: str = "INVITE", reliable: bool = False) -> ClientTransaction:
        tx = ClientTransaction(self.clock, self.send, reliable, _request(method), self.end,
                               self.on_response, self.on_failure)
        tx.start()
        return tx

    def server(self, method: str = "INVITE", reliable: bool = False) -> ServerTransaction:
        return ServerTransaction(self.clock, self.send, reliable, _request(method), self.end)

    async def run_until(self, when: float) -> None:
        """Fire every timer due up to `when`, in order, then stand at `when`."""
        while True:
            due = self.clock.next_time()
            if due is None or due > when:
                break
            await self.clock.advance()
        self.clock.jump_to(when)

    async def run_out(self) -> None:
        while await self.clock.advance():
            pass

    def times(self, start_line: bytes | None = None) -> list[float]:
        return [t for t, data in self.sent if start_line is None or data.startswith(start_line)]

    def messages(self) -> list[Request | Response]:
        return [parse_message(data) for _, data in self.sent]


# Client INVITE (17.1.1)


async def test_client_invite_udp_timer_a_doubles_and_timer_b_times_out_with_408() -> None:
    rig = Rig()
    tx = rig.client()
    assert _state(tx) is State.CALLING
    await rig.run_out()
    assert rig.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(data == rig.sent[0][1] for _, data in rig.sent)
    assert rig.failures == [(32.0, 408)]
    assert rig.responses == []
    assert _state(tx) is State.TERMINATED
    assert rig.ended == [tx]


async def test_client_invite_no_retransmission_after_1xx_and_no_timer_b_while_ringing() -> None:
    rig = Rig()
    tx = rig.client()
    await rig.run_until(1.0)
    tx.receive(_response(tx.request, 100))
    assert _state(tx) is State.PROCEEDING
    await rig.run_until(120.0)
    assert rig.times() == [0.0, 0.5]
    # Timer B guards only the Calling state: a phone may ring longer than 32 s.
    assert rig.failures == []
    assert _state(tx) is State.PROCEEDING
    tx.receive(_response(tx.request, 180))
    tx.receive(_response(tx.request, 200))
    assert rig.responses == [(1.0, 100), (120.0, 180), (120.0, 200)]
    assert _state(tx) is State.ACCEPTED


async def test_client_invite_2xx_accepted_retransmitted_2xx_delivered_then_terminated_after_64_t1() -> None:
    rig = Rig()
    tx = rig.client()
    await rig.run_until(0.75)
    tx.receive(_response(tx.request, 180))
    await rig.run_until(2.0)
    ok = _response(tx.request, 200)
    tx.receive(ok)
    assert _state(tx) is State.ACCEPTED
    await rig.run_until(10.0)
    tx.receive(ok)  # RFC 6026: the retransmitted 2xx still reaches the TU, which ACKs it again
    await rig.run_until(33.9)
    tx.receive(ok)
    assert rig.responses == [(0.75, 180), (2.0, 200), (10.0, 200), (33.9, 200)]
    assert _state(tx) is State.ACCEPTED
    assert rig.ended == []
    await rig.run_until(34.0)
    assert _state(tx) is State.TERMINATED
    assert rig.ended == [tx]
    tx.receive(ok)  # absorbed once terminated
    assert len(rig.responses) == 4
    # Only the INVITE and its one retransmission went out: the transaction never ACKs a 2xx.
    assert rig.times() == [0.0, 0.5]
    assert rig.failures == []
    await rig.run_out()
    assert rig.ended == [tx]


async def test_client_invite_non_2xx_final_is_acked_with_same_branch_and_to_tag() -> None:
    rig = Rig()
    tx = rig.client()
    await rig.run_until(1.0)
    busy = _response(tx.request, 486, to_tag="busy-tag")
    tx.receive(busy)
    assert _state(tx) is State.COMPLETED
    assert rig.responses == [(1.0, 486)]
    acks = [m for m in rig.messages() if isinstance(m, Request) and m.method == "ACK"]
    assert len(acks) == 1
    ack = acks[0]
    assert ack.uri.serialize() == tx.request.uri.serialize()
    assert ack.headers.get_all("via") == [tx.request.headers.get_all("via")[0]]
    assert ack.top_via.branch == BRANCH
    assert ack.to_addr.tag == "busy-tag"
    assert ack.from_addr.tag == "a1"
    assert ack.call_id == "call-1@example.com"
    assert ack.headers.get("cseq") == "1 ACK"
    assert ack.headers.get_all("route") == ["<sip:proxy.example.com;lr>"]
    ack_bytes = rig.sent[-1][1]

    await rig.run_until(5.0)
    tx.receive(busy)  # a retransmitted final: the same ACK again, not reported again
    assert rig.sent[-1] == (5.0, ack_bytes)
    assert rig.responses == [(1.0, 486)]
    # No INVITE retransmission after the final (only 0.0 and 0.5 before it).
    assert rig.times(b"INVITE") == [0.0, 0.5]
    assert rig.times(b"ACK") == [1.0, 5.0]

    await rig.run_until(32.9)
    assert _state(tx) is State.COMPLETED
    await rig.run_until(33.0)  # timer D: 32 s after entering Completed
    assert _state(tx) is State.TERMINATED
    await rig.run_out()
    assert rig.ended == [tx]
    assert rig.failures == []


async def test_client_invite_transport_failure_in_calling_gives_503() -> None:
    rig = Rig()
    tx = rig.client()
    await rig.run_until(0.75)
    tx.transport_failed()
    assert rig.failures == [(0.75, 503)]
    assert _state(tx) is State.TERMINATED
    await rig.run_out()
    assert rig.times() == [0.0, 0.5]  # nothing retransmitted after the failure
    assert rig.failures == [(0.75, 503)]  # and timer B does not report a second time
    assert rig.ended == [tx]


async def test_client_invite_transport_failure_after_final_is_ignored() -> None:
    rig = Rig()
    tx = rig.client()
    tx.receive(_response(tx.request, 404))
    tx.transport_failed()
    assert rig.failures == []
    assert _state(tx) is State.COMPLETED


# Client non-INVITE (17.1.2)


async def test_client_non_invite_timer_e_capped_at_t2_and_timer_f_times_out() -> None:
    rig = Rig()
    tx = rig.client("OPTIONS")
    assert _state(tx) is State.TRYING
    await rig.run_out()
    assert rig.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert rig.failures == [(32.0, 408)]
    assert _state(tx) is State.TERMINATED
    assert rig.ended == [tx]


async def test_client_non_invite_after_1xx_retransmits_every_t2_and_still_times_out() -> None:
    rig = Rig()
    tx = rig.client("OPTIONS")
    await rig.run_until(2.0)
    tx.receive(_response(tx.request, 100))
    assert _state(tx) is State.PROCEEDING
    assert rig.responses == [(2.0, 100)]
    await rig.run_out()
    sent = rig.times()
    assert sent[:3] == [0.0, 0.5, 1.5]
    later = sent[3:]
    assert later, "timer E must go on in Proceeding"
    assert all(b - a == 4.0 for a, b in itertools.pairwise(later))
    assert later[0] <= 2.0 + 4.0
    assert all(t < 32.0 for t in later)
    # Timer F fires in Proceeding too (17.1.2.2).
    assert rig.failures == [(32.0, 408)]


async def test_client_non_invite_final_completed_then_timer_k_t4() -> None:
    rig = Rig()
    tx = rig.client("BYE")
    await rig.run_until(1.0)
    ok = _response(tx.request, 200)
    tx.receive(ok)
    assert _state(tx) is State.COMPLETED
    assert rig.responses == [(1.0, 200)]
    await rig.run_until(5.9)
    tx.receive(ok)  # a retransmitted final is absorbed
    assert rig.responses == [(1.0, 200)]
    assert _state(tx) is State.COMPLETED
    await rig.run_until(6.0)
    assert _state(tx) is State.TERMINATED
    await rig.run_out()
    assert rig.times() == [0.0, 0.5]
    assert rig.failures == []
    assert rig.ended == [tx]


# Reliable transports (17.1.1.2, 17.1.2.2, 17.2.1, 17.2.2)


async def test_tcp_client_invite_never_retransmits_and_still_times_out() -> None:
    rig = Rig()
    tx = rig.client(reliable=True)
    await rig.run_out()
    assert rig.times() == [0.0]
    assert rig.failures == [(32.0, 408)]
    assert rig.ended == [tx]


async def test_tcp_client_non_invite_never_retransmits_and_still_times_out() -> None:
    rig = Rig()
    tx = rig.client("OPTIONS", reliable=True)
    await rig.run_until(3.0)
    tx.receive(_response(tx.request, 100))
    await rig.run_out()
    assert rig.times() == [0.0]
    assert rig.failures == [(32.0, 408)]
    assert rig.ended == [tx]


async def test_tcp_client_invite_timer_d_is_zero() -> None:
    rig = Rig()
    tx = rig.client(reliable=True)
    await rig.run_until(2.0)
    tx.receive(_response(tx.request, 603))
    assert rig.times() == [0.0, 2.0]  # the INVITE, then the ACK
    assert rig.sent[-1][1].startswith(b"ACK ")
    await rig.run_until(2.0)
    assert _state(tx) is State.TERMINATED
    assert rig.clock.time() == 2.0
    assert rig.ended == [tx]


async def test_tcp_client_non_invite_timer_k_is_zero() -> None:
    rig = Rig()
    tx = rig.client("REGISTER", reliable=True)
    await rig.run_until(2.0)
    tx.receive(_response(tx.request, 200))
    assert _state(tx) is State.COMPLETED
    await rig.run_until(2.0)
    assert _state(tx) is State.TERMINATED
    assert rig.ended == [tx]
    assert rig.times() == [0.0]


async def test_tcp_server_invite_no_timer_g_and_timer_i_zero() -> None:
    rig = Rig()
    tx = rig.server(reliable=True)
    tx.respond(tx.request.response(486))
    await rig.run_until(10.0)
    assert rig.times() == [0.0]
    assert _state(tx) is State.COMPLETED
    tx.receive(_request("ACK"))
    assert _state(tx) is State.CONFIRMED
    await rig.run_until(10.0)
    assert _state(tx) is State.TERMINATED
    assert rig.ended == [tx]


async def test_tcp_server_invite_timer_h_still_64_t1() -> None:
    rig = Rig()
    tx = rig.server(reliable=True)
    timeouts: list[float] = []
    tx.on_ack_timeout = lambda: timeouts.append(rig.clock.time())
    tx.respond(tx.request.response(500))
    await rig.run_out()
    assert rig.times() == [0.0]
    assert timeouts == [32.0]
    assert rig.ended == [tx]


async def test_tcp_server_non_invite_timer_j_zero() -> None:
    rig = Rig()
    tx = rig.server("OPTIONS", reliable=True)
    await rig.run_until(1.0)
    tx.respond(tx.request.response(200))
    assert _state(tx) is State.COMPLETED
    await rig.run_until(1.0)
    assert _state(tx) is State.TERMINATED
    assert rig.ended == [tx]


# Server INVITE (17.2.1)


async def test_server_invite_retransmitted_invite_resends_last_provisional() -> None:
    rig = Rig()
    tx = rig.server()
    assert _state(tx) is State.PROCEEDING
    tx.receive(tx.request)  # nothing answered yet: nothing to re-send
    assert rig.sent == []
    ringing = tx.request.response(180)
    ringing.headers.set("to", "<sip:bob@example.com>;tag=b2")
    tx.respond(ringing)
    await rig.run_until(3.0)
    assert rig.times() == [0.0]  # provisional responses are not retransmitted by timer
    tx.receive(tx.request)
    assert rig.sent[-1] == (3.0, ringing.serialize())
    assert _state(tx) is State.PROCEEDING
    assert not tx.answered


async def test_server_invite_non_2xx_timer_g_until_ack_then_timer_i() -> None:
    rig = Rig()
    tx = rig.server()
    busy = tx.request.response(486)
    tx.respond(busy)
    assert _state(tx) is State.COMPLETED
    assert tx.answered
    await rig.run_until(12.0)
    assert rig.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    assert all(data == busy.serialize() for _, data in rig.sent)
    tx.receive(tx.request)  # a retransmitted INVITE re-sends the final
    assert rig.sent[-1] == (12.0, busy.serialize())
    await rig.run_until(12.5)
    tx.receive(_request("ACK"))
    assert _state(tx) is State.CONFIRMED
    tx.receive(tx.request)  # absorbed in Confirmed
    tx.receive(_request("ACK"))  # so is a retransmitted ACK
    await rig.run_until(17.4)
    assert rig.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 12.0]  # timer G stopped at the ACK
    assert _state(tx) is State.CONFIRMED
    await rig.run_until(17.5)  # timer I = T4
    assert _state(tx) is State.TERMINATED
    await rig.run_out()
    assert rig.ended == [tx]


async def test_server_invite_timer_h_without_ack() -> None:
    rig = Rig()
    tx = rig.server()
    timeouts: list[float] = []
    tx.on_ack_timeout = lambda: timeouts.append(rig.clock.time())
    tx.respond(tx.request.response(486))
    await rig.run_out()
    assert rig.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert timeouts == [32.0]
    assert _state(tx) is State.TERMINATED
    assert rig.ended == [tx]
    tx.receive(_request("ACK"))  # too late: nothing changes
    assert _state(tx) is State.TERMINATED


async def test_server_invite_2xx_accepted_no_retransmission_terminated_after_64_t1() -> None:
    rig = Rig()
    tx = rig.server()
    await rig.run_until(1.0)
    tx.respond(tx.request.response(180))
    await rig.run_until(2.0)
    ok = tx.request.response(200)
    tx.respond(ok)
    assert _state(tx) is State.ACCEPTED
    tx.respond(tx.request.response(486))  # a second final response is ignored
    tx.respond(tx.request.response(200))
    tx.receive(tx.request)  # RFC 6026: a retransmitted INVITE is absorbed in Accepted
    assert _state(tx) is State.ACCEPTED
    assert tx.final is not None and tx.final.status == 200
    await rig.run_until(33.9)
    assert _state(tx) is State.ACCEPTED
    await rig.run_until(34.0)  # timer L
    assert _state(tx) is State.TERMINATED
    await rig.run_out()
    assert rig.times() == [1.0, 2.0]
    assert rig.sent[-1][1] == ok.serialize()
    assert rig.ended == [tx]


async def test_server_invite_second_final_after_non_2xx_is_ignored() -> None:
    rig = Rig()
    tx = rig.server()
    busy = tx.request.response(486)
    tx.respond(busy)
    tx.respond(tx.request.response(200))
    assert _state(tx) is State.COMPLETED
    assert tx.final is not None and tx.final.status == 486
    await rig.run_until(1.0)
    assert rig.sent == [(0.0, busy.serialize()), (0.5, busy.serialize())]


# Server non-INVITE (17.2.2)


async def test_server_non_invite_final_completed_retransmission_resends_then_timer_j() -> None:
    rig = Rig()
    tx = rig.server("OPTIONS")
    assert _state(tx) is State.TRYING
    tx.receive(tx.request)  # Trying: retransmissions are absorbed
    assert rig.sent == []
    await rig.run_until(1.0)
    ok = tx.request.response(200)
    tx.respond(ok)
    assert _state(tx) is State.COMPLETED
    tx.respond(tx.request.response(500))  # a second final is ignored
    await rig.run_until(5.0)
    assert rig.times() == [1.0]  # no timer retransmission of a non-INVITE response
    tx.receive(tx.request)
    assert rig.sent[-1] == (5.0, ok.serialize())
    await rig.run_until(32.9)
    assert _state(tx) is State.COMPLETED
    await rig.run_until(33.0)  # timer J = 64*T1 over UDP
    assert _state(tx) is State.TERMINATED
    tx.receive(tx.request)
    assert rig.times() == [1.0, 5.0]
    await rig.run_out()
    assert rig.ended == [tx]


async def test_server_non_invite_provisional_resent_on_retransmission() -> None:
    rig = Rig()
    tx = rig.server("SUBSCRIBE")
    trying = tx.request.response(100)
    tx.respond(trying)
    assert _state(tx) is State.PROCEEDING
    await rig.run_until(2.0)
    tx.receive(tx.request)
    assert rig.sent == [(0.0, trying.serialize()), (2.0, trying.serialize())]
