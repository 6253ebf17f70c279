"""Logging set-up: journald when the box runs under systemd, else standard error; and, beside either,
the system log ring: the daemon's latest records in memory, for the panel's Logs page (GetSystemLog)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice

JOURNAL_SOCKET = "/run/systemd/journal/socket"

SYSTEM_LOG_LINES = 2000  # records the ring keeps; older ones are dropped (and counted)
SYSTEM_LOG_MESSAGE_CHARS = 4096  # of one record's text (message and traceback); the rest is cut
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


@dataclass(frozen=True, slots=True)
class LogRecordCopy:
    seq: int  # 1, 2, ... in the order they were logged
    time: float  # Unix time
    level: int
    logger: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "time": self.time, "level": logging.getLevelName(self.level).lower(),
                "logger": self.logger, "message": self.message}


@dataclass(frozen=True)
class LogTail:
    """What `SystemLog.read` found: records oldest first, the `after` of the next poll, and how many
    records after the asked-for one were dropped from the ring before they could be read."""

    records: list[LogRecordCopy]
    last: int
    missed: int
    more: bool  # `count` cut the answer short: poll again at once


class SystemLog(logging.Handler):
    """The last SYSTEM_LOG_LINES records, each with a sequence number. Any thread may log or read."""

    def __init__(self, lines: int = SYSTEM_LOG_LINES, message_chars: int = SYSTEM_LOG_MESSAGE_CHARS) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(message)s"))  # with the traceback, if any
        self.message_chars = message_chars
        self._records: deque[LogRecordCopy] = deque(maxlen=lines)
        self._last = 0  # the newest record's sequence number
        self._guard = threading.Lock()  # the ring's own: emit, add and read, from any thread

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format string must not break logging
            text = f"{record.msg!r} {record.args!r}"
        if len(text) > self.message_chars:
            text = text[: self.message_chars] + f"… [{len(text) - self.message_chars} characters cut]"
        with self._guard:
            self._append(record.created, record.levelno, record.name, text)

    def add(self, level: int, logger: str, message: str, when: float | None = None) -> None:
        """A record from outside the logging module (tests, imports)."""
        with self._guard:
            self._append(time.time() if when is None else when, level, logger, message)

    def _append(self, when: float, level: int, logger: str, message: str) -> None:
        self._last += 1
        self._records.append(LogRecordCopy(self._last, when, level, logger, message))

    @property
    def last(self) -> int:
        with self._guard:
            return self._last

    def read(self, after: int = 0, count: int = 200, min_level: int = logging.NOTSET) -> LogTail:
        """Up to `count` records with sequence numbers above `after`, at `min_level` or above."""
        with self._guard:
            first = self._last - len(self._records) + 1  # the oldest kept
            after = max(min(after, self._last), 0)  # a cursor from before a restart starts again at the end
            missed = max(first - 1 - after, 0)
            found: list[LogRecordCopy] = []
            last = self._last
            for record in islice(self._records, max(after - first + 1, 0), None):
                if record.level < min_level:
                    continue
                if len(found) == count:
                    last = found[-1].seq
                    break
                found.append(record)
            return LogTail(found, last, missed, last < self._last)


def setup_logging(level: str = "info", *, stream_only: bool = False) -> SystemLog:
    """Log to journald or standard error, and to a new system log ring, which is returned."""
    handler: logging.Handler
    if not stream_only and os.path.exists(JOURNAL_SOCKET) and "JOURNAL_STREAM" in os.environ:
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="voxgate")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ring = SystemLog()
    root = logging.getLogger()
    root.handlers[:] = [handler, ring]
    root.setLevel(level.upper())
    # aiohttp logs every request at INFO: keep that for debugging only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return ring
