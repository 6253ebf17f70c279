"""Session start latency and idle memory, for 1, 100 and 1,000 live sessions.

Each session runs the shipped remote-control scenario. Latency is from `start_session` to the
moment the scenario's Started handler runs (its first log line reaches the engine).

For N live sessions, N - 1 sessions are started back to back (the "burst" column: each start waits
for the previous one's Started, so this is the worst case, where workers have no idle time to
prepare contexts), then SAMPLES more starts are measured one at a time, 5 ms apart as calls would
arrive, each ended before the next, while the N - 1 stay live. Memory is the process RSS growth
divided by N with N sessions live. Targets (issue 2): median start under 1 ms, under 0.5 MB per
idle session.

    .venv/bin/python tools/bench/sessions.py
"""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import time
from pathlib import Path

from appliance.clock import RealClock
from appliance.engine.engine import Engine, check_script
from appliance.engine.session import ScriptSource, Session, SessionSpec
from appliance.store.catalog import Catalog
from appliance.store.db import Database

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios/voxfiles/scenarios/src/remote-control.voxengine.js"
COUNTS = (1, 100, 1000)
SAMPLES = 200
PACE_SECONDS = 0.005


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class Bench:
    def __init__(self, engine: Engine, spec: SessionSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.loop = asyncio.get_running_loop()

    async def start(self) -> tuple[Session, float]:
        """Start one session; return it with its start-to-Started latency in seconds."""
        started = asyncio.Event()
        stamp: list[float] = []

        def sink(text: str, system: bool) -> None:  # on the worker, as the Started handler logs
            if not system and not stamp:
                stamp.append(time.perf_counter())
                self.loop.call_soon_threadsafe(started.set)

        t0 = time.perf_counter()
        session = self.engine.start_session(self.spec, sink=sink)
        await started.wait()
        return session, stamp[0] - t0


async def measure(count: int) -> tuple[list[float], list[float], float]:
    db = Database(":memory:")
    app = Catalog(db, check_script).add_application("bench")
    engine = Engine(db, RealClock(asyncio.get_running_loop()), workers=2, base_url="http://127.0.0.1",
                    log_dir=None)
    bench = Bench(engine, SessionSpec(scripts=(ScriptSource("remote-control", SCENARIO.read_text()),),
                                      application_id=app.id))
    burst: list[float] = []
    paced: list[float] = []
    try:
        # Warm-up: the scenario's bytecode is compiled once per process.
        warm, _ = await bench.start()
        warm.terminate()
        await warm.ended
        await asyncio.sleep(0.1)
        gc.collect()
        before = rss_bytes()
        for _ in range(count - 1):
            burst.append((await bench.start())[1])
        for _ in range(SAMPLES):
            await asyncio.sleep(PACE_SECONDS)
            session, latency = await bench.start()
            paced.append(latency)
            session.terminate()
            await session.ended
        await bench.start()
        await asyncio.sleep(0.2)  # let the last turns settle
        gc.collect()
        per_session = (rss_bytes() - before) / count
    finally:
        await engine.stop()
        db.close()
    return paced, burst, per_session


def main() -> None:
    print(f"session start-to-Started latency (ms; {SAMPLES} starts {PACE_SECONDS * 1e3:g} ms apart, and the "
          "back-to-back burst that brought the live sessions up) and memory per idle session")
    print(f"{'live sessions':>14} {'median':>8} {'p99':>8} {'max':>8} {'burst median':>13} {'burst p99':>10} "
          f"{'MB/session':>11}")
    for count in COUNTS:
        paced, burst, per_session = asyncio.run(measure(count))
        print(f"{count:>14} {statistics.median(paced) * 1e3:>8.3f} {percentile(paced, 0.99) * 1e3:>8.3f} "
              f"{max(paced) * 1e3:>8.3f} {cell(burst, 0.5):>13} {cell(burst, 0.99):>10} {per_session / 1e6:>11.3f}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def cell(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1e3:.3f}" if values else "-"


if __name__ == "__main__":
    main()
