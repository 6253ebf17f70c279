"""Scenarios routing media: JS sendMediaTo/stopMediaTo/conferences reach the media plane's graph."""

from __future__ import annotations

from engine_helpers import engine_harness

from appliance.clock import VirtualClock
from appliance.engine.media import SessionMedia
from appliance.media.graph import Conference
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts


class Unit:
    def __init__(self, unit_id: str) -> None:
        self.id = unit_id


def plane() -> MediaPlane:
    return MediaPlane(VirtualClock(), RtpPorts(46000, 46100))


def conferences(media: MediaPlane) -> list[Conference]:
    return [u for u in media.graph.units() if isinstance(u, Conference)]


async def test_conferences_and_routing_from_a_scenario() -> None:
    async with engine_harness() as h:
        media = plane()
        h.engine.plane = media
        seen: dict[str, object] = {}
        script = """
const a = VoxEngine.createConference();
const b = VoxEngine.createConference();
Logger.write("ids " + (a.id() !== b.id()) + " " + (a instanceof Conference));
VoxEngine.sendMediaBetween(a, b);
for (const bad of [() => a.sendMediaTo(a), () => a.sendMediaTo(42), () => VoxEngine.sendMediaBetween(b, {})]) {
  try { bad(); } catch (e) { Logger.write(e.name + ": " + e.message); }
}
a.addEventListener(ConferenceEvents.Stopped, () => Logger.write("a stopped"));
setTimeout(() => { a.stop(); a.stop(); }, 1000);
setTimeout(() => VoxEngine.terminate(), 2000);
"""
        session = h.start(script)
        clock = h.clock
        assert isinstance(clock, VirtualClock)
        while not session.ended.done() and await clock.advance():
            units = conferences(media)
            if len(units) == 2 and "both" not in seen:
                left, right = units
                mixed = media.graph.mixed_into
                seen["both"] = (left.id in mixed(right.id), right.id in mixed(left.id))
            if len(units) == 1 and "one" not in seen:
                seen["one"] = True
        await h.finish(session)
        assert seen["both"] == (True, True)
        assert seen.get("one") is True  # a.stop() released it; stopping twice is harmless
        assert conferences(media) == []  # the session's conferences end with it
        assert not session.system_error


async def test_script_errors_for_bad_routing() -> None:
    async with engine_harness() as h:
        h.engine.plane = plane()
        session, lines = await h.run("""
const a = VoxEngine.createConference();
for (const bad of [() => a.sendMediaTo(a), () => a.sendMediaTo(42), () => VoxEngine.sendMediaBetween(a, {})]) {
  try { bad(); } catch (e) { Logger.write(e.name + ": " + e.message); }
}
a.addEventListener(ConferenceEvents.ConferenceError, (e) => { Logger.write("add " + e.code); VoxEngine.terminate(); });
a.add({});
""")
        assert not session.system_error
        assert lines.script == [
            "Error: sendMediaTo: a media unit cannot send media to itself",
            "TypeError: sendMediaTo: the argument is not a media unit (a Call, Conference, Player...)",
            "TypeError: sendMediaTo: the argument is not a media unit (a Call, Conference, Player...)",
            "add 102",
        ]


def test_routing_waits_for_units_that_have_no_media_yet() -> None:
    """easyProcess bridges a call that is still dialling: the edge appears once the leg has media."""
    media = plane()
    units: dict[str, str] = {}
    session = SessionMedia(1, media, units.get)
    caller, callee = Unit("rtp-a"), Unit("rtp-b")
    media.graph.add(caller)
    units["call-1"] = caller.id
    session.apply({"op": "media", "action": "send", "from": "call-1", "to": "call-2"})
    session.apply({"op": "media", "action": "send", "from": "call-2", "to": "call-1"})
    assert media.graph.source_of("rtp-a") is None  # call-2 has no media yet
    media.graph.add(callee)
    units["call-2"] = callee.id
    session.sync()  # after the next leg event
    assert media.graph.source_of("rtp-a") == "rtp-b" and media.graph.source_of("rtp-b") == "rtp-a"
    # A new source replaces the old; stopMediaTo of a unit that is not the source changes nothing.
    units["call-3"] = "rtp-c"
    media.graph.add(Unit("rtp-c"))
    session.apply({"op": "media", "action": "send", "from": "call-3", "to": "call-1"})
    assert media.graph.source_of("rtp-a") == "rtp-c"
    session.apply({"op": "media", "action": "stop", "from": "call-2", "to": "call-1"})
    assert media.graph.source_of("rtp-a") == "rtp-c"
    session.apply({"op": "media", "action": "stop", "from": "call-3", "to": "call-1"})
    assert media.graph.source_of("rtp-a") is None
    # A leg that ends leaves the graph with its edges; the session forgets them quietly.
    media.release(callee)
    del units["call-2"]
    session.sync()
    assert media.graph.source_of("rtp-a") is None
    session.close()
