"""Word accuracy and cost of offline ASR on phone audio.

Renders English phrases with espeak-ng, takes them to 8 kHz and through PCMU (G.711 µ-law, encode
and decode) as a phone line would, and feeds them in 20 ms frames, with silence around each phrase,
to `appliance.media.asr.Recognizer`, free speech and the digits grammar, for each sample mode
("16k": upsampled with soxr for the 16 kHz model; "8k": the model run natively at 8 kHz).

Prints word accuracy (1 - WER, by word-level edit distance over all phrases) and the real-time
factor: ASR-thread CPU seconds per second of audio fed (speech and silence alike).

    .venv/bin/python -m tools.bench.asr_accuracy
"""

from __future__ import annotations

import io
import subprocess
import threading
import wave
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import soxr

from appliance.media.asr import AsrThread, Grammar, Recognizer, SampleMode
from appliance.media.audio import FRAME, RATE
from appliance.media.codecs import ulaw_decode, ulaw_encode

ESPEAK_VOICE = "en-us"
ESPEAK_WPM = 150
PAD_S = 0.6  # silence before and after each phrase: more than the endpointer's 0.3 s window
RESULT_TIMEOUT_S = 30.0

FREE_PHRASES = (
    "the quick brown fox jumps over the lazy dog",
    "please call me back tomorrow morning",
    "hello how are you today",
    "i would like to speak to an operator",
    "what time does the office open",
    "my account number is not working",
    "thank you very much for your help",
    "can you repeat that please",
    "i want to check my balance",
    "the weather is nice today",
)
DIGIT_PHRASES = (
    "one two three",
    "four five six seven",
    "eight nine zero",
    "five five five one two one two",
    "two oh one",
    "nine eight seven six",
    "three three four",
    "seven zero zero one",
    "six",
    "one eight hundred",  # "hundred" is out of grammar: it can only cost accuracy
)


def render(text: str) -> npt.NDArray[np.int16]:
    """`text` as a phone line carries it: espeak-ng → 8 kHz → PCMU and back, padded with silence."""
    wav = subprocess.run(
        ["espeak-ng", "-v", ESPEAK_VOICE, "-s", str(ESPEAK_WPM), "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
    resampled = soxr.resample(pcm.astype(np.float32) / 32768.0, rate, RATE)
    samples = np.clip(np.round(resampled * 32767.0), -32768, 32767).astype(np.int16)
    pad = np.zeros(int(PAD_S * RATE), dtype=np.int16)
    line = np.concatenate([pad, ulaw_decode(ulaw_encode(samples)), pad])
    return np.concatenate([line, np.zeros(-len(line) % FRAME, dtype=np.int16)])


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over words: substitutions + deletions + insertions."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1]


def recognize(thread: AsrThread, audio: npt.NDArray[np.int16], grammar: Grammar | None) -> tuple[str, float]:
    """The text of every Result for `audio`, joined, and the ASR-thread CPU seconds spent."""
    texts: list[str] = []
    done = threading.Event()

    def on_event(name: str, payload: dict[str, object]) -> None:
        if name == "Result":
            texts.append(str(payload["text"]))
            done.set()
        elif name == "ASRError":
            raise SystemExit(f"ASR error: {payload['error']}")

    recognizer = Recognizer(thread, on_event=on_event, grammar=grammar, single_utterance=True)
    for start in range(0, len(audio), FRAME):
        recognizer.feed(audio[start : start + FRAME])
    done.wait(RESULT_TIMEOUT_S)
    recognizer.close()
    if recognizer.dropped:
        raise SystemExit(f"{recognizer.dropped} frames dropped: raise QUEUE_LIMIT_FRAMES for the bench")
    return " ".join(texts), recognizer.cpu_s


def run(mode: SampleMode, phrases: Sequence[str], grammar: Grammar | None) -> tuple[float, float]:
    thread = AsrThread(mode=mode, limit=10**6)
    thread.start()
    try:
        errors = words = 0
        cpu_s = audio_s = 0.0
        for phrase in phrases:
            audio = render(phrase)
            text, cpu = recognize(thread, audio, grammar)
            errors += word_errors(phrase.split(), text.split())
            words += len(phrase.split())
            cpu_s += cpu
            audio_s += len(audio) / RATE
        return 1.0 - errors / words, cpu_s / audio_s
    finally:
        thread.stop()


def main() -> None:
    print(f"{'mode':<5} {'task':<12} {'phrases':>7} {'word acc':>9} {'RTF':>6}")
    modes: tuple[SampleMode, ...] = ("16k", "8k")
    for mode in modes:
        for task, phrases, grammar in (
            ("free speech", FREE_PHRASES, None),
            ("digits", DIGIT_PHRASES, Grammar.digits()),
        ):
            accuracy, rtf = run(mode, phrases, grammar)
            print(f"{mode:<5} {task:<12} {len(phrases):>7} {accuracy:>8.0%} {rtf:>6.3f}")


if __name__ == "__main__":
    main()
