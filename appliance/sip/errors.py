"""Errors of the SIP stack: one root, leaves that are also the matching builtin."""

from __future__ import annotations

from appliance.errors import ApplianceError


class SipError(ApplianceError):
    """Root of the SIP stack's errors."""


class SipParseError(SipError, ValueError):
    """Bytes or text that are not a valid SIP message, header, URI or SDP body; says what and where."""


class SipTimeout(SipError, TimeoutError):
    """A transaction got no final response in time (timer B or F)."""


class SipTransportError(SipError, ConnectionError):
    """A message could not be sent: no route, connection refused or closed."""
