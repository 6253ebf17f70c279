"""What the SIP tests share: voxfiles with one scenario, lines in the store, sipp runs, session logs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from daemon_helpers import HOST, Daemon, free_port, read_text, stop_process

from appliance.clock import VirtualClock
from appliance.sip.message import Request, Response, parse_message
from appliance.sip.transport import Peer, Transports
from appliance.store.db import Database
from appliance.store.sip import SipLineStore

SIPP = shutil.which("sipp")
LOCAL_ADDRESS = ("127.0.0.1", 5060)  # what a `Wire` says the stack listens on

ANSWER = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  Logger.write("alerting " + e.callerid + " -> " + e.destination + " " + e.call.state());
  e.call.addEventListener(CallEvents.Connected, () => Logger.write("connected " + e.call.state()));
  e.call.addEventListener(CallEvents.Disconnected, (d) => {
    Logger.write("disconnected " + d.internalCode + " " + e.call.state());
    VoxEngine.terminate();
  });
  e.call.answer();
});
"""


def voxfiles(root: Path, script: str) -> Path:
    """A voxengine-ci folder: application `t`, rule `in` (every number) running `script`."""
    (root / "applications" / "t").mkdir(parents=True)
    (root / "scenarios" / "src").mkdir(parents=True)
    (root / "applications" / "t" / "application.config.json").write_text(json.dumps({"applicationName": "t"}))
    rules = [{"ruleName": "in", "rulePattern": ".*", "scenarios": ["main"]}]
    (root / "applications" / "t" / "rules.config.json").write_text(json.dumps(rules))
    (root / "scenarios" / "src" / "main.voxengine.js").write_text(script)
    return root


@contextlib.contextmanager
def store_lines(data_dir: Path) -> Iterator[SipLineStore]:
    """The SIP lines of a data directory not yet used by a daemon (made if missing), to add users and trunks."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(data_dir / "voxgate.db")
    try:
        yield SipLineStore(db)
    finally:
        db.close()


def with_local_trunk(data_dir: Path) -> Path:
    """A data directory with a trunk at 127.0.0.1, so calls from sipp need no password."""
    with store_lines(data_dir) as lines:
        lines.add_trunk("local", HOST)
    return data_dir


def sim_user_password(daemon: Daemon) -> str:
    """The password of the simulated phone `100`, which the daemon prints when it starts."""
    found = re.search(r"SIP user 100, password (\S+)", daemon.stderr_text())
    assert found is not None, daemon.stderr_text()
    return found.group(1)


def sipp(*args: str, cwd: Path, timeout: float = 30.0, host: str = HOST) -> subprocess.CompletedProcess[str]:
    """Run sipp to completion on `host` (127.0.0.1 unless told; it gives up by itself after 20 s)."""
    assert SIPP is not None
    return subprocess.run(
        [SIPP, *args, "-i", host, "-nostdin", "-timeout", "20", "-timeout_error", "-trace_err"],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )


def sipp_in_background(*args: str, cwd: Path, host: str = HOST) -> int:
    """sipp started with -bg on `host` (127.0.0.1 unless told); its PID (the parent's exit status means nothing)."""
    assert SIPP is not None
    result = subprocess.run(
        [SIPP, *args, "-i", host, "-nostdin", "-timeout", "20", "-timeout_error", "-bg"],
        cwd=cwd, capture_output=True, text=True, timeout=10, check=False,
    )
    assert "PID=[" in result.stdout, result.stdout + result.stderr
    return int(result.stdout.split("PID=[")[1].split("]")[0])


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def log_lines(daemon: Daemon, session_id: int = 1) -> list[str]:
    """What session `session_id` logged, without the time stamps."""
    path = daemon.session_log(session_id)
    text = read_text(path) if path.exists() else ""
    return [line.split(" ", 2)[2] for line in text.splitlines() if line.count(" ") >= 2]


class Wire(Transports):
    """The network as the test sees it: what the stack sends is kept, with the virtual time."""

    def __init__(self, clock: VirtualClock, receive: Callable[..., None]) -> None:
        super().__init__(receive)
        self.clock = clock
        self.sent: list[tuple[float, Peer, Request | Response]] = []

    def address(self, transport: str, host: str) -> tuple[str, int]:
        return LOCAL_ADDRESS

    def send(self, data: bytes, peer: Peer, failed: Callable[[], None] | None = None) -> None:
        self.sent.append((self.clock.time(), peer, parse_message(data)))


# A caller that waits for the box to hang up (sipp_caller). MEDIA is the port its SDP offers.
UAC_XML = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uac waits for BYE">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "CALLER_NAME" <sip:CALLER@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:CALLER@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio MEDIA RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "CALLER_NAME" <sip:CALLER@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:CALLER@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv request="BYE" timeout="20000"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


@contextlib.contextmanager
def sipp_caller(work: Path, sip_port: int, number: str, caller: str, caller_name: str,
                media_port: int | None = None) -> Iterator[subprocess.Popen[str]]:
    """sipp calling `number` from `caller` ("caller_name" in From) and waiting for a BYE (exits 0 once it got
    one). Its SDP offers `media_port`, or its own media port where it echoes RTP back (`-rtp_echo`). Stopped
    on the way out."""
    assert SIPP is not None
    own_media = free_port()
    xml = work / f"uac-{number}.xml"
    media = str(media_port) if media_port is not None else "[media_port]"
    xml.write_text(UAC_XML.replace("MEDIA", media).replace("CALLER_NAME", caller_name).replace("CALLER", caller))
    args = [SIPP, "-sf", str(xml), f"{HOST}:{sip_port}", "-s", number, "-m", "1", "-p", str(free_port()),
            "-mp", str(own_media), "-i", HOST, "-nostdin", "-timeout", "30", "-timeout_error", "-trace_err"]
    if media_port is None:
        args.append("-rtp_echo")
    proc = subprocess.Popen(args, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        stop_process(proc, 5)
        if proc.stdout is not None:
            proc.stdout.close()


def sipp_got_bye(proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"sipp got no BYE within {timeout} s") from None
    output = proc.stdout.read() if proc.stdout is not None else ""
    assert code == 0, output[-3000:]
