"""SIP transactions (RFC 3261 section 17, with the RFC 6026 "Accepted" state): the four machines.

A transaction owns the retransmissions and timers of one request and its responses. It sends
through a `send(data)` function fixed at creation (the transport and peer were chosen by the
stack), and reports to its user through callbacks. Over reliable transports (TCP, TLS) nothing is
retransmitted and the wait-for-stragglers timers are zero.

    client INVITE:      calling -> proceeding -> accepted (2xx) | completed (3xx-6xx, ACK sent) -> terminated
    client non-INVITE:  trying -> proceeding -> completed -> terminated
    server INVITE:      proceeding -> accepted (2xx) | completed (3xx-6xx) -> confirmed (ACK) -> terminated
    server non-INVITE:  trying -> proceeding -> completed -> terminated
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from appliance.clock import Clock, Timer
from appliance.sip.message import Request, Response

T1 = 0.5  # RTT estimate
T2 = 4.0  # longest retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # how long a message may linger in the network
TIMEOUT = 64 * T1  # timers B, F, H, J, L, M

Send = Callable[[bytes], None]


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Transaction:
    """What the four machines share: the state, the timers, the end."""

    def __init__(self, clock: Clock, send: Send, reliable: bool, request: Request,
                 ended: Callable[[Transaction], None]) -> None:
        self.clock = clock
        self.send = send
        self.reliable = reliable
        self.request = request
        self.state = State.TRYING
        self._ended = ended
        self._retransmit: Timer | None = None
        self._timeout: Timer | None = None

    def _retransmit_every(self, interval: float, data: bytes, cap: float) -> None:
        """Send `data` again after `interval`, doubling up to `cap` (timers A, E, G)."""
        if self.reliable:
            return

        def again() -> None:
            self.send(data)
            self._retransmit_every(min(interval * 2, cap), data, cap)

        self._retransmit = self.clock.call_later(interval, again)

    def _stop_retransmit(self) -> None:
        if self._retransmit is not None:
            self._retransmit.cancel()
            self._retransmit = None

    def _after(self, delay: float, then: Callable[[], None]) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        self._timeout = self.clock.call_later(delay, then)

    def terminate(self) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        self._stop_retransmit()
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._ended(self)


class ClientTransaction(Transaction):
    """Sends a request and reports responses (`on_response`) or its failure (`on_failure(code, reason)`)."""

    def __init__(self, clock: Clock, send: Send, reliable: bool, request: Request,
                 ended: Callable[[Transaction], None], on_response: Callable[[Response], None],
                 on_failure: Callable[[int, str], None]) -> None:
        super().__init__(clock, send, reliable, request, ended)
        self.on_response = on_response
        self.on_failure = on_failure
        self.invite = request.method == "INVITE"
        self._ack: bytes | None = None

    def start(self) -> None:
        data = self.request.serialize()
        self.state = State.CALLING if self.invite else State.TRYING
        self.send(data)
        self._retransmit_every(T1, data, 1e9 if self.invite else T2)  # timer A doubles without cap
        self._after(TIMEOUT, self._timed_out)  # timer B or F

    def _timed_out(self) -> None:
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self.terminate()
            self.on_failure(408, "Request Timeout")
        else:
            self.terminate()

    def transport_failed(self) -> None:
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self.terminate()
            self.on_failure(503, "Service Unavailable")

    def receive(self, response: Response) -> None:
        status = response.status
        state = self.state
        if state is State.TERMINATED:
            return
        if status < 200:
            if state in (State.CALLING, State.TRYING, State.PROCEEDING):
                self.state = State.PROCEEDING
                if self.invite:
                    self._stop_retransmit()
                    if self._timeout is not None:  # timer B guards only the Calling state (17.1.1.2)
                        self._timeout.cancel()
                        self._timeout = None
                elif self._retransmit is not None:  # timer E goes on at T2
                    self._stop_retransmit()
                    self._retransmit_every(T2, self.request.serialize(), T2)
                self.on_response(response)
            return
        if self.invite:
            self._invite_final(response)
        elif state in (State.TRYING, State.PROCEEDING):
            self.state = State.COMPLETED
            self._stop_retransmit()
            self._after(0 if self.reliable else T4, self.terminate)  # timer K
            self.on_response(response)

    def _invite_final(self, response: Response) -> None:
        state = self.state
        if response.status < 300:
            if state in (State.CALLING, State.PROCEEDING):
                self.state = State.ACCEPTED
                self._stop_retransmit()
                self._after(TIMEOUT, self.terminate)  # timer M
                self.on_response(response)
            elif state is State.ACCEPTED:
                self.on_response(response)  # a retransmitted 2xx: the dialog ACKs again
            return
        if state in (State.CALLING, State.PROCEEDING):
            self.state = State.COMPLETED
            self._stop_retransmit()
            self._ack = ack_for(self.request, response).serialize()
            self.send(self._ack)
            self._after(0 if self.reliable else 32.0, self.terminate)  # timer D
            self.on_response(response)
        elif state is State.COMPLETED and self._ack is not None:
            self.send(self._ack)


def ack_for(invite: Request, response: Response) -> Request:
    """The ACK of a non-2xx final response (RFC 3261 17.1.1.3): same branch, the response's To."""
    ack = Request("ACK", invite.uri)
    ack.headers.set("via", invite.headers.get_all("via")[0])
    for name in ("route", "from", "call-id"):
        values = invite.headers.get_all(name)
        if values:
            ack.headers.set(name, *values)
    ack.headers.set("to", response.headers.get("to") or "")
    ack.headers.set("cseq", f"{invite.cseq.seq} ACK")
    ack.headers.set("max-forwards", "70")
    return ack


class ServerTransaction(Transaction):
    """Holds an incoming request; the user answers with `respond`. `on_ack_timeout` hears of timer H."""

    def __init__(self, clock: Clock, send: Send, reliable: bool, request: Request,
                 ended: Callable[[Transaction], None]) -> None:
        super().__init__(clock, send, reliable, request, ended)
        self.invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.invite else State.TRYING
        self.last: bytes | None = None
        self.final: Response | None = None
        self.on_ack_timeout: Callable[[], None] | None = None
        self.on_cancel: Callable[[], None] | None = None  # the INVITE was CANCELled

    @property
    def answered(self) -> bool:
        return self.final is not None

    def respond(self, response: Response) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return  # already answered: a late second answer is dropped
        data = response.serialize()
        self.last = data
        self.send(data)
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.final = response
        if not self.invite:
            self.state = State.COMPLETED
            self._after(0 if self.reliable else TIMEOUT, self.terminate)  # timer J
        elif response.status < 300:
            self.state = State.ACCEPTED
            self._after(TIMEOUT, self.terminate)  # timer L; the dialog retransmits the 2xx
        else:
            self.state = State.COMPLETED
            self._retransmit_every(T1, data, T2)  # timer G
            self._after(TIMEOUT, self._no_ack)  # timer H

    def _no_ack(self) -> None:
        self.terminate()
        if self.on_ack_timeout is not None:
            self.on_ack_timeout()

    def receive(self, request: Request) -> None:
        """A retransmission of the request, or the ACK of a non-2xx final response."""
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._stop_retransmit()
                self._after(0 if self.reliable else T4, self.terminate)  # timer I
            return
        if self.last is not None and self.state in (State.PROCEEDING, State.COMPLETED, State.TRYING):
            self.send(self.last)
