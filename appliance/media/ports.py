"""RTP port numbers: even ports from a configured range, each held by one leg until it ends.

A port is reserved by binding its socket, so another program on the box cannot take it between the
SDP that announces it and the media that uses it; the media plane takes the socket over.
"""

from __future__ import annotations

import socket

from appliance.errors import ApplianceError

RTP_PORT_FIRST = 10_000
RTP_PORT_LAST = 19_998  # even: RTCP takes the odd port above


class NoPortsLeft(ApplianceError):
    pass


class RtpPorts:
    def __init__(self, first: int = RTP_PORT_FIRST, last: int = RTP_PORT_LAST) -> None:
        self._first = first + first % 2
        self._last = last
        self._next = self._first
        self._held: dict[int, socket.socket] = {}

    def take(self, host: str) -> tuple[int, socket.socket]:
        """A free even port on `host`, with its bound (non-blocking) UDP socket."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        span = (self._last - self._first) // 2 + 1
        for _ in range(span):
            port = self._next
            self._next = self._first if port + 2 > self._last else port + 2
            if port in self._held:
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            self._held[port] = sock
            return port, sock
        raise NoPortsLeft(f"no free RTP port between {self._first} and {self._last}")

    def give_back(self, port: int) -> None:
        sock = self._held.pop(port, None)
        if sock is not None:
            sock.close()

    @property
    def in_use(self) -> int:
        return len(self._held)
