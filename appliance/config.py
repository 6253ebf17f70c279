"""The appliance's configuration: a TOML file whose every key has a default.

Unknown sections or keys and values of the wrong type are refused with the key's name, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.supervisor.metrics import MIN_SAMPLE_SECONDS, SAMPLE_SECONDS

DEFAULT_DATA_DIR = Path("/var/lib/voxgate")
SIM_DATA_DIR = Path("data")


@dataclass
class ApplianceSection:
    name: str = "voxgate"
    data_dir: str = ""
    # Apply the panel's system settings (time zone: `timedatectl set-timezone`) to the host. Off by default:
    # only a real box owns its system; in simulation and tests the settings are kept in the store only.
    apply_system_settings: bool = False


@dataclass
class HttpSection:
    listen: str = "0.0.0.0:8080"
    # HTTPS with the box's own certificate (DATA_DIR/tls/cert.pem); Voximplant's clients speak only HTTPS.
    # Empty: no HTTPS.
    https_listen: str = "0.0.0.0:8443"
    # Base of the URLs handed to scenarios (session access URL, log URL). Empty: taken from the
    # request that started the session, else from this box's own address.
    public_url: str = ""


@dataclass
class EngineSection:
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))


@dataclass
class SipSection:
    listen: str = "0.0.0.0:5060"  # UDP and TCP; TLS on the next port
    tls: bool = True
    rtp_ports: str = "10000-19998"
    # Flood and password-guessing protection (appliance.sip.guard)
    flood_requests: int = 16
    flood_seconds: float = 2.0
    ban_seconds: float = 300.0
    register_failures: int = 5
    lockout_seconds: float = 600.0
    trusted: list[str] = field(default_factory=list)  # networks never banned (proxies, trunks)
    # Challenges offered to phones, in this order. MD5 alone by default: many deployed phones and tools
    # (libre/baresip 1.x, sipp 3.6) give up on a 401 that offers SHA-256 at all. ["SHA-256", "MD5"] for
    # RFC 8760 phones.
    digest_algorithms: list[str] = field(default_factory=lambda: ["MD5"])


@dataclass
class ApiSection:
    """Management API rate limits: requests per second sustained after a burst, per key and per source."""

    rate_per_key: float = 20.0
    burst_per_key: float = 100.0
    rate_per_source: float = 40.0
    burst_per_source: float = 200.0
    auth_failures_per_minute: float = 10.0  # then the source must wait, whatever key it shows


@dataclass
class DiscoverySection:
    """mDNS/DNS-SD announcement of the box (_voxgate._tcp) for `voxpush discover` and the panel."""

    enabled: bool = True
    interfaces: list[str] = field(default_factory=list)  # addresses to announce on; empty: all


@dataclass
class MonitorSection:
    """The dashboard's figures (appliance.supervisor.metrics): a sample every sample_seconds, the last hour kept."""

    sample_seconds: float = SAMPLE_SECONDS


@dataclass
class LogSection:
    level: str = "info"


@dataclass
class Config:
    appliance: ApplianceSection = field(default_factory=ApplianceSection)
    http: HttpSection = field(default_factory=HttpSection)
    engine: EngineSection = field(default_factory=EngineSection)
    sip: SipSection = field(default_factory=SipSection)
    api: ApiSection = field(default_factory=ApiSection)
    discovery: DiscoverySection = field(default_factory=DiscoverySection)
    log: LogSection = field(default_factory=LogSection)
    monitor: MonitorSection = field(default_factory=MonitorSection)

    def data_dir(self, sim: bool) -> Path:
        if self.appliance.data_dir:
            return Path(self.appliance.data_dir)
        return SIM_DATA_DIR if sim else DEFAULT_DATA_DIR


def parse_address(text: str, what: str) -> tuple[str, int]:
    """'HOST:PORT' or '[V6]:PORT' into (host, port)."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        bad_host = not host or "[" in host or "]" in host
    else:  # an IPv6 address needs its brackets: "::1:5060" is ambiguous
        bad_host = any(c in host for c in ":[]")
    if not sep or bad_host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what}: expected ADDRESS:PORT (or [IPV6]:PORT), got {text!r}")
    return host or "0.0.0.0", int(port)


def _fill(section: Any, values: dict[str, Any], where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(fields))})")
        expected = type(getattr(section, key))
        given = float(value) if expected is float and type(value) is int else value
        if type(given) is not expected:
            raise ConfigError(f"{where}.{key}: expected {expected.__name__}, got {type(value).__name__}")
        setattr(section, key, given)


def load_config(path: Path | None) -> Config:
    """Read a TOML file over the defaults; no file means all defaults."""
    config = Config()
    if path is None:
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    sections = {f.name for f in dataclasses.fields(config)}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"{path}: unknown section [{name}] (known: {', '.join(sorted(sections))})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {name} must be a [section]")
        _fill(getattr(config, name), values, f"{path}: [{name}]")
    if config.engine.workers < 1:
        raise ConfigError(f"{path}: [engine].workers must be at least 1")
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{path}: [log].level must be debug, info, warning or error")
    parse_address(config.http.listen, f"{path}: [http].listen")
    if config.http.https_listen:
        parse_address(config.http.https_listen, f"{path}: [http].https_listen")
    for name in ("rate_per_key", "rate_per_source"):
        if getattr(config.api, name) <= 0:
            raise ConfigError(f"{path}: [api].{name} must be positive")
    for name in ("burst_per_key", "burst_per_source", "auth_failures_per_minute"):
        if getattr(config.api, name) < 1:
            raise ConfigError(f"{path}: [api].{name} must be at least 1")
    if config.monitor.sample_seconds < MIN_SAMPLE_SECONDS:
        raise ConfigError(f"{path}: [monitor].sample_seconds must be at least {MIN_SAMPLE_SECONDS}")
    parse_address(config.sip.listen, f"{path}: [sip].listen")
    parse_port_range(config.sip.rtp_ports, f"{path}: [sip].rtp_ports")
    return config


def parse_port_range(text: str, what: str) -> tuple[int, int]:
    """'10000-19998' into (10000, 19998)."""
    first, dash, last = text.partition("-")
    if not dash or not first.isdigit() or not last.isdigit() or not 1024 <= int(first) < int(last) <= 65535:
        raise ConfigError(f"{what}: expected FIRST-LAST ports between 1024 and 65535, got {text!r}")
    return int(first), int(last)
