"""A session's log file: what its scripts wrote and what the engine noted about it.

Written only from the session's worker thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

LineSink = Callable[[str, bool], None]
"""sink(text, system): also receives every line (the harness prints the script's ones)."""


class SessionLog:
    def __init__(self, path: Path | None, sink: LineSink | None = None) -> None:
        self.path = path
        self._sink = sink
        self._file: TextIO | None = None

    def write(self, text: str, system: bool, at: float) -> None:
        if self._sink is not None:
            self._sink(text, system)
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        stamp = datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        prefix = "engine: " if system else ""
        self._file.write(f"{stamp} {prefix}{text}\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
