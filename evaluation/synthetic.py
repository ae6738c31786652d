"""A small synthesized speech corpus with exact reference turns, for WER and DER tests and the benchmark.

espeak-ng speaks each turn in its own voice, sox resamples it to 16 kHz mono 16-bit, and the turns
are joined with known silences. Each turn's edges are trimmed to the first and last audible sample,
so the reference times are where speech really is, not where espeak's own padding ends.
Items are cached on disk under a key that covers the script, the voices and the tool versions, so a
change to any of them rebuilds the audio and nothing stale is ever reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import tomllib
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from evaluation.reference import Turn

SAMPLE_RATE = 16_000
SPEED_WPM = 150
SECONDS_PER_WORD = 0.33
"""Measured on this corpus at SPEED_WPM (espeak speaks faster than its nominal rate)."""
FORMAT_VERSION = 1
"""Bump when the way audio is assembled changes (the key also covers every spec below)."""

TRIM_THRESHOLD = 0.003
"""Amplitude (of full scale) under which a turn's leading and trailing samples count as silence."""

SAVED_FIELDS = ("start", "end", "speaker", "text")
"""What a cached item's turns.json keeps of each turn: all that a synthesized turn has."""


@dataclass(frozen=True)
class CorpusItem:
    """One built item of the corpus: its cached audio and the reference the tests score against."""

    name: str
    path: Path
    """The cached WAV (16 kHz mono 16-bit). Its folder is named by a key over the script, the voices
    and the tool versions, so an item built from other inputs never reuses it."""
    turns: tuple[Turn, ...]
    """Reference turns in order, trimmed to the first and last audible sample (seconds)."""
    duration: float
    """Seconds of audio, lead-in and tail silence included (DER is scored over all of it)."""
    num_speakers: int

    @property
    def script(self) -> str:
        """The whole reference text, turns in order."""
        return " ".join(turn.text for turn in self.turns)

    def to_annotation(self):  # -> pyannote.core.Annotation (imported lazily: only DER tests need it)
        from pyannote.core import Annotation, Segment

        annotation = Annotation(uri=self.name)
        for index, turn in enumerate(self.turns):
            annotation[Segment(turn.start, turn.end), index] = turn.speaker
        return annotation

    def samples(self) -> np.ndarray:
        """The audio as float32 in [-1, 1], 16 kHz mono."""
        return _read_wav(self.path).astype(np.float32) / 32768.0

    def to_rttm(self) -> str:
        return "".join(
            f"SPEAKER {self.name} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
            for t in self.turns
        )


@dataclass(frozen=True)
class TurnSpec:
    """One turn to synthesize: `pause` is the silence before it (seconds)."""

    voice: str
    text: str
    pause: float = 0.5


@dataclass(frozen=True)
class ItemSpec:
    name: str
    turns: tuple[TurnSpec, ...]
    lead_in: float = 0.5
    tail: float = 0.5


def _spec(name: str, turns: Sequence[tuple[str, float, str]]) -> ItemSpec:
    """An item from (voice, pause before, text) rows."""
    return ItemSpec(name, tuple(TurnSpec(voice, text, pause) for voice, pause, text in turns))


_CORPUS = tomllib.loads(Path(__file__).with_name("corpus.toml").read_text())
"""The test corpus's scripts (which voice says what, after how long a pause) and its voices."""
VOICES: dict[str, str] = _CORPUS["voices"]
CORPUS_SPECS: tuple[ItemSpec, ...] = tuple(
    _spec(item["name"], [(VOICES[v], float(pause), text) for v, pause, text in item["turns"]])
    for item in _CORPUS["items"]
)

SENTENCES: tuple[str, ...] = (
    "I think the meeting went well, although it ran a little longer than planned.",
    "Could you send me the notes when you have a free moment this afternoon?",
    "The weather has been strange lately, warm in the morning and cold at night.",
    "We should ask the team what they think before we make a final decision.",
    "My brother just moved to a small town by the sea, and he loves it there.",
    "The new library opens next month, with a large room for children to read.",
    "I forgot my umbrella again, so I had to run all the way from the station.",
    "Let us keep the budget simple and focus on the things that matter most.",
    "She painted the kitchen a bright yellow, and now it feels much warmer.",
    "The train was late, but the conductor was very kind and apologized twice.",
    "Have you tried the bakery on the corner? Their bread is still warm at noon.",
    "I would like to finish the report before the end of the week if possible.",
    "Our neighbours are building a wooden fence around their vegetable garden.",
    "The concert was wonderful, and the pianist played three songs as an encore.",
    "Please remember to lock the back door when you leave the office tonight.",
    "He spent the whole weekend fixing his old bicycle in the garage.",
    "The river was so clear that we could see the fish swimming near the rocks.",
    "I agree with most of your plan, but I am worried about the timing.",
    "They are opening a new park near the school, with tall trees and a pond.",
    "We could take the early bus and have breakfast in the city before work.",
    "The museum has a new exhibition about ships and the people who sailed them.",
    "My grandmother still writes letters by hand and sends them every month.",
    "If the printer breaks again, we should simply buy a new one.",
    "The children built a castle of sand that was taller than their father.",
)

_BENCH_VOICES: tuple[str, ...] = (VOICES["M"], VOICES["F"], VOICES["B"], "en-us+f4", "en-us+m6")


def build_corpus(cache_dir: Path) -> dict[str, CorpusItem]:
    """The test corpus (built once, then read from `cache_dir`), by name; `silence` has no turns."""
    items = {spec.name: _build_item(cache_dir, spec) for spec in CORPUS_SPECS}
    items["silence"] = _build_silence(cache_dir, "silence", seconds=10.0)
    return items


def build_conversation(
    cache_dir: Path,
    name: str,
    minutes: float = 3.0,
    voices: Sequence[str] = _BENCH_VOICES[:2],
    seed: int = 0,
    turns: Sequence[tuple[str, float, str]] | None = None,
) -> CorpusItem:
    """A longer conversation for the benchmark. Either explicit `turns` as (voice, pause before,
    text) rows, or `voices` taking turns (never twice in a row) for about `minutes`, each turn one
    or two sentences of the bank, pauses of 0.3–0.7 s, chosen by a seeded generator."""
    if turns is not None:
        return _build_item(cache_dir, _spec(name, turns))
    if not voices:
        raise ValueError("at least one voice is needed")
    rng = random.Random(seed)
    specs: list[TurnSpec] = []
    seconds, previous = 0.0, None
    while seconds < minutes * 60:
        voice = rng.choice([v for v in voices if v != previous] or list(voices))
        text = " ".join(rng.sample(SENTENCES, rng.choice((1, 1, 2))))
        pause = 0.0 if not specs else round(rng.uniform(0.3, 0.7), 2)
        specs.append(TurnSpec(voice, text, pause))
        seconds += pause + len(text.split()) * SECONDS_PER_WORD  # only decides when to stop
        previous = voice
    return _build_item(cache_dir, ItemSpec(name, tuple(specs)))


# --- synthesis ----------------------------------------------------------------------------------
def _build_item(cache_dir: Path, spec: ItemSpec) -> CorpusItem:
    key = _key({"spec": _spec_dict(spec)})
    return _cached(cache_dir, spec.name, key, lambda work: _synthesize(work, spec))


def _build_silence(cache_dir: Path, name: str, seconds: float) -> CorpusItem:
    def make(work: Path) -> list[Turn]:
        _run(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(work / "audio.wav"),
              "trim", "0", f"{seconds}"])  # fmt: skip
        return []

    return _cached(cache_dir, name, _key({"silence": seconds}), make)


def _cached(cache_dir: Path, name: str, key: str, make: Callable[[Path], list[Turn]]) -> CorpusItem:
    """Build into a temporary directory and rename it into place, so concurrent runs never see half
    an item; a finished directory is reused as is."""
    final = Path(cache_dir) / f"{name}-{key}"
    if not (final / "turns.json").exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
        try:
            made = make(work)
            saved = [{f: getattr(t, f) for f in SAVED_FIELDS} for t in made]
            (work / "turns.json").write_text(json.dumps(saved, indent=1))
            try:
                os.rename(work, final)
            except OSError:  # another process finished first
                shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    turns = tuple(Turn(**t) for t in json.loads((final / "turns.json").read_text()))
    path = final / "audio.wav"
    return CorpusItem(
        name=name,
        path=path,
        turns=turns,
        duration=_wav_duration(path),
        num_speakers=len({t.speaker for t in turns}),
    )


def _synthesize(work: Path, spec: ItemSpec) -> list[Turn]:
    pieces: list[np.ndarray] = [np.zeros(round(spec.lead_in * SAMPLE_RATE), np.int16)]
    cursor = len(pieces[0])
    turns: list[Turn] = []
    speakers: dict[str, str] = {}
    for index, turn in enumerate(spec.turns):
        gap = np.zeros(round(turn.pause * SAMPLE_RATE), np.int16)
        speech = _speak(work / f"turn{index:03d}", turn.voice, turn.text)
        start = cursor + len(gap)
        end = start + len(speech)
        label = speakers.setdefault(turn.voice, f"spk{len(speakers)}")
        turns.append(Turn(start / SAMPLE_RATE, end / SAMPLE_RATE, label, turn.text))
        pieces += [gap, speech]
        cursor = end
    pieces.append(np.zeros(round(spec.tail * SAMPLE_RATE), np.int16))
    _write_wav(work / "audio.wav", np.concatenate(pieces))
    for scratch in work.glob("turn*.wav"):
        scratch.unlink()
    return turns


def _speak(stem: Path, voice: str, text: str) -> np.ndarray:
    """One turn as 16 kHz int16 samples, trimmed to its audible part."""
    raw, resampled = stem.with_suffix(".raw.wav"), stem.with_suffix(".wav")
    _run(["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "-w", str(raw), text])
    _run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)])
    raw.unlink()
    samples = _read_wav(resampled)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > TRIM_THRESHOLD * 32767)
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced no audible speech for {text!r} ({voice})")
    return samples[loud[0] : loud[-1] + 1]


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as f:
        if (f.getframerate(), f.getnchannels(), f.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise RuntimeError(f"{path}: expected 16 kHz mono 16-bit")
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(samples.astype("<i2").tobytes())


def _wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as f:
        return f.getnframes() / f.getframerate()


def _spec_dict(spec: ItemSpec) -> dict:
    return {
        "name": spec.name,
        "lead_in": spec.lead_in,
        "tail": spec.tail,
        "turns": [[t.voice, t.text, t.pause] for t in spec.turns],
    }


def _key(payload: dict) -> str:
    payload = {
        **payload,
        "format": FORMAT_VERSION,
        "rate": SAMPLE_RATE,
        "speed": SPEED_WPM,
        "trim": TRIM_THRESHOLD,
        "tools": _tool_versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@cache
def _tool_versions() -> tuple[str, str]:
    return (_run(["espeak-ng", "--version"]).strip(), _run(["sox", "--version"]).strip())


def _run(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        raise RuntimeError(f"{command[0]} is needed to build the test corpus (apt install espeak-ng sox)")
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout
