"""Typed SIP header values: addresses (From, To, Contact, Route...), Via, CSeq, and their parameters.

Each class parses the text of one header value (one element of a comma-separated list) and
serializes back to text. Header parameter values may be tokens, hosts or quoted strings; a quoted
value keeps its quotes out of `params` and gets them back when serialized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from appliance.sip.errors import SipParseError
from appliance.sip.uri import SipUri, format_host, split_hostport

_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~")
_METHOD = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
# "SIP/2.0/UDP host", with the linear white space RFC 3261 allows around the slashes.
_SENT_PROTOCOL = re.compile(r"^\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.*)$", re.IGNORECASE | re.DOTALL)


def is_token(text: str) -> bool:
    return bool(text) and _TOKEN_CHARS.issuperset(text)


def split_list(value: str) -> list[str]:
    """Elements of a comma-separated header value; commas inside quotes or <...> do not split."""
    if "," not in value:
        stripped = value.strip()
        return [stripped] if stripped else []
    items: list[str] = []
    start = 0
    quoted = angle = escaped = False
    for i, c in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [item for item in items if item]


def unquote_string(text: str, where: str) -> tuple[str, int]:
    """The quoted string starting at text[0] == '"': its unescaped content and the index after it."""
    out: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise SipParseError(f"{where}: unterminated quoted string")


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Param:
    """A header parameter value that was written as a quoted string."""

    text: str


ParamValue = str | Param | None


def parse_params(text: str, where: str) -> dict[str, ParamValue]:
    """';a=b;c;d="x;y"' (leading ';' optional) into {name: value}; names lower-cased."""
    params: dict[str, ParamValue] = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in " \t;":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in "=; \t":
            j += 1
        name = text[i:j].lower()
        if not is_token(name):
            raise SipParseError(f"{where}: bad parameter name {text[i:j + 1]!r}")
        while j < n and text[j] in " \t":
            j += 1
        value: ParamValue = None
        if j < n and text[j] == "=":
            j += 1
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == '"':
                content, used = unquote_string(text[j:], where)
                value = Param(content)
                j += used
            else:
                k = j
                while k < n and text[k] not in "; \t":
                    k += 1
                value = text[j:k]
                if not value:
                    raise SipParseError(f"{where}: parameter {name!r} has an empty value")
                j = k
            while j < n and text[j] in " \t":
                j += 1
        if j < n and text[j] != ";":
            raise SipParseError(f"{where}: unexpected {text[j]!r} after parameter {name!r}")
        params[name] = value
        i = j
    return params


def format_params(params: dict[str, ParamValue]) -> str:
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif isinstance(value, Param):
            out.append(f";{name}={quote_string(value.text)}")
        else:
            out.append(f";{name}={value}")
    return "".join(out)


def param_text(params: dict[str, ParamValue], name: str) -> str | None:
    """A parameter's value as text (quoted or not); None when absent or without a value."""
    value = params.get(name)
    return value.text if isinstance(value, Param) else value


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route, Refer-To...: `"Name" <uri>;params` or `uri;params`."""

    uri: SipUri
    display: str | None = None
    params: dict[str, ParamValue] = field(default_factory=dict)
    wildcard: bool = False  # "Contact: *" (un-REGISTER of all bindings)

    @classmethod
    def parse(cls, text: str, where: str = "address") -> NameAddr:
        text = text.strip()
        if text == "*":
            return cls(SipUri(), wildcard=True)
        display: str | None = None
        rest = text
        if rest.startswith('"'):
            display, used = unquote_string(rest, where)
            rest = rest[used:].lstrip()
            if not rest.startswith("<"):
                raise SipParseError(f"{where}: a display name must be followed by <uri>")
        lt = rest.find("<")
        if lt >= 0:
            if display is None and lt > 0:
                display = " ".join(rest[:lt].split()) or None
            gt = rest.find(">", lt)
            if gt < 0:
                raise SipParseError(f"{where}: missing '>'")
            uri = SipUri.parse(rest[lt + 1 : gt])
            params = parse_params(rest[gt + 1 :], where)
        else:
            # addr-spec form: parameters after ';' belong to the header, not the URI (RFC 3261 20.10)
            uri_text, _, param_part = rest.partition(";")
            if "?" in uri_text or "," in uri_text:
                raise SipParseError(f"{where}: a URI with headers or commas needs <...>")
            uri = SipUri.parse(uri_text)
            params = parse_params(param_part, where)
        return cls(uri, display, params)

    def serialize(self) -> str:
        if self.wildcard:
            return "*"
        name = ""
        if self.display:
            name = (self.display if all(is_token(w) for w in self.display.split()) else quote_string(self.display))
            name += " "
        return f"{name}<{self.uri.serialize()}>{format_params(self.params)}"

    __str__ = serialize

    @property
    def tag(self) -> str | None:
        return param_text(self.params, "tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params={**self.params, "tag": tag})

    def param(self, name: str) -> str | None:
        return param_text(self.params, name)


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS, WS...
    host: str
    port: int | None = None
    params: dict[str, ParamValue] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        where = "Via"
        match = _SENT_PROTOCOL.match(text)
        if match is None:
            raise SipParseError(f"{where}: bad sent-protocol in {text[:80]!r}")
        rest = match.group(2)
        hostport, _, param_text_ = rest.partition(";")
        host, port = split_hostport("".join(hostport.split()), where)
        return cls(match.group(1).upper(), host, port, parse_params(param_text_, where))

    def serialize(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{format_params(self.params)}"

    __str__ = serialize

    @property
    def branch(self) -> str | None:
        return param_text(self.params, "branch")

    def with_params(self, **params: ParamValue) -> Via:
        return replace(self, params={**self.params, **params})


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        number, _, method = text.strip().partition(" ")
        method = method.strip()
        digits = number.isascii() and number.isdigit() and len(number) <= 10
        if not digits or int(number) >= 2**31 or not _METHOD.match(method):
            raise SipParseError(f"CSeq: expected 'number METHOD', got {text[:80]!r}")
        return cls(int(number), method)

    def serialize(self) -> str:
        return f"{self.seq} {self.method}"

    __str__ = serialize
