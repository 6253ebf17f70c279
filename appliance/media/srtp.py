"""SRTP (RFC 3711) keyed by SDES (RFC 4568): the a=crypto attribute, and the contexts that use its keys.

`CryptoAttribute` is the value of one "a=crypto:" line, e.g.
"1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32".

What we can use (`CryptoAttribute.supported`), and why the rest is refused:

- Suites AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2), the two every SIP
  phone and PBX offers; their key-params are "inline:" base64(16-byte master key || 14-byte salt).
- Other suites parse, with their key-params kept verbatim and unread, so that an offer listing
  several can be scanned for one we take; `supported` is False for them.
- An MKI ("|1:4") is parsed but not supported: it only matters with several master keys, which we
  never use, and RFC 4568 §6.1 lets the answerer refuse a crypto line. Several key-params (";") need
  MKIs, so they are refused the same way.
- Session parameters that change the transform (UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP,
  UNAUTHENTICATED_SRTP, KDR other than 0, FEC_ORDER, FEC_KEY) make a line unsupported: a peer that
  asked for them would not understand our packets. WSH (replay window hint) is harmless and kept.
- The key lifetime is kept as text and not enforced: 2^20 packets is 5.8 hours of 20 ms audio, and
  re-keying needs a re-INVITE that phones rarely send; the libsrtp limit (2^48) still applies.

`SrtpContext` holds the two libsrtp sessions of one stream: outbound with our key, inbound with the
peer's. Any SSRC is accepted on both, as the peer may change SSRC mid-call (RFC 3550 §8.2).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import pylibsrtp

logger = logging.getLogger(__name__)

AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
# Suite name -> libsrtp profile; both take a 16-byte master key followed by a 14-byte master salt.
SUITES: dict[str, int] = {
    AES_CM_128_HMAC_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    AES_CM_128_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
KEY_SALT_LENGTH = 30
# RFC 4568 §9.1: tag = 1*9DIGIT.
MAX_TAG = 999_999_999
# Session parameters we can honour by ignoring them; any other one that is known changes the transform.
_HARMLESS_PARAMS = ("WSH=",)
_TAG = re.compile(r"[0-9]{1,9}")
_SUITE = re.compile(r"[A-Za-z0-9_]{1,64}")
_LIFETIME = re.compile(r"(?:2\^)?[0-9]{1,20}")
_MKI = re.compile(r"[0-9]{1,10}:[0-9]{1,3}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class SrtpError(ValueError):
    """A crypto attribute we cannot read, or an SRTP/SRTCP packet that fails authentication or replay checks."""


@dataclass(frozen=True)
class CryptoAttribute:
    """One a=crypto value: `tag` numbers it within its m= section, `key` is master key || master salt.

    For a suite we do not support, `key` is empty and `opaque_key_params` holds the key-params as sent.
    Neither is in the repr, so that logging a NegotiatedMedia does not log keys.
    """

    tag: int
    suite: str
    key: bytes = field(default=b"", repr=False)
    lifetime: str | None = None
    mki: str | None = None
    session_params: tuple[str, ...] = ()
    opaque_key_params: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> CryptoAttribute:
        parts = text.split()
        if len(parts) < 3:
            raise SrtpError(f"crypto attribute {text!r} needs a tag, a suite and key-params")
        tag_text, suite, key_params, *session_params = parts
        if not _TAG.fullmatch(tag_text):
            raise SrtpError(f"crypto tag {tag_text!r} is not 1 to 9 digits")
        if not _SUITE.fullmatch(suite):
            raise SrtpError(f"crypto suite {suite!r} is not a name")
        if suite not in SUITES:
            return cls(int(tag_text), suite, session_params=tuple(session_params), opaque_key_params=key_params)
        key, lifetime, mki = _key_params(key_params, suite)
        return cls(int(tag_text), suite, key, lifetime, mki, tuple(session_params))

    def serialize(self) -> str:
        if self.opaque_key_params is not None:
            key_params = self.opaque_key_params
        else:
            key_params = "inline:" + base64.b64encode(self.key).decode("ascii")
            key_params += "".join(f"|{part}" for part in (self.lifetime, self.mki) if part is not None)
        return " ".join([str(self.tag), self.suite, key_params, *self.session_params])

    @property
    def supported(self) -> bool:
        """Whether SrtpContext can use this line: a suite of ours, one key without MKI, no transform changes."""
        if self.suite not in SUITES or self.mki is not None or self.opaque_key_params is not None:
            return False
        return all(_param_supported(param) for param in self.session_params)


def _key_params(text: str, suite: str) -> tuple[bytes, str | None, str | None]:
    """(key || salt, lifetime, MKI) from "inline:BASE64[|lifetime][|MKI:length]" for one of our suites.

    Error messages never quote the key-params: they hold a key, and messages reach logs.
    """
    if ";" in text:
        # Several keys are told apart only by MKI (RFC 4568 §6.1), which we do not support.
        raise SrtpError("crypto key-params: more than one key is not supported")
    method, _, info = text.partition(":")
    if method.lower() != "inline" or not info:
        raise SrtpError("crypto key-params: only the inline: key method is defined, with a key")
    key_text, *rest = info.split("|")
    if len(rest) > 2:
        raise SrtpError(f"crypto key-params: {len(rest) + 1} |-separated fields, at most 3")
    if not _BASE64.fullmatch(key_text):
        raise SrtpError(f"crypto key of {len(key_text)} characters is not base64")
    try:
        key = base64.b64decode(key_text, validate=True)
    except binascii.Error as error:
        raise SrtpError(f"crypto key of {len(key_text)} characters is not base64: {error}") from None
    if len(key) != KEY_SALT_LENGTH:
        raise SrtpError(f"{suite} needs a {KEY_SALT_LENGTH}-byte key and salt, the crypto key has {len(key)} bytes")
    lifetime: str | None = None
    mki: str | None = None
    for part in rest:
        # A lifetime never holds ':', an MKI always does, so the lifetime may be left out (§9.2).
        if ":" in part and mki is None and _MKI.fullmatch(part):
            mki = part
        elif lifetime is None and mki is None and _LIFETIME.fullmatch(part):
            lifetime = part
        else:
            raise SrtpError(f"crypto key-params: {part!r} is neither a lifetime nor an MKI")
    return key, lifetime, mki


def _param_supported(param: str) -> bool:
    upper = param.upper()
    if upper.startswith("KDR="):
        return upper == "KDR=0"  # 0 means no key derivation rate, which is what libsrtp does
    if upper.startswith(_HARMLESS_PARAMS):
        return True
    # UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP, FEC_ORDER... change the transform: a peer that asked for
    # them could not read our packets. Unknown ones may be ignored only when they start with "-" (§6.3.7).
    return upper.startswith("-")


def new_crypto(tag: int, suite: str) -> CryptoAttribute:
    """A crypto line offering or answering `suite` with a fresh random key and salt."""
    if suite not in SUITES:
        raise SrtpError(f"crypto suite {suite} is not one of ours: {', '.join(SUITES)}")
    if not 0 <= tag <= MAX_TAG:
        raise SrtpError(f"crypto tag {tag} is not 0 to {MAX_TAG}")
    return CryptoAttribute(tag, suite, secrets.token_bytes(KEY_SALT_LENGTH))


@dataclass(frozen=True)
class SrtpKeys:
    """The keys one stream agreed on: we protect with `local` (ours, in our SDP), the peer with `remote`."""

    local: CryptoAttribute
    remote: CryptoAttribute


class SrtpContext:
    """SRTP and SRTCP for one stream in both directions; every failure is an SrtpError."""

    def __init__(self, local: CryptoAttribute, remote: CryptoAttribute) -> None:
        for which, crypto in (("local", local), ("remote", remote)):
            if not crypto.supported:
                params = " ".join(crypto.session_params)
                what = f"{crypto.tag} {crypto.suite} (MKI {crypto.mki}, {params!r})"
                raise SrtpError(f"{which} crypto {what} is not supported")
        self._outbound = pylibsrtp.Session(_policy(local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self._inbound = pylibsrtp.Session(_policy(remote, pylibsrtp.Policy.SSRC_ANY_INBOUND))

    @classmethod
    def from_keys(cls, keys: SrtpKeys) -> SrtpContext:
        return cls(keys.local, keys.remote)

    def protect(self, rtp: bytes) -> bytes:
        return _run(self._outbound.protect, rtp, "protect RTP")

    def unprotect(self, srtp: bytes) -> bytes:
        return _run(self._inbound.unprotect, srtp, "unprotect SRTP")

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return _run(self._outbound.protect_rtcp, rtcp, "protect RTCP")

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        return _run(self._inbound.unprotect_rtcp, srtcp, "unprotect SRTCP")


def _policy(crypto: CryptoAttribute, ssrc_type: int) -> pylibsrtp.Policy:
    return pylibsrtp.Policy(key=crypto.key, ssrc_type=ssrc_type, srtp_profile=SUITES[crypto.suite])


def _run(operation: Callable[[bytes], bytes], packet: bytes, what: str) -> bytes:
    try:
        # pylibsrtp takes only bytes, and says "packet is too long" as a plain ValueError past 1500 bytes.
        return operation(bytes(packet))
    except (pylibsrtp.Error, ValueError) as error:
        raise SrtpError(f"cannot {what} ({len(packet)} bytes): {error}") from None

