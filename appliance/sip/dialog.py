"""SIP dialogs (RFC 3261 section 12): the state two user agents share after an INVITE is answered.

A dialog knows its identifiers (Call-ID and both tags), both sequence numbers, the remote target
and the route set, and builds the requests sent inside it. Only loose routing (`;lr`) is followed:
strict routers have not been seen in the wild for twenty years.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.sip.errors import SipParseError
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, Response
from appliance.sip.transport import Peer
from appliance.sip.uri import SipUri

DialogId = tuple[str, str, str]  # Call-ID, local tag, remote tag


@dataclass
class Dialog:
    call_id: str
    local: NameAddr  # our From/To, with our tag
    remote: NameAddr  # theirs, with their tag
    remote_target: SipUri  # their Contact
    route_set: list[str]  # Route header values, in the order requests carry them
    contact: str  # our Contact header value
    local_seq: int
    remote_seq: int | None
    peer: Peer  # where requests inside the dialog go

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local.tag or "", self.remote.tag or "")

    @classmethod
    def as_uas(cls, invite: Request, response: Response, contact: str, peer: Peer) -> Dialog:
        """The dialog an incoming INVITE and our answer to it make (RFC 3261 12.1.1)."""
        contacts = invite.contacts
        if not contacts:
            raise SipParseError("INVITE without Contact")
        return cls(
            call_id=invite.call_id,
            local=response.to_addr,
            remote=invite.from_addr,
            remote_target=contacts[0].uri,
            route_set=invite.headers.get_all("record-route"),
            contact=contact,
            local_seq=0,
            remote_seq=invite.cseq.seq,
            peer=peer,
        )

    @classmethod
    def as_uac(cls, invite: Request, response: Response, contact: str, peer: Peer) -> Dialog:
        """The dialog our INVITE and its 2xx make (RFC 3261 12.1.2): the route set reversed."""
        contacts = response.contacts
        if not contacts:
            raise SipParseError("2xx to INVITE without Contact")
        return cls(
            call_id=invite.call_id,
            local=invite.from_addr,
            remote=response.to_addr,
            remote_target=contacts[0].uri,
            route_set=list(reversed(response.headers.get_all("record-route"))),
            contact=contact,
            local_seq=invite.cseq.seq,
            remote_seq=None,
            peer=peer,
        )

    def request(self, method: str, seq: int | None = None) -> Request:
        """A request inside the dialog (RFC 3261 12.2.1.1); ACK and CANCEL reuse a given CSeq number."""
        if seq is None:
            self.local_seq += 1
            seq = self.local_seq
        request = Request(method, self.remote_target)
        if self.route_set:
            request.headers.set("route", *self.route_set)
        request.headers.set("from", self.local.serialize())
        request.headers.set("to", self.remote.serialize())
        request.headers.set("call-id", self.call_id)
        request.headers.set("cseq", f"{seq} {method}")
        request.headers.set("contact", self.contact)
        return request

    def accepts(self, request: Request) -> bool:
        """Is this request's CSeq in order (RFC 3261 12.2.2)? Lower numbers are old retransmissions."""
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """A target refresh (re-INVITE, UPDATE and their 2xx) may move the remote Contact."""
        contacts = message.contacts
        if contacts and not contacts[0].wildcard:
            self.remote_target = contacts[0].uri
