"""A headless baresip (Debian baresip-core) for the tests: one SIP account, driven over ctrl_tcp.

`BaresipClient` writes a config directory (no sound card: a sine wave as the microphone, the
aubridge module as the loudspeaker), starts `baresip -f DIR` on 127.0.0.1 only, and talks to its
ctrl_tcp module: netstring-framed JSON commands (`{"command", "params", "token"}`) answered by
`{"response": true, "ok", "data", "token"}`, and events (`{"event": true, "type": "CALL_ESTABLISHED"...}`)
collected by a reader thread. baresip 1.0 has no long command for DTMF: digits are keys, sent
through the `cons` module's UDP console. `close()` (or leaving the `with` block) always stops it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from daemon_helpers import HOST, stop_process

BARESIP = shutil.which("baresip")
MODULE_PATH = Path("/usr/lib/baresip/modules")
START_TIMEOUT = 10.0

Event = dict[str, Any]


def _bindable(port: int) -> bool:
    """Are `port` (SIP, UDP and TCP), `port + 1` (SIP over TLS), `port + 2` (cons) and `port + 3` free?"""
    socks: list[socket.socket] = []
    try:
        for kind, p in ((socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port), (socket.SOCK_STREAM, port + 1),
                        (socket.SOCK_DGRAM, port + 2), (socket.SOCK_STREAM, port + 2), (socket.SOCK_STREAM, port + 3)):
            sock = socket.socket(socket.AF_INET, kind)
            socks.append(sock)
            sock.bind((HOST, p))
        return True
    except OSError:
        return False
    finally:
        for sock in socks:
            sock.close()


def free_port_block() -> int:
    """A port P with P (SIP over UDP and TCP), P+1 (SIP over TLS), P+2 (cons), P+3 (ctrl_tcp) free."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port + 3 < 65536 and _bindable(port):
            return port
    raise AssertionError("no free block of four ports on 127.0.0.1")


def netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


class BaresipClient:
    """One baresip process with one account `account` (a line of baresip's `accounts` file)."""

    def __init__(self, root: Path, account: str, *, sip_trace: bool = True, source: Path | None = None,
                 record: bool = False) -> None:
        assert BARESIP is not None
        self.root = root
        self.account = account
        self.sip_trace = sip_trace
        self.source = source  # an 8 kHz mono WAV to send instead of the sine (aufile), played once
        self.record = record  # keep what is sent and heard per call (sndfile: dump-<call>-enc/dec.wav)
        self.port = free_port_block()
        self.cons_port = self.port + 2
        self.ctrl_port = self.port + 3
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[Event] = []
        self._responses: dict[str, Event] = {}
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._tokens = 0

    @property
    def sip_uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    @property
    def output_path(self) -> Path:
        return self.root / "baresip.out"

    def output(self) -> str:
        """What baresip printed (with `sip_trace`, every SIP message it sent and received)."""
        try:
            return self.output_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        modules = ["g711.so", "ausine.so", "aufile.so", "aubridge.so", "cons.so", "srtp.so"]
        if self.source is not None:  # aufile insists on the file's rate and channels
            audio = [f"audio_source aufile,{self.source}", "ausrc_srate 8000", "ausrc_channels 1",
                     "auplay_srate 8000", "auplay_channels 1"]
        else:
            audio = ["audio_source ausine,440", "ausrc_srate 48000", "ausrc_channels 2"]
        if self.record:
            modules.append("sndfile.so")
            audio.append(f"snd_path {self.root}")
        lines = [
            "poll_method epoll",
            f"sip_listen {HOST}:{self.port}",
            f"net_interface {HOST}",
            "call_local_timeout 30",
            *audio,
            "audio_player aubridge,speaker",
            "audio_alert aubridge,bell",
            f"module_path {MODULE_PATH}",
            *(f"module {m}" for m in modules),
            "module_tmp account.so",
            "module_app contact.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
            f"cons_listen {HOST}:{self.cons_port}",
            "menu_bell no",
            "ringback_disabled yes",
            "statmode_default off",
        ]
        (self.root / "config").write_text("\n".join(lines) + "\n")
        (self.root / "accounts").write_text("")  # the account comes over ctrl_tcp, so no event is missed
        (self.root / "contacts").write_text("")

    def start(self) -> BaresipClient:
        assert BARESIP is not None
        self.write_config()
        args = [BARESIP, "-f", str(self.root)] + (["-s"] if self.sip_trace else [])
        with self.output_path.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=self.root, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip exited with {self.proc.returncode}:\n{self.output()}")
            try:
                self._sock = socket.create_connection((HOST, self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"baresip's ctrl_tcp did not answer:\n{self.output()}") from None
                time.sleep(0.1)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, name="baresip-ctrl", daemon=True)
        self._reader.start()
        reply = self.command("uanew", self.account)
        assert reply.get("ok"), reply
        return self

    def _read(self) -> None:
        assert self._sock is not None
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += chunk
            while b":" in buf:
                head, _, rest = buf.partition(b":")
                if not head.isdigit() or len(rest) < int(head) + 1:
                    break
                size = int(head)
                payload, buf = rest[:size], rest[size + 1:]
                message = json.loads(payload)
                with self._cond:
                    if message.get("response"):
                        self._responses[str(message.get("token", ""))] = message
                    else:
                        self.events.append(message)
                    self._cond.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> Event:
        """Run a menu command (`dial`, `hangup`, `hold`, `resume`, `accept`...); baresip's response."""
        assert self._sock is not None
        self._tokens += 1
        token = str(self._tokens)
        self._sock.sendall(netstring(json.dumps({"command": command, "params": params, "token": token}).encode()))
        with self._cond:
            if not self._cond.wait_for(lambda: token in self._responses, timeout):
                raise AssertionError(f"baresip did not answer {command!r}:\n{self.output()[-3000:]}")
            return self._responses.pop(token)

    def keys(self, keys: str) -> None:
        """Press keys on the UDP console (`cons`): during a call, digits are sent as DTMF."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for key in keys:
                sock.sendto(key.encode(), (HOST, self.cons_port))
                time.sleep(0.3)

    def wait_event(self, kind: str | tuple[str, ...], timeout: float = 10.0,
                   where: Callable[[Event], bool] | None = None) -> Event:
        """The first event of type `kind` (or of any type in a tuple) matching `where`, waiting up to `timeout`."""
        kinds = (kind,) if isinstance(kind, str) else kind

        def found() -> Event | None:
            for event in self.events:
                if event.get("type") in kinds and (where is None or where(event)):
                    return event
            return None

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
            event = found()
        if event is None:
            raise AssertionError(f"no {kind} from baresip within {timeout} s; events: "
                                 f"{[e.get('type') for e in self.events]}\n{self.output()[-4000:]}")
        return event

    def event_types(self) -> list[str]:
        with self._cond:
            return [str(e.get("type")) for e in self.events]

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self.proc is not None:
            stop_process(self.proc, timeout=5)
        if self._reader is not None:
            self._reader.join(5)


@contextlib.contextmanager
def running_baresip(root: Path, account: str, *, sip_trace: bool = True, source: Path | None = None,
                    record: bool = False) -> Iterator[BaresipClient]:
    client = BaresipClient(root, account, sip_trace=sip_trace, source=source, record=record)
    try:
        yield client.start()
    finally:
        client.close()


def account_line(sip_port: int, password: str, *, user: str = "100", answermode: str = "auto") -> str:
    """An account for `user` at the box on 127.0.0.1:`sip_port`; `answermode` auto answers calls at once."""
    return f"<sip:{user}@{HOST}:{sip_port}>;auth_pass={password};regint=600;answermode={answermode}"


def call_box(phone: BaresipClient, sip_port: int, number: str = "555") -> None:
    """The registered phone dials `number` at the box on `sip_port` and waits until the call is up."""
    phone.wait_event("REGISTER_OK")
    assert phone.command("dial", f"sip:{number}@{HOST}:{sip_port}")["ok"]
    phone.wait_event("CALL_ESTABLISHED")


def sine_wav(path: Path, hz: float, seconds: float = 60.0, amplitude: int = 8000) -> Path:
    """A phone's microphone for `source=`: an 8 kHz mono WAV of one sine (aufile plays it once, so it
    lasts the whole call); 8000 is -12 dBFS, so two mixed stay far from clipping."""
    t = np.arange(int(seconds * 8000)) / 8000
    audio = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(audio.tobytes())
    return path
