"""Shared helpers for the tests that drive the real `appliance` command as a subprocess.

Every process started here is stopped (SIGTERM, then SIGKILL after a timeout) by its owner, even
when a test fails: use `running_daemon()` (a context manager) or `run_appliance()` (bounded).
Everything listens on 127.0.0.1 only, on free ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
APPLIANCE = REPO / ".venv" / "bin" / "appliance"
EXAMPLE_VOXFILES = REPO / "scenarios" / "voxfiles"
HOST = "127.0.0.1"

START_TIMEOUT = 20.0  # the daemon answers on its port within this
STOP_TIMEOUT = 15.0  # after SIGTERM, the daemon exits within this (else it is killed)
READY_LINE = "VoxGate ready"  # logged once the signal handlers are installed

# Variables of the test runner's own environment that would change how the daemon behaves.
_SCRUBBED_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID")


def daemon_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect((HOST, port))
        except OSError:
            return False
        return True


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM, wait up to `timeout`, then SIGKILL. The exit status if it exited after SIGTERM, else None."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return None


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


@dataclass
class Daemon:
    """A running `appliance run --sim` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    sip_port: int
    https_port: int
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    _files: list[IO[bytes]] = field(default_factory=list)
    exit_status: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/platform_api"

    @property
    def https_url(self) -> str:
        return f"https://{HOST}:{self.https_port}"

    @property
    def cert_path(self) -> Path:
        """The box's self-signed certificate (made on first start)."""
        return self.data_dir / "tls" / "cert.pem"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "voxgate.db"

    @property
    def sessions_log_dir(self) -> Path:
        return self.data_dir / "logs" / "sessions"

    def session_log(self, session_id: int) -> Path:
        return self.sessions_log_dir / f"{session_id}.log"

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop the daemon (SIGTERM, SIGKILL after `timeout`); its exit status, None if it had to be killed."""
        if self.exit_status is None:
            self.exit_status = stop_process(self.proc, timeout)
        for f in self._files:
            f.close()
        self._files.clear()
        return self.exit_status


def _spawn(args: Sequence[str], cwd: Path, env: Mapping[str, str], out: Path, err: Path) -> tuple[
        subprocess.Popen[bytes], list[IO[bytes]]]:
    stdout = out.open("ab")
    stderr = err.open("ab")
    try:
        proc = subprocess.Popen(
            [str(APPLIANCE), *args], cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )
    except BaseException:
        stdout.close()
        stderr.close()
        raise
    return proc, [stdout, stderr]


def start_daemon(
    data_dir: Path,
    *,
    voxfiles: Path | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    port: int | None = None,
    http_flag: bool = True,
    attempts: int = 3,
) -> Daemon:
    """Start `appliance run --sim` on a free port and wait until it serves HTTP (and logged it is ready).

    The logs go to files next to the data directory. Raises AssertionError (with the daemon's
    standard error) if it does not come up; the process is stopped in that case. With
    `http_flag=False` no --http is given: `port` must then be the one the configuration names.
    """
    if not http_flag:
        assert port is not None, "without --http, say which port the configuration listens on"
        attempts = 1
    work = data_dir.parent
    for attempt in range(attempts):
        if port is None or attempt > 0:
            port = free_port()
        sip_port, https_port = free_port(), free_port()
        args = ["run", "--sim", "--data-dir", str(data_dir), *extra_args]
        if "--sip" not in extra_args:
            args += ["--sip", f"{HOST}:{sip_port}"]
        if "--https" not in extra_args:
            args += ["--https", f"{HOST}:{https_port}"]
        if "--mdns" not in extra_args:  # tests announce nothing unless they ask: never on the real network
            args += ["--mdns", "off"]
        if http_flag:
            args += ["--http", f"{HOST}:{port}"]
        if voxfiles is not None:
            args += ["--voxfiles", str(voxfiles)]
        tag = f"{data_dir.name}-{port}"
        out, err = work / f"daemon-{tag}.out", work / f"daemon-{tag}.err"
        proc, files = _spawn(args, work, daemon_env(env), out, err)
        daemon = Daemon(proc, port, sip_port, https_port, data_dir, out, err, files)
        if not wait_ready:
            return daemon

        def up_or_exited(d: Daemon = daemon) -> bool:
            return d.proc.poll() is not None or (port_answers(d.port) and READY_LINE in d.stderr_text())

        try:
            up = wait_until(up_or_exited, START_TIMEOUT)
            if up and daemon.proc.poll() is None:
                return daemon
        except BaseException:
            daemon.stop()
            raise
        daemon.stop()
        text = daemon.stderr_text()
        if "cannot listen" in text and attempt + 1 < attempts:
            continue  # someone took the port meanwhile: try another one
        raise AssertionError(f"the daemon did not start (exit status {daemon.exit_status}):\n{text}")
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_daemon(
    data_dir: Path,
    *,
    voxfiles: Path | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    port: int | None = None,
    http_flag: bool = True,
) -> Iterator[Daemon]:
    """A daemon for the duration of the block; stopped (and killed if it must be) on the way out."""
    daemon = start_daemon(
        data_dir, voxfiles=voxfiles, extra_args=extra_args, env=env, wait_ready=wait_ready, port=port,
        http_flag=http_flag,
    )
    try:
        yield daemon
    finally:
        daemon.stop()


def run_appliance(
    args: Sequence[str], cwd: Path, timeout: float = 30.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `appliance ARGS` to completion (stopped with SIGTERM, then SIGKILL, if it outlives `timeout`).

    `appliance run` gets a loopback SIP address unless ARGS name one: tests listen on 127.0.0.1 only.
    """
    if args[:1] == ["run"] and "--sip" not in args:
        args = [*args, "--sip", f"{HOST}:{free_port()}"]
    proc = subprocess.Popen(
        [str(APPLIANCE), *args], cwd=cwd, env=daemon_env(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(
            f"appliance {' '.join(args)} did not finish within {timeout} s:\n{err.decode(errors='replace')}"
        ) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace")
    )


def create_api_key(data_dir: Path) -> str:
    """`appliance apikey create --data-dir DIR`; the key is the last line it prints."""
    result = run_appliance(["apikey", "create", "--data-dir", str(data_dir)], cwd=data_dir.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def read_text(path: Path) -> str:
    """A log file's text ('' while it does not exist)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def db_rows(db_path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on the daemon's store, read with the standard library (read-only)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql, tuple(params)).fetchall())
    finally:
        conn.close()


# HTTP


@dataclass
class Reply:
    status: int
    text: str
    content_type: str

    def json(self) -> Any:
        return json.loads(self.text)


async def http(
    client: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    async with client.request(method, url, params=params, data=data, headers=headers) as resp:
        return Reply(resp.status, await resp.text(), resp.content_type)


def client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))


async def start_scenarios(
    client: aiohttp.ClientSession, daemon: Daemon, key: str, rule_name: str, custom_data: str = ""
) -> dict[str, Any]:
    """A successful StartScenarios (POST, form, account_id + api_key); its JSON answer."""
    reply = await http(
        client, "POST", f"{daemon.api_url}/StartScenarios",
        data={"account_id": "1", "api_key": key, "rule_name": rule_name, "script_custom_data": custom_data},
    )
    assert reply.status == 200, reply.text
    body = reply.json()
    assert isinstance(body, dict), body
    assert body.get("result") == 1, body
    return body
