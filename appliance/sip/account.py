"""Our side of digest authentication (RFC 3261 22.2, RFC 8760): a trunk's account, or callSIP's authUser.

A request that drew a 401 or 407 is sent again as a copy with credentials and the next CSeq. If that
copy is challenged again without `stale=true`, the password is wrong and asking a third time would
only add to the server's failure count (and its lockout), so `retry` says no.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from appliance.lines.line import Originate
from appliance.sip import digest
from appliance.sip.errors import SipParseError
from appliance.sip.message import Request, Response

log = logging.getLogger(__name__)

AUTH_HEADERS = {401: ("www-authenticate", "authorization"), 407: ("proxy-authenticate", "proxy-authorization")}


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    @classmethod
    def given(cls, options: Originate) -> Account | None:
        """The credentials a script gave callSIP (authUser, password) for the challenges its call may meet."""
        return cls(options.auth_user or options.caller, options.password) if options.password else None

    def retry(self, request: Request, response: Response) -> Request | None:
        """`request` again, with credentials answering the 401/407 `response`; None when there is no point."""
        if response.status not in AUTH_HEADERS:
            return None
        challenge_header, credentials_header = AUTH_HEADERS[response.status]
        challenges = []
        for value in response.headers.get_all(challenge_header):
            try:
                challenges.append(digest.Challenge.parse(value))
            except SipParseError as exc:
                log.info("ignoring a challenge from %s: %s", response.headers.get("server") or "the server", exc)
        challenge = digest.first_supported(challenges)
        if challenge is None:
            return None
        if credentials_header in request.headers and not challenge.stale:
            return None  # our credentials were refused: the password is wrong
        again = Request(request.method, request.uri, request.headers.copy(), request.body)
        again.headers.set("via")  # a new transaction: the stack adds a Via with a new branch
        again.headers.set("cseq", f"{request.cseq.seq + 1} {request.method}")
        credentials = digest.answer(challenge, request.method, request.uri.serialize(), self.username, self.password,
                                    body=request.body)
        again.headers.set(credentials_header, credentials.serialize())
        return again
