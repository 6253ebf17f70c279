"""SIP messages (RFC 3261 section 7): requests, responses, their headers; parse and serialize.

`parse_message(data)` takes one whole message (a datagram, or what stream framing cut out) and
returns a `Request` or `Response`. Header lines are unfolded, compact names expanded, and list
headers (Via, Contact, Route...) split into one value per element, so `headers.get_all("via")` is
the Via list in order. Typed values (`Via`, `NameAddr`, `CSeq`) are parsed on demand by the
properties below; the transaction layer keeps what it reads.

A message whose start line and headers could be read but which breaks a rule (a missing mandatory
header, a bad CSeq) raises `BadMessage` carrying the message, so a 400 can still be answered.
"""

from __future__ import annotations

from collections.abc import Iterator

from appliance.sip.errors import SipParseError
from appliance.sip.headers import CSeq, NameAddr, Via, is_token, split_list
from appliance.sip.uri import SipUri

MAX_MESSAGE_BYTES = 65_535  # what fits a UDP datagram; stream transports refuse more too
MAX_HEADER_LINES = 128
MAX_BODY_BYTES = 32_768

COMPACT = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to",
    "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}
# Headers whose value is a comma-separated list (RFC 3261 section 7.3.1); others keep commas.
LIST_HEADERS = frozenset({
    "via", "contact", "route", "record-route", "allow", "supported", "require", "proxy-require",
    "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "content-encoding",
    "in-reply-to", "path", "service-route",
})
_SPELLING = {
    "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "mime-version": "MIME-Version",
    "rseq": "RSeq", "rack": "RAck", "p-asserted-identity": "P-Asserted-Identity",
}
MANDATORY = ("via", "from", "to", "call-id", "cseq")

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 301: "Moved Permanently", 302: "Moved Temporarily",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


_CANONICAL: dict[str, str] = {}  # spellings made so far (bounded: cleared when it grows large)


def canonical(name: str) -> str:
    """The usual spelling of a lower-case header name: 'call-id' -> 'Call-ID'."""
    spelled = _CANONICAL.get(name)
    if spelled is None:
        spelled = _SPELLING.get(name) or "-".join(part.capitalize() for part in name.split("-"))
        if len(_CANONICAL) >= 512:
            _CANONICAL.clear()
        _CANONICAL[name] = spelled
    return spelled


class Headers:
    """Header values by lower-case name, in order of first appearance; one value per list element."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, list[str]] = {}

    def get(self, name: str) -> str | None:
        values = self._items.get(name.lower())
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._items.get(name.lower(), ()))

    def set(self, name: str, *values: str) -> None:
        """Replace all values of `name` (none given: remove it)."""
        key = name.lower()
        if values:
            self._items[key] = list(values)
        else:
            self._items.pop(key, None)

    def add(self, name: str, value: str, first: bool = False) -> None:
        values = self._items.setdefault(name.lower(), [])
        if first:
            values.insert(0, value)
        else:
            values.append(value)

    def remove_first(self, name: str) -> str | None:
        values = self._items.get(name.lower())
        if not values:
            return None
        value = values.pop(0)
        if not values:
            del self._items[name.lower()]
        return value

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._items

    def items(self) -> Iterator[tuple[str, str]]:
        for name, values in self._items.items():
            for value in values:
                yield name, value

    def copy(self) -> Headers:
        other = Headers()
        other._items = {k: list(v) for k, v in self._items.items()}
        return other


class SipMessage:
    # _addrs and _vias keep the typed values parsed so far, by the header text they came from, so
    # each layer reading From or the top Via again costs a lookup; a changed header is parsed anew.
    __slots__ = ("_addrs", "_cseq", "_vias", "body", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self._addrs: dict[tuple[str, str], NameAddr] = {}
        self._vias: dict[str, Via] = {}
        self._cseq: tuple[str, CSeq] | None = None

    def start_line(self) -> str:
        raise NotImplementedError

    # Typed views of the headers every message has.

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id") or ""

    def _addr(self, text: str, where: str) -> NameAddr:
        key = (where, text)
        addr = self._addrs.get(key)
        if addr is None:
            addr = self._addrs[key] = NameAddr.parse(text, where)
        return addr

    def _via(self, text: str) -> Via:
        via = self._vias.get(text)
        if via is None:
            via = self._vias[text] = Via.parse(text)
        return via

    @property
    def cseq(self) -> CSeq:
        text = self.headers.get("cseq") or ""
        cached = self._cseq
        if cached is None or cached[0] != text:
            cached = self._cseq = (text, CSeq.parse(text))
        return cached[1]

    @property
    def from_addr(self) -> NameAddr:
        return self._addr(self.headers.get("from") or "", "From")

    @property
    def to_addr(self) -> NameAddr:
        return self._addr(self.headers.get("to") or "", "To")

    @property
    def vias(self) -> list[Via]:
        return [self._via(v) for v in self.headers.get_all("via")]

    @property
    def top_via(self) -> Via:
        return self._via(self.headers.get("via") or "")

    @property
    def contacts(self) -> list[NameAddr]:
        return [self._addr(v, "Contact") for v in self.headers.get_all("contact")]

    def addresses(self, name: str) -> list[NameAddr]:
        return [self._addr(v, name) for v in self.headers.get_all(name)]

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    def int_header(self, name: str) -> int | None:
        value = self.headers.get(name)
        if value is None:
            return None
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise SipParseError(f"{canonical(name)}: expected a number, got {value[:40]!r}")
        return int(value)

    def serialize(self) -> bytes:
        lines = [self.start_line()]
        lines += [f"{canonical(name)}: {value}" for name, value in self.headers.items() if name != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


class Request(SipMessage):
    __slots__ = ("method", "uri")

    def __init__(self, method: str, uri: SipUri, headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri.serialize()} SIP/2.0"

    def response(self, status: int, reason: str | None = None) -> Response:
        """A response with this request's Via, From, To, Call-ID and CSeq (RFC 3261 8.2.6.2)."""
        response = Response(status, reason)
        for name in ("via", "from", "to", "call-id", "cseq"):
            values = self.headers.get_all(name)
            if values:
                response.headers.set(name, *values)
        return response

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.call_id}>"


class Response(SipMessage):
    __slots__ = ("reason", "status")

    def __init__(
        self, status: int, reason: str | None = None, headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason if reason is not None else REASONS.get(status, "Unknown")

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.call_id}>"


class BadMessage(SipParseError):
    """The message could be read but breaks a rule; `message` is it, for answering 400."""

    def __init__(self, text: str, message: SipMessage) -> None:
        super().__init__(text)
        self.message = message


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head, rest = data[:end], data[end + 4 :]
    else:  # some implementations end lines with a bare LF (RFC 3261 7.5 tolerates it)
        end = data.find(b"\n\n")
        if end < 0:
            raise SipParseError("no empty line after the headers")
        head, rest = data[:end], data[end + 2 :]
    text = head.decode("utf-8", "surrogateescape")
    lines = text.replace("\r\n", "\n").split("\n")
    return lines, rest


def _start(line: str) -> SipMessage:
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != "SIP/2.0":
            raise SipParseError(f"unsupported version {version[:20]!r}")
        if len(code) != 3 or not (code.isascii() and code.isdigit()) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code in {line[:80]!r}")
        return Response(int(code), reason)
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError(f"bad request line {line[:80]!r}: expected 'METHOD URI SIP/2.0'")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError(f"bad method {method[:40]!r}")
    if version != "SIP/2.0":
        raise SipParseError(f"unsupported version {version[:20]!r}")
    return Request(method, SipUri.parse(uri_text))


def parse_message(data: bytes) -> Request | Response:
    """One message from bytes; SipParseError (or BadMessage, with the message) says what is wrong."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    data = data.lstrip(b"\r\n")  # RFC 3261 7.5: ignore CRLFs before the start line
    lines, rest = _split_head(data)
    if len(lines) > MAX_HEADER_LINES:
        raise SipParseError(f"more than {MAX_HEADER_LINES} header lines")
    message = _start(lines[0])
    items = message.headers._items
    # Join continuation lines to the header line they continue (RFC 3261 7.3.1).
    joined: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not joined:
                raise SipParseError("a continuation line before any header")
            joined[-1] += " " + line.strip()
        else:
            joined.append(line.strip())
    for line in joined:
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not is_token(name):
            raise SipParseError(f"bad header line {line[:80]!r}")
        name = COMPACT.get(name, name)
        value = value.strip()
        values = items.get(name)
        if values is None:
            values = items[name] = []
        if name in LIST_HEADERS:
            values += split_list(value)
            if not values:
                del items[name]
        else:
            values.append(value)

    length = message.headers.get("content-length")
    if length is not None:
        length = length.strip()
        if not (length.isascii() and length.isdigit()) or len(length) > 10:
            raise BadMessage(f"Content-Length: expected a number, got {length[:40]!r}", message)
        size = int(length)
        if size > len(rest):
            raise BadMessage(f"Content-Length says {size} bytes but {len(rest)} follow", message)
        rest = rest[:size]
    if len(rest) > MAX_BODY_BYTES:
        raise BadMessage(f"body larger than {MAX_BODY_BYTES} bytes", message)
    message.body = rest
    _check(message)
    assert isinstance(message, (Request, Response))
    return message


def _check(message: SipMessage) -> None:
    """The rules a message must keep before any layer looks at it (RFC 3261 8.1.1, 8.2)."""
    for name in MANDATORY:
        if name not in message.headers:
            raise BadMessage(f"missing {canonical(name)} header", message)
    for name in ("call-id", "cseq", "from", "to"):
        if len(message.headers.get_all(name)) > 1:
            raise BadMessage(f"more than one {canonical(name)} header", message)
    try:
        cseq = message.cseq
        message.vias  # noqa: B018 (all parsed to check them, not just the top one: RFC 4475 badinv01)
        message.contacts  # noqa: B018 (RFC 4475 regbadct: an addr-spec with '?' must be in <...>)
        from_addr, to_addr = message.from_addr, message.to_addr
        message.int_header("max-forwards")
        message.int_header("expires")
    except SipParseError as exc:
        raise BadMessage(str(exc), message) from None
    if from_addr.wildcard or to_addr.wildcard:
        raise BadMessage("From and To must be addresses", message)
    if not message.call_id:
        raise BadMessage("empty Call-ID", message)
    if isinstance(message, Request) and cseq.method != message.method:
        raise BadMessage(f"CSeq method {cseq.method} does not match the request's {message.method}", message)
