"""The panel's Settings page, as management API methods (the panel calls these, nothing else):

GetBoxSettings, SetBoxSettings (the box's network name and time zone, kept in the store),
GetClockStatus (the clock, its zone and NTP state: JWTs and call history depend on it),
GetBackup and RestoreBackup (the whole configuration as one file, appliance/backup.py).

The host's own settings (the time zone, through `timedatectl set-timezone`) are applied only when
`[appliance] apply_system_settings` is true: on a real box, never in simulation or tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import logging
import shutil
import time
import zoneinfo
from typing import Any

from appliance import backup
from appliance.store.settings import BoxSettings, SettingsStore
from appliance.web.api import ERR_PARAMETER, Api, ApiError, Method, Params, Reload, api_date

log = logging.getLogger(__name__)

TIMEDATECTL = "timedatectl"
COMMAND_TIMEOUT = 5.0  # seconds a timedatectl call may take before it is killed and reported
SANE_YEAR = 2024  # a clock before this is wrong (no RTC, no NTP yet): tokens and call times would be too
LOCAL_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def _settings(api: Api) -> SettingsStore:
    return SettingsStore(api.db, api.account_name)



async def run_command(*args: str) -> tuple[int, str, str]:
    """(exit status, standard output, standard error) of a command; OSError if it cannot start,
    TimeoutError (after killing it) if it outlives COMMAND_TIMEOUT."""
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# Box settings


def get_box_settings(api: Api, p: Params) -> dict[str, Any]:
    settings = _settings(api).get()
    return {"result": {"box_name": settings.box_name, "time_zone": settings.time_zone,
                       "box_name_is_default": settings.box_name_is_default,
                       "time_zone_is_default": settings.time_zone_is_default,
                       "apply_system_settings": api.apply_system_settings}}


async def _apply_time_zone(zone: str) -> str:
    """`timedatectl set-timezone ZONE`; '' when done, else why not."""
    if shutil.which(TIMEDATECTL) is None:
        return f"{TIMEDATECTL} is not installed"
    try:
        status, _out, err = await run_command(TIMEDATECTL, "set-timezone", zone)
    except (OSError, TimeoutError) as exc:
        return f"{TIMEDATECTL} failed: {exc or 'timed out'}"
    if status != 0:
        return f"{TIMEDATECTL} set-timezone failed: {_first_line(err) or f'exit status {status}'}"
    return ""


async def set_box_settings(api: Api, p: Params) -> dict[str, Any]:
    """box_name and/or time_zone. A new box_name is announced (mDNS, certificate) after a restart."""
    box_name, time_zone = p.optional_text("box_name"), p.optional_text("time_zone")
    if box_name is None and time_zone is None:
        raise ApiError(400, ERR_PARAMETER, "give box_name or time_zone (or both)")
    store = _settings(api)

    def change() -> tuple[str, BoxSettings]:
        before = store.box_name()
        return before, store.set(box_name=box_name, time_zone=time_zone)

    before, settings = await api.db.call(change)
    answer: dict[str, Any] = {
        "result": 1, "box_name": settings.box_name, "time_zone": settings.time_zone,
        "restart_required": box_name is not None and box_name != before,
    }
    if time_zone is not None and api.apply_system_settings:
        problem = await _apply_time_zone(time_zone)
        answer["time_zone_applied"] = not problem
        if problem:
            log.warning("time zone %s kept, but not applied to the system: %s", time_zone, problem)
            answer["time_zone_error"] = problem
    return answer


# Clock


async def ntp_status(command: str = TIMEDATECTL) -> dict[str, Any]:
    """NTP state from `timedatectl show`: ntp is "synchronized", "not synchronized", "off" or "unknown"
    (then ntp_reason says why: no timedatectl, no systemd-timedated in simulation...). Never raises."""
    unknown: dict[str, Any] = {"ntp": "unknown", "ntp_enabled": None, "ntp_synchronized": None,
                               "system_time": "", "ntp_reason": ""}
    if shutil.which(command) is None:
        return {**unknown, "ntp_reason": f"{command} is not installed (no systemd time service)"}
    try:
        status, out, err = await run_command(command, "show", "--property=NTP", "--property=NTPSynchronized",
                                             "--property=TimeUSec")
    except TimeoutError:
        return {**unknown, "ntp_reason": f"{command} show did not answer within {COMMAND_TIMEOUT:g} s"}
    except OSError as exc:
        return {**unknown, "ntp_reason": f"{command} show cannot run: {exc.strerror or exc}"}
    if status != 0:
        why = _first_line(err) or _first_line(out) or f"exit status {status}"
        return {**unknown, "ntp_reason": f"{command} show failed: {why}"}
    values = {}
    for line in out.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    if "NTP" not in values or "NTPSynchronized" not in values:
        return {**unknown, "ntp_reason": f"{command} show did not report NTP and NTPSynchronized"}
    enabled, synchronized = values["NTP"] == "yes", values["NTPSynchronized"] == "yes"
    state = "synchronized" if synchronized else ("not synchronized" if enabled else "off")
    return {"ntp": state, "ntp_enabled": enabled, "ntp_synchronized": synchronized,
            "system_time": values.get("TimeUSec", ""), "ntp_reason": ""}


def _offset(delta: datetime.timedelta | None) -> tuple[str, int]:
    seconds = int(delta.total_seconds()) if delta is not None else 0
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}", seconds


async def get_clock_status(api: Api, p: Params) -> dict[str, Any]:
    zone_name = await api.db.call(_settings(api).time_zone)
    now = time.time()
    local = datetime.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(zone_name))
    offset, offset_seconds = _offset(local.utcoffset())
    year = time.gmtime(now).tm_year
    status = {
        "now_unix": round(now, 3), "now": api_date(now), "local_time": local.strftime(LOCAL_DATE_FORMAT),
        "time_zone": zone_name, "utc_offset": offset, "utc_offset_seconds": offset_seconds,
        "clock_sane": year >= SANE_YEAR,
        "clock_warning": "" if year >= SANE_YEAR else (
            f"the clock says {year}: set it (NTP) before trusting tokens and call times"),
    }
    status.update(await ntp_status())
    return {"result": status}


# Backup and restore


def _make_backup(api: Api, now: float) -> tuple[bytes, str]:
    name = _settings(api).box_name()
    return backup.make(api.db, api.data_dir, name=name, now=now), backup.file_name(name, now)


async def get_backup(api: Api, p: Params) -> dict[str, Any]:
    """The whole configuration as one file (base64 in `backup`), to save as `file_name`. It holds passwords,
    secrets and the TLS key, so who took one is audited."""
    now = time.time()
    data, name = await api.db.call(_make_backup, api, now)
    return {"result": 1, "file_name": name, "size": len(data), "created": api_date(now),
            "backup": base64.b64encode(data).decode("ascii")}


async def restore_backup(api: Api, p: Params) -> dict[str, Any]:
    """Replace the configuration with a backup's (`backup`: the file in base64): all or nothing."""
    encoded = p.text("backup", required=True)
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, ERR_PARAMETER, "backup: not base64 (give the .vgbackup file base64-encoded)") from None

    def restore() -> tuple[backup.RestoreSummary, bool, str]:
        summary = backup.restore(api.db, api.data_dir, data)
        key_kept = any(k.key_id == p.key_id for k in api.keys.list())
        return summary, key_kept, _settings(api).time_zone()

    try:
        summary, key_kept, zone = await api.db.call(restore)
    except backup.BackupError as exc:
        raise ApiError(400, ERR_PARAMETER, f"backup: {exc}") from None
    answer: dict[str, Any] = {
        "result": 1, "backup_created": api_date(summary.created), "backup_box_name": summary.box_name,
        "backup_appliance_version": summary.appliance_version, "restored": summary.tables,
        "kept_tables": summary.kept, "files": summary.files,
        # Routing, lines and outbound routes are reloaded now; the certificate, box id and name at restart.
        "restart_required": True,
        # API keys are the backup's: the key that restored it works on only if the backup holds it.
        "key_kept": key_kept,
    }
    if api.apply_system_settings and "settings" in summary.tables:
        problem = await _apply_time_zone(zone)
        answer["time_zone_applied"] = not problem
        if problem:
            answer["time_zone_error"] = problem
    return answer


METHODS = [
    Method("GetBoxSettings", get_box_settings),
    Method("SetBoxSettings", set_box_settings, writes=True),
    Method("GetClockStatus", get_clock_status),
    Method("GetBackup", get_backup, writes=True),  # not a change, but who took the secrets away is audited
    Method("RestoreBackup", restore_backup, writes=True, reload=(Reload.ROUTING, Reload.LINES, Reload.OUTBOUND)),
]
