"""Offline TTS: the voice map over every VoiceList/Language constant, espeak-ng rendering, the prompt cache."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from appliance.media import tts
from appliance.media.audio import RATE
from appliance.media.tts import (
    MAX_TEXT_CHARS,
    LocalVoice,
    Rendered,
    TextTooLong,
    TtsCache,
    TtsError,
    UnknownVoice,
    render,
    voice_for,
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

ENGLISH = "Thank you for calling. Please hold the line, the next available agent will be with you shortly."
GERMAN = "Vielen Dank für Ihren Anruf. Bitte bleiben Sie am Apparat, der nächste freie Mitarbeiter ist gleich da."
SILENT_RMS = 100.0  # int16 RMS of a 20 ms frame below which it counts as silence (speech is ~3000)


def _symbol_values() -> list[str]:
    """The runtime value of every VoiceList constant (its dotted path) and every legacy Language value."""
    data = resources.files("appliance.engine") / "data"
    symbols = json.loads((data / "voxengine-symbols.json").read_text(encoding="utf-8"))
    legacy = json.loads((data / "legacy-symbols.json").read_text(encoding="utf-8"))
    values = [f"{path}.{name}" for path, names in symbols["namespace_constants"].items() for name in names]
    values += list(legacy["enums"]["Language"].values())
    return values


def _installed_languages() -> set[str]:
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines()[1:]}


def _rms(x: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def _longest_silence_ms(x: npt.NDArray[np.int16]) -> int:
    frame = RATE // 50
    frames = x[: len(x) // frame * frame].astype(np.float64).reshape(-1, frame)
    silent = np.sqrt(np.mean(frames**2, axis=1)) < SILENT_RMS
    longest = run = 0
    for s in silent:
        run = run + 1 if s else 0
        longest = max(longest, run)
    return longest * 20


# Blocking file look-ups, kept out of the async tests (ruff ASYNC240); they are tiny.
def _files(directory: Path, pattern: str) -> list[Path]:
    return list(directory.glob(pattern))


def _sizes(paths: list[Path]) -> list[int]:
    return [p.stat().st_size for p in paths]


def _exists(path: Path) -> bool:
    return path.exists()


def _damage(entry: Path, leftover: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:-100])  # as if truncated
    leftover.write_bytes(b"partial")  # as if a process died mid-write


def _band_share(x: npt.NDArray[np.int16], low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(power[(freqs >= low) & (freqs <= high)].sum() / power.sum())


# --- the voice map ---


def test_espeak_languages_table_matches_the_binary() -> None:
    missing = tts.ESPEAK_LANGUAGES - _installed_languages()
    assert not missing, f"languages the map uses but espeak-ng lacks: {sorted(missing)}"


def test_every_voicelist_and_language_constant_maps_to_an_espeak_voice() -> None:
    installed = _installed_languages()
    values = _symbol_values()
    assert len(values) > 2200
    fallback: Counter[str] = Counter()
    genders: Counter[str | None] = Counter()
    for value in values:
        voice = voice_for(value)
        assert voice.language in installed, value
        assert voice.espeak in (voice.language, voice.language + tts.FEMALE_VARIANT), value
        genders[voice.gender] += 1
        if voice.fallback_used:
            fallback[value.rpartition(".")[2].split("_")[0]] += 1
    matched = len(values) - fallback.total()
    print(
        f"\n{len(values)} constants: {matched} to a voice of their language, {fallback.total()} to the fallback "
        f"({dict(fallback.most_common())}); genders {dict(genders)}"
    )
    # Only languages espeak-ng 1.51 lacks, and ElevenLabs' names without a locale, may fall back.
    lacking = {"fil", "gl", "jv", "km", "lo", "mn", "ps", "so", "su", "zu", "iu", "createBrandVoice"}
    eleven = set(json.loads((resources.files("appliance.engine") / "data" / "voxengine-symbols.json").read_text())
                 ["namespace_constants"]["VoiceList.ElevenLabs"])  # fmt: skip
    assert set(fallback) <= lacking | eleven


async def test_every_distinct_mapped_voice_really_speaks() -> None:
    """espeak-ng exits 1 for a voice it does not have, so rendering one word proves each -v argument."""
    voices = {voice_for(v).espeak: voice_for(v) for v in _symbol_values()}
    limit = asyncio.Semaphore(8)

    async def one(voice: LocalVoice) -> Rendered:
        async with limit:
            return await render("1", voice)

    results = await asyncio.gather(*(one(v) for v in voices.values()))
    assert all(r.duration_ms > 0 for r in results)
    print(f"\n{len(voices)} distinct espeak-ng voices used, all render")


@pytest.mark.parametrize(
    ("value", "espeak", "gender"),
    [
        ("VoiceList.Amazon.en_US_Joanna", "en-us+f3", "female"),
        ("VoiceList.Amazon.Neural.en_GB_Brian", "en-gb", "male"),
        ("VoiceList.Amazon.en_GB_WLS_Geraint", "en-gb", "male"),
        ("VoiceList.Amazon.arb_Zeina", "ar+f3", "female"),
        ("VoiceList.Google.de_DE_Standard_A", "de", None),
        ("VoiceList.Google.pt_BR_Neural2_A", "pt-br", None),
        ("VoiceList.Google.yue_HK_Standard_C", "yue", None),
        ("VoiceList.Google.es_US_Chirp3_HD_Sadaltager", "es-419", None),
        ("VoiceList.Microsoft.Neural.zh_CN_sichuan_YunxiNeural", "cmn", None),
        ("VoiceList.Microsoft.Neural.sr_Latn_RS_SophieNeural", "sr", None),
        ("VoiceList.Default.ru_RU_Female", "ru+f3", "female"),
        ("VoiceList.Default.de_DE_Male", "de", "male"),
        ("VoiceList.YandexV3.ru_RU_madi_ru", "ru", "male"),
        ("EUR_GERMAN_MALE", "de", "male"),
        ("BR_PORTUGUESE_FEMALE", "pt-br+f3", "female"),
        ("HK_CHINESE_FEMALE", "yue+f3", "female"),
        ("en-US", "en-us", None),
        ("de_DE", "de", None),
        ("ru", "ru", None),
        ("fr-CA", "fr-fr", None),
        ("EN-gb", "en-gb", None),
    ],
)
def test_voice_for_examples(value: str, espeak: str, gender: str | None) -> None:
    voice = voice_for(value)
    assert (voice.espeak, voice.gender, voice.fallback_used, voice.requested) == (espeak, gender, False, value)


def test_unknown_language_takes_the_fallback_and_says_so() -> None:
    voice = voice_for("VoiceList.Google.gl_ES_Standard_A", fallback="es-ES")
    assert (voice.language, voice.fallback_used) == ("es", True)
    eleven = voice_for("VoiceList.ElevenLabs.Alice")
    assert (eleven.espeak, eleven.gender, eleven.fallback_used) == ("en-us+f3", "female", True)
    assert voice_for("Klingon").fallback_used


@pytest.mark.parametrize("value", ["", "   ", None, 42, ["en"]])
def test_unusable_voice_values_raise(value: object) -> None:
    with pytest.raises(UnknownVoice, match="Voice must be"):
        voice_for(value)


def test_unusable_fallback_raises() -> None:
    with pytest.raises(UnknownVoice, match="fallback"):
        voice_for("Klingon", fallback="tlh")
    assert isinstance(UnknownVoice("x"), ValueError)


# --- rendering ---


@pytest.mark.parametrize(("text", "value"), [(ENGLISH, "VoiceList.Amazon.en_US_Joanna"), (GERMAN, "EUR_GERMAN_MALE")])
async def test_rendered_prompt_is_speech_of_plausible_length(text: str, value: str) -> None:
    started = time.perf_counter()
    prompt = await render(text, voice_for(value))
    took = time.perf_counter() - started
    seconds = prompt.duration_ms / 1000
    chars_per_s = len(text) / seconds
    speech_band = _band_share(prompt.samples, 200, 3400)
    print(
        f"\n{value}: {len(text)} chars -> {seconds:.2f} s ({chars_per_s:.1f} chars/s), RMS {_rms(prompt.samples):.0f}, "
        f"{speech_band:.0%} of energy in 200-3400 Hz, render {1000 * took / seconds:.1f} ms per second of speech"
    )
    assert prompt.samples.dtype == np.int16
    # espeak-ng's default 175 words/min is ~15-17 characters/s, about the pace of the cloud voices.
    assert 8 < chars_per_s < 20
    assert _rms(prompt.samples) > 10 * SILENT_RMS
    assert speech_band > 0.8
    twice = await render(f"{text} {text}", voice_for(value))
    assert 1.7 < twice.duration_ms / prompt.duration_ms < 2.3


async def test_rate_pitch_and_volume_change_the_audio() -> None:
    voice = voice_for("en-US")
    fast, slow = await render(ENGLISH, voice, rate=2.0), await render(ENGLISH, voice, rate=0.5)
    print(f"\nrate 2.0: {fast.duration_ms} ms, rate 0.5: {slow.duration_ms} ms")
    assert fast.duration_ms * 3 < slow.duration_ms
    loud, quiet = await render(ENGLISH, voice, volume=2.0), await render(ENGLISH, voice, volume=0.25)
    assert _rms(quiet.samples) * 4 < _rms(loud.samples)
    low, high = await render("aaaa", voice, pitch=0.2), await render("aaaa", voice, pitch=1.9)
    assert not np.array_equal(low.samples, high.samples)
    with pytest.raises(TtsError, match="rate must be"):
        await render("x", voice, rate=float("nan"))


def test_resampling_clips_overshoot_instead_of_wrapping() -> None:
    # Full-scale steps: the band-limited resampler overshoots past int16 at every edge.
    square = np.repeat(np.array([32767, -32768] * 4, dtype=np.int16), 2205)
    out = tts.to_internal(22050, square)
    half = RATE // 10  # 2205 samples at 22050 Hz are 800 at 8 kHz
    assert len(out) == 8 * half
    for i in range(8):
        part = out[i * half + 10 : (i + 1) * half - 10]
        assert (part > 30000).all() if i % 2 == 0 else (part < -30000).all()
    assert out.max() == 32767 and out.min() == -32768  # clipped at the edges
    assert tts.to_internal(RATE, square) is square  # nothing to do at the internal rate


async def test_ssml_break_adds_the_pause() -> None:
    voice = voice_for("en-US")
    plain = await render("<speak>one two</speak>", voice)
    paused = await render('<speak>one <break time="1500ms"/> two</speak>', voice)
    gap_plain, gap_paused = _longest_silence_ms(plain.samples), _longest_silence_ms(paused.samples)
    print(f"\nlongest silence without break {gap_plain} ms, with a 1500 ms break {gap_paused} ms")
    assert gap_paused - gap_plain > 1200
    assert paused.duration_ms - plain.duration_ms > 1200


async def test_ssml_prosody_and_say_as_are_understood_not_spoken() -> None:
    voice = voice_for("en-US")
    base = await render("<speak>hello there</speak>", voice)
    marked = await render("<speak><say-as stress='1'>hello</say-as> there</speak>", voice)
    slow = await render('<speak><prosody rate="x-slow">hello there</prosody></speak>', voice)
    # Spoken tags would take seconds; understood ones change little or (prosody) slow it down.
    assert abs(marked.duration_ms - base.duration_ms) < 300
    assert slow.duration_ms > base.duration_ms * 1.3


async def test_plain_text_with_angle_brackets_is_spoken() -> None:
    voice = voice_for("en")
    prompt = await render("if a < b and c > d then <press> 1", voice)
    assert _rms(prompt.samples) > 10 * SILENT_RMS
    # Forcing plain text on SSML-looking input speaks it instead of failing.
    assert (await render("<speak>hi</speak>", voice, ssml=False)).duration_ms > 0


async def test_text_limit_is_voximplants() -> None:
    voice = voice_for("en")
    with pytest.raises(TextTooLong, match="1501 characters long; the limit is 1500"):
        await render("a" * (MAX_TEXT_CHARS + 1), voice)
    text = ("one two three four five six seven eight nine ten " * 31)[:MAX_TEXT_CHARS]
    started = time.perf_counter()
    longest = await render(text, voice)
    took = time.perf_counter() - started
    print(f"\n1500 chars: {longest.duration_ms / 1000:.1f} s of speech rendered in {took * 1000:.0f} ms")
    assert longest.duration_ms > 60_000


async def test_empty_text_is_a_short_silence() -> None:
    for text in ("", "   \n", "<speak></speak>"):
        prompt = await render(text, voice_for("en"))
        assert prompt.duration_ms == tts.EMPTY_TEXT_MS
        assert not prompt.samples.any()


async def test_missing_binary_and_hung_binary_are_tts_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TtsError, match="cannot run"):
        await render("hi", voice_for("en"), espeak=str(tmp_path / "no-espeak"))
    hung = tmp_path / "hung-espeak"
    hung.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 30\n")
    hung.chmod(0o755)
    monkeypatch.setattr(tts, "RENDER_TIMEOUT_S", 0.3)
    with pytest.raises(TtsError, match=r"did not finish within 0\.3 s"):
        await render("hi", voice_for("en"), espeak=str(hung))
    pid = int((tmp_path / "pid").read_text())
    assert not _exists(Path(f"/proc/{pid}"))  # killed and reaped


# --- the cache ---


async def test_cache_hit_returns_the_same_samples_without_espeak(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path, 10_000_000)
    voice = voice_for("VoiceList.Amazon.en_US_Joanna")
    first = await cache.get_or_render(ENGLISH, voice)
    cache.espeak = str(tmp_path / "no-espeak")  # a miss would now fail
    started = time.perf_counter()
    again = await cache.get_or_render(ENGLISH, voice)
    print(f"\ncache hit: {(time.perf_counter() - started) * 1000:.2f} ms for {again.duration_ms} ms of speech")
    assert np.array_equal(first.samples, again.samples)
    assert (cache.renders, cache.hits) == (1, 1)
    with pytest.raises(TtsError, match="cannot run"):
        await cache.get_or_render(ENGLISH, voice, rate=1.5)  # another key: a real miss
    # A new process finds the prompt on disk.
    restarted = TtsCache(tmp_path, 10_000_000)
    assert np.array_equal((await restarted.get_or_render(ENGLISH, voice)).samples, first.samples)
    assert (restarted.renders, restarted.hits) == (0, 1)


async def test_concurrent_requests_render_once(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path, 10_000_000)
    voice = voice_for("de")
    results = await asyncio.gather(*(cache.get_or_render(GERMAN, voice) for _ in range(5)))
    assert cache.renders == 1
    assert all(np.array_equal(r.samples, results[0].samples) for r in results)


async def test_a_cancelled_render_hands_over_to_a_waiter(tmp_path: Path) -> None:
    slow = tmp_path / "slow-espeak"
    slow.write_text('#!/bin/sh\ncase "$*" in *--stdout*) sleep 0.4;; esac\nexec espeak-ng "$@"\n')
    slow.chmod(0o755)
    cache = TtsCache(tmp_path / "cache", 10_000_000, espeak=str(slow))
    voice = voice_for("en")
    leader = asyncio.create_task(cache.get_or_render("handed over", voice))
    await asyncio.sleep(0.1)
    waiter = asyncio.create_task(cache.get_or_render("handed over", voice))
    await asyncio.sleep(0.05)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert (await waiter).duration_ms > 0
    assert cache.renders == 1


async def test_a_failed_render_fails_every_waiter_and_is_not_cached(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path, 10_000_000)
    await cache.get_or_render("warm", voice_for("en"))  # learns the engine version
    cache.espeak = str(tmp_path / "no-espeak")
    results = await asyncio.gather(
        *(cache.get_or_render("x", voice_for("en")) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, TtsError) for r in results)
    assert len(_files(tmp_path, "*.pcm")) == 1


async def test_damaged_files_are_ignored_and_re_rendered(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path, 10_000_000)
    voice = voice_for("en")
    good = await cache.get_or_render("damage me", voice)
    (entry,) = _files(tmp_path, "*.pcm")
    _damage(entry, tmp_path / "leftover.123.tmp")
    restarted = TtsCache(tmp_path, 10_000_000)
    again = await restarted.get_or_render("damage me", voice)
    assert np.array_equal(good.samples, again.samples)
    assert (restarted.renders, restarted.hits) == (1, 0)
    assert not _files(tmp_path, "*.tmp")


async def test_eviction_keeps_the_cache_under_its_size(tmp_path: Path) -> None:
    max_bytes = 60_000  # a short word is ~10 kB at 8 kHz int16
    cache = TtsCache(tmp_path, max_bytes)
    voice = voice_for("en")
    words = [f"number {n}" for n in range(12)]
    for word in words:
        await cache.get_or_render(word, voice)
        await cache.get_or_render(words[0], voice)  # keeps the first one recently used
        on_disk = sum(_sizes(_files(tmp_path, "*.pcm")))
        assert on_disk == cache.total_bytes <= max_bytes
    renders = cache.renders
    await cache.get_or_render(words[0], voice)
    await cache.get_or_render(words[-1], voice)
    assert cache.renders == renders  # recently used ones survived
    await cache.get_or_render(words[1], voice)
    assert cache.renders == renders + 1  # an old one was evicted
    assert TtsCache(tmp_path, 1).max_bytes == 1
    with pytest.raises(ValueError, match="positive"):
        TtsCache(tmp_path, 0)


def test_parse_wav_refuses_what_espeak_never_writes() -> None:
    fmt = b"fmt " + (16).to_bytes(4, "little")
    stereo = b"RIFF\0\0\0\0WAVE" + fmt + bytes.fromhex("0100 0200 22560000 88580100 0400 1000")
    with pytest.raises(TtsError, match="not a WAV"):
        tts.parse_wav(b"junk")
    with pytest.raises(TtsError, match="2 channels"):
        tts.parse_wav(stereo)
    mono = b"RIFF\0\0\0\0WAVE" + fmt + bytes.fromhex("0100 0100 22560000 44ac0000 0200 1000")
    with pytest.raises(TtsError, match="no data chunk"):
        tts.parse_wav(mono)
    rate, samples = tts.parse_wav(mono + b"data\x00\xf0\xff\x7f" + b"\x01\x00\x02\x00\x03")  # streamed size
    assert (rate, samples.tolist()) == (22050, [1, 2])
