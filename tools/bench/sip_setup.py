"""SIP call setups per second on one core: the appliance against kamailio, both driven by sipp.

sipp's built-in `uac` scenario (INVITE, 100/180/200, ACK, BYE, 200) calls the appliance, which
answers every call with a minimal scenario (answer on CallAlerting, terminate on Disconnected);
the calls come in on a trunk at 127.0.0.1, so no authentication. The rate steps up (50, 100, 200,
300, 400, 600...) until a step has failed calls or achieves less than 90 % of the rate asked.
Per step: the rate asked, the calls per second achieved (successful calls over the step's wall
time), failed calls, sipp's retransmissions (the first sign of overload), and the CPU the server
used per call (utime + stime from /proc, over the step). The same steps then run against kamailio
as a transaction-stateful proxy (tm, sl, rr, maxfwd) relaying to a sipp `uas`; the summary gives
the ratio of the best rates with no failed call, and of the CPU per call at the appliance's best rate.

The server under test (the daemon with all its threads, or every kamailio process) is pinned to
core 0; sipp runs on the other core(s). Target (product issue): at least 300 call setups per second
on one core with no failed calls. Everything is on 127.0.0.1; all processes are stopped and the temp
dir is removed on exit, also on Ctrl-C. Needs sipp and kamailio (Debian sip-tester, kamailio).

    .venv/bin/python tools/bench/sip_setup.py [--quick] [--max-rate 2000] [--calls-per-step N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from appliance.store.db import Database
from appliance.store.sip import SipLineStore

REPO = Path(__file__).resolve().parents[2]
APPLIANCE = REPO / ".venv" / "bin" / "appliance"
HOST = "127.0.0.1"
RATES = (50, 100, 200, 300, 400, 500, 600, 800, 1000, 1500, 2000, 3000)
QUICK_RATES = (100, 200, 300, 400, 600, 1000)
STEP_SECONDS = 5.0  # calls per step by default: this many seconds' worth at the rate asked
QUICK_STEP_SECONDS = 2.0
MIN_CALLS = 100
ENOUGH = 0.9  # a step passes with no failed call and at least this fraction of the rate asked
TARGET_CPS = 300
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE = 0

ANSWER = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  e.call.answer();
});
"""

CONFIG = """
[sip]
tls = false
trusted = ["127.0.0.0/8"]  # sipp is one source sending hundreds of requests a second: no flood ban
"""

KAMAILIO_CFG = """#!KAMAILIO
debug=0
log_stderror=yes
memdbg=5
memlog=5
children={children}
disable_tcp=yes
auto_aliases=no
listen=udp:{host}:{port}
mpath="{mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "textops.so"

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("INVITE") && !has_totag()) {{
        record_route();
    }} else {{
        loose_route();
    }}
    # sipp's built-in uac sends ACK and BYE to the proxy's own address (it keeps no route set), so
    # every request goes on to the uas, in-dialog ones too.
    $du = "sip:{host}:{uas_port}";
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"""


@dataclass
class Step:
    rate: int
    calls: int
    achieved: float
    failed: int
    retransmissions: int
    cpu_ms_per_call: float
    exit_code: int
    client_busy: float  # how busy sipp's core(s) were: near 100 % means sipp, not the server, is the limit

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and self.achieved >= ENOUGH * self.rate


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP (the appliance listens on both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_STREAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((HOST, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of these processes (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


def busy_jiffies(cores: str) -> tuple[int, int]:
    """(busy, total) jiffies of these CPUs so far, from /proc/stat."""
    wanted = {f"cpu{c}" for c in cores.split(",")}
    busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            values = [int(v) for v in fields[1:8]]
            total += sum(values)
            busy += sum(values) - values[3] - values[4]  # less idle and iowait
    return busy, total


def descendants(root: int) -> list[int]:
    """`root` and every process below it (kamailio forks its workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def client_cores() -> str:
    cores = sorted(os.sched_getaffinity(0) - {SERVER_CORE}) or [SERVER_CORE]
    return ",".join(map(str, cores))


class Processes:
    """Every process the bench starts; all stopped (TERM, then KILL) on the way out."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None,
              core: str | None = None) -> subprocess.Popen[bytes]:
        if core is not None:
            args = ["taskset", "-c", core, *args]
        with log.open("ab") as out:
            proc = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()


def options_answered(port: int, timeout: float, max_forwards: int = 70) -> bool:
    """Wait until an OPTIONS to 127.0.0.1:port gets any response (a proxy answers Max-Forwards 0 itself)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.3)
        me = sock.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            sock.sendto((
                f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bKping{n}\r\n"
                f"From: <sip:bench@{HOST}>;tag=b{n}\r\nTo: <sip:ping@{HOST}>\r\nCall-ID: ping{n}@bench\r\n"
                f"CSeq: {n} OPTIONS\r\nMax-Forwards: {max_forwards}\r\nContent-Length: 0\r\n\r\n").encode(),
                (HOST, port))
            with contextlib.suppress(TimeoutError):
                if sock.recv(65535).startswith(b"SIP/2.0 "):
                    return True
    return False


def sipp_step(target: str, rate: int, calls: int, work: Path, tag: str) -> tuple[int, float, dict[str, str]]:
    """One sipp uac run; its exit code, wall seconds and the last line of its statistics CSV."""
    stat = work / f"{tag}-{rate}.csv"
    timeout = int(calls / rate * 4) + 30
    args = ["taskset", "-c", client_cores(), "sipp", "-sn", "uac", target, "-s", "service", "-i", HOST,
            "-p", str(free_port()), "-r", str(rate), "-m", str(calls), "-l", str(max(rate * 10, 100)),
            "-nostdin", "-timeout", str(timeout), "-timeout_error", "-trace_stat", "-stf", str(stat), "-fd", "1"]
    t0 = time.monotonic()
    result = subprocess.run(args, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, timeout=timeout + 30, check=False)
    wall = time.monotonic() - t0
    row: dict[str, str] = {}
    if stat.exists():
        lines = stat.read_text(errors="replace").splitlines()
        if len(lines) >= 2:
            row = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    if not row and result.stderr:
        sys.stderr.write(result.stderr.decode(errors="replace")[-500:])
    return result.returncode, wall, row


def run_steps(name: str, target: str, server_pids: list[int], rates: list[int], step_seconds: float,
              calls_per_step: int | None, work: Path) -> list[Step]:
    steps: list[Step] = []
    # Warm-up (imports, compiled scenario, allocator): not measured.
    sipp_step(target, 50, 50, work, f"{name}-warmup")
    for rate in rates:
        calls = calls_per_step or max(MIN_CALLS, int(rate * step_seconds))
        before, client_before = cpu_ticks(server_pids), busy_jiffies(client_cores())
        code, wall, row = sipp_step(target, rate, calls, work, name)
        ticks = cpu_ticks(server_pids) - before
        client_after = busy_jiffies(client_cores())
        client = (client_after[0] - client_before[0]) / max(1, client_after[1] - client_before[1])
        ok = int(row.get("SuccessfulCall(C)", "0") or 0)
        failed = calls - ok  # failed, or never completed (sipp gave up at its timeout)
        step = Step(rate, calls, ok / wall, failed, int(row.get("Retransmissions(C)", "0") or 0),
                    ticks / CLK_TCK * 1e3 / max(1, ok), code, client * 100)
        steps.append(step)
        print(f"{name:>10} {rate:>6} {calls:>6} {step.achieved:>9.1f} {step.failed:>7} {step.retransmissions:>8} "
              f"{step.cpu_ms_per_call:>11.3f} {step.client_busy:>8.0f}%  "
              f"{'ok' if step.passed else f'FAIL (sipp exit {code})'}",
              flush=True)
        if not step.passed:
            break
        time.sleep(1.0)  # let the last calls' timers and sessions wind down
    return steps


def prepare_appliance(work: Path) -> tuple[Path, Path, Path]:
    data = work / "data"
    data.mkdir()
    db = Database(data / "voxgate.db")
    try:
        SipLineStore(db).add_trunk("local", HOST)
    finally:
        db.close()
    vox = work / "vox"
    (vox / "applications" / "t").mkdir(parents=True)
    (vox / "scenarios" / "src").mkdir(parents=True)
    (vox / "applications" / "t" / "application.config.json").write_text(json.dumps({"applicationName": "t"}))
    rules = [{"ruleName": "in", "rulePattern": ".*", "scenarios": ["main"]}]
    (vox / "applications" / "t" / "rules.config.json").write_text(json.dumps(rules))
    (vox / "scenarios" / "src" / "main.voxengine.js").write_text(ANSWER)
    config = work / "voxgate.toml"
    config.write_text(CONFIG)
    return data, vox, config


def bench_appliance(procs: Processes, work: Path, rates: list[int], step_seconds: float,
                    calls_per_step: int | None) -> list[Step]:
    data, vox, config = prepare_appliance(work)
    sip_port = free_udp_tcp_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(name, None)
    proc = procs.start([str(APPLIANCE), "run", "--sim", "--config", str(config), "--data-dir", str(data),
                        "--sip", f"{HOST}:{sip_port}", "--http", f"{HOST}:{free_port(socket.SOCK_STREAM)}",
                        "--voxfiles", str(vox)], work, work / "appliance.log", env=env, core=str(SERVER_CORE))
    if not options_answered(sip_port, 30) or proc.poll() is not None:
        raise RuntimeError(f"the appliance did not start:\n{(work / 'appliance.log').read_text()[-2000:]}")
    return run_steps("appliance", f"{HOST}:{sip_port}", [proc.pid], rates, step_seconds, calls_per_step, work)


def kamailio_modules() -> str:
    listing = subprocess.run(["dpkg", "-L", "kamailio"], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        if line.endswith("/modules/tm.so"):
            return line.rsplit("/", 1)[0] + "/"
    raise RuntimeError("kamailio's tm.so not found (dpkg -L kamailio)")


def bench_kamailio(procs: Processes, work: Path, rates: list[int], step_seconds: float,
                   calls_per_step: int | None) -> list[Step]:
    port, uas_port = free_port(), free_port()
    cfg = work / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(children=1, host=HOST, port=port, uas_port=uas_port, mpath=kamailio_modules()))
    uas = procs.start(["sipp", "-sn", "uas", "-i", HOST, "-p", str(uas_port), "-nostdin", "-bind_local"], work,
                      work / "uas.log", core=client_cores())
    kam = procs.start(["kamailio", "-f", str(cfg), "-DD", "-E", "-m", "256", "-M", "8", "-Y", str(work),
                       "-P", str(work / "kamailio.pid")], work, work / "kamailio.log", core=str(SERVER_CORE))
    if not options_answered(port, 20, max_forwards=0) or kam.poll() is not None or uas.poll() is not None:
        raise RuntimeError(f"kamailio did not start:\n{(work / 'kamailio.log').read_text()[-2000:]}")
    # taskset execs the server in place, so kam.pid is kamailio; its workers are its children.
    return run_steps("kamailio", f"{HOST}:{port}", descendants(kam.pid), rates, step_seconds, calls_per_step, work)


def best(steps: list[Step]) -> Step | None:
    passed = [s for s in steps if s.passed]
    return max(passed, key=lambda s: s.rate) if passed else None


def at_rate(steps: list[Step], rate: int) -> Step | None:
    return next((s for s in steps if s.rate == rate), None)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM as Ctrl-C, so the `finally` that stops the processes runs either way."""
    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--max-rate", type=int, default=3000, help="highest call rate asked (calls per second)")
    parser.add_argument("--calls-per-step", type=int, default=None,
                        help=f"calls per step (default: {STEP_SECONDS:g} s worth at the step's rate)")
    parser.add_argument("--quick", action="store_true", help=f"fewer, shorter steps ({QUICK_STEP_SECONDS:g} s)")
    parser.add_argument("--skip-kamailio", action="store_true", help="the appliance only")
    args = parser.parse_args()
    for tool in ("sipp", "taskset", *(() if args.skip_kamailio else ("kamailio",))):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    rates = [r for r in (QUICK_RATES if args.quick else RATES) if r <= args.max_rate]
    step_seconds = QUICK_STEP_SECONDS if args.quick else STEP_SECONDS
    print(f"sipp uac -> server pinned to core {SERVER_CORE}; sipp on core(s) {client_cores()}; "
          f"steps up to {rates[-1]} calls/s; CPU is the server's utime+stime over the step")
    print(f"{'server':>10} {'asked':>6} {'calls':>6} {'cps':>9} {'failed':>7} {'retrans':>8} {'cpu ms/call':>11} "
          f"{'sipp core':>9}")
    procs = Processes()
    results: dict[str, list[Step]] = {}
    with interrupts_raise(), tempfile.TemporaryDirectory(prefix="sip-setup-") as tmp:
        try:
            (Path(tmp) / "appliance").mkdir()
            results["appliance"] = bench_appliance(procs, Path(tmp) / "appliance", rates, step_seconds,
                                                   args.calls_per_step)
            procs.stop_all()
            if not args.skip_kamailio:
                (Path(tmp) / "kamailio").mkdir()
                results["kamailio"] = bench_kamailio(procs, Path(tmp) / "kamailio", rates, step_seconds,
                                                     args.calls_per_step)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
        finally:
            procs.stop_all()
    summary(results)


def summary(results: dict[str, list[Step]]) -> None:
    ours = best(results.get("appliance", []))
    if ours is None:
        print("appliance: no step without failed calls")
        return
    passed = [s.cpu_ms_per_call for s in results["appliance"] if s.passed]
    capacity = 1e3 / statistics.median(passed)
    verdict = "meets" if ours.achieved >= 0.97 * TARGET_CPS else "BELOW"
    print(f"appliance: {ours.rate} calls/s asked, {ours.achieved:.1f} achieved with 0 failed calls; "
          f"{ours.cpu_ms_per_call:.3f} CPU ms/call there (median over passing steps "
          f"{statistics.median(passed):.3f}, i.e. ~{capacity:.0f} calls/s for a whole core); {verdict} the "
          f"{TARGET_CPS} cps target")
    theirs = best(results.get("kamailio", []))
    if theirs is None:
        if "kamailio" in results:
            print("kamailio: no step without failed calls")
        return
    same = at_rate(results["kamailio"], ours.rate)
    cpu = f"; CPU per call at {ours.rate} cps: appliance / kamailio = " \
          f"{ours.cpu_ms_per_call / same.cpu_ms_per_call:.1f}" if same and same.cpu_ms_per_call > 0 else ""
    limit = " (kamailio's limit not reached: sipp or --max-rate capped it)" if theirs is results["kamailio"][-1] else ""
    theirs_cpu = statistics.median([s.cpu_ms_per_call for s in results["kamailio"] if s.passed])
    print(f"kamailio: {theirs.rate} calls/s asked, {theirs.achieved:.1f} achieved{limit}; {theirs_cpu:.3f} CPU ms/call "
          f"(median; ~{1e3 / theirs_cpu:.0f} calls/s for a whole core); "
          f"ratio appliance / kamailio = {ours.achieved / theirs.achieved:.2f}{cpu}")


if __name__ == "__main__":
    main()
