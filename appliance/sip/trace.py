"""The SIP trace: the messages the stack sent and received lately, by Call-ID, for the panel's Logs page.

The transports hand every message they send (`sent`) and the stack every message it parsed
(`received`; what fails to parse is not kept) to one `SipTrace`. Recording is a few dictionary and
list operations per message; nothing is formatted until someone reads the trace. Everything is
bounded: the text of a message, the messages of a Call-ID (the first half and the latest half are
kept, the ones between are counted), the Call-IDs (the least recently active go first) and the
bytes of all of them together. Used on the event loop only.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from appliance.sip.transport import Peer

TRACE_MESSAGE_BYTES = 16 * 1024  # of one message's text; the rest is cut
TRACE_MESSAGES_PER_CALL = 100  # per Call-ID: the first half and the latest half are kept
TRACE_CALLS = 500  # Call-IDs kept; the least recently active is forgotten first
TRACE_BYTES = 32 * 1024 * 1024  # all kept messages together (a bound below 500 x 100 x 16 KiB)

_HEADER_END = b"\r\n\r\n"
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class TracedMessage:
    seq: int  # the order messages were seen in, across Call-IDs
    time: float  # Unix time
    outgoing: bool
    peer: Peer
    call_id: str
    data: bytes  # at most TRACE_MESSAGE_BYTES
    cut: int  # bytes cut off the end

    @property
    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        return text + f"\n[{self.cut} more bytes not kept]" if self.cut else text

    @property
    def first_line(self) -> str:
        end = self.data.find(b"\r\n")
        return self.data[: end if end >= 0 else 200].decode("utf-8", errors="replace")


class _Call:
    __slots__ = ("dropped", "messages", "size")

    def __init__(self) -> None:
        self.messages: list[TracedMessage] = []
        self.dropped = 0  # messages left out between the first and the latest ones
        self.size = 0  # bytes of the kept messages


def call_id_of(data: bytes) -> str:
    """The Call-ID in a message's headers ('' if none)."""
    end = data.find(_HEADER_END)
    match = _CALL_ID.search(data, 0, end if end >= 0 else len(data))
    return match.group(1).decode("utf-8", errors="replace") if match else ""


class SipTrace:
    def __init__(self, now: Callable[[], float] = time.time, *, max_calls: int = TRACE_CALLS,
                 per_call: int = TRACE_MESSAGES_PER_CALL, message_bytes: int = TRACE_MESSAGE_BYTES,
                 max_bytes: int = TRACE_BYTES) -> None:
        self._now = now
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._seq = itertools.count(1)
        self._size = 0
        self.max_calls = max_calls
        self.per_call = max(per_call, 2)
        self.message_bytes = message_bytes
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._calls)

    @property
    def size(self) -> int:
        """Bytes of message text kept."""
        return self._size

    def received(self, call_id: str, data: bytes, peer: Peer) -> None:
        """A message the stack parsed (its Call-ID from the parsed headers)."""
        self._add(call_id, data, peer, False)

    def sent(self, data: bytes, peer: Peer) -> None:
        """A message the stack sends (its Call-ID read from its bytes)."""
        self._add(call_id_of(data), data, peer, True)

    def _add(self, call_id: str, data: bytes, peer: Peer, outgoing: bool) -> None:
        if not call_id:
            return
        cut = max(len(data) - self.message_bytes, 0)
        if cut:
            data = data[: self.message_bytes]
        message = TracedMessage(next(self._seq), self._now(), outgoing, peer, call_id, data, cut)
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call()
        else:
            self._calls.move_to_end(call_id)
        if len(call.messages) >= self.per_call:
            gone = call.messages.pop(self.per_call // 2)
            call.dropped += 1
            call.size -= len(gone.data)
            self._size -= len(gone.data)
        call.messages.append(message)
        call.size += len(data)
        self._size += len(data)
        while len(self._calls) > self.max_calls or (self._size > self.max_bytes and len(self._calls) > 1):
            _, oldest = self._calls.popitem(last=False)
            self._size -= oldest.size

    def messages(self, call_ids: Iterable[str]) -> list[TracedMessage]:
        """The kept messages of these Call-IDs, in the order they were seen."""
        found = [m for call_id in dict.fromkeys(call_ids) if (call := self._calls.get(call_id)) is not None
                 for m in call.messages]
        return sorted(found, key=lambda m: m.seq)

    def dropped(self, call_ids: Iterable[str]) -> int:
        """How many messages of these Call-IDs were left out (beyond TRACE_MESSAGES_PER_CALL each)."""
        calls = (self._calls.get(call_id) for call_id in dict.fromkeys(call_ids))
        return sum(call.dropped for call in calls if call is not None)

    def clear(self) -> None:
        self._calls.clear()
        self._size = 0
