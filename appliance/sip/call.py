"""A SIP call leg: the INVITE session of RFC 3261 (13-15) and RFC 3264, behind the `Leg` interface.

Incoming legs start ALERTING with their INVITE's server transaction; outgoing legs start PROGRESSING
with a client transaction. Both become CONNECTED with a dialog, and TERMINATED once, with exactly
one Disconnected or Failed event. Events are held until someone sets `on_event` (the session that
takes the leg), so nothing that happens in between is lost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.clock import Timer
from appliance.legs.leg import (
    Connected,
    Disconnected,
    Dtmf,
    EarlyMedia,
    Failed,
    HeldEvents,
    Hold,
    Info,
    LegState,
    MediaNotice,
    Message,
    Party,
    Ringing,
    TransferRequested,
    TransferResult,
    Unhold,
    new_leg_id,
)
from appliance.sip import offer_answer
from appliance.sip.account import Account
from appliance.sip.dialog import Dialog
from appliance.sip.errors import SipParseError
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, Response
from appliance.sip.sdp import SessionDescription
from appliance.sip.transaction import T1, T2, TIMEOUT, ClientTransaction, ServerTransaction
from appliance.sip.transport import Peer

if TYPE_CHECKING:
    from appliance.media.endpoint import RtpEndpoint
    from appliance.sip.useragent import UserAgent

log = logging.getLogger(__name__)

MAX_INFO_BYTES = 8192  # sendInfo / sendMessage bodies (VoxEngine's limit)
DTMF_INFO_TYPES = ("application/dtmf-relay", "application/dtmf")


def custom_headers(message: Request | Response) -> dict[str, str]:
    """The headers VoxEngine shows scripts: X- headers and User-to-User."""
    return {
        "-".join(p.capitalize() for p in name.split("-")) if not name.startswith("x-") else "X-" + name[2:]: value
        for name, value in message.headers.items()
        if name.startswith("x-") or name == "user-to-user"
    }


def add_headers(message: Request | Response, headers: dict[str, str] | None) -> None:
    for name, value in (headers or {}).items():
        if name.lower().startswith("x-") or name.lower() == "user-to-user":
            message.headers.set(name, str(value).replace("\r", " ").replace("\n", " "))


class SipCall(HeldEvents):
    """One SIP call leg (the `Leg` interface)."""

    kind = "sip"

    def __init__(self, ua: UserAgent, incoming: bool, caller: Party, callee: Party, peer: Peer) -> None:
        super().__init__()
        self.ua = ua
        self.id = new_leg_id()
        self.incoming = incoming
        self.state = LegState.ALERTING if incoming else LegState.PROGRESSING
        self.caller = caller
        self.callee = callee
        self.headers: dict[str, str] = {}
        self.line = ""  # set by the line that received or placed the call
        self.peer = peer
        self.dialog: Dialog | None = None
        self.negotiated: offer_answer.NegotiatedMedia | None = None  # what the last offer/answer agreed
        self.media: RtpEndpoint | None = None  # the leg's media unit, from the first SDP we make
        self.on_hold = False
        self.connected_at: float | None = None
        self._local_sdp: SessionDescription | None = None
        self._remote_offer: SessionDescription | None = None
        self._server_tx: ServerTransaction | None = None  # incoming INVITE
        self._client_tx: ClientTransaction | None = None  # outgoing INVITE
        self._invite: Request | None = None
        self._ok: bytes | None = None  # our 2xx, sent again until the ACK comes
        self._ok_seq = 0  # the CSeq of the INVITE it answers, which its ACK carries
        self._ok_timer: Timer | None = None
        self._ack: bytes | None = None  # our ACK of their 2xx, sent again on their retransmission
        self._cancel_pending = False
        self._provisional = False
        self._rang = False
        self._local_to: NameAddr | None = None
        self.account: Account | None = None  # answers the 401/407 our INVITE may draw
        self._refer_seq: int | None = None  # our REFER (transferTo) awaiting its outcome
        self._transferred_seq: int | None = None  # their REFER we reported as TransferRequested
        self.alternates: list[Peer] = []  # where else the INVITE may go if `peer` does not answer (RFC 3263 4.3)

    def _end(self, event: Disconnected | Failed) -> None:
        if self.state is LegState.TERMINATED:
            return
        self.state = LegState.TERMINATED
        if self._ok_timer is not None:
            self._ok_timer.cancel()
        self.ua.call_ended(self)
        self._emit(event)

    @property
    def duration(self) -> float:
        return 0.0 if self.connected_at is None else self.ua.clock.monotonic() - self.connected_at

    @property
    def sip_call_id(self) -> str:
        """The Call-ID of its INVITE and dialog ('' while an outgoing call's INVITE is not yet made)."""
        return self._invite.call_id if self._invite is not None else ""

    # Incoming: set up by the user agent from an INVITE

    def accept_invite(self, invite: Request, tx: ServerTransaction, local_to: NameAddr) -> None:
        """Take an incoming INVITE; `local_to` is its To with our tag, in every response we send."""
        self._local_to = local_to
        self._invite = invite
        self._server_tx = tx
        self.headers = custom_headers(invite)
        tx.on_cancel = self._cancelled
        if invite.body and invite.content_type == "application/sdp":
            self._remote_offer = SessionDescription.parse(invite.body)

    def _cancelled(self) -> None:
        if self._server_tx is not None and self.state is LegState.ALERTING:
            self._server_tx.respond(self._response(487))
            self._end(Disconnected(code=487, reason="Request Terminated"))

    def _response(self, status: int, reason: str | None = None, headers: dict[str, str] | None = None) -> Response:
        assert self._invite is not None and self._local_to is not None
        response = self.ua.stack.response(self._invite, status, reason)
        response.headers.set("to", self._local_to.serialize())
        add_headers(response, headers)
        return response

    def _with_answer(self, response: Response) -> bool:
        """Put our SDP in `response`; False (and a 488 sent) when no codec is common."""
        if self._local_sdp is None:
            try:
                self._local_sdp, media = self.ua.media_answer(self, self._remote_offer)
                self._agreed(media)
            except (offer_answer.NegotiationError, SipParseError) as exc:
                log.info("%s: %s", self.id, exc)
                if self._server_tx is not None:
                    self._server_tx.respond(self._response(488))
                self._end(Disconnected(code=488, reason="Not Acceptable Here"))
                return False
        response.body = self._local_sdp.serialize()
        response.headers.set("content-type", "application/sdp")
        return True

    def ring(self, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.ALERTING and self._server_tx is not None:
            self._server_tx.respond(self._response(180, headers=headers))

    def early_media(self, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.ALERTING and self._server_tx is not None:
            response = self._response(183, headers=headers)
            if self._with_answer(response):
                self._server_tx.respond(response)

    def answer(self, headers: dict[str, str] | None = None) -> None:
        if self.state is not LegState.ALERTING or self._server_tx is None or self._invite is None:
            return
        response = self._response(200, headers=headers)
        response.headers.set("contact", self.ua.contact_for(self.peer))
        response.headers.set("allow", self.ua.allow)
        record_route = self._invite.headers.get_all("record-route")
        if record_route:
            response.headers.set("record-route", *record_route)
        if not self._with_answer(response):
            return
        self.dialog = Dialog.as_uas(self._invite, response, self.ua.contact_for(self.peer), self.ua.route_peer(
            self._invite.headers.get_all("record-route"), self.peer))
        self.ua.dialog_started(self)
        self._server_tx.respond(response)
        self._ok, self._ok_seq = response.serialize(), self._invite.cseq.seq
        self._resend_ok(T1)
        self.state = LegState.CONNECTED
        self.connected_at = self.ua.clock.monotonic()
        self._emit(Connected())

    def _resend_ok(self, interval: float, waited: float = 0.0) -> None:
        """Our 2xx goes again until the ACK (RFC 3261 13.3.1.4); no ACK in 32 s ends the call."""
        def again() -> None:
            if self._ok is None or self.state is not LegState.CONNECTED:
                return
            if waited + interval >= TIMEOUT:
                log.info("%s: no ACK for our 200 OK: hanging up", self.id)
                self.hangup()
                return
            self.ua.stack.transports.send(self._ok, self.peer)
            self._resend_ok(min(interval * 2, T2), waited + interval)

        self._ok_timer = self.ua.clock.call_later(interval, again)

    def on_ack(self, ack: Request) -> None:
        if ack.cseq.seq != self._ok_seq:
            return  # a late copy of an earlier ACK: the newer 2xx still waits for its own
        if self._ok_timer is not None:
            self._ok_timer.cancel()
            self._ok_timer = None
        self._ok = None
        if ack.body and ack.content_type == "application/sdp" and self._local_sdp is not None:
            try:  # we offered in the 200 OK (an INVITE without SDP): the answer is in the ACK
                self._agreed(offer_answer.apply_answer(self._local_sdp, SessionDescription.parse(ack.body)))
            except (offer_answer.NegotiationError, SipParseError) as exc:
                log.info("%s: bad answer in ACK: %s", self.id, exc)
                self.hangup()

    def reject(self, code: int, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.ALERTING and self._server_tx is not None:
            code = code if 300 <= code <= 699 else 486
            self._server_tx.respond(self._response(code, headers=headers))
            self._end(Disconnected(code=code, reason=self._server_tx.final.reason if self._server_tx.final else "",
                                   by_remote=False))

    # Outgoing

    def send_invite(self, invite: Request, offer: SessionDescription) -> None:
        self._local_sdp = offer
        invite.body = offer.serialize()
        invite.headers.set("content-type", "application/sdp")
        self._send(invite)

    def _send(self, invite: Request) -> None:
        self._invite = invite
        self._client_tx = self.ua.stack.send_request(invite, self.peer, self._invite_response, self._invite_failed)

    def abandon(self, code: int, reason: str) -> None:
        """The call fails before its INVITE could be sent (its destination did not resolve)."""
        if self.state is LegState.PROGRESSING and self._invite is None:
            self._end(Failed(code, reason))

    def give_up(self, code: int, reason: str) -> None:
        if self.state is LegState.ALERTING:
            self.reject(code)
        elif self.state is LegState.PROGRESSING:
            self._cancel()
            self._end(Failed(code, reason))

    def _invite_failed(self, code: int, reason: str) -> None:
        retry = self.alternates and not self._provisional and self.state is LegState.PROGRESSING
        if retry and self._invite is not None:
            self.peer = self.alternates.pop(0)
            log.info("%s: %s %s: trying %s", self.id, code, reason, self.peer)
            again = Request("INVITE", self._invite.uri, self._invite.headers.copy(), self._invite.body)
            again.headers.set("via")
            self._send(again)
            return
        self._end(Failed(code, reason))

    def _invite_response(self, response: Response) -> None:
        status = response.status
        if status < 200:
            if status == 100:
                return
            self._provisional = True
            if self._cancel_pending:
                self._cancel()
                return
            if self.state is not LegState.PROGRESSING:
                return
            if not self._rang:  # one Call.Ringing per call, however many 180s and 183s come
                self._rang = True
                self._emit(Ringing(custom_headers(response)))
            if response.body and response.content_type == "application/sdp" and self._local_sdp is not None:
                try:
                    self._agreed(offer_answer.apply_answer(self._local_sdp, SessionDescription.parse(response.body)))
                    self._emit(EarlyMedia(custom_headers(response)))
                except (offer_answer.NegotiationError, SipParseError) as exc:
                    log.info("%s: bad early-media SDP: %s", self.id, exc)
            return
        if status < 300:
            self._invite_accepted(response)
            return
        if status in (401, 407) and self.account is not None and self._invite is not None:
            again = self.account.retry(self._invite, response)
            if again is not None and self.state is LegState.PROGRESSING:
                self._send(again)
                return
        self._end(Failed(status, response.reason, custom_headers(response)))

    def _invite_accepted(self, response: Response) -> None:
        assert self._invite is not None
        if self.dialog is not None:  # a retransmitted 2xx: our ACK got lost
            if self._ack is not None:
                self.ua.stack.transports.send(self._ack, self.dialog.peer)
            return
        try:
            self.dialog = Dialog.as_uac(self._invite, response, self.ua.contact_for(self.peer),
                                        self.ua.route_peer(list(reversed(response.headers.get_all("record-route"))),
                                                           self.peer))
        except SipParseError as exc:
            log.info("%s: unusable 2xx: %s", self.id, exc)
            self._end(Failed(502, "Bad Gateway"))
            return
        self.ua.dialog_started(self)
        ack = self.dialog.request("ACK", seq=self._invite.cseq.seq)
        self._ack = self.ua.stack.send_ack(ack, self.dialog.peer)
        if self.state is not LegState.PROGRESSING:  # hung up while the 2xx was on its way
            self._bye()
            return
        try:
            if self._local_sdp is not None and response.body:
                self._agreed(offer_answer.apply_answer(self._local_sdp, SessionDescription.parse(response.body)))
        except (offer_answer.NegotiationError, SipParseError) as exc:
            log.info("%s: bad SDP answer: %s", self.id, exc)
            self._bye()
            self._end(Failed(488, "Not Acceptable Here"))
            return
        self.state = LegState.CONNECTED
        self.connected_at = self.ua.clock.monotonic()
        self._emit(Connected(custom_headers(response)))

    def _cancel(self) -> None:
        """CANCEL our INVITE; before any provisional response it waits for one (RFC 3261 9.1)."""
        if self._client_tx is None or self._invite is None:
            return
        if not self._provisional:
            self._cancel_pending = True
            return
        cancel = Request("CANCEL", self._invite.uri)
        # CANCEL carries the INVITE's own top Via (same branch), so it is sent without a new one.
        cancel.headers.set("via", self._invite.headers.get_all("via")[0])
        for name in ("route", "from", "to", "call-id"):
            values = self._invite.headers.get_all(name)
            if values:
                cancel.headers.set(name, *values)
        cancel.headers.set("cseq", f"{self._invite.cseq.seq} CANCEL")
        cancel.headers.set("max-forwards", "70")
        self.ua.stack.send_request(cancel, self.peer, lambda response: None, lambda code, reason: None)

    # Both directions

    def hangup(self, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.ALERTING:
            self.reject(603, headers)
        elif self.state is LegState.PROGRESSING:
            self._cancel()
            self._end(Failed(487, "Request Terminated"))
        elif self.state is LegState.CONNECTED:
            self._bye(headers)
            self._end(Disconnected(code=200, reason="Normal call clearing", by_remote=False))

    def _bye(self, headers: dict[str, str] | None = None) -> None:
        if self.dialog is None:
            return
        bye = self.dialog.request("BYE")
        add_headers(bye, headers)
        self._in_dialog(bye)

    def _in_dialog(self, request: Request, done: Callable[[Response], None] | None = None) -> None:
        assert self.dialog is not None
        self.ua.stack.send_request(request, self.dialog.peer, done or (lambda r: None), lambda code, reason: None)

    def send_dtmf(self, digits: str) -> None:
        """Keys to the peer in the media: RFC 4733 events when it takes them, else tones in the audio."""
        if self.media is not None and self.state is not LegState.TERMINATED:
            self.ua.plane.send_digits(self.media, digits)

    def send_info(self, mime_type: str, body: str, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.CONNECTED and self.dialog is not None:
            info = self.dialog.request("INFO")
            info.headers.set("content-type", mime_type)
            info.body = body.encode("utf-8")[:MAX_INFO_BYTES]
            add_headers(info, headers)
            self._in_dialog(info)

    def send_message(self, text: str, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.CONNECTED and self.dialog is not None:
            message = self.dialog.request("MESSAGE")
            message.headers.set("content-type", "text/plain;charset=UTF-8")
            message.body = text.encode("utf-8")[:MAX_INFO_BYTES]
            add_headers(message, headers)
            self._in_dialog(message)

    def transfer(self, target: str, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.CONNECTED and self.dialog is not None:
            refer = self.dialog.request("REFER")
            refer.headers.set("refer-to", f"<{target}>")
            refer.headers.set("referred-by", self.dialog.local.serialize())
            add_headers(refer, headers)
            self._refer_seq = refer.cseq.seq
            self._in_dialog(refer, self._refer_answered)

    def _refer_answered(self, response: Response) -> None:
        if response.status >= 300:
            self._refer_seq = None
            self._emit(TransferResult(False, response.status, response.reason, custom_headers(response)))

    def _refer_progress(self, request: Request) -> None:
        """A NOTIFY of our REFER's subscription: its sipfrag's final status ends the transfer (RFC 3515)."""
        if self._refer_seq is None or not (request.headers.get("event") or "").lower().startswith("refer"):
            return
        match = re.match(rb"SIP/2\.0 (\d{3}) ?([^\r\n]*)", request.body)
        if match is None or int(match[1]) < 200:
            return
        self._refer_seq = None
        code, reason = int(match[1]), match[2].decode("utf-8", "replace")
        if code < 300:
            self._emit(TransferResult(True, code, reason, custom_headers(request)))
            self.hangup()  # the transferee has its new call: we leave, as Voximplant does
        else:
            self._emit(TransferResult(False, code, reason, custom_headers(request)))

    def transfer_outcome(self, ok: bool, code: int, reason: str) -> None:
        if self._transferred_seq is not None and self.state is LegState.CONNECTED:
            self._notify_refer(self._transferred_seq, f"SIP/2.0 {code} {reason}", final=True)
            self._transferred_seq = None

    # Requests inside the dialog

    def on_request(self, request: Request, tx: ServerTransaction) -> None:
        assert self.dialog is not None
        method = request.method
        if not self.dialog.accepts(request):
            tx.respond(self.ua.stack.response(request, 500, "Out Of Order CSeq"))
            return
        if method == "BYE":
            tx.respond(self.ua.stack.response(request, 200))
            self._end(Disconnected(custom_headers(request), 200, "Normal call clearing", by_remote=True))
        elif method in ("INVITE", "UPDATE"):
            self._reoffer(request, tx)
        elif method == "INFO":
            tx.respond(self.ua.stack.response(request, 200))
            self._info(request)
        elif method == "MESSAGE":
            tx.respond(self.ua.stack.response(request, 200))
            self._emit(Message(request.body.decode("utf-8", "replace"), custom_headers(request)))
        elif method == "REFER":
            refer_to = request.headers.get("refer-to")
            if refer_to is None:
                tx.respond(self.ua.stack.response(request, 400, "Missing Refer-To"))
                return
            tx.respond(self.ua.stack.response(request, 202))
            self._transferred_seq = request.cseq.seq
            self._notify_refer(request.cseq.seq, "SIP/2.0 100 Trying")
            try:
                target = str(request.addresses("refer-to")[0].uri)
            except (SipParseError, IndexError):
                target = refer_to
            self._emit(TransferRequested(target, custom_headers(request)))
        elif method == "NOTIFY":
            tx.respond(self.ua.stack.response(request, 200))
            self._refer_progress(request)
        elif method == "OPTIONS":
            tx.respond(self.ua.stack.response(request, 200))
        else:
            tx.respond(self.ua.stack.response(request, 405))

    def _agreed(self, media: offer_answer.NegotiatedMedia | None) -> None:
        """An offer/answer completed: the endpoint sends and receives as agreed from now on."""
        if media is None:
            return
        self.negotiated = media
        if self.media is not None:
            self.media.configure(media)
            # Without RFC 4733 events, keys can only come in the audio.
            self.ua.plane.listen_for_tones(self.media, media.telephone_event is None)

    # The endpoint's owner: what it hears.

    def key_received(self, key: str, kind: str) -> None:
        """A key the peer sent, as an RFC 4733 event or in-band (heard while connected or in early media)."""
        if self.state is not LegState.TERMINATED:
            self._emit(Dtmf(key, kind))

    def media_event(self, name: str, detail: str = "") -> None:
        if self.state is not LegState.TERMINATED:
            self._emit(MediaNotice(name, detail))

    def _notify_refer(self, refer_seq: int, status_line: str, final: bool = False) -> None:
        """The progress of a transfer we were asked for, as the REFER's implicit subscription (RFC 3515 2.4.4)."""
        if self.dialog is None:
            return
        notify = self.dialog.request("NOTIFY")
        notify.headers.set("event", f"refer;id={refer_seq}")
        notify.headers.set("subscription-state", "terminated;reason=noresource" if final else "active;expires=60")
        notify.headers.set("content-type", "message/sipfrag;version=2.0")
        notify.body = f"{status_line}\r\n".encode()
        self._in_dialog(notify)

    def _info(self, request: Request) -> None:
        text = request.body.decode("utf-8", "replace")
        if request.content_type in DTMF_INFO_TYPES:
            for line in text.splitlines():
                key, _, value = line.partition("=")
                tone = value.strip() if key.strip().lower() == "signal" else (text.strip() if "=" not in text else "")
                if tone:
                    self._emit(Dtmf(tone[:1], "info"))
                    return
        self._emit(Info(request.content_type, text, custom_headers(request)))

    def _reoffer(self, request: Request, tx: ServerTransaction) -> None:
        """A re-INVITE or UPDATE: hold, resume or a new address (RFC 3264 section 8)."""
        assert self.dialog is not None
        response = self.ua.stack.response(request, 200)
        response.headers.set("to", self.dialog.local.serialize())
        response.headers.set("contact", self.dialog.contact)
        self.dialog.refresh_target(request)
        if request.body and request.content_type == "application/sdp":
            try:
                offer = SessionDescription.parse(request.body)
                self._local_sdp, media = self.ua.media_answer(self, offer, previous=self._local_sdp)
            except (offer_answer.NegotiationError, SipParseError) as exc:
                log.info("%s: re-offer refused: %s", self.id, exc)
                tx.respond(self.ua.stack.response(request, 488))
                return
            response.body = self._local_sdp.serialize()
            response.headers.set("content-type", "application/sdp")
            assert media is not None  # an answer to an offer always agrees on media
            self._agreed(media)
            if media.on_hold != self.on_hold:
                self.on_hold = media.on_hold
                self._emit(Hold() if self.on_hold else Unhold())
        elif request.method == "INVITE" and self._local_sdp is not None:
            response.body = self._local_sdp.serialize()  # offerless re-INVITE: we offer, answer comes in ACK
            response.headers.set("content-type", "application/sdp")
        tx.respond(response)
        if request.method == "INVITE":  # the transaction absorbs re-sent INVITEs: the 2xx goes again from here
            if self._ok_timer is not None:
                self._ok_timer.cancel()
            self._ok, self._ok_seq = response.serialize(), request.cseq.seq
            self._resend_ok(T1)
