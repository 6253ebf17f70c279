"""The user-agent core: what the box does with each new SIP request, and where its calls live.

An INVITE becomes a `SipCall` handed to the line it arrived on (a trunk known by its address, or a
local user who proved their password); REGISTER goes to the registrar; OPTIONS is answered here.
Requests inside a dialog go to their call. Follow an incoming call from here:
`on_request` -> `_invite` -> `Directory.incoming` (the router) -> a session's `AppEvents.CallAlerting`.
"""

from __future__ import annotations

import logging
from typing import Protocol

from appliance.clock import Clock
from appliance.legs.leg import LegState, Party
from appliance.media.plane import MediaPlane
from appliance.sip import offer_answer
from appliance.sip.account import Account
from appliance.sip.call import SipCall
from appliance.sip.dialog import DialogId
from appliance.sip.errors import SipParseError
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request
from appliance.sip.sdp import SessionDescription
from appliance.sip.stack import ALLOW, SipStack, new_tag
from appliance.sip.transaction import ServerTransaction
from appliance.sip.transport import Peer, is_ip
from appliance.sip.uri import SipUri

log = logging.getLogger(__name__)

DIALOG_METHODS = frozenset({"BYE", "INFO", "MESSAGE", "UPDATE", "REFER", "NOTIFY", "INVITE", "OPTIONS", "PRACK"})


class Directory(Protocol):
    """What the user agent needs from the lines it serves (appliance.sip.lines implements it)."""

    def admit_invite(self, invite: Request, tx: ServerTransaction, peer: Peer) -> object | None:
        """The line an INVITE arrives on, or None when this method has answered it (401, 403...)."""

    def incoming(self, line: object, call: SipCall) -> None:
        """Hand a new incoming call to whoever routes it."""

    def register(self, request: Request, tx: ServerTransaction, peer: Peer) -> None:
        """Handle a REGISTER (the registrar)."""


class UserAgent:
    allow = ALLOW

    def __init__(self, stack: SipStack, clock: Clock, plane: MediaPlane, directory: Directory) -> None:
        self.stack = stack
        self.clock = clock
        self.plane = plane
        self.directory = directory
        self.calls: dict[str, SipCall] = {}  # live calls by leg id
        self._dialogs: dict[DialogId, SipCall] = {}
        self._sdp_version = 0
        self._targets: dict[str, tuple[SipUri, dict[str, str], str]] = {}  # outgoing calls waiting for an address
        stack.core = self

    # New requests from the stack

    def on_request(self, request: Request, tx: ServerTransaction, peer: Peer) -> None:
        method = request.method
        if request.to_addr.tag is not None:
            call = self._dialogs.get((request.call_id, request.to_addr.tag, request.from_addr.tag or ""))
            if call is None:
                tx.respond(self.stack.response(request, 481))
            else:
                call.on_request(request, tx)
        elif method == "INVITE":
            self._invite(request, tx, peer)
        elif method == "REGISTER":
            self.directory.register(request, tx, peer)
        elif method == "OPTIONS":
            response = self.stack.response(request, 200)
            response.headers.set("allow", ALLOW)
            response.headers.set("accept", "application/sdp")
            tx.respond(response)
        elif method in DIALOG_METHODS:
            tx.respond(self.stack.response(request, 481))
        else:
            response = self.stack.response(request, 405)
            response.headers.set("allow", ALLOW)
            tx.respond(response)

    def on_ack(self, ack: Request, peer: Peer) -> None:
        call = self._dialogs.get((ack.call_id, ack.to_addr.tag or "", ack.from_addr.tag or ""))
        if call is not None:
            call.on_ack(ack)

    def _invite(self, invite: Request, tx: ServerTransaction, peer: Peer) -> None:
        line = self.directory.admit_invite(invite, tx, peer)
        if line is None:
            return
        try:
            from_addr = invite.from_addr
            caller = Party(from_addr.uri.user or "", from_addr.display or "", from_addr.uri.serialize())
            callee = Party(invite.uri.user or invite.to_addr.uri.user or "", "", invite.to_addr.uri.serialize())
            call = SipCall(self, True, caller, callee, peer)
            call.accept_invite(invite, tx, invite.to_addr.with_tag(new_tag()))
        except SipParseError as exc:
            tx.respond(self.stack.response(invite, 400, f"Bad Request ({exc})"[:120]))
            return
        self.calls[call.id] = call
        self.directory.incoming(line, call)

    # What calls ask of the core

    def contact_for(self, peer: Peer, user: str = "voxgate") -> str:
        host, port = self.stack.local_address(peer.transport, peer.host)
        uri = SipUri("sips" if peer.transport == "tls" else "sip", user, host, port,
                     {"transport": peer.transport} if peer.transport != "udp" else {})
        return f"<{uri.serialize()}>"

    def route_peer(self, route_set: list[str], default: Peer) -> Peer:
        """Where requests inside a dialog go: the first loose route when there is one, else `default`.

        Without a route set, `default` is the address the call's first message came from (or went
        to), which reaches phones behind NAT where their Contact would not.
        """
        if not route_set:
            return default
        try:
            uri = NameAddr.parse(route_set[0], "Route").uri
        except SipParseError:
            return default
        transport = uri.transport
        port = uri.port or (5061 if transport == "tls" else 5060)
        if not is_ip(uri.host):
            return default  # a named proxy: the one we talk to already
        return Peer(transport, uri.host, port)

    def media_answer(
        self, call: SipCall, offer: SessionDescription | None, previous: SessionDescription | None = None
    ) -> tuple[SessionDescription, offer_answer.NegotiatedMedia | None]:
        """Our SDP for a call: the answer to `offer`, or our own offer when the INVITE had none."""
        host, port = self._media_host(call)
        session_id = previous.origin.session_id if previous is not None else self._next_session()
        version = previous.origin.version + 1 if previous is not None else session_id
        if offer is None:
            return offer_answer.make_offer(host, port, session_id=session_id, version=version), None
        return offer_answer.answer_offer(offer, host, port, session_id=session_id, version=version)

    def media_offer(self, call: SipCall) -> SessionDescription:
        host, port = self._media_host(call)
        session_id = self._next_session()
        return offer_answer.make_offer(host, port, session_id=session_id, version=session_id)

    def _media_host(self, call: SipCall) -> tuple[str, int]:
        """Our media address and RTP port towards the call's peer; the first time, the leg's endpoint."""
        host, _ = self.stack.local_address("udp", call.peer.host)
        if call.media is None:
            call.media = self.plane.endpoint(host, call)
        return host, call.media.port

    def _next_session(self) -> int:
        self._sdp_version += 1
        return int(self.clock.time()) * 1000 + self._sdp_version % 1000

    def dialog_started(self, call: SipCall) -> None:
        assert call.dialog is not None
        self._dialogs[call.dialog.id] = call

    def call_ended(self, call: SipCall) -> None:
        if call.dialog is not None:
            self._dialogs.pop(call.dialog.id, None)
        self.calls.pop(call.id, None)
        self._targets.pop(call.id, None)
        if call.media is not None:
            if call.media.codec is not None:
                log.info("%s: media %s", call.id, call.media.summary)
            self.plane.release(call.media)

    # Outgoing calls

    def originate(self, target: SipUri, caller: Party, headers: dict[str, str] | None = None,
                  account: Account | None = None, via: list[Peer] | None = None, domain: str = "",
                  line: str = "") -> SipCall:
        """A new outgoing call to `target`; its INVITE goes to the first of `via` (the target itself, a
        trunk or a proxy; the others are tried if it does not answer), or waits for `send_invite`
        while the destination is being resolved. `domain` is the host of our From (a trunk's domain),
        by default the address we send from."""
        callee = Party(target.user or "", "", target.serialize())
        call = SipCall(self, False, caller, callee, Peer("udp", "0.0.0.0", 0))
        call.account = account
        call.line = line or f"sip:{target.host}"  # the line it goes out through, for the call history
        self.calls[call.id] = call
        self._targets[call.id] = (target, dict(headers or {}), domain)
        if via:
            self.send_invite(call, via)
        return call

    def send_invite(self, call: SipCall, via: list[Peer]) -> None:
        """Send the first INVITE of an outgoing call from `originate`, unless it was hung up meanwhile."""
        target, headers, domain = self._targets.pop(call.id, (None, {}, ""))
        if target is None or call.state is not LegState.PROGRESSING:
            return
        call.peer, call.alternates = via[0], via[1:]
        caller = call.caller
        user = (call.account.username if call.account is not None else "") or caller.number or "anonymous"
        domain = domain or self.stack.local_address(call.peer.transport, call.peer.host)[0]
        from_uri = SipUri("sip", caller.number or user, domain)
        invite = Request("INVITE", target)
        invite.headers.set("from", NameAddr(from_uri, caller.display_name or None, {"tag": new_tag()}).serialize())
        invite.headers.set("to", NameAddr(target.without_params("transport")).serialize())
        invite.headers.set("call-id", f"{new_tag()}{new_tag()}@voxgate")
        invite.headers.set("cseq", "1 INVITE")
        invite.headers.set("contact", self.contact_for(call.peer, user))
        invite.headers.set("allow", ALLOW)
        for name, value in headers.items():
            invite.headers.set(name, value)
        call.send_invite(invite, self.media_offer(call))

    def hangup_all(self) -> None:
        for call in list(self.calls.values()):
            if call.state is not LegState.TERMINATED:
                call.hangup()

