"""The SIP stack: transports in, transactions matched, requests and responses out (RFC 3261 17, 18).

Everything that arrives is admitted by the guard, parsed, then matched: responses to their client
transaction, requests to their server transaction; a new request goes to the `Core` (the user-agent
core: registrar, dialogs, calls). Replies go where RFC 3261 18.2.2 and RFC 3581 (rport) say: over the
connection the request came on, else to the source address and port seen on the wire.
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Callable
from typing import Any, Protocol

from appliance.clock import Clock
from appliance.sip.errors import SipParseError
from appliance.sip.guard import SourceGuard
from appliance.sip.headers import Via
from appliance.sip.message import BadMessage, Request, Response, parse_message
from appliance.sip.transaction import ClientTransaction, ServerTransaction, Transaction
from appliance.sip.transport import Peer, StreamConnection, Transports

log = logging.getLogger(__name__)

MAGIC_COOKIE = "z9hG4bK"
MAX_TRANSACTIONS = 20_000  # server transactions at once; more get 503 (a flood that passed the guard)
MAX_TRANSACTIONS_PER_SOURCE = 100  # from one untrusted address: a phone has a handful at a time
USER_AGENT = "VoxGate"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, UPDATE, REFER, NOTIFY, REGISTER"


class Core(Protocol):
    """The user-agent core: what the stack hands new requests to."""

    def on_request(self, request: Request, tx: ServerTransaction, peer: Peer) -> None: ...

    def on_ack(self, request: Request, peer: Peer) -> None: ...


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


class SipStack:
    def __init__(self, clock: Clock, guard: SourceGuard, transports: Transports | None = None) -> None:
        self.clock = clock
        self.guard = guard
        self.transports = transports or Transports(self.receive)
        self.core: Core | None = None
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[tuple[str, str, str], ServerTransaction] = {}
        self._per_source: dict[str, int] = {}  # live server transactions by source address
        self._routes: dict[str, str] = {}  # destination IP -> our source IP towards it

    # Receiving

    def receive(self, data: bytes, peer: Peer, connection: StreamConnection | None) -> None:
        is_request = not data.startswith(b"SIP/")
        if not self.guard.admit(peer.host, is_request):
            return
        try:
            message = parse_message(data)
        except BadMessage as exc:
            self._bad(str(exc), peer)
            if isinstance(exc.message, Request) and exc.message.method != "ACK" and "via" in exc.message.headers:
                self._reply_stateless(exc.message, peer, connection, 400, _reason(str(exc)))
            return
        except SipParseError as exc:
            self._bad(str(exc), peer)
            return
        if self.transports.trace is not None:
            self.transports.trace.received(message.call_id, data, peer)
        if isinstance(message, Response):
            self._response(message)
        else:
            self._request(message, peer, connection)

    def _bad(self, why: str, peer: Peer) -> None:
        limiter = self.guard.log_limiter
        if limiter.should_log(peer.host, "malformed"):
            log.info("malformed SIP from %s: %s%s", peer, why, limiter.note(peer.host, "malformed"))

    def _response(self, response: Response) -> None:
        try:
            key = (response.top_via.branch or "", response.cseq.method)
        except SipParseError:
            return
        tx = self._clients.get(key)
        if tx is not None:
            tx.receive(response)

    def _request(self, request: Request, peer: Peer, connection: StreamConnection | None) -> None:
        via = request.top_via
        params = dict(via.params)
        if via.host != peer.host:
            params["received"] = peer.host
        if "rport" in params and params["rport"] is None:
            params["rport"] = str(peer.port)
        if params != via.params:
            request.headers.remove_first("via")
            request.headers.add("via", via.with_params(**params).serialize(), first=True)
        branch = via.branch or ""
        if not branch.startswith(MAGIC_COOKIE):  # RFC 2543 peer: match on what identifies the request
            branch = f"{request.call_id}|{request.cseq.seq}|{request.from_addr.tag}"
        sent_by = f"{via.host}:{via.port}"
        method = "INVITE" if request.method == "ACK" else request.method
        tx = self._servers.get((branch, sent_by, method))
        if tx is not None:
            if request.method == "ACK" and tx.final is not None and tx.final.status < 300:
                pass  # ACK of a 2xx: a separate transaction, for the dialog
            else:
                tx.receive(request)
                return
        if self.core is None:
            return
        if request.method == "ACK":
            self.core.on_ack(request, peer)
            return
        if request.method == "CANCEL":
            self._cancel(request, branch, sent_by, peer, connection)
            return
        per_source = self._per_source.get(peer.host, 0)
        if len(self._servers) >= MAX_TRANSACTIONS or (
                per_source >= MAX_TRANSACTIONS_PER_SOURCE and not self.guard.trusted(peer.host)):
            self._reply_stateless(request, peer, connection, 503, "Service Unavailable")
            return
        key = (branch, sent_by, method)
        reply = self._reply_path(request, peer, connection)
        server = ServerTransaction(self.clock, reply, peer.transport != "udp", request,
                                   lambda t: self._server_ended(key, peer.host))
        self._servers[key] = server
        self._per_source[peer.host] = per_source + 1
        if server.invite:
            server.respond(self.response(request, 100))
        self.core.on_request(request, server, peer)

    def _cancel(self, cancel: Request, branch: str, sent_by: str, peer: Peer,
                connection: StreamConnection | None) -> None:
        invite = self._servers.get((branch, sent_by, "INVITE"))
        if invite is None:
            self._reply_stateless(cancel, peer, connection, 481, None)
            return
        self._reply_stateless(cancel, peer, connection, 200, None)
        if not invite.answered and invite.on_cancel is not None:
            invite.on_cancel()

    # Replying

    def response(self, request: Request, status: int, reason: str | None = None) -> Response:
        response = request.response(status, reason)
        response.headers.set("server", USER_AGENT)
        return response

    def _reply_path(self, request: Request, peer: Peer, connection: StreamConnection | None) -> Callable[[bytes], None]:
        """Where responses to this request go (RFC 3261 18.2.2, RFC 3581)."""
        if connection is not None:
            def over_stream(data: bytes) -> None:
                if connection.transport is not None:
                    if self.transports.trace is not None:
                        self.transports.trace.sent(data, peer)
                    connection.send(data)
                else:  # the connection is gone: open one to the same address
                    self.transports.send(data, peer)
            return over_stream
        target = peer  # received + rport, which is where NATed phones can be reached
        return lambda data: self.transports.send(data, target)

    def _reply_stateless(self, request: Request, peer: Peer, connection: StreamConnection | None,
                         status: int, reason: str | None) -> None:
        response = self.response(request, status, reason)
        try:
            to = request.to_addr
        except SipParseError:
            to = None  # an unreadable To (the reason for this 400): echoed as it came
        if status > 100 and to is not None and to.tag is None:
            response.headers.set("to", to.with_tag(new_tag()).serialize())
        self._reply_path(request, peer, connection)(response.serialize())

    # Sending

    def local_address(self, transport: str, destination: str) -> tuple[str, int]:
        """Our address as `destination` sees it (for Via and Contact); resolves a wildcard listen."""
        host, port = self.transports.address(transport, destination)
        if host in ("0.0.0.0", "::"):
            host = self._routes.get(destination) or self._route_to(destination)
        return host, port

    def _route_to(self, destination: str) -> str:
        family = socket.AF_INET6 if ":" in destination else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((destination, 9))  # no packet is sent: this only asks the routing table
                host = str(probe.getsockname()[0])
            except OSError:
                host = "127.0.0.1" if family == socket.AF_INET else "::1"
        if len(self._routes) > 1024:
            self._routes.clear()
        self._routes[destination] = host
        return host

    def send_request(self, request: Request, peer: Peer, on_response: Callable[[Response], None],
                     on_failure: Callable[[int, str], None]) -> ClientTransaction:
        """Send a request in a new client transaction; its top Via is added here."""
        if "via" in request.headers:  # a CANCEL: the INVITE's own Via and branch (RFC 3261 9.1)
            branch = request.top_via.branch or ""
        else:
            host, port = self.local_address(peer.transport, peer.host)
            branch = new_branch()
            request.headers.add("via", Via(peer.transport.upper(), host, port, {"branch": branch, "rport": None})
                                .serialize(), first=True)
        if "max-forwards" not in request.headers:
            request.headers.set("max-forwards", "70")
        request.headers.set("user-agent", USER_AGENT)
        key = (branch, request.method)
        tx: ClientTransaction

        def send(data: bytes) -> None:
            self.transports.send(data, peer, tx.transport_failed)

        tx = ClientTransaction(self.clock, send, peer.transport != "udp", request,
                               lambda t: self._forget(self._clients, key), on_response, on_failure)
        self._clients[key] = tx
        tx.start()
        return tx

    def send_ack(self, ack: Request, peer: Peer) -> bytes:
        """An ACK for a 2xx: no transaction (RFC 3261 13.2.2.4); returns the bytes for re-sending."""
        host, port = self.local_address(peer.transport, peer.host)
        ack.headers.add("via", Via(peer.transport.upper(), host, port, {"branch": new_branch(), "rport": None})
                        .serialize(), first=True)
        ack.headers.set("max-forwards", "70")
        data = ack.serialize()
        self.transports.send(data, peer)
        return data

    def _server_ended(self, key: tuple[str, str, str], source: str) -> None:
        if self._servers.pop(key, None) is None:
            return
        left = self._per_source.pop(source, 1) - 1
        if left > 0:
            self._per_source[source] = left

    @staticmethod
    def _forget(table: dict[Any, Any], key: object) -> None:
        table.pop(key, None)

    @property
    def transaction_count(self) -> int:
        return len(self._clients) + len(self._servers)

    def end_all(self) -> None:
        for tx in [*self._clients.values(), *self._servers.values()]:
            Transaction.terminate(tx)


def _reason(text: str) -> str:
    """A reason phrase from an error text: one line, no control characters, bounded."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    return f"Bad Request ({clean[:100]})"
