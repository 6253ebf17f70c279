"""A leg's RTP socket on the event loop.

So far it hears the keys a peer sends as RFC 4733 telephone events; the media plane's mixer will take
audio from the same socket. Packets are read as they come: a burst is drained in one go (bounded, so
one flooded socket cannot starve the loop), and anything that is not RTP is dropped.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from appliance.media.dtmf import DtmfError, DtmfReceiver
from appliance.media.rtp import RtpError, RtpPacket

MAX_DATAGRAM = 2048
READS_PER_WAKEUP = 32


class RtpStream:
    def __init__(self, sock: socket.socket, events_payload_type: Callable[[], int | None],
                 on_key: Callable[[str], None]) -> None:
        self._sock = sock
        self._events_payload_type = events_payload_type  # the negotiated telephone-event type, if any
        self._on_key = on_key
        self._dtmf = DtmfReceiver()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)
        self.packets = 0

    def _readable(self) -> None:
        for _ in range(READS_PER_WAKEUP):
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable reported on the socket: nothing to read
                return
            self._packet(data)

    def _packet(self, data: bytes) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        self.packets += 1
        events = self._events_payload_type()
        if events is None or packet.payload_type != events:
            return
        try:
            key = self._dtmf.receive(packet.ssrc, packet.timestamp, packet.payload)
        except DtmfError:
            return
        if key is not None:
            self._on_key(key)

    def close(self) -> None:
        """Stop reading; the socket itself belongs to the port pool, which closes it."""
        self._loop.remove_reader(self._sock.fileno())
