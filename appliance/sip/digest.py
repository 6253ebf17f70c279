"""SIP digest authentication: RFC 3261 section 22 on RFC 2617/7616 digest, with RFC 8760 SHA-256.

Three parts:

* the wire formats `Challenge` (a WWW-Authenticate / Proxy-Authenticate value) and `Credentials`
  (an Authorization / Proxy-Authorization value), each with `parse` and `serialize`;
* the client side, `answer()`, which turns a challenge and a password into credentials;
* the server side, `DigestServer`, which issues stateless nonces and judges credentials into a `Verdict`.

MD5, MD5-sess, SHA-256 and SHA-256-sess are computed. Other algorithms (SHA-512-256, ...) still parse,
so a 401 offering them next to MD5 stays readable, but `answer()` refuses them with `DigestUnsupported`.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import hmac
import re
import secrets
import string
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple

from appliance.sip.errors import SipError, SipParseError

MAX_HEADER_VALUE_LENGTH: Final = 4096  # a real challenge or answer is < 1 KiB; more is garbage or an attack
NONCE_LIFETIME: Final = 300.0  # seconds a nonce is honoured; after that a right answer gets STALE
MAX_TRACKED_NONCES: Final = 10_000  # nonces whose highest nc is remembered (a few MB at most)
MIN_SECRET_LENGTH: Final = 16  # bytes of the server's HMAC key
OFFERED_ALGORITHMS: Final = ("SHA-256", "MD5")  # RFC 8760 section 2.4: strongest first

_HASHES: Final = {"MD5": "md5", "SHA-256": "sha256"}
_QOP_PREFERENCE: Final = ("auth", "auth-int")  # auth-int only when offered alone: it needs the whole body
_TOKEN_CHARS: Final = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
_FOLD: Final = re.compile(r"\r?\n(?=[ \t])")  # RFC 3261 LWS: a line break only counts when whitespace follows
_NC: Final = re.compile(r"[0-9A-Fa-f]{8}")
_CHALLENGE_PARAMS: Final = ("realm", "nonce", "opaque", "stale", "algorithm", "qop", "domain")
_CREDENTIALS_PARAMS: Final = (
    *("username", "realm", "nonce", "uri", "response"),  # required
    *("algorithm", "cnonce", "opaque", "qop", "nc"),
)
# Nonce layout: issue time in ms, random salt, truncated HMAC. The salt keeps two nonces issued in the same
# millisecond apart, since each nonce has its own nc sequence.
_NONCE_TIME: Final = 8
_NONCE_SALT: Final = 8
_NONCE_MAC: Final = 16


class DigestUnsupported(SipError, ValueError):
    """A challenge asks for an algorithm or qop this module cannot compute."""


class _Spec(NamedTuple):
    family: str  # "MD5" or "SHA-256": the key of a stored HA1
    hashlib_name: str
    sess: bool


def _spec(algorithm: str | None) -> _Spec | None:
    # Absent means MD5 (RFC 2617 section 3.2.1); names compare case-insensitively, as PJSIP sends "md5".
    name = (algorithm or "MD5").upper()
    family = name.removesuffix("-SESS")
    hashlib_name = _HASHES.get(family)
    return None if hashlib_name is None else _Spec(family, hashlib_name, name != family)


def _hash(spec: _Spec, text: str) -> str:
    return hashlib.new(spec.hashlib_name, text.encode()).hexdigest()


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN_CHARS for c in text)


def _has_control(text: str) -> bool:
    return any((c < " " and c != "\t") or c == "\x7f" for c in text)


class _Reader:
    """A cursor over one header value, line folds removed; its errors name the header and the offset."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0

    def fail(self, message: str) -> SipParseError:
        return SipParseError(f"{self.what}: {message} at offset {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip_space(self) -> bool:
        start = self.pos
        while self.peek() in (" ", "\t"):
            self.pos += 1
        return self.pos > start

    def token(self) -> str:
        start = self.pos
        while self.peek() in _TOKEN_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while c := self.peek():
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\":
                self.pos += 1
                if not (c := self.peek()):
                    break
            if _has_control(c):
                raise self.fail(f"control character {c!r} in a quoted string")
            out.append(c)
            self.pos += 1
        self.pos = start
        raise self.fail("unterminated quoted string")


def _parse_params(value: str, what: str) -> list[tuple[str, str]]:
    """`Digest name=value, ...` into (name, value) pairs, names as written, quoted values unescaped."""
    if not value.strip():
        raise SipParseError(f"{what}: empty header value")
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        raise SipParseError(f"{what}: {len(value)} characters, over the limit of {MAX_HEADER_VALUE_LENGTH}")
    r = _Reader(_FOLD.sub("", value), what)
    r.skip_space()
    scheme = r.token()
    if not scheme:
        raise r.fail(f"expected the auth scheme, found {r.peek()!r}")
    if scheme.lower() != "digest":
        raise SipParseError(f"{what}: scheme {scheme!r} is not Digest")
    if not r.skip_space() and r.peek():
        raise r.fail(f"expected whitespace after {scheme!r}, found {r.peek()!r}")
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    while r.peek():
        name = r.token()
        if not name:
            raise r.fail(f"expected a parameter name, found {r.peek()!r}")
        if name.lower() in seen:
            raise r.fail(f"duplicate parameter {name!r}")
        seen.add(name.lower())
        r.skip_space()
        if r.peek() != "=":
            raise r.fail(f"missing '=' after {name!r}")
        r.pos += 1
        r.skip_space()
        if r.peek() == '"':
            params.append((name, r.quoted()))
        else:
            token = r.token()
            if not token:
                raise r.fail(f"missing value for {name!r}, found {r.peek()!r}")
            params.append((name, token))
        r.skip_space()
        if not r.peek():
            break
        if r.peek() != ",":
            raise r.fail(f"expected ',' after the value of {name!r}, found {r.peek()!r}")
        r.pos += 1
        r.skip_space()
        if not r.peek():
            raise r.fail("trailing ','")
    return params


def _split(params: list[tuple[str, str]], known: tuple[str, ...]) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    found = {name.lower(): value for name, value in params if name.lower() in known}
    return found, tuple((name, value) for name, value in params if name.lower() not in known)


def _require(found: dict[str, str], name: str, what: str) -> str:
    if name not in found:
        raise SipParseError(f"{what}: missing {name!r}")
    return found[name]


def _check_common(
    what: str, texts: Iterable[str | None], extra: tuple[tuple[str, str], ...], known: tuple[str, ...]
) -> None:
    # What parse cannot produce but a hand-built object could, and serialize could not send back.
    if any(text is not None and _has_control(text) for text in [*texts, *(v for _, v in extra)]):
        raise SipParseError(f"{what}: control character in a value")
    names = [name.lower() for name, _ in extra]
    if not all(_is_token(name) for name in names) or len(set(names)) != len(names) or set(names) & set(known):
        raise SipParseError(f"{what}: extra parameter names {names} are not distinct tokens apart from the known ones")


def _need_token(what: str, name: str, value: str | None) -> None:
    if value is not None and not _is_token(value):
        raise SipParseError(f"{what}: {name} {value!r} is not a token")


def _quote(name: str, value: str) -> str:
    return '{}="{}"'.format(name, value.replace("\\", "\\\\").replace('"', '\\"'))


def _extra(params: tuple[tuple[str, str], ...]) -> list[str]:
    # Values of unknown parameters were either form on the wire; a token goes back bare, the rest quoted.
    return [f"{name}={value}" if _is_token(value) else _quote(name, value) for name, value in params]


@dataclasses.dataclass(frozen=True, slots=True)
class Challenge:
    """A WWW-Authenticate / Proxy-Authenticate value. `qop == ()`: an RFC 2069 server, answered without qop."""

    realm: str
    nonce: str
    opaque: str | None = None
    stale: bool = False
    algorithm: str | None = None  # as written; None (absent) means MD5
    qop: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()  # URIs of the protection space
    extra: tuple[tuple[str, str], ...] = ()  # unknown parameters, in order, names as written

    def __post_init__(self) -> None:
        what = "digest challenge"
        _check_common(what, [self.realm, self.nonce, self.opaque], self.extra, _CHALLENGE_PARAMS)
        _need_token(what, "algorithm", self.algorithm)
        for option in self.qop:
            _need_token(what, "qop option", option)
        if any(uri.split() != [uri] for uri in self.domain):
            raise SipParseError(f"{what}: domain URIs {self.domain} must be non-empty and without whitespace")

    @classmethod
    def parse(cls, value: str) -> Challenge:
        what = "digest challenge"
        found, extra = _split(_parse_params(value, what), _CHALLENGE_PARAMS)
        qop = found.get("qop", "")
        return cls(
            realm=_require(found, "realm", what),
            nonce=_require(found, "nonce", what),
            opaque=found.get("opaque"),
            # RFC 7616 section 3.3: anything but a case-insensitive "true" is false.
            stale=found.get("stale", "").lower() == "true",
            algorithm=found.get("algorithm"),
            qop=tuple(option.strip() for option in qop.split(",")) if qop.strip() else (),
            domain=tuple(found.get("domain", "").split()),
            extra=extra,
        )

    def serialize(self) -> str:
        parts = [_quote("realm", self.realm), _quote("nonce", self.nonce)]
        if self.opaque is not None:
            parts.append(_quote("opaque", self.opaque))
        if self.stale:
            parts.append("stale=true")
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(_quote("qop", ",".join(self.qop)))
        if self.domain:
            parts.append(_quote("domain", " ".join(self.domain)))
        return "Digest " + ", ".join(parts + _extra(self.extra))


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    """An Authorization / Proxy-Authorization value. With `qop`, `cnonce` and `nc` are required."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None  # 8 hex digits, kept as sent: the response hashes that exact text
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        what = "digest credentials"
        texts = [self.username, self.realm, self.nonce, self.uri, self.response, self.cnonce, self.opaque]
        _check_common(what, texts, self.extra, _CREDENTIALS_PARAMS)
        _need_token(what, "algorithm", self.algorithm)
        _need_token(what, "qop", self.qop)
        if self.nc is not None and not _NC.fullmatch(self.nc):
            raise SipParseError(f"{what}: nc {self.nc!r} is not 8 hex digits")
        if self.qop is not None and (self.cnonce is None or self.nc is None):
            raise SipParseError(f"{what}: qop={self.qop} needs both cnonce and nc")

    @classmethod
    def parse(cls, value: str) -> Credentials:
        what = "digest credentials"
        found, extra = _split(_parse_params(value, what), _CREDENTIALS_PARAMS)
        return cls(
            username=_require(found, "username", what),
            realm=_require(found, "realm", what),
            nonce=_require(found, "nonce", what),
            uri=_require(found, "uri", what),
            response=_require(found, "response", what),
            algorithm=found.get("algorithm"),
            cnonce=found.get("cnonce"),
            opaque=found.get("opaque"),
            qop=found.get("qop"),
            nc=found.get("nc"),
            extra=extra,
        )

    def serialize(self) -> str:
        parts = [_quote(name, getattr(self, name)) for name in ("username", "realm", "nonce", "uri", "response")]
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.cnonce is not None:
            parts.append(_quote("cnonce", self.cnonce))
        if self.opaque is not None:
            parts.append(_quote("opaque", self.opaque))
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts + _extra(self.extra))


def ha1(username: str, realm: str, password: str, algorithm: str | None = "MD5") -> str:
    """H(username:realm:password), what a user store may keep instead of the password: one per family
    ("MD5", "SHA-256"), since the -sess variants derive their per-session HA1 from this one."""
    spec = _spec(algorithm)
    if spec is None:
        raise DigestUnsupported(f"digest algorithm {algorithm!r} is not supported")
    return _hash(spec, f"{username}:{realm}:{password}")


def _response(spec: _Spec, stored_ha1: str, creds: Credentials, method: str, body: bytes) -> str:
    """The request-digest of RFC 2617 section 3.2.2.1 / RFC 7616 section 3.4.1 for `creds` without `response`."""
    session_ha1 = _hash(spec, f"{stored_ha1}:{creds.nonce}:{creds.cnonce}") if spec.sess else stored_ha1
    a2 = f"{method}:{creds.uri}"
    if creds.qop is not None and creds.qop.lower() == "auth-int":
        a2 += ":" + hashlib.new(spec.hashlib_name, body).hexdigest()
    if creds.qop is None:  # RFC 2069 compatibility
        return _hash(spec, f"{session_ha1}:{creds.nonce}:{_hash(spec, a2)}")
    return _hash(spec, f"{session_ha1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:{creds.qop}:{_hash(spec, a2)}")


def _plan(challenge: Challenge) -> tuple[_Spec, str | None]:
    """The hash and qop to answer `challenge` with."""
    spec = _spec(challenge.algorithm)
    if spec is None:
        raise DigestUnsupported(f"digest algorithm {challenge.algorithm!r} is not supported")
    offered = {option.lower(): option for option in challenge.qop}
    qop = next((offered[q] for q in _QOP_PREFERENCE if q in offered), None)
    if challenge.qop and qop is None:
        raise DigestUnsupported(f"none of the offered qop values {challenge.qop} is supported")
    if spec.sess and qop is None:  # the session HA1 needs a cnonce, which RFC 2617 forbids without qop
        raise DigestUnsupported(f"{challenge.algorithm} without qop cannot be answered")
    return spec, qop


def first_supported(challenges: Iterable[Challenge]) -> Challenge | None:
    """The first challenge `answer()` can handle; servers list them strongest first (RFC 8760 section 2.4)."""
    for challenge in challenges:
        try:
            _plan(challenge)
        except DigestUnsupported:
            continue
        return challenge
    return None


def answer(
    challenge: Challenge, method: str, uri: str, username: str, password: str,
    *, cnonce: str | None = None, nc: int = 1, body: bytes = b"",
) -> Credentials:  # fmt: skip
    """Credentials for one request; `nc` counts the requests sent with this nonce, starting at 1."""
    spec, qop = _plan(challenge)
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError(f"nc {nc} is outside 1..0xffffffff")
    unsigned = Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        cnonce=None if qop is None else cnonce or secrets.token_hex(16),
        opaque=challenge.opaque,
        qop=qop,
        nc=None if qop is None else f"{nc:08x}",
    )
    digest = _response(spec, ha1(username, challenge.realm, password, spec.family), unsigned, method, body)
    return dataclasses.replace(unsigned, response=digest)


class Verdict(enum.Enum):
    """What `DigestServer.check` found; the SIP layer answers 401/407 to all but OK."""

    OK = "ok"
    WRONG = "wrong"  # wrong password or unknown user, on purpose one verdict: challenge again, stale=false
    STALE = "stale"  # right answer to an expired nonce: challenge again with stale=true (no user prompt)
    REPLAY = "replay"  # right answer, but its nc was already used with this nonce: challenge as for STALE
    # Not for this realm, algorithm or qop, or a nonce this server did not issue (or issued under another
    # secret). A header that does not parse (SipParseError) deserves the same treatment.
    MALFORMED = "malformed"


class DigestServer:
    """Issues nonces and checks answers for one realm.

    A nonce carries its issue time and an HMAC under `secret`, so issuing one stores nothing; keep the
    secret across restarts for nonces to stay recognisable. What is stored is the highest nc used with
    each nonce, for at most `max_tracked` nonces: an evicted nonce, or one issued before this object
    existed, has an unknown history, so it gets REPLAY rather than a second use (the client then simply
    re-authenticates on a fresh nonce). An answer without qop (RFC 2069) has no nc, so such a nonce is
    good for one request. Not thread-safe: use it from the event loop.
    """

    def __init__(
        self, realm: str, secret: bytes, clock_now: Callable[[], float],
        *, nonce_lifetime: float = NONCE_LIFETIME, opaque: str | None = None, max_tracked: int = MAX_TRACKED_NONCES,
        algorithms: Sequence[str] = OFFERED_ALGORITHMS,
    ) -> None:  # fmt: skip
        if not algorithms or any(_spec(a) is None or a.upper().endswith("-SESS") for a in algorithms):
            raise DigestUnsupported(f"offered digest algorithms must be some of {', '.join(OFFERED_ALGORITHMS)}, "
                                    f"not {list(algorithms)}")
        self.algorithms = tuple(algorithms)
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the digest secret must have at least {MIN_SECRET_LENGTH} bytes")
        self.realm = realm
        self._secret = secret
        self._clock_now = clock_now
        self._lifetime_ms = int(nonce_lifetime * 1000)
        self._opaque = opaque
        self._max_tracked = max_tracked
        self._used: OrderedDict[str, tuple[int, int]] = OrderedDict()  # nonce -> (issued ms, highest nc)
        self._unknown_before = self._now_ms()  # nonces issued earlier have no history here
        # Unknown users are checked against these, so they cost the same work as a wrong password.
        self._dummy_ha1 = {family: hmac.new(secret, family.encode(), hashlib.sha256).hexdigest() for family in _HASHES}

    def challenge(self, algorithm: str = "MD5", *, stale: bool = False) -> Challenge:
        if _spec(algorithm) is None:
            raise DigestUnsupported(f"digest algorithm {algorithm!r} is not supported")
        head = self._now_ms().to_bytes(_NONCE_TIME, "big") + secrets.token_bytes(_NONCE_SALT)
        nonce = base64.urlsafe_b64encode(head + self._mac(head)).rstrip(b"=").decode()
        # RFC 3261 section 22.4: servers always offer qop.
        return Challenge(self.realm, nonce, opaque=self._opaque, stale=stale, algorithm=algorithm, qop=("auth",))

    def challenges(self, *, stale: bool = False) -> list[Challenge]:
        """One challenge per offered algorithm, one WWW-Authenticate header each, in this order."""
        return [self.challenge(algorithm, stale=stale) for algorithm in self.algorithms]

    def check(
        self, creds: Credentials, method: str, lookup_ha1: Callable[[str, str], str | None], *, body: bytes = b""
    ) -> Verdict:
        """Judge `creds` for a request with `method` (and `body`, for qop=auth-int).

        `lookup_ha1(username, family)` gives `ha1(username, realm, password, family)` with family "MD5" or
        "SHA-256", or None for an unknown user; it is only called for well-formed credentials. The caller
        should also compare `creds.uri` with the Request-URI and `creds.username` with its policy.
        """
        spec = _spec(creds.algorithm)
        issued = self._issued(creds.nonce)
        qop = None if creds.qop is None else creds.qop.lower()
        if (
            spec is None
            or issued is None
            or creds.realm != self.realm
            or (self._opaque is not None and creds.opaque != self._opaque)
            or (qop is not None and qop not in _QOP_PREFERENCE)
            or (spec.sess and creds.cnonce is None)
        ):
            return Verdict.MALFORMED
        stored = lookup_ha1(creds.username, spec.family)
        expected = _response(spec, self._dummy_ha1[spec.family] if stored is None else stored, creds, method, body)
        matches = hmac.compare_digest(expected.encode(), creds.response.lower().encode())
        if stored is None or not matches:
            return Verdict.WRONG
        if not 0 <= self._now_ms() - issued <= self._lifetime_ms:  # also stale if the clock went back
            return Verdict.STALE
        fresh = self._use(creds.nonce, issued, 0 if creds.nc is None else int(creds.nc, 16))
        return Verdict.OK if fresh else Verdict.REPLAY

    def _now_ms(self) -> int:
        return int(self._clock_now() * 1000)

    def _mac(self, head: bytes) -> bytes:
        return hmac.new(self._secret, head + self.realm.encode(), hashlib.sha256).digest()[:_NONCE_MAC]

    def _issued(self, nonce: str) -> int | None:
        """The issue time of a nonce this server made, else None."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:  # binascii.Error, or non-ASCII text
            return None
        head, mac = raw[: _NONCE_TIME + _NONCE_SALT], raw[_NONCE_TIME + _NONCE_SALT :]
        # The decoder skips stray characters: insist on the exact text issued, as the nc table is keyed by it.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != nonce:
            return None
        if not hmac.compare_digest(mac, self._mac(head)):
            return None
        return int.from_bytes(head[:_NONCE_TIME], "big")

    def _use(self, nonce: str, issued: int, nc: int) -> bool:
        """Record `nc` for `nonce`; False if it is not above every nc already seen (or possibly seen)."""
        seen = self._used.get(nonce)
        if (seen is None and issued < self._unknown_before) or (seen is not None and nc <= seen[1]):
            return False
        self._used[nonce] = (issued, nc)
        self._used.move_to_end(nonce)
        while len(self._used) > self._max_tracked:
            _, (evicted, _) = self._used.popitem(last=False)
            self._unknown_before = max(self._unknown_before, evicted + 1)
        return True
