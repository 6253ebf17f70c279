"""Logging set-up: journald when the box runs under systemd, else standard error."""

from __future__ import annotations

import logging
import os
import sys

JOURNAL_SOCKET = "/run/systemd/journal/socket"


def setup_logging(level: str = "info", *, stream_only: bool = False) -> None:
    handler: logging.Handler
    if not stream_only and os.path.exists(JOURNAL_SOCKET) and "JOURNAL_STREAM" in os.environ:
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="voxgate")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp logs every request at INFO: keep that for debugging only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
