"""A userspace rtpengine for benches, and a client for its "ng" control protocol (bencode over UDP).

`Rtpengine` starts `rtpengine` (Debian rtpengine-daemon) in the foreground, userspace only
(`--table=-1`, no kernel forwarding, no config file), listening for ng on 127.0.0.1, optionally
pinned to one CPU with taskset and with one worker thread; `cpu_seconds()` reads utime + stime of
the whole process (all threads) from /proc. `NgClient` speaks ng: each request is a unique cookie,
a space and a bencoded dict; the reply echoes the cookie. `bridge()` sets up one relayed call
between two endpoints (offer with A's SDP, answer with B's) and returns where each must send.

    with Rtpengine(core=0) as rtpe:
        ng = NgClient(rtpe.ng_addr)
        target_a, target_b = bridge(ng, "call-1", ("127.0.0.1", 4000), ("127.0.0.1", 4002))

Self-test (start, ping, bridge one call, delete, stop):

    .venv/bin/python tools/bench/rtpengine_ng.py
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
RTPENGINE = "rtpengine"
NG_TIMEOUT_S = 1.0  # per attempt; the request is resent with the same cookie
NG_ATTEMPTS = 3
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
PORT_MIN = 20000  # below the OS ephemeral range (32768-60999), where the load's sockets get their ports
PORT_MAX = 29999  # RTP + RTCP on each side: 4 ports per call, so room for 2,500 calls
CLK_TCK = os.sysconf("SC_CLK_TCK")

Addr = tuple[str, int]
Bencodable = bytes | str | int | list["Bencodable"] | dict[str, "Bencodable"]


class NgError(RuntimeError):
    """rtpengine refused a request, or did not answer."""


# --- bencode -----------------------------------------------------------------------------------


def bencode(value: Bencodable) -> bytes:
    """bencode: strings (as UTF-8) and bytes, ints, lists, dicts with str keys (sorted)."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        return b"d" + b"".join(bencode(k) + bencode(value[k]) for k in sorted(value)) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """Decode one bencoded value (the whole input); strings come back as str (UTF-8, else bytes)."""
    value, end = _bdecode(data, 0)
    if end != len(data):
        raise ValueError(f"bencode: {len(data) - end} trailing bytes at {end}")
    return value


def _bdecode(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise ValueError(f"bencode: truncated at {pos}")
    lead = data[pos:pos + 1]
    if lead == b"i":
        end = data.find(b"e", pos)
        if end < 0:
            raise ValueError(f"bencode: unterminated integer at {pos}")
        return int(data[pos + 1:end]), end + 1
    if lead in (b"l", b"d"):
        items: list[Any] = []
        pos += 1
        while data[pos:pos + 1] != b"e":
            item, pos = _bdecode(data, pos)
            items.append(item)
        if lead == b"l":
            return items, pos + 1
        if len(items) % 2:
            raise ValueError("bencode: dict with a key but no value")
        return {str(items[i]): items[i + 1] for i in range(0, len(items), 2)}, pos + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        if colon < 0:
            raise ValueError(f"bencode: string length without ':' at {pos}")
        start = colon + 1
        end = start + int(data[pos:colon])
        if end > len(data):
            raise ValueError(f"bencode: string at {pos} runs past the end")
        raw = data[start:end]
        try:
            return raw.decode(), end
        except UnicodeDecodeError:
            return raw, end
    raise ValueError(f"bencode: unexpected {lead!r} at {pos}")


# --- ng client ---------------------------------------------------------------------------------


class NgClient:
    """Requests to rtpengine's ng port; one at a time, resent on timeout; `close()` is safe twice."""

    def __init__(self, addr: Addr, timeout: float = NG_TIMEOUT_S) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(timeout)
        self._prefix = secrets.token_hex(4)
        self._n = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, command: str, **params: Bencodable) -> dict[str, Any]:
        self._n += 1
        cookie = f"{self._prefix}_{self._n}".encode()
        message = cookie + b" " + bencode({"command": command, **params})
        for _ in range(NG_ATTEMPTS):
            self.sock.sendto(message, self.addr)
            deadline = time.monotonic() + (self.sock.gettimeout() or NG_TIMEOUT_S)
            while time.monotonic() < deadline:
                try:
                    data = self.sock.recv(65535)
                except TimeoutError:
                    break
                got, _, body = data.partition(b" ")
                if got != cookie:
                    continue  # a late reply to an earlier attempt
                reply = bdecode(body)
                if not isinstance(reply, dict):
                    raise NgError(f"{command}: reply is not a dict: {reply!r}")
                if reply.get("result") == "error":
                    raise NgError(f"{command}: {reply.get('error-reason', reply)}")
                return reply
        raise NgError(f"{command}: no reply from {self.addr[0]}:{self.addr[1]} after {NG_ATTEMPTS} attempts")

    def ping(self) -> None:
        if self.request("ping").get("result") != "pong":
            raise NgError("ping: no pong")

    def offer(self, call_id: str, from_tag: str, sdp: str) -> str:
        return _sdp_of(self.request("offer", **{"call-id": call_id, "from-tag": from_tag, "sdp": sdp}), "offer")

    def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str) -> str:
        reply = self.request("answer", **{"call-id": call_id, "from-tag": from_tag, "to-tag": to_tag, "sdp": sdp})
        return _sdp_of(reply, "answer")

    def delete(self, call_id: str, from_tag: str | None = None) -> None:
        params: dict[str, Bencodable] = {"call-id": call_id}
        if from_tag is not None:
            params["from-tag"] = from_tag
        self.request("delete", **params)


def _sdp_of(reply: dict[str, Any], command: str) -> str:
    sdp = reply.get("sdp")
    if not isinstance(sdp, str):
        raise NgError(f"{command}: no SDP in the reply {reply!r}")
    return sdp


# --- SDP -----------------------------------------------------------------------------------------


def pcmu_sdp(addr: Addr, session: int) -> str:
    """A minimal audio-only PCMU offer/answer for an endpoint at `addr`."""
    host, port = addr
    return (f"v=0\r\no=- {session} {session} IN IP4 {host}\r\ns=bench\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n")


def sdp_media_addr(sdp: str) -> Addr:
    """The address of the first audio stream: its m= port, at the media-level c= if any, else the session c=."""
    host: str | None = None
    port: int | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            if port is not None:
                break
            fields = line[2:].split()
            if fields[0] == "audio":
                port = int(fields[1])
        elif line.startswith("c=") and (port is not None or host is None):
            host = line.split()[-1].split("/")[0]
    if host is None or port is None:
        raise ValueError(f"no audio address in SDP:\n{sdp}")
    return host, port


def bridge(ng: NgClient, call_id: str, a: Addr, b: Addr) -> tuple[Addr, Addr]:
    """One call A <-> B through rtpengine; returns (where A sends, where B sends)."""
    from_tag, to_tag = f"{call_id}-a", f"{call_id}-b"
    to_b = sdp_media_addr(ng.offer(call_id, from_tag, pcmu_sdp(a, 1)))  # rtpengine's port facing B
    to_a = sdp_media_addr(ng.answer(call_id, from_tag, to_tag, pcmu_sdp(b, 2)))  # its port facing A
    return to_a, to_b


# --- the daemon ----------------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (the totals over all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Rtpengine:
    """A userspace rtpengine on 127.0.0.1; stopped (TERM, then KILL) by `stop()`, which is safe twice."""

    def __init__(self, core: int | None = None, threads: int = 1, port_min: int = PORT_MIN,
                 port_max: int = PORT_MAX, log_level: int = 3, workdir: Path | None = None) -> None:
        if shutil.which(RTPENGINE) is None:
            raise RuntimeError("rtpengine is not installed (Debian: rtpengine-daemon)")
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="rtpengine-")
        self.workdir = workdir or Path(self._tmp.name if self._tmp else ".")
        self.ng_addr: Addr = (HOST, free_udp_port())
        self.log_path = self.workdir / "rtpengine.log"
        args = [RTPENGINE, "--config-file=none", "--foreground", "--log-stderr", "--table=-1",
                f"--interface={HOST}", f"--listen-ng={HOST}:{self.ng_addr[1]}", f"--port-min={port_min}",
                f"--port-max={port_max}", f"--log-level={log_level}", f"--num-threads={threads}",
                f"--pidfile={self.workdir / 'rtpengine.pid'}"]
        if core is not None:
            args = ["taskset", "-c", str(core), *args]  # taskset execs rtpengine: same pid
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with contextlib.closing(NgClient(self.ng_addr, timeout=0.2)) as ng:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"rtpengine exited ({self.proc.returncode}):\n{self.log_tail()}")
                with contextlib.suppress(NgError, OSError):
                    ng.ping()
                    return
        raise RuntimeError(f"rtpengine did not answer ng ping in {START_TIMEOUT_S:g} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Rtpengine:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def main() -> None:
    with Rtpengine(core=0) as rtpe, contextlib.closing(NgClient(rtpe.ng_addr)) as ng:
        ng.ping()
        print(f"rtpengine pid {rtpe.pid}, {rtpe.threads()} threads, ng at {rtpe.ng_addr[0]}:{rtpe.ng_addr[1]}")
        a, b = (HOST, free_udp_port()), (HOST, free_udp_port())
        to_a, to_b = bridge(ng, "selftest", a, b)
        print(f"A {a} sends to {to_a}; B {b} sends to {to_b}")
        ng.delete("selftest")
        print(f"deleted; rtpengine CPU so far {rtpe.cpu_seconds():.2f} s")


if __name__ == "__main__":
    main()
