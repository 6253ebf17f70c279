"""The web panel under load: page latency against a static file served by the same daemon, and the CPU
that open live pages cost.

A daemon is started in simulation mode with HISTORY_SESSIONS finished sessions in its history. Then:
* each page is fetched SAMPLES times by a signed-in client, one at a time; its median and p95 latency
  are printed with the ratio to the median of the panel's style sheet (a static file: the server's floor);
* the daemon's CPU is measured over WINDOW_SECONDS with 0, 10 and 50 dashboards open over SSE.

    .venv/bin/python tools/bench/panel.py
"""

from __future__ import annotations

import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HOST = "127.0.0.1"
SAMPLES = 200
HISTORY_SESSIONS = 500
WINDOW_SECONDS = 10.0
OPEN_PAGES = (0, 10, 50)
PAGES = ("/panel/static/panel.css", "/", "/applications", "/scenarios", "/history", "/history.csv", "/lines",
         "/logs", "/settings")
PASSWORD = "bench password 1"
ENDLESS = "VoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token"
    return found.group(1)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="panel-bench-"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--sim", "--data-dir", str(work / "data"),
                             "--http", f"{HOST}:{port}", "--https", "off", "--mdns", "off",
                             "--sip", f"{HOST}:{free_port()}"], stdout=subprocess.DEVNULL,
                            stderr=(work / "daemon.err").open("w"))
    base = f"http://{HOST}:{port}"
    try:
        http = httpx.Client(base_url=base, timeout=60)
        for _ in range(300):
            try:
                if http.get("/setup").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        token = csrf(http.get("/setup").text)
        http.post("/setup", data={"csrf": token, "name": "admin", "password": PASSWORD, "confirm": PASSWORD})
        session_csrf = csrf(http.get("/").text)

        def do(method: str, **fields: str) -> dict[str, object]:
            reply = http.post(f"/panel/do/{method}", data={"csrf": session_csrf, **fields},
                              headers={"Accept": "application/json"})
            reply.raise_for_status()
            return dict(reply.json())

        app_id = str(do("AddApplication", application_name="bench")["application_id"])
        scenario_id = str(do("AddScenario", scenario_name="bench", scenario_script=ENDLESS)["scenario_id"])
        rule_id = str(do("AddRule", application_id=app_id, rule_name="bench", rule_pattern=".*",
                         scenario_id=scenario_id)["rule_id"])
        print(f"filling the history with {HISTORY_SESSIONS} sessions...", file=sys.stderr)
        for n in range(HISTORY_SESSIONS):
            do("StartScenarios", rule_id=rule_id, script_custom_data=str(n))

        print(f"{'page':<26}{'median ms':>10}{'p95 ms':>9}{'x static':>10}")
        floor = 0.0
        for path in PAGES:
            times = []
            for _ in range(SAMPLES):
                started = time.perf_counter()
                reply = http.get(path)
                times.append(time.perf_counter() - started)
                assert reply.status_code == 200, (path, reply.status_code)
            median = statistics.median(times) * 1000
            floor = floor or median
            p95 = statistics.quantiles(times, n=20)[18] * 1000
            print(f"{path:<26}{median:>10.2f}{p95:>9.2f}{median / floor:>10.1f}")

        print(f"\n{'open dashboards':<18}{'daemon CPU %':>13}")
        cookies = dict(http.cookies)
        for count in OPEN_PAGES:
            stop = threading.Event()

            def watch(stop: threading.Event = stop) -> None:
                with httpx.Client(base_url=base, cookies=cookies, timeout=None) as c, \
                        c.stream("GET", "/panel/events?view=dashboard") as stream:
                    for _ in stream.iter_bytes():
                        if stop.is_set():
                            return

            threads = [threading.Thread(target=watch, daemon=True) for _ in range(count)]
            for t in threads:
                t.start()
            time.sleep(2.0)  # all connected and past their first full render
            before, started = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(WINDOW_SECONDS)
            used = cpu_seconds(proc.pid) - before
            print(f"{count:<18}{100 * used / (time.monotonic() - started):>13.1f}")
            stop.set()
            time.sleep(1.5)  # each stream sees the stop at its next keep-alive or block
        http.close()
        return 0
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
