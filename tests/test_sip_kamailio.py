"""The appliance behind kamailio (Debian, /usr/sbin/kamailio) as a record-routing proxy, on 127.0.0.1.

kamailio (config tests/kamailio/kamailio.cfg.in) is stateful (t_relay), record-routes initial INVITEs
and loose-routes requests inside dialogs. It receives on one UDP port and relays from it, but its
Record-Route names a second port where nothing else is sent: a request arriving on that port was
sent along the dialog's route set, not back to the address the INVITE came from or went to. Proven:

- inbound, the caller hangs up: sipp calls the box through kamailio; the box copies the Record-Route
  into its 200 OK (sipp's scenario checks it), and takes the ACK and BYE that sipp sends with the
  route set as Route headers (kamailio loose-routes them to the box's Contact); the scenario sees
  alerting, connected and disconnected;
- inbound, the box hangs up: the scenario answers, then hangs up a second later; the box's BYE
  carries the Route header and arrives on the Record-Route port (the UAS route set, RFC 3261
  12.1.1), and kamailio loose-routes it to sipp, which answers it;
- outbound: a scenario calls sipp (a uas that copies Record-Route) with `outProxy` set to kamailio;
  the INVITE goes to the outProxy port and is record-routed; the box's ACK and BYE carry the Route
  header and arrive on the Record-Route port (the UAC route set, RFC 3261 12.1.2), reach sipp,
  and the scenario sees Connected (after Ringing) and Disconnected.

Every process (daemon, kamailio, sipp) runs with bounded time on loopback and is stopped in `finally`;
kamailio runs in the foreground (-DD -E, no pid file) in its own process group, with its runtime and
working directories under the test's tmp_path. Skipped when kamailio or sipp is not installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_helpers import (
    HOST,
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    free_port,
    read_text,
    running_daemon,
    start_scenarios,
    stop_process,
    wait_until,
)
from sip_helpers import ANSWER, SIPP, log_lines, sipp, voxfiles, with_local_trunk

HERE = Path(__file__).resolve().parent / "kamailio"
CONFIG_TEMPLATE = HERE / "kamailio.cfg.in"


def _find_kamailio() -> str | None:
    found = shutil.which("kamailio")
    if found is None and os.access("/usr/sbin/kamailio", os.X_OK):
        found = "/usr/sbin/kamailio"
    return found


def _find_modules() -> Path | None:
    candidates = [*sorted(Path("/usr/lib").glob("*/kamailio/modules")), Path("/usr/lib/kamailio/modules"),
                  Path("/usr/lib64/kamailio/modules"), Path("/usr/local/lib64/kamailio/modules")]
    return next((c for c in candidates if (c / "tm.so").exists() and (c / "rr.so").exists()), None)


KAMAILIO = _find_kamailio()
MODULES = _find_modules()

pytestmark = [
    pytest.mark.skipif(KAMAILIO is None or MODULES is None, reason="kamailio (Debian package) is not installed"),
    pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`"),
]

KAMAILIO_START_TIMEOUT = 15.0
KAMAILIO_STOP_TIMEOUT = 10.0

# Answers, then hangs up itself a second later: its BYE must go through the proxy.
ANSWER_THEN_HANG_UP = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  Logger.write("alerting " + e.callerid + " -> " + e.destination);
  e.call.addEventListener(CallEvents.Connected, () => {
    Logger.write("connected");
    setTimeout(() => { Logger.write("hanging up"); e.call.hangup(); }, 1000);
  });
  e.call.addEventListener(CallEvents.Disconnected, (d) => {
    Logger.write("disconnected " + d.internalCode + " " + e.call.state());
    VoxEngine.terminate();
  });
  e.call.answer();
});
"""

DIAL_THROUGH_PROXY = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const call = VoxEngine.callSIP("sip:service@127.0.0.1:TARGET_PORT",
                                 {callerid: "42", outProxy: "127.0.0.1:PROXY_PORT"});
  call.addEventListener(CallEvents.Ringing, () => Logger.write("ringing"));
  call.addEventListener(CallEvents.Connected, () => {
    Logger.write("connected");
    setTimeout(() => call.hangup(), 500);
  });
  call.addEventListener(CallEvents.Disconnected, () => { Logger.write("disconnected"); VoxEngine.terminate(); });
  call.addEventListener(CallEvents.Failed, (e) => { Logger.write("failed " + e.code); VoxEngine.terminate(); });
});
"""


@dataclass
class Kamailio:
    proc: subprocess.Popen[bytes]
    port: int  # where requests are sent to it, and where it relays them from
    rr_port: int  # the port its Record-Route names: only requests that follow a route set come here
    stderr_path: Path

    def log(self) -> str:
        return read_text(self.stderr_path)

    def saw(self, method: str, source: str, on_port: int, then: str) -> bool:
        """Did a `method` from `source` arrive on `on_port`, with our Record-Route in its Route header, and
        was it then loose-routed to a target starting with `then`?"""
        route = re.compile(rf"route=\[<sip:{re.escape(HOST)}:{self.rr_port};([^>]*;)?lr\b")
        arrived = [line for line in self.requests()
                   if line.startswith(f"REQUEST {method} from {source} on {on_port} ") and route.search(line)]
        relayed = [line for line in self.requests() if line.startswith(f"LOOSE_ROUTE {method} from {source} to {then}")]
        return bool(arrived) and bool(relayed)

    def requests(self) -> list[str]:
        """The script's own lines (xlog), without kamailio's prefix: `REQUEST BYE from ...` and the like."""
        lines = []
        for line in self.log().splitlines():
            _, marker, rest = line.partition("<script>: ")
            if marker:
                lines.append(rest)
        return lines


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group kamailio leads (it and its children), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(KAMAILIO_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with contextlib.suppress(ProcessLookupError):  # children that outlived their parent
        os.killpg(proc.pid, signal.SIGKILL)


def _answers_options(port: int) -> bool:
    """Does kamailio answer an OPTIONS to itself (its config replies 200 without relaying)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        probe = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bKprobe{time.monotonic_ns()}\r\n"
            f"From: <sip:probe@{HOST}>;tag=probe\r\nTo: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: probe{time.monotonic_ns()}@{HOST}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(probe.encode(), (HOST, port))
        try:
            return sock.recv(65535).startswith(b"SIP/2.0 200 ")
        except OSError:
            return False


@contextlib.contextmanager
def running_kamailio(work: Path, box_port: int, port: int | None = None) -> Iterator[Kamailio]:
    """kamailio in the foreground on loopback UDP `port` (else a free one), relaying to the box at `box_port`."""
    assert KAMAILIO is not None and MODULES is not None
    work.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        if port is None or attempt > 0:
            port = free_port()
        rr_port = free_port()
        config = work / f"kamailio-{port}.cfg"
        config.write_text(
            CONFIG_TEMPLATE.read_text()
            .replace("{{KAM_PORT}}", str(port)).replace("{{RR_PORT}}", str(rr_port))
            .replace("{{BOX_PORT}}", str(box_port))
            .replace("{{MODULES}}", str(MODULES))
        )
        stderr_path = work / f"kamailio-{port}.err"
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                [KAMAILIO, "-f", str(config), "-DD", "-E", "-Y", str(work), "-w", str(work),
                 "-m", "32", "-M", "4", "-a", "no"],
                cwd=work, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
            )
        def up_or_exited(p: int = port, pr: subprocess.Popen[bytes] = proc) -> bool:
            return pr.poll() is not None or _answers_options(p)

        try:
            up = wait_until(up_or_exited, KAMAILIO_START_TIMEOUT, interval=0.2)
            if up and proc.poll() is None:
                yield Kamailio(proc, port, rr_port, stderr_path)
                return
        finally:
            _stop_group(proc)
        text = read_text(stderr_path)
        if "bind" in text and attempt + 1 < attempts:
            continue  # someone took the port meanwhile
        raise AssertionError(f"kamailio did not start (exit status {proc.returncode}):\n{text[-4000:]}")


@contextlib.contextmanager
def sipp_process(*args: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """sipp running alongside the test (for a uas), its output in files; killed on the way out."""
    assert SIPP is not None
    with (cwd / "sipp-bg.out").open("w") as out:
        proc = subprocess.Popen(
            [SIPP, *args, "-i", HOST, "-nostdin", "-timeout", "20", "-timeout_error", "-trace_err"],
            cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
    try:
        yield proc
    finally:
        stop_process(proc, 5)


def sipp_errors(cwd: Path) -> str:
    """What sipp wrote to its error logs (-trace_err) and its output, for assertion messages."""
    texts = [read_text(p)[-2000:] for p in sorted(cwd.glob("*_errors.log"))]
    return "\n".join([*texts, read_text(cwd / "sipp-bg.out")[-2000:]])


def session_ended(daemon: Daemon) -> bool:
    return "engine: session ended: Normal termination" in log_lines(daemon)


def test_sipp_calls_through_kamailio_and_hangs_up_along_the_route_set(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon, \
            running_kamailio(tmp_path / "kamailio", daemon.sip_port) as kamailio:
        sipp_port = free_port()
        result = sipp("-sf", str(HERE / "uac_hangs_up.xml"), f"{HOST}:{kamailio.port}", "-s", "service",
                      "-m", "1", "-p", str(sipp_port), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + sipp_errors(tmp_path)
        assert wait_until(lambda: session_ended(daemon), 10), log_lines(daemon)
        assert log_lines(daemon)[:3] == [
            "alerting sipp -> service ALERTING", "connected CONNECTED", "disconnected 200 TERMINATED",
        ], log_lines(daemon)
        seen = kamailio.requests()
        box = f"{HOST}:{daemon.sip_port}"
        assert any(line.startswith(f"TO_BOX INVITE ruri=sip:service@{HOST}:{kamailio.port}") for line in seen), seen
        for method in ("ACK", "BYE"):  # sipp's requests inside the dialog, to the box's Contact
            assert kamailio.saw(method, f"{HOST}:{sipp_port}", kamailio.port, f"sip:voxgate@{box}"), seen
        assert "Traceback" not in daemon.stderr_text()


def test_the_box_hangs_up_through_kamailio(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER_THEN_HANG_UP)) as daemon, \
            running_kamailio(tmp_path / "kamailio", daemon.sip_port) as kamailio:
        sipp_port = free_port()
        result = sipp("-sf", str(HERE / "uac_waits_for_bye.xml"), f"{HOST}:{kamailio.port}", "-s", "service",
                      "-m", "1", "-p", str(sipp_port), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + sipp_errors(tmp_path)
        assert wait_until(lambda: session_ended(daemon), 10), log_lines(daemon)
        assert log_lines(daemon)[:4] == [
            "alerting sipp -> service", "connected", "hanging up", "disconnected 200 TERMINATED",
        ], log_lines(daemon)
        # The box's BYE arrived on the Record-Route port (the INVITE came from the other one), with
        # the Route header, and was loose-routed to sipp's Contact: the route set was followed.
        assert kamailio.saw("BYE", f"{HOST}:{daemon.sip_port}", kamailio.rr_port, f"sip:sipp@{HOST}:{sipp_port}"), \
            kamailio.requests()
        assert "Traceback" not in daemon.stderr_text()


async def test_scenario_calls_sipp_through_kamailio_as_out_proxy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = create_api_key(data)
    uas_port = free_port()
    sipp_dir = tmp_path / "sipp"
    sipp_dir.mkdir()
    proxy_port = free_port()  # the scenario names the proxy, so its port is chosen before the daemon starts
    script = DIAL_THROUGH_PROXY.replace("TARGET_PORT", str(uas_port)).replace("PROXY_PORT", str(proxy_port))
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", script)) as daemon, \
            running_kamailio(tmp_path / "kamailio", daemon.sip_port, proxy_port) as kamailio, \
            sipp_process("-sf", str(HERE / "uas_record_route.xml"), "-p", str(uas_port), "-m", "1",
                         cwd=sipp_dir) as uas:
        async with client_session() as client:
            await start_scenarios(client, daemon, key, "in")
        assert await async_wait_until(lambda: session_ended(daemon), 20), log_lines(daemon)
        assert log_lines(daemon)[:3] == ["ringing", "connected", "disconnected"], log_lines(daemon)
        assert await async_wait_until(lambda: uas.poll() is not None, 15), "sipp uas did not finish its call"
        assert uas.returncode == 0, sipp_errors(sipp_dir)
        seen = kamailio.requests()
        box = f"{HOST}:{daemon.sip_port}"
        assert any(line.startswith(f"FROM_BOX INVITE to sip:service@{HOST}:{uas_port}") for line in seen), seen
        # The INVITE went to the outProxy port; the ACK and BYE to the port the 200 OK's Record-Route names.
        for method in ("ACK", "BYE"):
            assert kamailio.saw(method, box, kamailio.rr_port, f"sip:{HOST}:{uas_port}"), seen
        assert "Traceback" not in daemon.stderr_text()
