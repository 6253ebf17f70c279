"""Box settings (the panel's Settings page), kept in the store's key/value `settings` table.

Each setting has a name, a check and a default; a setting never set has its default. Values are checked
here, so nothing invalid is ever stored, whoever writes it (the management API, a restored backup):

* `box_name`: the box's network name (mDNS `<name>.local`, the TLS certificate's name): 1 to 63 of
  [a-z0-9-], neither starting nor ending with '-'. Default: the configuration's `[appliance] name`.
  Read at start: a change takes effect when the daemon restarts.
* `time_zone`: an IANA zone name (`Europe/Berlin`), one of `zoneinfo.available_timezones()`. Default:
  the system's zone (TZ, /etc/timezone, /etc/localtime), else UTC.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from appliance.store.db import Database, StoreError

BOX_NAME_MAX_CHARS = 63  # one DNS label
BOX_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
DEFAULT_TIME_ZONE = "UTC"
ZONEINFO_DIRS = ("/usr/share/zoneinfo/", "/usr/lib/zoneinfo/", "/usr/share/lib/zoneinfo/")

KEY_BOX_NAME = "box_name"
KEY_TIME_ZONE = "time_zone"


@dataclass(frozen=True)
class BoxSettings:
    box_name: str
    time_zone: str
    box_name_is_default: bool
    time_zone_is_default: bool


def check_box_name(name: str) -> str:
    """The name if it can be the box's network name, else StoreError naming `box_name`."""
    if not 1 <= len(name) <= BOX_NAME_MAX_CHARS:
        raise StoreError(f"box_name: 1 to {BOX_NAME_MAX_CHARS} characters, not {len(name)}")
    if not BOX_NAME.fullmatch(name):
        raise StoreError(f"box_name: {name[:63]!r} is not a host name: use lowercase letters a-z, digits and '-' "
                         "(not first or last)")
    return name


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(zone: str) -> str:
    """The zone if it is an IANA time zone name this system knows, else StoreError naming `time_zone`."""
    if zone not in _zones():
        raise StoreError(f"time_zone: {zone[:64]!r} is not an IANA time zone name (such as Europe/Berlin or UTC)")
    return zone


def system_time_zone() -> str:
    """The system's zone: TZ, /etc/timezone, the target of /etc/localtime; UTC when none is a known name."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError, UnicodeDecodeError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    try:
        target = os.path.realpath("/etc/localtime")
        for folder in ZONEINFO_DIRS:
            if target.startswith(folder):
                candidates.append(target[len(folder):])
    except OSError:
        pass
    zones = _zones()
    for zone in candidates:
        if zone in zones:
            return "UTC" if zone in ("Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu") else zone
    return DEFAULT_TIME_ZONE


class SettingsStore:
    """Typed access to the `settings` table; used on the store's thread."""

    def __init__(self, db: Database, default_box_name: str) -> None:
        self.db = db
        self.default_box_name = default_box_name

    def _get(self, key: str) -> str | None:
        rows = self.db.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def _put(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO settings (key, value, modified) VALUES (?, ?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value, modified = excluded.modified",
                        (key, value, time.time()))

    def box_name(self) -> str:
        return self._get(KEY_BOX_NAME) or self.default_box_name

    def time_zone(self) -> str:
        """The stored zone, or the system's; a stored zone this system no longer knows counts as unset."""
        zone = self._get(KEY_TIME_ZONE)
        return zone if zone is not None and zone in _zones() else system_time_zone()

    def get(self) -> BoxSettings:
        name, zone = self._get(KEY_BOX_NAME), self._get(KEY_TIME_ZONE)
        zone_ok = zone is not None and zone in _zones()
        return BoxSettings(name or self.default_box_name, zone if zone is not None and zone_ok else system_time_zone(),
                           box_name_is_default=not name, time_zone_is_default=not zone_ok)

    def set(self, *, box_name: str | None = None, time_zone: str | None = None) -> BoxSettings:
        """Check every value given, then store them (nothing is stored if one is wrong)."""
        if box_name is not None:
            check_box_name(box_name)
        if time_zone is not None:
            check_time_zone(time_zone)
        with self.db.transaction():
            if box_name is not None:
                self._put(KEY_BOX_NAME, box_name)
            if time_zone is not None:
                self._put(KEY_TIME_ZONE, time_zone)
        return self.get()
