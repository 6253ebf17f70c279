"""systemd's notify protocol: READY/STATUS/STOPPING, and WATCHDOG pings from the event loop.

The pings come from a timer on the event loop itself, so a wedged loop stops them and systemd
restarts the daemon; so does a media tick that stopped ticking (the `healthy` check). Without
NOTIFY_SOCKET (not under systemd) nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from systemd import daemon

log = logging.getLogger(__name__)


def notify(state: str) -> None:
    if os.environ.get("NOTIFY_SOCKET"):
        daemon.notify(state)


def watchdog_interval() -> float | None:
    """Half of WATCHDOG_USEC in seconds, if systemd asked this process for pings."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Watchdog:
    """Pings systemd from the event loop while it runs; `close()` stops and awaits the pinger."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self, healthy: Callable[[], bool] = lambda: True) -> None:
        interval = watchdog_interval()
        if interval is not None and os.environ.get("NOTIFY_SOCKET"):
            self._task = asyncio.get_running_loop().create_task(self._ping(interval, healthy))

    async def _ping(self, interval: float, healthy: Callable[[], bool]) -> None:
        while True:
            if healthy():
                notify("WATCHDOG=1")
            else:
                log.error("not pinging the watchdog: the media tick has stopped")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
