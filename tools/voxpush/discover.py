"""`voxpush discover`: boxes on the LAN, from their DNS-SD announcements (_voxgate._tcp.local.)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

from tools.voxpush.api import VoxpushError, host_label, normalize_fingerprint

SERVICE_TYPE = "_voxgate._tcp.local."


@dataclass(frozen=True)
class Found:
    name: str
    address: str
    port: int
    fingerprint: str
    version: str

    def line(self) -> str:
        return f"{self.name}  {host_label(self.address, self.port)}  {self.fingerprint}  {self.version}".rstrip()


class _Listener(ServiceListener):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.changed = threading.Event()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)
        self.changed.set()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.add_service(zc, type_, name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.discard(name)


def _text(props: dict[bytes, bytes | None], key: str) -> str:
    value = props.get(key.encode())
    return value.decode("utf-8", errors="replace") if value else ""


def discover(timeout: float, interface: str | None = None) -> list[Found]:
    """Browse for TIMEOUT seconds; every box that answered, resolved to address, port and fingerprint."""
    try:
        zc = Zeroconf(interfaces=[interface], ip_version=IPVersion.V6Only if ":" in interface else IPVersion.V4Only) \
            if interface else Zeroconf()
    except OSError as exc:
        raise VoxpushError(f"cannot browse mDNS{' on ' + interface if interface else ''}: {exc}") from None
    listener = _Listener()
    found: dict[str, Found] = {}
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, listener)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            listener.changed.wait(left)
            listener.changed.clear()
            for name in sorted(listener.names - found.keys()):
                info = zc.get_service_info(SERVICE_TYPE, name, timeout=int(max(left, 0.5) * 1000))
                addresses = info.parsed_addresses() if info else []
                if info is None or not addresses or info.port is None:
                    continue
                props = info.properties
                port = int(_text(props, "https") or info.port)
                fp = _text(props, "fp")
                try:
                    fp = normalize_fingerprint(fp)
                except VoxpushError:
                    fp = fp or "(no fingerprint)"
                box_name = _text(props, "name") or name.removesuffix("." + SERVICE_TYPE)
                found[name] = Found(box_name, addresses[0], port, fp, _text(props, "version"))
        browser.cancel()
    finally:
        zc.close()
    return sorted(found.values(), key=lambda f: (f.name, f.address, f.port))
