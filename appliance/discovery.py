"""LAN discovery: the box announces itself over mDNS/DNS-SD as a `_voxgate._tcp` service.

The TXT record says where its API and panel are and which certificate it presents, so `voxpush
discover` can list boxes and pin the right certificate. The instance name carries a short id kept in
the data directory: two boxes flashed from one image never announce the same name.
"""

from __future__ import annotations

import logging
import secrets
import socket
from pathlib import Path

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from appliance import __version__

log = logging.getLogger(__name__)

SERVICE_TYPE = "_voxgate._tcp.local."
ID_FILE = "box-id"


def box_id(data_dir: Path) -> str:
    """A short id made on first start and kept: tells boxes of the same name apart."""
    path = data_dir / ID_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    text = secrets.token_hex(2)
    path.write_text(text + "\n", encoding="ascii")
    return text


def _addresses(interfaces: list[str]) -> list[str]:
    """IPv4 addresses to announce: the configured ones, else every adapter's (loopback left out)."""
    if interfaces:
        return interfaces
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                found.append(ip.ip)
    return found


class Announcer:
    def __init__(self, name: str, data_dir: Path, *, https_port: int | None, http_port: int,
                 fingerprint: str, interfaces: list[str]) -> None:
        self.instance = f"{name}-{box_id(data_dir)}"
        self.addresses = _addresses(interfaces)
        self.interfaces = interfaces
        port = https_port or http_port
        self.info = ServiceInfo(
            SERVICE_TYPE, f"{self.instance}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in self.addresses], port=port,
            server=f"{self.instance}.local.",
            properties={"name": name, "api": "/platform_api", "https": str(https_port or ""), "http": str(http_port),
                        "fp": fingerprint, "version": __version__},
        )
        self._zeroconf: AsyncZeroconf | None = None

    async def start(self) -> None:
        if not self.addresses:
            log.warning("mDNS: no IPv4 address to announce the box on")
            return
        self._zeroconf = AsyncZeroconf(interfaces=self.interfaces or InterfaceChoice.All,
                                        ip_version=IPVersion.V4Only)
        # allow_name_change: a clash with another box's instance name is resolved by zeroconf, not fatal.
        await self._zeroconf.async_register_service(self.info, allow_name_change=True)
        log.info("mDNS: announced %s on %s", self.info.name, ", ".join(self.addresses))

    async def close(self) -> None:
        if self._zeroconf is not None:
            await self._zeroconf.async_unregister_all_services()
            await self._zeroconf.async_close()
            self._zeroconf = None
