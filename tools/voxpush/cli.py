"""voxpush: voxengine-ci's `init` and `upload` for a VoxGate box on the LAN, plus status, diff, pull,
start, logs, calls and discover. Exit status: 0 ok, 1 error, 2 usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tools.voxpush import sessions, sync
from tools.voxpush.api import Client, KnownHosts, VoxpushError, known_hosts_path, load_credentials, parse_host
from tools.voxpush.discover import discover
from tools.voxpush.project import Project, Settings, load_settings
from tools.voxpush.remote import Box
from tools.voxpush.upload import Target, full_app_name, upload


def _parser() -> argparse.ArgumentParser:
    box = argparse.ArgumentParser(add_help=False)
    box.add_argument("--host", default=argparse.SUPPRESS, metavar="HOST[:PORT]",
                     help="the box (default: VOX_CI_HOST from the environment or .env; port 8443)")
    box.add_argument("--fingerprint", default=argparse.SUPPRESS, metavar="SHA256:HEX",
                     help="pin the box's certificate to this fingerprint instead of trusting it on first use")
    app = argparse.ArgumentParser(add_help=False)
    app.add_argument("--application-name", metavar="NAME")
    app.add_argument("--application-id", type=int, metavar="ID")

    parser = argparse.ArgumentParser(prog="voxpush", description=__doc__, parents=[box])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("init", parents=[box], help="download every application, rule and scenario")
    p.add_argument("--force", action="store_true", help="wipe the local tree and metadata, then download again")
    p = sub.add_parser("upload", parents=[box, app], help="build and upload an application (or one rule)")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--rule-name", metavar="NAME")
    rule.add_argument("--rule-id", type=int, metavar="ID")
    p.add_argument("--dry-run", action="store_true", help="build only")
    p.add_argument("--force", action="store_true", help="overwrite scenarios changed on the box since the last sync")
    sub.add_parser("status", parents=[box, app], help="what differs between the tree and the box")
    sub.add_parser("diff", parents=[box, app], help="unified diff, box -> local, of what differs")
    p = sub.add_parser("pull", parents=[box, app], help="bring the box's scripts and rules into the tree")
    p.add_argument("--force", action="store_true", help="overwrite local changes")
    p = sub.add_parser("start", parents=[box, app], help="start a session of a rule (StartScenarios)")
    p.add_argument("rule", metavar="RULE", help="rule name (with --application-name) or id")
    p.add_argument("--custom-data", metavar="TEXT", help="VoxEngine.customData() of the session")
    p = sub.add_parser("logs", parents=[box], help="a session's log")
    p.add_argument("session_id", type=int, metavar="SESSION_ID")
    p.add_argument("--follow", "-f", action="store_true", help="stream the log live until the session ends")
    p = sub.add_parser("calls", parents=[box], help="recent call history")
    p.add_argument("--count", type=int, default=20, metavar="N")
    p = sub.add_parser("discover", help="boxes announcing themselves on the LAN (mDNS)")
    p.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS")
    p.add_argument("--interface", metavar="ADDR", help="browse on the interface with this address only")
    return parser


def _connector(args: argparse.Namespace, settings: Settings) -> tuple[Callable[[], Box], list[Client]]:
    """A function giving the box (connected on first use), and the clients made, to close them."""
    made: list[Client] = []

    def connect() -> Box:
        if made:
            return Box(made[0])
        host = getattr(args, "host", None) or settings.host
        if not host:
            raise VoxpushError("which box? give --host HOST[:PORT] or set VOX_CI_HOST in .env "
                               "(`voxpush discover` lists the boxes on the LAN)")
        try:
            creds = load_credentials(settings.credentials)
        except VoxpushError as exc:
            where = "" if settings.env_file else f" (there is no .env in {settings.credentials.parent})"
            raise VoxpushError(f"{exc}{where}") from None
        name, port = parse_host(host)
        made.append(Client(name, port, creds, KnownHosts(known_hosts_path()), getattr(args, "fingerprint", None)))
        return Box(made[0])

    return connect, made


def _app_name(args: argparse.Namespace, project: Project, connect: Callable[[], Box]) -> str | None:
    if args.application_id is not None:
        found = connect().application(app_id=args.application_id)
        if found is None:
            raise VoxpushError(f"Application with --application-id \"{args.application_id}\" does not exist")
        return str(found["application_name"])
    return full_app_name(project, args.application_name, connect) if args.application_name else None


def run(args: argparse.Namespace, cwd: Path) -> int:
    if args.command == "discover":
        found = discover(args.timeout, args.interface)
        for box in found:
            print(box.line())
        if not found:
            print(f"no box answered within {args.timeout:g} s", file=sys.stderr)
        return 0
    settings = load_settings(cwd)
    project = Project(settings.root)
    connect, clients = _connector(args, settings)
    try:
        return _run(args, project, connect)
    finally:
        for client in clients:
            client.close()


def _run(args: argparse.Namespace, project: Project, connect: Callable[[], Box]) -> int:
    command = args.command
    if command == "upload":
        if not args.application_name and args.application_id is None:
            print("voxpush: error: No application parameters are set. Either '--application-name' or "
                  "'--application-id' must be specified", file=sys.stderr)
            return 1
        upload(project, connect, Target(args.application_name, args.application_id, args.rule_name, args.rule_id),
               dry_run=args.dry_run, force=args.force)
    elif command == "init":
        sync.init(project, connect(), force=args.force)
    elif command == "status":
        sync.print_status(sync.compare(project, connect(), _app_name(args, project, connect)))
    elif command == "diff":
        sys.stdout.writelines(sync.diff_lines(project, sync.compare(project, connect(),
                                                                    _app_name(args, project, connect))))
    elif command == "pull":
        written = sync.pull(project, connect(), _app_name(args, project, connect), force=args.force)
        print(f"{written} file(s) written; the tree is in sync with the box")
    elif command == "start":
        app = _app_name(args, project, connect)
        sessions.start(connect(), args.rule, app, args.custom_data)
    elif command == "logs":
        sessions.logs(connect(), args.session_id, args.follow)
    elif command == "calls":
        sessions.calls(connect(), args.count)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args, Path.cwd())
    except VoxpushError as exc:
        print(f"voxpush: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `voxpush logs ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
