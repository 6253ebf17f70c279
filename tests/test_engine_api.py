"""The core API of reference 5a that needs no calls: names, utilities, modules, cloud stubs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from importlib import resources

from engine_helpers import engine_harness


async def run_lines(script: str) -> list[str]:
    async with engine_harness() as h:
        session, lines = await h.run(script + "\nVoxEngine.terminate();")
        assert not session.system_error, (session.failure, lines.system)
        return lines.script


async def test_every_name_of_the_typings_exists() -> None:
    symbols = json.loads((resources.files("appliance.engine") / "data" / "voxengine-symbols.json").read_text())
    paths: list[str] = []
    for enum, members in symbols["enums"].items():
        paths += [f"{enum}.{m}" for m in members]
    for ns, names in symbols["namespace_constants"].items():
        paths += [f"{ns}.{n}" for n in names]
    for ns, names in symbols["namespace_functions"].items():
        paths += [f"{ns}.{n}" for n in names]
    paths += symbols["global_functions"]
    script = f"""
const missing = [];
for (const path of {json.dumps(paths)}) {{
  let here = globalThis;
  for (const part of path.split(".")) {{ here = here === undefined ? undefined : here[part]; }}
  if (here === undefined) missing.push(path);
}}
Logger.write(missing.length + " missing of {len(paths)}: " + missing.slice(0, 10).join(" "));
"""
    lines = await run_lines(script)
    assert lines == [f"0 missing of {len(paths)}: "]


async def test_enum_values_as_scenarios_compare_them() -> None:
    lines = await run_lines("""
Logger.write([AppEvents.Started, AppEvents.WebSocket, CallEvents.Connected, PlayerEvents.PlaybackBuffering,
  DTMFType.ALL === 0, WebSocketCloseCode.CLOSE_NORMAL, ConferenceMode.MIX, Modules.ASR, Modules.Player,
  Language.US_ENGLISH_FEMALE, CallEvents.VoicemailToneDetected, typeof VoiceList.Amazon.Neural.en_US_Joanna,
  VoiceList.Default.en_US_Female].join(" "));
VoxEngine.myHelper = () => "libraries may extend VoxEngine";
Logger.write(VoxEngine.myHelper());
""")
    assert lines == [
        "Application.Started AppEvents.NewWebSocketConnection Call.Connected Player.Buffering true 1000 MIX asr "
        "player US_ENGLISH_FEMALE Call.VoicemailToneDetected string VoiceList.Default.en_US_Female",
        "libraries may extend VoxEngine",
    ]


async def test_require_is_tolerant_and_cloud_features_throw_clearly() -> None:
    async with engine_harness() as h:
        session, lines = await h.run("""
require(Modules.ApplicationStorage); require(Modules.Player); require(undefined); require("nonsense");
require(Modules.OpenAI);
const tries = [
  () => OpenAI.createRealtimeAPIClient({}),
  () => ElevenLabs.createAgentsClient({}),
  () => VoxEngine.enqueueACDRequest("q", "1"),
  () => VoxEngine.callWhatsappUser({}),
  () => new VoximplantApi.Client(),
  () => AI.createDialogflow({}),
  () => VoxEngine.callUserDirect(null, "bob", {}),
];
for (const t of tries) { try { t(); Logger.write("no error"); } catch (e) { Logger.write(e.message); } }
Logger.write(MeasurementProtocol.setup({}).sendEvent({}) === MeasurementProtocol);
VoxEngine.terminate();
""")
    assert not session.system_error
    assert lines.script == [
        "OpenAI is not available on this appliance",
        "ElevenLabs is not available on this appliance",
        "ACD is not available on this appliance",
        "WhatsApp calling is not available on this appliance",
        "VoximplantAPI is not available on this appliance",
        "Dialogflow is not available on this appliance",
        "P2P calling (callUserDirect) is not available on this appliance",
        "true",
    ]
    assert any("OpenAI is a cloud feature" in line for line in lines.system)


async def test_byte_and_string_utilities() -> None:
    lines = await run_lines("""
Logger.write(base64_encode("héllo") + " " + base64_encode([0, 255]) + " " + JSON.stringify(base64_decode("AP8")));
Logger.write(JSON.stringify(str2bytes("é")) + " " + JSON.stringify(str2bytes("ж", "koi8-r")));
Logger.write(bytes2str([208, 182]) + " " + bytes2str([214], "koi8-r") + " " + bytes2hex([1, 171]) + " "
  + bytes2hex([1, 171], true) + " " + JSON.stringify(hex2bytes("01ab")));
try { hex2bytes("xyz"); } catch (e) { Logger.write(e.name); }
try { str2bytes("a", "no-such-encoding"); } catch (e) { Logger.write(e.message); }
Logger.write(String(levenshtein_distance("kitten", "sitting")));
Logger.write(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuidgen()));
""")
    assert lines == [
        f"{base64.b64encode('héllo'.encode()).decode()} AP8= [0,255]",
        "[195,169] [214]",
        "ж ж 01ab 01AB [1,171]",
        "TypeError",
        "unknown encoding 'no-such-encoding'",
        "3",
        "true",
    ]


async def test_crypto_matches_python() -> None:
    lines = await run_lines("""
Logger.write([Crypto.md5("abc"), Crypto.md5(["a", "bc"]), Crypto.sha1("abc"), Crypto.sha256("abc"),
  Crypto.hmac_sha256("key", "abc")].join(" "));
""")
    assert lines == [" ".join([
        hashlib.md5(b"abc").hexdigest(),
        hashlib.md5(b"abc").hexdigest(),
        hashlib.sha1(b"abc").hexdigest(),
        hashlib.sha256(b"abc").hexdigest(),
        hmac.new(b"key", b"abc", hashlib.sha256).hexdigest(),
    ])]


async def test_get_local_time_and_utc_dates() -> None:
    lines = await run_lines("""
const winter = new Date(Date.UTC(2026, 0, 15, 12, 0, 0));
const summer = new Date(Date.UTC(2026, 6, 15, 12, 0, 0));
Logger.write(getLocalTime("Europe/Berlin", winter).getUTCHours() + " " + getLocalTime("Europe/Berlin", summer)
  .getUTCHours() + " " + getLocalTime("America/New_York", winter).getUTCHours() + " " + winter.getHours());
try { getLocalTime("Mars/Olympus", winter); } catch (e) { Logger.write(e.message); }
""")
    assert lines == ["13 14 7 12", "getLocalTime: unknown time zone 'Mars/Olympus'"]


async def test_legacy_session_helpers() -> None:
    async with engine_harness() as h:
        session, lines = await h.run("""
Logger.write(typeof JSession_GC() + " " + (JSession_getLeftMemBytes() > 1000000));
Logger.write(typeof new Net.HttpRequestOptions() + " " + typeof trace + " " + typeof console.error);
VoxEngine.addEventListener(AppEvents.Started, () => JSession.close());
""")
    assert lines.script == ["undefined true", "object function function"]
    assert not session.system_error


async def test_host_function_refuses_garbage_without_breaking_the_session() -> None:
    lines = await run_lines("""
Logger.write(__voxHost("nonsense", "[]"));
Logger.write(__voxHost("digest", "not json"));
Logger.write(__voxHost("digest", JSON.stringify(["md5"])));
""")
    assert all('"error"' in line for line in lines), lines
