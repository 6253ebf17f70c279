"""SIP transports: UDP datagrams, TCP and TLS streams (RFC 3261 section 18), on the event loop.

Everything that arrives is handed to one callback as `(data, peer, connection)`, one whole message
at a time; stream transports cut messages out by Content-Length first. Sending is by `Peer`: UDP
goes from the listening socket of the peer's address family (so replies come from the port phones
registered to), TCP and TLS reuse a connection to the peer or open one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from appliance.sip.message import MAX_MESSAGE_BYTES
from appliance.tasks import TaskSet

if TYPE_CHECKING:
    from appliance.sip.trace import SipTrace

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
MAX_CONNECTIONS = 1024  # inbound stream connections at once; more are refused
IDLE_CONNECTION_SECONDS = 600.0  # an inbound connection that carries nothing for this long is closed
PORT_ATTEMPTS = 20  # with port 0: tries at finding a port free for both UDP and TCP
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message comes from or goes to."""

    transport: str  # "udp", "tcp" or "tls"
    host: str  # an IP address
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


Receiver = Callable[[bytes, Peer, "StreamConnection | None"], None]


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def family_of(host: str) -> int:
    """The address family of an IP literal (peers are always literals: names are resolved before)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receive: Receiver) -> None:
        self.receive = receive
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not a subclass of asyncio.DatagramTransport, only alike.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if len(data) < 4:  # keep-alives (CRLF pairs) and noise
            return
        self.receive(data, Peer("udp", addr[0], addr[1]), None)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)  # ICMP port unreachable from a phone that went away


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection; cuts the byte stream into messages."""

    def __init__(self, owner: Transports, kind: str, inbound: bool) -> None:
        self.owner = owner
        self.kind = kind
        self.inbound = inbound
        self.peer: Peer | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host, port = self.transport.get_extra_info("peername")[:2]
        self.peer = Peer(self.kind, host, port)
        if self.inbound and len(self.owner.connections) >= MAX_CONNECTIONS:
            log.warning("refusing %s: %d connections open", self.peer, MAX_CONNECTIONS)
            self.transport.abort()
            return
        self.owner.connections[self.peer] = self
        self._touch()

    def _touch(self) -> None:
        if self.inbound:
            if self._idle is not None:
                self._idle.cancel()
            self._idle = asyncio.get_running_loop().call_later(IDLE_CONNECTION_SECONDS, self.close)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._touch()
        while self._buffer and self.transport is not None:
            # RFC 5626 keep-alive: a CRLF CRLF ping gets a CRLF pong; stray CRLFs are skipped.
            if self._buffer.startswith(b"\r\n\r\n"):
                del self._buffer[:4]
                self.transport.write(b"\r\n")
                continue
            if self._buffer.startswith(b"\r\n"):
                del self._buffer[:2]
                continue
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    self._abort("headers too long")
                return
            match = _CONTENT_LENGTH.search(self._buffer, 0, end + 2)
            if match is None:  # mandatory on streams (RFC 3261 18.3): we cannot find the end
                self._abort("message without Content-Length")
                return
            total = end + 4 + int(match.group(1))
            if total > MAX_MESSAGE_BYTES:
                self._abort(f"message of {total} bytes")
                return
            if len(self._buffer) < total:
                return
            message = bytes(self._buffer[:total])
            del self._buffer[:total]
            assert self.peer is not None
            self.owner.receive(message, self.peer, self)

    def _abort(self, why: str) -> None:
        log.info("closing %s: %s", self.peer, why)
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.peer is not None and self.owner.connections.get(self.peer) is self:
            del self.owner.connections[self.peer]
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)


class Transports:
    """The listening sockets and stream connections of the SIP stack."""

    def __init__(self, receive: Receiver, client_tls: ssl.SSLContext | None = None) -> None:
        self.receive = receive
        self.connections: dict[Peer, StreamConnection] = {}
        self.local: dict[tuple[str, int], tuple[str, int]] = {}  # (transport, family) -> listening address
        self._udp: dict[int, asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.Server] = []
        self._client_tls = client_tls
        self._pending: dict[Peer, list[bytes]] = {}
        self._tasks = TaskSet("sip transports")
        self.trace: SipTrace | None = None  # keeps what is sent (the stack adds what it parsed)

    async def listen(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        """UDP and TCP on host:port (port 0: one free port for both), and TLS on the next port."""
        loop = asyncio.get_running_loop()
        family = family_of(host)
        for attempt in range(PORT_ATTEMPTS):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self.receive), local_addr=(host, port), family=family
            )
            bound = transport.get_extra_info("sockname")[1]
            try:
                server = await loop.create_server(lambda: StreamConnection(self, "tcp", True), host, bound)
                break
            except OSError:
                transport.close()
                if port != 0 or attempt == PORT_ATTEMPTS - 1:
                    raise
                # the free UDP port is taken for TCP: try another
        self._udp[family] = transport
        self._servers.append(server)
        self.local[("udp", family)] = (host, bound)
        self.local[("tcp", family)] = (host, bound)
        if tls is not None:
            tls_server = await loop.create_server(
                lambda: StreamConnection(self, "tls", True), host, bound + 1, ssl=tls
            )
            self._servers.append(tls_server)
            self.local[("tls", family)] = (host, bound + 1)

    def address(self, transport: str, host: str) -> tuple[str, int]:
        """Our listening address for talking to `host` over `transport` (for Via and Contact)."""
        family = family_of(host)
        local = self.local.get((transport, family)) or self.local.get((transport, socket.AF_INET))
        if local is None:
            raise ConnectionError(f"not listening for SIP over {transport}")
        return local

    def send(self, data: bytes, peer: Peer, failed: Callable[[], None] | None = None) -> None:
        """Send now, or as soon as a stream connection is open; `failed` hears of a refused connection."""
        if self.trace is not None:
            self.trace.sent(data, peer)
        if peer.transport == "udp":
            udp = self._udp.get(family_of(peer.host))
            if udp is None:
                if failed is not None:
                    failed()
                return
            udp.sendto(data, (peer.host, peer.port))
            return
        connection = self.connections.get(peer)
        if connection is not None:
            connection.send(data)
            return
        queued = self._pending.get(peer)
        if queued is not None:
            queued.append(data)
            return
        self._pending[peer] = [data]
        self._tasks.spawn(self._connect(peer, failed))

    async def _connect(self, peer: Peer, failed: Callable[[], None] | None) -> None:
        loop = asyncio.get_running_loop()
        tls = peer.transport == "tls"
        if tls and self._client_tls is None:
            self._client_tls = ssl.create_default_context()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: StreamConnection(self, peer.transport, False), peer.host, peer.port,
                    ssl=self._client_tls if tls else None,
                ),
                CONNECT_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.info("cannot connect to %s: %s", peer, exc)
            self._pending.pop(peer, None)
            if failed is not None:
                failed()
            return
        # Registered under the address we dialled, which is how later sends look it up.
        self.connections[peer] = connection
        for data in self._pending.pop(peer, []):
            connection.send(data)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for udp in self._udp.values():
            udp.close()
        for connection in list(self.connections.values()):
            connection.close()
        await self._tasks.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._udp.clear()
