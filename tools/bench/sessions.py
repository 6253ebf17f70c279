"""Session start latency and idle memory, for 1, 100 and 1,000 live sessions.

Each session runs the shipped remote-control scenario. Latency is from `start_session` to the
moment the scenario's Started handler runs (its first log line reaches the engine), measured one
start at a time while the earlier sessions stay live. Memory is the process RSS growth divided by
the number of live sessions. Targets (issue 2): median start under 1 ms, under 0.5 MB per session.

    .venv/bin/python tools/bench/sessions.py
"""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import threading
import time
from pathlib import Path

from appliance.clock import RealClock
from appliance.engine.engine import Engine, check_script
from appliance.engine.session import ScriptSource, SessionSpec
from appliance.store.catalog import Catalog
from appliance.store.db import Database

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios/voxfiles/scenarios/src/remote-control.voxengine.js"
COUNTS = (1, 100, 1000)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


async def measure(count: int) -> tuple[list[float], float]:
    db = Database(":memory:")
    app = Catalog(db, check_script).add_application("bench")
    engine = Engine(db, RealClock(asyncio.get_running_loop()), workers=2, base_url="http://127.0.0.1",
                    log_dir=None)
    spec = SessionSpec(scripts=(ScriptSource("remote-control", SCENARIO.read_text()),), application_id=app.id)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    try:
        # Warm-up: the prelude's and the scenario's bytecode are compiled once per process.
        warm = engine.start_session(spec)
        warm.terminate()
        await warm.ended
        gc.collect()
        before = rss_bytes()
        for _ in range(count):
            started = asyncio.Event()
            stamp: list[float] = []

            def sink(text: str, system: bool, stamp: list[float] = stamp, started: asyncio.Event = started) -> None:
                if not system and not stamp:
                    stamp.append(time.perf_counter())
                    loop.call_soon_threadsafe(started.set)

            t0 = time.perf_counter()
            engine.start_session(spec, sink=sink)
            await started.wait()
            latencies.append(stamp[0] - t0)
        await asyncio.sleep(0.2)  # let the last turns settle
        gc.collect()
        per_session = (rss_bytes() - before) / count
    finally:
        await engine.stop()
        db.close()
    return latencies, per_session


def main() -> None:
    print(f"session start-to-Started latency and idle memory ({threading.active_count()} threads at start)")
    print(f"{'live sessions':>14} {'median ms':>10} {'p99 ms':>8} {'max ms':>8} {'MB/session':>11}")
    for count in COUNTS:
        latencies, per_session = asyncio.run(measure(count))
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"{count:>14} {statistics.median(latencies) * 1e3:>10.3f} {p99 * 1e3:>8.3f} "
              f"{ordered[-1] * 1e3:>8.3f} {per_session / 1e6:>11.3f}")


if __name__ == "__main__":
    main()
