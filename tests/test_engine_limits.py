"""Session limits (reference 4.8): each ends or refuses only the session that breaks it."""

from __future__ import annotations

import asyncio
import gc
import resource
import time

from engine_helpers import Lines, engine_harness

from appliance.engine import limits
from appliance.engine.jsruntime import JsContext
from appliance.engine.session import Session
from appliance.engine.worker import SPARE_CONTEXTS

TICKER = """
let ticks = 0;
setInterval(() => { ticks++; Logger.write("tick " + ticks); }, 100);
VoxEngine.addEventListener(AppEvents.HttpRequest, () => { VoxEngine.terminate(); return String(ticks); });
"""


async def test_busy_loop_is_stopped_after_about_a_second_and_others_keep_running() -> None:
    async with engine_harness(virtual=False, workers=2) as h:
        ticker_lines = Lines()
        ticker = h.start(TICKER, lines=ticker_lines)
        await asyncio.sleep(0.3)
        spin_lines = Lines()
        began = time.monotonic()
        spinner = h.start(
            'VoxEngine.addEventListener(AppEvents.Started, () => { Logger.write("spin"); while (true) {} });\n'
            'VoxEngine.addEventListener(AppEvents.Terminated, (e) => Logger.write("end " + e.systemError));',
            lines=spin_lines,
        )
        ticks_before = len(ticker_lines.script)
        await h.finish(spinner, timeout=20)
        stopped_after = time.monotonic() - began
        ticks_during = len(ticker_lines.script) - ticks_before
        assert spinner.system_error
        assert spinner.failure is not None and spinner.failure.kind == "timeout"
        assert spin_lines.script == ["spin", "end true"]
        assert 0.9 <= stopped_after < 5.0, stopped_after
        # The ticker's interval kept firing while the other session spun (about 10 per second).
        assert ticks_during >= 4, ticks_during
        assert ticker.phase.value == "running"
        status, body = await ticker.http_request("POST", "/", "", [])
        assert status == 200 and int(body) > ticks_during
        await h.finish(ticker)
        assert not ticker.system_error


async def test_memory_bomb_ends_only_its_own_session() -> None:
    bomb = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const hoard = [];
  for (;;) hoard.push("x".repeat(65536) + hoard.length);
});
VoxEngine.addEventListener(AppEvents.Terminating, () => Logger.write("must not run: context is dead"));
"""
    async with engine_harness(virtual=False) as h:
        ticker_lines = Lines()
        ticker = h.start(TICKER, lines=ticker_lines)
        bomb_lines = Lines()
        bombed = h.start(bomb, lines=bomb_lines)
        await h.finish(bombed, timeout=20)
        assert bombed.failure is not None and bombed.failure.kind == "memory"
        assert bombed.system_error
        assert bomb_lines.script == []  # a context past its heap limit never runs again
        assert any("16 MB" in line for line in bomb_lines.system)
        before = len(ticker_lines.script)
        await asyncio.sleep(0.35)
        assert len(ticker_lines.script) > before
        status, _ = await ticker.http_request("GET", "/", "", [])
        assert status == 200
        await h.finish(ticker)
        assert not ticker.system_error


async def test_at_most_100_timers() -> None:
    script = """
const ids = [];
for (let i = 0; i < 100; i++) ids.push(setTimeout(() => {}, 1000));
try { setTimeout(() => {}, 1); } catch (e) { Logger.write(e.name + ": " + e.message); }
clearTimeout(ids[0]);
setTimeout(() => { Logger.write("room again"); VoxEngine.terminate(); }, 1);
"""
    async with engine_harness() as h:
        session, lines = await h.run(script)
    assert lines.script == ["RangeError: too many active timers: a session may have at most 100", "room again"]
    assert not session.system_error


async def test_set_interval_floor_is_100_ms() -> None:
    script = """
const t0 = Date.now(); const at = [];
const id = setInterval(() => {
  at.push(Date.now() - t0);
  if (at.length === 3) { clearInterval(id); Logger.write(at.join(",")); VoxEngine.terminate(); }
}, 5);
"""
    async with engine_harness() as h:
        _, lines = await h.run(script)
    assert lines.script == ["100,200,300"]


async def test_timeout_order_and_zero_delay() -> None:
    script = """
setTimeout(() => Logger.write("c"), 30);
setTimeout(() => Logger.write("a"));
setTimeout(() => Logger.write("b"), 10);
setTimeout(() => VoxEngine.terminate(), 40);
try { setTimeout("code string"); } catch (e) { Logger.write(e.name); }
"""
    async with engine_harness() as h:
        _, lines = await h.run(script)
    assert lines.script == ["TypeError", "a", "b", "c"]


async def test_logger_messages_are_cut_at_15000_characters() -> None:
    script = 'Logger.write("y".repeat(20000)); console.log("two", {a: 1}, [2], null); VoxEngine.terminate();'
    async with engine_harness() as h:
        _, lines = await h.run(script)
    assert lines.script[0].startswith("y" * limits.LOG_MESSAGE_CHARS + " [cut:")
    assert "y" * (limits.LOG_MESSAGE_CHARS + 1) not in lines.script[0]
    assert lines.script[1] == 'two {"a":1} [2] null'


async def test_a_thousand_sessions_leave_memory_flat() -> None:
    script = "VoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());"

    def rss_kib() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() // 1024

    async def thousand() -> int:
        for _ in range(10):
            sessions = [h.start(script) for _ in range(100)]
            await asyncio.wait_for(asyncio.gather(*(s.ended for s in sessions)), 60)
        await h.engine._tasks.wait()
        gc.collect()
        return rss_kib()

    async with engine_harness(virtual=False) as h:
        warm = await thousand()  # bytecode cache, allocator pools
        first = await thousand()
        second = await thousand()
        print(f"\nRSS after warm-up {warm} KiB, after 1,000 more sessions {first} KiB, "
              f"after 1,000 more {second} KiB ({second - first:+d} KiB)")
        assert not h.engine.sessions
        sessions = [o for o in gc.get_objects() if isinstance(o, Session)]
        contexts = [o for o in gc.get_objects() if isinstance(o, JsContext)]
        assert len(sessions) <= 100, f"{len(sessions)} sessions survived"  # the last batch's list only
        spare = len(h.engine._workers) * SPARE_CONTEXTS  # prepared for the next sessions
        assert len(contexts) <= spare, f"{len(contexts)} contexts survived ({spare} may be spare)"
        # A leaked context would cost about 250 KiB: 1,000 of them would be hundreds of MB.
        assert second - first < 16 * 1024, f"RSS grew by {second - first} KiB over 1,000 sessions"


def test_http_timeouts_can_only_be_lowered() -> None:
    ctx = JsContext()
    try:
        assert ctx.load_prelude() is None
        script = """
Net.httpRequest("http://127.0.0.1:9/a", () => {}, {timeout: 500, connectionTimeout: 100});
Net.httpRequest("http://127.0.0.1:9/b", () => {}, {timeout: 2.5, connectionTimeout: 0.5});
Net.httpRequest("http://127.0.0.1:9/c", () => {}, {timeout: -1, connectionTimeout: "soon"});
"""
        failure, commands = ctx.run(ctx.compile("t.js", script))
        assert failure is None
        asked = [(c["timeout"], c["connectTimeout"]) for c in commands if c["op"] == "http"]
        assert asked == [
            (limits.HTTP_TOTAL_TIMEOUT_S, limits.HTTP_CONNECT_TIMEOUT_S),
            (2.5, 0.5),
            (limits.HTTP_TOTAL_TIMEOUT_S, limits.HTTP_CONNECT_TIMEOUT_S),
        ]
    finally:
        ctx.close()
