"""SIP and tel URIs (RFC 3261 section 19.1, RFC 3966): parse, serialize, compare.

`SipUri.parse` takes the text of a URI as it appears in a Request-Line or inside `<...>`. Parameters
keep their order and their case of value; names are compared case-insensitively, so they are stored
lower-cased. A parameter without a value (`;lr`) has the value None.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from appliance.sip.errors import SipParseError

SCHEMES = ("sip", "sips", "tel")
MAX_URI_CHARS = 2048  # longer URIs are refused: nothing legitimate needs more

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9\-_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9\-_]*[A-Za-z0-9_])?)*\.?$")
# Characters allowed unescaped in the user part (unreserved + user-unreserved, RFC 3261 section 25.1).
_USER_SAFE = "-_.!~*'()&=+$,;?/"
_PARAM_SAFE = "-_.!~*'()[]/:&+$"
# Bytes that were not UTF-8 arrive as lone surrogates (messages are decoded with surrogateescape):
# serialized, they become %XX escapes of the bytes that came in.
_RAW = "surrogateescape"


def _split_params(text: str, where: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = unquote(name.strip()).lower()
        if not name or not _TOKEN.match(name.replace("%", "")):
            raise SipParseError(f"{where}: bad parameter {item!r}")
        params[name] = unquote(value.strip()) if eq else None
    return params


def parse_host(text: str, where: str) -> str:
    """A hostname, IPv4 address or bracketed IPv6 reference; IPv6 comes back without brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipParseError(f"{where}: unterminated IPv6 reference {text!r}")
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise SipParseError(f"{where}: bad IPv6 address {text!r}") from None
    if not text or not _HOSTNAME.match(text):
        raise SipParseError(f"{where}: bad host {text!r}")
    return text.lower()


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def split_hostport(text: str, where: str) -> tuple[str, int | None]:
    """'host', 'host:port', '[v6]' or '[v6]:port'."""
    if text.startswith("["):
        end = text.find("]")
        host_text, rest = text[: end + 1], text[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise SipParseError(f"{where}: bad host and port {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host_text, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    port = None
    if port_text is not None:
        # (length first: int() of thousands of digits raises ValueError, not a parse error)
        if not (port_text.isascii() and port_text.isdigit()) or len(port_text.lstrip("0")) > 5 \
                or not 0 < int(port_text) < 65536:
            raise SipParseError(f"{where}: bad port in {text!r}")
        port = int(port_text)
    return parse_host(host_text, where), port


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str = "sip"
    user: str | None = None  # unescaped
    host: str = ""  # tel URIs have none
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        if len(text) > MAX_URI_CHARS:
            raise SipParseError(f"URI longer than {MAX_URI_CHARS} characters")
        scheme, colon, rest = text.strip().partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in SCHEMES:
            raise SipParseError(f"unsupported URI {text[:80]!r}: expected sip:, sips: or tel:")
        if scheme == "tel":
            number, _, params = rest.partition(";")
            if not number:
                raise SipParseError(f"tel URI without a number: {text!r}")
            return cls("tel", user=unquote(number), params=_split_params(params, "tel URI"))
        # The user part may hold '?' and ';' unescaped (RFC 4475 intmeth, semiuri) but no '@' ever does,
        # so the last '@' ends it; when '@' comes before the first '?', that is the usual case.
        at = rest.partition("?")[0].rfind("@")
        if at < 0:
            at = rest.rfind("@")
        userinfo, hostpart = (rest[:at], rest[at + 1 :]) if at >= 0 else ("", rest)
        hostpart, _, header_text = hostpart.partition("?")
        user = password = None
        if at >= 0:
            user_text, pcolon, pw = userinfo.partition(":")
            if not user_text:
                raise SipParseError(f"empty user part in {text!r}")
            user = unquote(user_text)
            password = unquote(pw) if pcolon else None
        hostport, _, param_text = hostpart.partition(";")
        host, port = split_hostport(hostport, f"URI {text[:80]!r}")
        headers: dict[str, str] = {}
        for item in header_text.split("&") if header_text else ():
            name, _, value = item.partition("=")
            headers[unquote(name)] = unquote(value)
        return cls(scheme, user, host, port, _split_params(param_text, f"URI {text[:80]!r}"), headers, password)

    def serialize(self) -> str:
        if self.scheme == "tel":
            return "tel:" + (self.user or "") + _format_params(self.params)
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(quote(self.user, safe=_USER_SAFE, errors=_RAW))
            if self.password is not None:
                out += [":", quote(self.password, safe=_USER_SAFE, errors=_RAW)]
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(_format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{quote(k, safe='', errors=_RAW)}={quote(v, safe='', errors=_RAW)}"
                                      for k, v in self.headers.items()))
        return "".join(out)

    __str__ = serialize

    @property
    def transport(self) -> str:
        """The transport the URI asks for: its transport parameter, else TLS for sips, else UDP."""
        value = self.params.get("transport")
        if value:
            return value.lower()
        return "tls" if self.scheme == "sips" else "udp"

    def with_params(self, **params: str | None) -> SipUri:
        return replace(self, params={**self.params, **params})

    def without_params(self, *names: str) -> SipUri:
        return replace(self, params={k: v for k, v in self.params.items() if k not in names})

    def matches(self, other: SipUri) -> bool:
        """RFC 3261 19.1.4, as far as routing needs it: scheme, user, host, port and transport."""
        return (
            self.scheme == other.scheme
            and self.user == other.user
            and self.host == other.host
            and self.port == other.port
            and self.params.get("transport") == other.params.get("transport")
        )


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={quote(v, safe=_PARAM_SAFE, errors=_RAW)}"
                   for k, v in params.items())
