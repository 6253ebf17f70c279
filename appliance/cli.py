"""The `appliance` command: run the daemon, run scenarios offline, manage API keys, SIP lines and
outbound routes, back up and restore the configuration."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import uvloop

from appliance.config import Config, load_config, parse_address
from appliance.errors import ApplianceError
from appliance.legs.virtual import BEHAVIOURS, Behaviour


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="VoxGate telephony gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the appliance daemon")
    run.add_argument("--sim", action="store_true", help="simulation mode: virtual lines, ./data by default")
    run.add_argument("--data-dir", type=Path, help="data directory (default /var/lib/voxgate, ./data with --sim)")
    run.add_argument("--config", type=Path, help="TOML configuration file")
    run.add_argument("--voxfiles", type=Path, help="load applications, rules and scenarios from a voxengine-ci folder")
    run.add_argument("--http", metavar="ADDR:PORT", help="HTTP listen address (default 0.0.0.0:8080)")
    run.add_argument("--https", metavar="ADDR:PORT",
                     help="HTTPS listen address, or 'off' (default 0.0.0.0:8443; certificate in DATA_DIR/tls)")
    run.add_argument("--mdns", metavar="ADDR[,ADDR...]",
                     help="announce the box over mDNS on these IPv4 addresses only, or 'off' (default: all)")
    run.add_argument("--sip", metavar="ADDR:PORT",
                     help="SIP listen address, UDP and TCP; TLS on the next port (default 0.0.0.0:5060)")

    exe = sub.add_parser("exec", help="run scenarios in one throwaway session (offline test harness)")
    exe.add_argument("scripts", nargs="+", type=Path, metavar="SCENARIO.js")
    exe.add_argument("--custom-data", default="", metavar="TEXT", help="VoxEngine.customData() of the session")
    exe.add_argument("--call", metavar="DEST[:CALLERID]", help="start the session with an incoming call")
    exe.add_argument("--dtmf", metavar="DIGITS",
                     help="keys the caller presses from a second after the answer, every half second (p: wait 1 s)")
    exe.add_argument("--peer", action="append", default=[], metavar="NUMBER=BEHAVIOUR",
                     help=f"how a dialled number behaves (default answer): {BEHAVIOURS}")
    exe.add_argument("--record-to", type=Path, metavar="DIR",
                     help="write DIR/<phone>.wav of what each virtual phone heard, and the session's recordings")
    exe.add_argument("--real-time", action="store_true", help="run on the real clock instead of a virtual one")
    exe.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                     help="end the session (as a system error) after this much session time (default 3600)")

    keys = sub.add_parser("apikey", help="manage management-API keys")
    keys_sub = keys.add_subparsers(dest="apikey_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (alone on the last line)")
    create.add_argument("--data-dir", type=Path, required=True)
    create.add_argument("--description", default="")
    create.add_argument("--service-account", type=Path, metavar="FILE",
                        help="create a service account instead: write its credentials JSON (account_id, key_id, "
                             "private_key) to FILE, for Voximplant's clients and voxpush")

    sip = sub.add_parser("sip", help="SIP users (phones that register here) and trunks, in the store")
    sip.add_argument("--data-dir", type=Path, required=True)
    sip_sub = sip.add_subparsers(dest="sip_command", required=True)
    sip_sub.add_parser("list", help="list users and trunks (passwords not shown)")
    user = sip_sub.add_parser("add-user", help="add a local SIP user; prints its password")
    user.add_argument("name")
    user.add_argument("--password", help="default: a new random one")
    user.add_argument("--display-name", default="")
    trunk = sip_sub.add_parser("add-trunk", help="add a SIP trunk (calls from its host need no password)")
    trunk.add_argument("name", help="what scripts dial: sip:NUMBER@NAME")
    trunk.add_argument("host", help="IP address or DNS name (SRV is looked up when no port is given)")
    trunk.add_argument("--port", type=int)
    trunk.add_argument("--transport", default="udp", choices=("udp", "tcp", "tls"))
    trunk.add_argument("--username", default="", help="account for digest authentication")
    trunk.add_argument("--password", default="")
    trunk.add_argument("--register", action="store_true", help="register to the trunk (needs --username)")
    remove = sip_sub.add_parser("remove", help="remove a user or trunk by name")
    remove.add_argument("name")
    sip.epilog = "A running appliance picks up changes on SIGHUP (systemctl reload voxgate)."

    route = sub.add_parser("route", help="outbound routes: the line each number a scenario dials goes out through")
    route.add_argument("--data-dir", type=Path, required=True)
    route_sub = route.add_subparsers(dest="route_command", required=True)
    route_sub.add_parser("list", help="list the routes in the order they are tried")
    add = route_sub.add_parser("add", help="add a route, tried after the existing ones")
    add.add_argument("name")
    add.add_argument("--pattern", required=True, metavar="RE", help="regex the whole dialled number must match")
    add.add_argument("--line", required=True, metavar="NAME", help="the line calls go out through")
    add.add_argument("--strip", type=int, default=0, metavar="N", help="leading characters removed from the number")
    add.add_argument("--prepend", default="", metavar="DIGITS", help="put in front of the number after --strip")
    add.add_argument("--callerid", type=_callerid, default=("pass", ""), metavar="pass|fixed:NUMBER|anonymous",
                     help="the caller ID shown: the scenario's (default), a fixed number, or none")
    add.add_argument("--international", action="store_true", help="allow numbers starting with + or 00")
    add.add_argument("--max-calls", type=int, default=0, metavar="N", help="calls at once (default 0: no limit)")
    _guard_options(add)
    change = route_sub.add_parser("set", help="change a route's guards (the options given)")
    change.add_argument("name")
    change.add_argument("--international", action=argparse.BooleanOptionalAction, default=None,
                        help="allow numbers starting with + or 00, or not")
    change.add_argument("--max-calls", type=int, metavar="N", help="calls at once (0: no limit)")
    _guard_options(change, defaults=False)
    route_remove = route_sub.add_parser("remove", help="remove a route by name")
    route_remove.add_argument("name")
    route.epilog = "A running appliance picks up changes on SIGHUP (systemctl reload voxgate)."

    backup = sub.add_parser("backup", help="save the whole configuration (store, TLS certificate, box id) in a file")
    backup.add_argument("--data-dir", type=Path, required=True)
    backup.add_argument("--output", type=Path, metavar="FILE",
                        help="the file to write (default: ./voxgate-<box>-<date>.vgbackup); never overwritten")
    restore = sub.add_parser("restore", help="replace the configuration with a backup's (the daemon must be stopped)")
    restore.add_argument("--data-dir", type=Path, required=True)
    restore.add_argument("file", type=Path, metavar="FILE")
    restore.epilog = ("Stop the daemon first (systemctl stop voxgate): it shares the store. A running box restores "
                      "through the management API (RestoreBackup) instead.")
    return parser


def _backup(args: argparse.Namespace) -> int:
    import os
    import time

    from appliance import backup
    from appliance.store.db import Database

    if args.command == "restore":
        pid = backup.daemon_using(args.data_dir)
        if pid is not None:
            raise ApplianceError(f"process {pid} (a running daemon) has the store of {args.data_dir} open: stop it "
                                 "first (systemctl stop voxgate), or restore through the API (RestoreBackup)")
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise ApplianceError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        db = Database(args.data_dir / "voxgate.db")
        try:
            summary = backup.restore(db, args.data_dir, data)
        finally:
            db.close()
        print(f"restored the backup of {summary.box_name or '?'} made "
              f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(summary.created))} UTC into {args.data_dir}: "
              + ", ".join(f"{table} {rows}" for table, rows in summary.tables.items()))
        return 0
    if not (args.data_dir / "voxgate.db").exists():
        raise ApplianceError(f"{args.data_dir} has no store (voxgate.db): nothing to back up")
    db = Database(args.data_dir / "voxgate.db")
    try:
        now = time.time()
        name = backup.box_name(db)
        data = backup.make(db, args.data_dir, name=name, now=now)
    finally:
        db.close()
    target: Path = args.output or Path(backup.file_name(name, now))
    try:
        # Readable by its owner only: a backup holds passwords, secrets and the TLS key.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise ApplianceError(f"cannot write {target}: {exc.strerror or exc}") from None
    print(f"backup of {name} written to {target} ({len(data)} bytes; it holds passwords and keys: keep it safe)")
    return 0


def _guard_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """The toll-fraud guards of `route add` and `route set`."""
    parser.add_argument("--hours", default="" if defaults else None, metavar="WINDOWS",
                        help="when the route may be used, in the box's local time, e.g. "
                             "'mon-fri 08:00-20:00, sat 09:00-13:00' ('' or left out: always)")
    parser.add_argument("--max-duration", type=int, default=0 if defaults else None, metavar="SECONDS",
                        help="hang calls up this long after they connect (0: no limit)")
    parser.add_argument("--max-calls-per-hour", type=int, default=0 if defaults else None, metavar="N",
                        help="calls put through in any 60 minutes; then the route is skipped (0: no limit)")


def _sip(args: argparse.Namespace) -> int:
    from appliance.store.db import Database
    from appliance.store.sip import SipLineStore, new_password

    db = Database(args.data_dir / "voxgate.db")
    try:
        store = SipLineStore(db)
        if args.sip_command == "add-user":
            user = store.add_user(args.name, args.password or new_password(), args.display_name)
            print(f"SIP user {user.name}, password {user.password}")
        elif args.sip_command == "add-trunk":
            trunk = store.add_trunk(args.name, args.host, args.port, args.transport, args.username, args.password,
                                    args.register)
            print(f"SIP trunk {trunk.name} at {trunk.host}")
        elif args.sip_command == "remove":
            print(f"removed SIP {store.remove(args.name)} {args.name}")
        else:
            for u in store.users():
                print(f"user   {u.name}" + (f" ({u.display_name})" if u.display_name else ""))
            for t in store.trunks():
                port = f":{t.port}" if t.port else ""
                account = f", account {t.username}" + (", registers" if t.register else "") if t.username else ""
                print(f"trunk  {t.name} -> {t.transport}:{t.host}{port}{account}")
    finally:
        db.close()
    return 0


def _exec(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from appliance import harness

    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.dtmf and not args.call:
        parser.error("--dtmf needs --call (the keys are pressed by the calling phone)")
    if args.dtmf and not re.fullmatch(r"[0-9*#A-Da-dpP]+", args.dtmf):
        parser.error(f"--dtmf {args.dtmf!r}: keys are 0-9, *, #, A-D, and p for a one-second pause")
    if args.call is not None and not args.call.partition(":")[0]:
        parser.error("--call needs a destination: DEST or DEST:CALLERID")
    peers = {}
    for text in args.peer:
        number, sep, behaviour = text.partition("=")
        try:
            if not sep or not number:
                raise ValueError("expected NUMBER=BEHAVIOUR")
            peers[number] = Behaviour.parse(behaviour)
        except ValueError as exc:
            parser.error(f"--peer {text!r}: {exc}")
    options = harness.HarnessOptions(
        scripts=tuple(args.scripts), custom_data=args.custom_data, real_time=args.real_time, timeout=args.timeout,
        call=args.call, dtmf=args.dtmf or "", peers=peers, record_to=args.record_to,
    )
    logging.basicConfig(level=logging.ERROR, format="appliance exec: %(message)s")
    return uvloop.run(harness.run(options))


def _apikey_create(args: argparse.Namespace) -> int:
    import os
    import time

    from appliance.store.apikeys import ApiKeys, credentials_json
    from appliance.store.audit import AuditLog
    from appliance.store.db import Database

    target: Path | None = args.service_account
    if target is not None and target.exists():
        raise ApplianceError(f"{target} exists: give a new file name (credentials are never overwritten)")
    db = Database(args.data_dir / "voxgate.db")
    try:
        keys = ApiKeys(db)
        if target is None:
            key_id, key = keys.create(args.description)
        else:
            credentials = keys.create_service_account(args.description)
            key_id = str(credentials["key_id"])
            try:
                # Made readable by its owner only before the private key is in it.
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(credentials_json(credentials))
            except OSError as exc:
                keys.delete(key_id)
                raise ApplianceError(f"cannot write {target}: {exc.strerror or exc}") from None
        AuditLog(db).write(time.time(), key_id, "local", "apikey create",
                           {"description": args.description, "service_account": str(target is not None).lower()})
    finally:
        db.close()
    if target is not None:
        print(f"Created service account {key_id} in {args.data_dir}; its credentials are in {target} "
              "(the only copy of the private key: keep it safe).")
        return 0
    print(f"Created API key {key_id} in {args.data_dir}. It is shown only once; keep it safe:")
    print(key)
    return 0


def _callerid(text: str) -> tuple[str, str]:
    """--callerid as (policy, value)."""
    policy, sep, value = text.partition(":")
    if (policy == "fixed" and value) or (policy in ("pass", "anonymous") and not sep):
        return policy, value
    raise argparse.ArgumentTypeError(f"{text!r}: expected pass, fixed:NUMBER or anonymous")


def _route(args: argparse.Namespace) -> int:
    from appliance.store.db import Database, NotFound
    from appliance.store.routes import OutboundRouteStore

    db = Database(args.data_dir / "voxgate.db")
    try:
        store = OutboundRouteStore(db)
        if args.route_command == "add":
            policy, value = args.callerid
            route = store.add(args.name, args.pattern, args.line, strip_digits=args.strip, prepend=args.prepend,
                              callerid_policy=policy, callerid_value=value, international=args.international,
                              max_concurrent=args.max_calls, hours=args.hours, max_duration=args.max_duration,
                              max_calls_per_hour=args.max_calls_per_hour)
            print(f"outbound route {route.name} -> line {route.line}")
        elif args.route_command == "set":
            found = [r for r in store.list() if r.name == args.name]
            if not found:
                raise NotFound(f"no outbound route {args.name!r}")
            given = {"international": args.international, "max_concurrent": args.max_calls, "hours": args.hours,
                     "max_duration": args.max_duration, "max_calls_per_hour": args.max_calls_per_hour}
            store.update(found[0].id, **{k: v for k, v in given.items() if v is not None})
            print(f"outbound route {args.name} changed")
        elif args.route_command == "remove":
            store.remove(args.name)
            print(f"removed outbound route {args.name}")
        else:
            for r in store.list():
                callerid = f"fixed:{r.callerid_value}" if r.callerid_policy == "fixed" else r.callerid_policy
                details = [
                    f"strip {r.strip_digits}" if r.strip_digits else "",
                    f"prepend {r.prepend}" if r.prepend else "",
                    f"callerid {callerid}",
                    "international" if r.international else "",
                    f"at most {r.max_concurrent} calls" if r.max_concurrent else "",
                    f"hours {r.hours}" if r.hours else "",
                    f"calls cut after {r.max_duration} s" if r.max_duration else "",
                    f"at most {r.max_calls_per_hour} calls per hour" if r.max_calls_per_hour else "",
                    "" if r.enabled else "disabled",
                ]
                print(f"route  {r.name}: {r.pattern} -> {r.line} ({', '.join(d for d in details if d)})")
    finally:
        db.close()
    return 0


def _run(args: argparse.Namespace) -> int:
    from appliance import daemon

    config: Config = load_config(args.config)
    if args.http:
        config.http.listen = args.http
    if args.sip:
        parse_address(args.sip, "--sip")
        config.sip.listen = args.sip
    if args.https:
        if args.https != "off":
            parse_address(args.https, "--https")
        config.http.https_listen = "" if args.https == "off" else args.https
    if args.mdns:
        config.discovery.enabled = args.mdns != "off"
        config.discovery.interfaces = [] if args.mdns == "off" else [a.strip() for a in args.mdns.split(",")]
    data_dir = args.data_dir or config.data_dir(args.sim)
    return uvloop.run(daemon.run(config, data_dir=data_dir, sim=args.sim, voxfiles_dir=args.voxfiles))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "exec":
            return _exec(args, parser)
        if args.command == "apikey":
            return _apikey_create(args)
        if args.command == "sip":
            return _sip(args)
        if args.command == "route":
            return _route(args)
        if args.command in ("backup", "restore"):
            return _backup(args)
        return _run(args)
    except ApplianceError as exc:
        print(f"appliance {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
