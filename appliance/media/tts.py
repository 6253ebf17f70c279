"""Offline text-to-speech for `call.say()` and `VoxEngine.createTTSPlayer()`: espeak-ng, rendered to RATE.

Three parts, all audio and no engine wiring:

* `voice_for(value)` maps what a script passes as a voice (a `VoiceList.*` constant, whose runtime
  value is its dotted path, e.g. "VoiceList.Google.de_DE_Standard_A"; a legacy `Language.*` value
  such as "EUR_GERMAN_MALE"; or a plain locale, "de-DE") to an espeak-ng voice by language, keeping
  the gender where the name says it. Cloud voices are neural models we cannot reproduce; the
  language is what matters to a caller, so that is what the map keeps.
* `render(text, voice)` runs `espeak-ng --stdout` as a subprocess (never blocking the loop), parses
  its 22050 Hz WAV and resamples it to the internal RATE.
* `TtsCache` keeps rendered prompts on disk, because IVR prompts repeat on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import soxr

from appliance.media.audio import RATE, SAMPLE
from appliance.media.graph import MediaError

log = logging.getLogger(__name__)

ESPEAK: Final = "espeak-ng"
MAX_TEXT_CHARS: Final = 1500  # Voximplant's limit for say() / createTTSPlayer() text, markup included
RENDER_TIMEOUT_S: Final = 20.0  # 1500 characters take ~0.5 s to render; 20 s means espeak-ng is stuck
EMPTY_TEXT_MS: Final = 100  # empty text plays this much silence, so the player still starts and finishes
VERSION_TIMEOUT_S: Final = 5.0

# espeak-ng's own ranges: -s words per minute (80..450, default 175), -p pitch (0..99, default 50),
# -a amplitude (0..200, default 100). Our factors are relative to the defaults and clamped to the ranges.
SPEED_DEFAULT, SPEED_MIN, SPEED_MAX = 175, 80, 450
PITCH_DEFAULT, PITCH_MIN, PITCH_MAX = 50, 0, 99
AMPLITUDE_DEFAULT, AMPLITUDE_MIN, AMPLITUDE_MAX = 100, 0, 200

Gender = Literal["female", "male"]
FEMALE_VARIANT: Final = "+f3"  # every espeak-ng 1.51 language voice is male, so only female needs a variant


class TtsError(MediaError):
    """Text cannot be rendered (too long, espeak-ng failed or timed out); the player reports it as the
    PlaybackFinished error."""


class UnknownVoice(TtsError, ValueError):
    """A voice value that names nothing at all (empty, not a string), or an unusable fallback."""


class TextTooLong(TtsError, ValueError):
    """Text over MAX_TEXT_CHARS, which Voximplant refuses too."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The languages of espeak-ng 1.51 (`espeak-ng --voices`); the test checks them against the binary.
ESPEAK_LANGUAGES: Final = _words(
    "af am an ar as az ba be bg bn bpy bs ca chr-US-Qaaa-x-west cmn cmn-latn-pinyin cs cv cy da de el "
    "en-029 en-gb en-gb-scotland en-gb-x-gbclan en-gb-x-gbcwmd en-gb-x-rp en-us en-us-nyc eo es es-419 "
    "et eu fa fa-latn fi fr-be fr-ch fr-fr ga gd gn grc gu hak haw he hi hr ht hu hy hyw ia id io is it "
    "ja jbo ka kk kl kn ko kok ku ky la lb lfn lt ltg lv mi mk ml mr ms mt my nb nci ne nl nog om or pa "
    "pap piqd pl pt pt-br py qdb qu quc qya ro ru ru-lv sd shn si sjn sk sl smj sq sr sv sw ta te th tk "
    "tn tr tt ug uk ur uz vi vi-vn-x-central vi-vn-x-south yue"
)
# ISO codes that espeak-ng knows under another name. Wu Chinese is written in the same characters as
# Mandarin, so Mandarin reads it correctly, if with another accent.
_LANGUAGE_ALIASES: Final = {"arb": "ar", "zh": "cmn", "wuu": "cmn", "no": "nb", "iw": "he", "in": "id"}
# Languages with regional voices: (voice per region, voice for other regions, voice with no region).
_REGIONAL: Final[dict[str, tuple[dict[str, str], str, str]]] = {
    "en": ({"US": "en-us", "CA": "en-us", "PH": "en-us"}, "en-gb", "en-us"),
    "es": ({"ES": "es", "GQ": "es"}, "es-419", "es"),
    "fr": ({"BE": "fr-be", "CH": "fr-ch"}, "fr-fr", "fr-fr"),
    "pt": ({"BR": "pt-br"}, "pt", "pt"),
    "cmn": ({"HK": "yue", "MO": "yue"}, "cmn", "cmn"),
}
# Legacy `Language.<REGION_LANGUAGE>_<GENDER>` values (reference 2.12): the locale each one means.
_LEGACY_LOCALES: Final = {
    "US_ENGLISH": "en-US", "UK_ENGLISH": "en-GB", "AU_ENGLISH": "en-AU", "CA_ENGLISH": "en-CA",
    "BR_PORTUGUESE": "pt-BR", "CA_FRENCH": "fr-CA", "CH_CHINESE": "zh-CN", "HK_CHINESE": "zh-HK",
    "TW_CHINESE": "zh-TW", "EUR_CATALAN": "ca-ES", "EUR_CZECH": "cs-CZ", "EUR_DANISH": "da-DK",
    "EUR_DUTCH": "nl-NL", "EUR_FINNISH": "fi-FI", "EUR_FRENCH": "fr-FR", "EUR_GERMAN": "de-DE",
    "EUR_ITALIAN": "it-IT", "EUR_NORWEGIAN": "nb-NO", "EUR_POLISH": "pl-PL", "EUR_PORTUGUESE": "pt-PT",
    "EUR_SPANISH": "es-ES", "EUR_TURKISH": "tr-TR", "HU_HUNGARIAN": "hu-HU", "JP_JAPANESE": "ja-JP",
    "KR_KOREAN": "ko-KR", "RU_RUSSIAN": "ru-RU", "SW_SWEDISH": "sv-SE", "US_SPANISH": "es-US",
}  # fmt: skip
# The genders of the named voices of Amazon, IBM, Yandex, SaluteSpeech, T-Bank and ElevenLabs (Google's
# letters and star names say nothing; Microsoft's are too many to list and fall back to the base voice).
_FEMALE_NAMES: Final = _words(
    "aditi alena alexandra alice allison amira amy aria arlet astrid ayanda bianca birgit burcu camila carla "
    "carmen celine chantal charlotte conchita daniela danielle dasha dora elin emi emily emma erika ewa filiz "
    "francesca gabrielle gwyneth hala hannah heidi hiujin ida ines isabela isabelle ivy jane jasmine jessica "
    "jihye jin jitka joanna julia kajal kate kazuha kendra kimberly laura lea lera lily lisa liv lola lotte "
    "louise lucia lupe maja marfa marina marlene masha matilda merel mia mizuki naja naomi natalia niamh nicole "
    "nigora ola olivia omazh penelope raveena renee ruth sabrina salli sarah saule seoyeon sofia sofie suvi "
    "tatyana tomoko vicki vitoria yulduz zeina zhanar zhiyu"
)
_MALE_NAMES: Final = _words(
    "adriano alexander andres anton arthur bill boris brian callum charlie chris daniel dieter dima enrique "
    "eric ermil filipp geraint george giorgio gregory hans henry jacek jack james jan joey john justin karl "
    "kevin kirill liam madi mads mathieu matthew maxim michael miguel nicolas pedro remi ricardo roger ruben "
    "russell sergey sergio stephen takumi taras thiago will zahar zayd"
)
# language[_Script][_REGION] then the rest (the voice's name); "Alice" or "Bill" are no locale because
# the lookahead needs a separator or the end right after the language.
_LOCALE = re.compile(
    r"(?P<lang>[A-Za-z]{2,3})(?:[-_](?P<script>[A-Z][a-z]{3}))?(?:[-_](?P<region>[A-Za-z]{2}|\d{3}))?"
    r"(?=$|[-_])(?P<rest>.*)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class LocalVoice:
    """An espeak-ng voice chosen for what the script asked for."""

    espeak: str  # the -v argument, e.g. "en-us+f3"
    language: str  # the espeak-ng language, e.g. "en-us"
    gender: Gender | None
    requested: str  # the value the script gave, for logs
    fallback_used: bool = False  # the language was unknown: the caller should log it


def _language(lang: str, region: str | None) -> str | None:
    lang = _LANGUAGE_ALIASES.get(lang.lower(), lang.lower())
    if lang in _REGIONAL:
        by_region, other, plain = _REGIONAL[lang]
        return by_region.get(region.upper(), other) if region else plain
    return lang if lang in ESPEAK_LANGUAGES else None


def _gender(words: list[str]) -> Gender | None:
    for word in words:
        name = word.lower().removesuffix("neural").removesuffix("expressive")
        if name == "female" or name in _FEMALE_NAMES:
            return "female"
        if name == "male" or name in _MALE_NAMES:
            return "male"
    return None


def _parse(name: str) -> tuple[str | None, Gender | None]:
    """The espeak-ng language (None if unknown) and gender of a constant's last name part or a locale."""
    legacy, _, sex = name.rpartition("_")
    if legacy in _LEGACY_LOCALES and sex in ("FEMALE", "MALE"):
        language, _ = _parse(_LEGACY_LOCALES[legacy])
        return language, "female" if sex == "FEMALE" else "male"
    match = _LOCALE.fullmatch(name)
    if match is None:
        return None, _gender([name])
    words = [w for w in re.split(r"[-_]", match["rest"]) if w]
    return _language(match["lang"], match["region"]), _gender(words)


def voice_for(value: object, fallback: str = "en") -> LocalVoice:
    """The espeak-ng voice for a VoiceList/Language value or a locale; unknown languages get `fallback`."""
    if not isinstance(value, str) or not value.strip():
        raise UnknownVoice(f"Voice must be a VoiceList constant or a language, not {value!r}")
    # Constants are their dotted paths ("VoiceList.Amazon.Neural.en_US_Joanna"); the last part is the voice.
    name = value.strip().rpartition(".")[2]
    language, gender = _parse(name)
    fallback_used = language is None
    if language is None:
        language, _ = _parse(fallback.strip())
        if language is None:
            raise UnknownVoice(f"TTS fallback language {fallback!r} is not an espeak-ng language")
    variant = FEMALE_VARIANT if gender == "female" else ""
    return LocalVoice(language + variant, language, gender, value, fallback_used)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered prompt: mono int16 samples at RATE."""

    samples: npt.NDArray[np.int16]

    @property
    def duration_ms(self) -> int:
        return len(self.samples) * 1000 // RATE


def _silence(ms: int) -> Rendered:
    return Rendered(np.zeros(RATE * ms // 1000, dtype=SAMPLE))


def _factor(name: str, value: float, default: int, low: int, high: int) -> int:
    if not math.isfinite(value) or value < 0:
        raise TtsError(f"TTS {name} must be a finite number >= 0, not {value!r}")
    return max(low, min(high, round(default * value)))


def parse_wav(data: bytes) -> tuple[int, npt.NDArray[np.int16]]:
    """The rate and samples of espeak-ng's mono 16-bit PCM WAV. It writes to a pipe, so its size
    fields are placeholders (0x7ffff000): the data chunk runs to the end of the stream."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TtsError(f"espeak-ng output is not a WAV file ({data[:12]!r})")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if (fmt, channels, bits) != (1, 1, 16):
                raise TtsError(f"espeak-ng WAV is format {fmt}, {channels} channels, {bits} bits; expected 1, 1, 16")
        elif chunk == b"data":
            if not rate:
                raise TtsError("espeak-ng WAV has its data chunk before the fmt chunk")
            usable = len(body) - len(body) % 2
            return rate, np.frombuffer(body[:usable], dtype="<i2").astype(SAMPLE)
        pos += 8 + size + size % 2
    raise TtsError("espeak-ng WAV has no data chunk")


def to_internal(rate: int, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Resampled to RATE at the level espeak-ng gave. A band-limited resampler overshoots on peaks
    near full scale, so the result is clipped (not scaled) into int16: a quiet prompt stays quiet."""
    if rate == RATE or not len(samples):
        return samples
    x = samples.astype(np.float32) / 32768.0
    y = soxr.resample(x, rate, RATE, "HQ")
    out: npt.NDArray[np.int16] = np.clip(np.rint(y * 32768.0), -32768, 32767).astype(SAMPLE)
    return out


def is_ssml(text: str) -> bool:
    return text.lstrip().startswith("<speak")


async def _run(args: list[str], stdin: bytes, limit_s: float) -> bytes:
    """stdout of a subprocess, which is killed on timeout or cancellation."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as e:
        raise TtsError(f"cannot run {args[0]}: {e.strerror or e}") from e
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), limit_s)
    except TimeoutError:
        raise TtsError(f"{args[0]} did not finish within {limit_s:g} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode:
        detail = err.decode(errors="replace").strip()[-200:]
        raise TtsError(f"{args[0]} exited with status {proc.returncode}: {detail}")
    return out


async def engine_version(espeak: str = ESPEAK) -> str:
    """espeak-ng's version line: part of the cache key, so an upgrade re-renders the prompts."""
    out = await _run([espeak, "--version"], b"", VERSION_TIMEOUT_S)
    return out.decode(errors="replace").split("Data at")[0].strip()


async def render(
    text: str,
    voice: LocalVoice,
    *,
    rate: float = 1.0,
    pitch: float = 1.0,
    volume: float = 1.0,
    ssml: bool | None = None,
    espeak: str = ESPEAK,
) -> Rendered:
    """`text` spoken by `voice` at RATE. `rate`, `pitch` and `volume` are factors of espeak-ng's
    defaults. `ssml=None` treats text starting with "<speak" as SSML (espeak-ng's subset: prosody,
    break, say-as, audio is ignored); otherwise '<' is an ordinary character."""
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLong(f"TTS text is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
    args = [
        espeak, "--stdout", "--stdin", "-v", voice.espeak,
        "-s", str(_factor("rate", rate, SPEED_DEFAULT, SPEED_MIN, SPEED_MAX)),
        "-p", str(_factor("pitch", pitch, PITCH_DEFAULT, PITCH_MIN, PITCH_MAX)),
        "-a", str(_factor("volume", volume, AMPLITUDE_DEFAULT, AMPLITUDE_MIN, AMPLITUDE_MAX)),
    ]  # fmt: skip
    if not text.strip():
        return _silence(EMPTY_TEXT_MS)
    if is_ssml(text) if ssml is None else ssml:
        args.append("-m")
    wav = await _run(args, text.encode(), RENDER_TIMEOUT_S)
    samples = to_internal(*parse_wav(wav))
    # SSML that holds no words renders a few ms of zeros: give it the same silence as empty text.
    return Rendered(samples) if samples.any() else _silence(EMPTY_TEXT_MS)


_MAGIC: Final = b"VGT1"  # file = magic, uint32 sample count, int16 samples: a truncated file is detectable
_HEADER: Final = struct.Struct("<4sI")
_SUFFIX: Final = ".pcm"


def _read_entry(path: Path) -> npt.NDArray[np.int16] | None:
    """A cached prompt, or None if missing or damaged (then it is removed). Touches it for LRU order
    across restarts."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) >= _HEADER.size:
        magic, count = _HEADER.unpack_from(data)
        if magic == _MAGIC and len(data) == _HEADER.size + 2 * count:
            os.utime(path)
            return np.frombuffer(data, dtype="<i2", offset=_HEADER.size).astype(SAMPLE)
    log.warning("ignoring damaged TTS cache file %s (%d bytes)", path, len(data))
    path.unlink(missing_ok=True)
    return None


def _write_entry(path: Path, samples: npt.NDArray[np.int16]) -> int:
    """Written to a temporary name and renamed, so readers never see a partial file."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    data = _HEADER.pack(_MAGIC, len(samples)) + samples.astype("<i2").tobytes()
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def _scan(directory: Path) -> list[tuple[str, int]]:
    """Entries oldest-used first; leftover temporary files of a crashed process are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in directory.iterdir():
        if path.suffix == ".tmp":
            path.unlink(missing_ok=True)
        elif path.suffix == _SUFFIX:
            st = path.stat()
            entries.append((st.st_mtime_ns, path.stem, st.st_size))
    return [(key, size) for _, key, size in sorted(entries)]


class TtsCache:
    """Rendered prompts on disk, keyed by everything that changes the audio, evicted least recently
    used first once they pass `max_bytes`. Concurrent requests for one prompt share one render."""

    def __init__(self, directory: Path, max_bytes: int, *, espeak: str = ESPEAK) -> None:
        if max_bytes <= 0:
            raise ValueError(f"TTS cache size must be positive, not {max_bytes}")
        self.directory = directory
        self.max_bytes = max_bytes
        self.espeak = espeak
        self.hits = 0
        self.renders = 0
        self._version: str | None = None
        self._index: OrderedDict[str, int] | None = None  # key -> file size, least recently used first
        self._setup = asyncio.Lock()
        self._inflight: dict[str, asyncio.Future[Rendered]] = {}

    @property
    def total_bytes(self) -> int:
        return sum(self._index.values()) if self._index else 0

    async def _ready(self) -> tuple[OrderedDict[str, int], str]:
        async with self._setup:
            if self._index is None:
                self._index = OrderedDict(await asyncio.to_thread(_scan, self.directory))
            if self._version is None:
                self._version = await engine_version(self.espeak)
            return self._index, self._version

    async def get_or_render(
        self,
        text: str,
        voice: LocalVoice,
        *,
        rate: float = 1.0,
        pitch: float = 1.0,
        volume: float = 1.0,
        ssml: bool | None = None,
    ) -> Rendered:
        if len(text) > MAX_TEXT_CHARS:  # refused before any I/O, exactly as render() would
            raise TextTooLong(f"TTS text is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
        index, version = await self._ready()
        ssml = is_ssml(text) if ssml is None else ssml
        material = json.dumps([text, voice.espeak, rate, pitch, volume, ssml, version, RATE])
        key = hashlib.sha256(material.encode()).hexdigest()[:32]
        while (pending := self._inflight.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The task rendering it was cancelled, not us: try again (perhaps rendering it ourselves).
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._load_or_render(index, key, text, voice, rate, pitch, volume, ssml)
        except Exception as e:
            future.set_exception(e)
            future.exception()  # retrieved here, so asyncio does not warn when nobody else waited
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]
            if not future.done():
                future.cancel()  # we were cancelled (or interrupted): the waiters try again themselves

    async def _load_or_render(
        self,
        index: OrderedDict[str, int],
        key: str,
        text: str,
        voice: LocalVoice,
        rate: float,
        pitch: float,
        volume: float,
        ssml: bool,
    ) -> Rendered:
        path = self.directory / f"{key}{_SUFFIX}"
        if key in index:
            samples = await asyncio.to_thread(_read_entry, path)
            if samples is not None:
                index.move_to_end(key)
                self.hits += 1
                return Rendered(samples)
            index.pop(key, None)
        rendered = await render(text, voice, rate=rate, pitch=pitch, volume=volume, ssml=ssml, espeak=self.espeak)
        self.renders += 1
        size = _HEADER.size + 2 * len(rendered.samples)
        if size > self.max_bytes:
            log.info("TTS prompt of %d bytes is larger than the whole cache; not kept", size)
            return rendered
        index[key] = await asyncio.to_thread(_write_entry, path, rendered.samples)
        await self._evict(index)
        return rendered

    async def _evict(self, index: OrderedDict[str, int]) -> None:
        victims = []
        total = sum(index.values())
        while total > self.max_bytes:
            key, size = index.popitem(last=False)
            victims.append(self.directory / f"{key}{_SUFFIX}")
            total -= size
        if victims:
            await asyncio.to_thread(_unlink_all, victims)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
