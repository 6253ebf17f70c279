"""RTP port numbers: even ports from a configured range, each held by one leg until it ends.

A port is reserved by binding its socket and the RTCP socket on the odd port above (RFC 3550 11), so
another program on the box cannot take either between the SDP that announces them and the media that
uses them; the leg's endpoint reads and writes the sockets, the pool closes them.
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
        self._held: dict[int, tuple[socket.socket, socket.socket]] = {}

    def take(self, host: str) -> tuple[int, socket.socket, socket.socket]:
        """A free even port on `host`, with its bound (non-blocking) RTP and RTCP sockets."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        span = (self._last - self._first) // 2 + 1
        for _ in range(span):
            port = self._next
            self._next = self._first if port + 2 > self._last else port + 2
            if port in self._held:
                continue
            rtp = _bound(family, host, port)
            if rtp is None:
                continue
            rtcp = _bound(family, host, port + 1)
            if rtcp is None:
                rtp.close()
                continue
            self._held[port] = (rtp, rtcp)
            return port, rtp, rtcp
        raise NoPortsLeft(f"no free RTP port between {self._first} and {self._last}")

    def give_back(self, port: int) -> None:
        for sock in self._held.pop(port, ()):
            sock.close()

    @property
    def in_use(self) -> int:
        return len(self._held)


def _bound(family: socket.AddressFamily, host: str, port: int) -> socket.socket | None:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock
