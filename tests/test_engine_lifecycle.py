"""Session lifecycle (reference 4.1): start order, rules' scenarios in one context, termination."""

from __future__ import annotations

import json
import time

from engine_helpers import engine_harness

from appliance.engine import limits

RECORD_EVENTS = """
VoxEngine.addEventListener(AppEvents.Started, (e) => Logger.write("Started " + JSON.stringify(e)));
VoxEngine.addEventListener(AppEvents.Terminating, (e) => Logger.write("Terminating " + e.systemError));
VoxEngine.addEventListener(AppEvents.Terminated, (e) => Logger.write("Terminated " + e.systemError));
"""


async def test_started_first_then_idle_termination_on_the_virtual_clock() -> None:
    async with engine_harness() as h:
        wall = time.monotonic()
        virtual_start = h.clock.time()
        session, lines = await h.run('Logger.write("top-level");\n' + RECORD_EVENTS)
        assert [line.split(" ")[0] for line in lines.script] == ["top-level", "Started", "Terminating", "Terminated"]
        started = json.loads(lines.script[1][len("Started "):])
        assert started["name"] == "Application.Started"
        assert started["sessionId"] == session.id
        assert started["accountId"] == 1
        assert started["applicationId"] == h.application_id
        assert started["accessURL"] == session.access_url and "/request/" in started["accessURL"]
        assert started["logURL"] == session.log_url
        assert lines.script[2:] == ["Terminating false", "Terminated false"]
        # The 60 s idle timeout passed on the session clock, not on the wall clock.
        assert h.clock.time() - virtual_start >= limits.IDLE_SESSION_SECONDS
        assert time.monotonic() - wall < 10
        assert not session.system_error
        assert session.finish_reason == "Normal termination"


async def test_scenarios_of_a_rule_share_one_context_in_order() -> None:
    library = "var greeting = 'hi'; function shout(s) { return s.toUpperCase(); } class Counter { }"
    user = "Logger.write(shout(greeting) + ' ' + typeof Counter); undeclared = 5; VoxEngine.terminate();"
    third = "Logger.write('third sees ' + undeclared);"
    async with engine_harness() as h:
        _, lines = await h.run(library, user, third)
    assert lines.script == ["HI function", "third sees 5"]


async def test_terminate_does_not_stop_the_running_code_and_ends_the_session() -> None:
    script = RECORD_EVENTS + """
VoxEngine.addEventListener(AppEvents.Started, () => {
  VoxEngine.terminate();
  Logger.write("after terminate");
  setTimeout(() => Logger.write("timer must not fire"), 0);
});
"""
    async with engine_harness() as h:
        session, lines = await h.run(script)
    assert lines.script[1:] == ["after terminate", "Terminating false", "Terminated false"]
    assert not session.system_error


async def test_custom_data_from_the_start_and_set_by_the_script() -> None:
    script = """
Logger.write("initial " + VoxEngine.customData());
VoxEngine.customData("changed");
Logger.write("now " + VoxEngine.customData());
try { VoxEngine.customData("x".repeat(2001)); } catch (e) { Logger.write(e.name + ": " + e.message); }
VoxEngine.terminate();
"""
    async with engine_harness() as h:
        session, lines = await h.run(script, custom_data="from-api")
    assert lines.script[:2] == ["initial from-api", "now changed"]
    assert lines.script[2] == "RangeError: customData is limited to 2000 characters"
    assert session.custom_data == "changed"


async def test_uncaught_error_ends_with_system_error_naming_scenario_and_line() -> None:
    script = RECORD_EVENTS + """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const call = undefined;
  call.answer();
});
"""
    async with engine_harness() as h:
        session, lines = await h.run(script)
    assert lines.script[-2:] == ["Terminating true", "Terminated true"]
    assert session.system_error and session.finish_reason == "JS session error"
    assert session.failure is not None
    assert session.failure.location.startswith("s0.js:8:")  # the scenario's own line, not the prelude's
    assert "TypeError" in session.failure.message
    assert any("script error" in line and "s0.js:8" in line for line in lines.system)


async def test_unhandled_rejection_ends_with_system_error() -> None:
    script = RECORD_EVENTS + """
async function lookup() { await null; throw new Error("lookup failed"); }
VoxEngine.addEventListener(AppEvents.Started, () => { lookup(); });
"""
    async with engine_harness() as h:
        session, lines = await h.run(script)
    assert session.system_error
    assert session.failure is not None and "Uncaught (in promise) Error: lookup failed" in session.failure.message
    assert lines.script[-2:] == ["Terminating true", "Terminated true"]


async def test_handled_rejection_is_not_an_error() -> None:
    script = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const p = Promise.reject(new Error("later handled"));
  // Handled a few jobs later, within the same turn: not an unhandled rejection.
  Promise.resolve().then(() => null).then(() => {
    p.catch((e) => { Logger.write("caught " + e.message); VoxEngine.terminate(); });
  });
});
"""
    async with engine_harness() as h:
        session, lines = await h.run(script)
    assert lines.script == ["caught later handled"]
    assert not session.system_error


async def test_error_in_top_level_code_skips_started() -> None:
    async with engine_harness() as h:
        session, lines = await h.run(RECORD_EVENTS + "\nnotDefined();\n")
    assert lines.script == ["Terminating true", "Terminated true"]
    assert session.failure is not None and "ReferenceError" in session.failure.message


async def test_non_function_listener_fails_when_the_event_fires_not_when_added() -> None:
    script = RECORD_EVENTS + """
VoxEngine.addEventListener(AppEvents.Started, "not a function");
VoxEngine.addEventListener(undefined, () => {});  // a misspelt event name must not throw here
Logger.write("registered");
"""
    async with engine_harness() as h:
        session, lines = await h.run(script)
    assert lines.script[0] == "registered"
    assert session.system_error
    assert session.failure is not None and "is not a function" in session.failure.message


async def test_remove_event_listener_with_and_without_callback() -> None:
    script = """
const a = () => Logger.write("a");
const b = () => Logger.write("b");
VoxEngine.addEventListener(AppEvents.Started, a);
VoxEngine.addEventListener(AppEvents.Started, b);
VoxEngine.removeEventListener(AppEvents.Started, a);
VoxEngine.addEventListener(AppEvents.Terminating, () => Logger.write("never"));
VoxEngine.removeEventListener(AppEvents.Terminating);
VoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());
"""
    async with engine_harness() as h:
        _, lines = await h.run(script)
    assert lines.script == ["b"]


async def test_only_logger_works_in_terminated() -> None:
    script = """
VoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());
VoxEngine.addEventListener(AppEvents.Terminated, () => {
  Logger.write("last words");
  setTimeout(() => Logger.write("never"), 0);
});
"""
    async with engine_harness() as h:
        session, lines = await h.run(script)
    assert lines.script == ["last words"]
    assert not session.system_error


async def test_secrets_are_read_synchronously() -> None:
    script = """
Logger.write(VoxEngine.getSecretValue("token") + " " + VoxEngine.getSecretValue("nope") + " "
  + VoxEngine.getSecretValue(""));
VoxEngine.terminate();
"""
    async with engine_harness() as h:
        _, lines = await h.run(script, secrets={"token": "s3cret"})
    assert lines.script == ["s3cret undefined undefined"]


async def test_session_clock_is_the_engine_clock() -> None:
    script = """
const t0 = Date.now();
setTimeout(() => {
  Logger.write(String(Math.round((Date.now() - t0) / 1000)) + " " + (new Date() instanceof Date) + " "
    + typeof Date() + " " + new Date(0).toISOString());
  VoxEngine.terminate();
}, 45 * 1000);
"""
    async with engine_harness() as h:
        wall = time.monotonic()
        _, lines = await h.run(script)
    assert lines.script == ["45 true string 1970-01-01T00:00:00.000Z"]
    assert time.monotonic() - wall < 10


async def test_date_moves_inside_a_handler_only_on_the_real_clock() -> None:
    # A handler that works for 50 ms sees Date move on the real clock; on the virtual clock time moves
    # only between events, so a scenario tested offline gives the same figures every run.
    script = """
const t0 = Date.now();
const spinUntil = performance.now() + 50;
while (performance.now() < spinUntil) {}
Logger.write(String(Date.now() - t0));
VoxEngine.terminate();
"""
    for virtual in (True, False):
        async with engine_harness(virtual=virtual) as h:
            _, lines = await h.run(script)
        elapsed = int(lines.script[0])
        assert (elapsed == 0) if virtual else (elapsed >= 49), (virtual, elapsed)
