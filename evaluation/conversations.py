"""Conversations with a known "who spoke when", built from real read speech (LibriSpeech excerpt).

A `Conversation` is 16 kHz float32 audio, its reference speech segments (start, end, speaker), and
the reference text of each turn. `build(spec)` makes one from a `ConversationSpec`, deterministically
(a seeded numpy RNG; the same spec gives the same samples on every run and machine).

How a conversation is laid out:
- voices are test-other speakers (10: 5 F, 5 M); babble noise uses train-clean-100 speakers, so a
  babble voice is never a conversation voice;
- turns are one utterance, a monologue (utterances of one speaker joined by 0.3–0.6 s pauses, up to
  20 s) or a back-channel (a 0.3–0.8 s piece cut from a voiced stretch of one of that speaker's
  utterances, faded in and out; it has no reference text);
- the next turn starts after a gap (0.1–1.2 s, sometimes a 2–4 s silence) or, to reach the spec's
  overlap share, before the previous turn ends; back-channels may also land inside another speaker's
  turn;
- each utterance is normalised to the same active speech level, then each speaker gets a fixed gain
  (spread evenly over `level_spread_db`);
- reference segments are the voiced stretches of each placed utterance (energy VAD, pauses under
  0.5 s bridged), so a reference segment starts and ends where the voice does;
- noise (white or babble at an SNR over active speech), band-limiting to telephone band and the
  final peak level are applied last (`evaluation.conditions` names the combinations).

The overlap share is overlapped speech time (two or more reference speakers active) over speech time
(at least one active).
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.signal import resample_poly

from evaluation.acoustics import active_power, babble, speaker_gains, speech_level_db, telephone
from evaluation.librispeech import SAMPLE_RATE, Utterance, by_speaker, speech_regions
from evaluation.reference import Turn, TurnKind

__all__ = [
    "Conversation",
    "ConversationSpec",
    "Segment",
    "Turn",
    "build",
    "overlap_share",
    "speech_level_db",
]

TARGET_LEVEL_DB = -26.0
"""Active speech level (dBFS, mean power over voiced frames) every utterance is scaled to."""
REFERENCE_MIN_GAP = 0.5
"""Pauses shorter than this inside an utterance stay inside one reference segment."""

NoiseKind = Literal["white", "babble"]


@dataclass(frozen=True)
class Segment:
    """A reference stretch of one speaker's voice: what DER is scored against and the RTTM lists.
    Unlike a Turn it holds no pause of REFERENCE_MIN_GAP or more, so silence inside a turn is not
    counted as that speaker's speech."""

    start: float
    """Seconds from the conversation's start, rounded to the millisecond (the RTTM's precision)."""
    end: float
    speaker: str
    """The voice's LibriSpeech test-other speaker id, as in its turns."""


@dataclass(frozen=True)
class ConversationSpec:
    """Everything `build` needs; two equal specs build identical conversations."""

    name: str
    num_speakers: int
    seed: int
    speech_seconds: float = 60.0
    """Total turn time to lay out (overlap not subtracted)."""
    overlap_share: float = 0.0
    """Target share of speech time with two or more speakers."""
    level_spread_db: float = 0.0
    """Loudest minus quietest speaker."""
    monologue_prob: float = 0.15
    backchannel_prob: float = 0.25
    long_silence_prob: float = 0.1
    noise: NoiseKind | None = None
    snr_db: float | None = None
    telephone: bool = False
    peak_dbfs: float = -3.0
    speakers: tuple[str, ...] | None = None
    """test-other speaker ids; None: drawn from the seed, alternating sexes."""

    def __post_init__(self) -> None:
        if not 1 <= self.num_speakers <= 10:
            raise ValueError("the corpus has 10 conversation voices: num_speakers must be 1..10")
        if (self.noise is None) != (self.snr_db is None):
            raise ValueError("noise and snr_db go together")


@dataclass(frozen=True)
class Conversation:
    spec: ConversationSpec
    samples: np.ndarray = field(repr=False)
    """16 kHz float32 mix (telephone: band-limited and already through 8 kHz)."""
    segments: tuple[Segment, ...]
    turns: tuple[Turn, ...]
    clean: np.ndarray = field(repr=False)
    """The same mix before noise, scaled like `samples` (so `samples - clean` is the added noise)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted({segment.speaker for segment in self.segments}))

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    @property
    def duration(self) -> float:
        return self.samples.size / SAMPLE_RATE

    @property
    def export_rate(self) -> int:
        """The WAV's rate: telephone audio is written at 8 kHz and left to the decoder to resample."""
        return 8000 if self.spec.telephone else SAMPLE_RATE

    def reference_text(self) -> str:
        """Every turn's words, turns in order of start."""
        return " ".join(turn.text for turn in sorted(self.turns, key=lambda t: t.start) if turn.text)

    def annotation(self):  # -> pyannote.core.Annotation; imported lazily (only metrics need it)
        from pyannote.core import Annotation
        from pyannote.core import Segment as PSegment

        annotation = Annotation(uri=self.name)
        for index, segment in enumerate(self.segments):
            annotation[PSegment(segment.start, segment.end), index] = segment.speaker
        return annotation

    def rttm(self) -> str:
        return "".join(
            f"SPEAKER {self.name} 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> {s.speaker} <NA> <NA>\n"
            for s in self.segments
        )

    def export(self, directory: Path) -> Path:
        """Write `<name>.wav` (16-bit, at `export_rate`), `<name>.rttm` and `<name>.txt`; returns the WAV.

        Rewritten only when missing, so a cache directory (`.test-cache/`) can be listened to and reused.
        """
        directory.mkdir(parents=True, exist_ok=True)
        wav = directory / f"{self.name}.wav"
        if not wav.exists():
            samples = self.samples
            if self.export_rate != SAMPLE_RATE:
                samples = resample_poly(samples, self.export_rate, SAMPLE_RATE)
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
            partial = wav.with_suffix(".wav.partial")
            with wave.open(str(partial), "wb") as handle:
                handle.setnchannels(1)
                handle.setsampwidth(2)
                handle.setframerate(self.export_rate)
                handle.writeframes(pcm.tobytes())
            partial.replace(wav)
        (directory / f"{self.name}.rttm").write_text(self.rttm(), encoding="utf-8")
        (directory / f"{self.name}.txt").write_text(self.reference_text() + "\n", encoding="utf-8")
        return wav


@cache
def _voiced(utterance: Utterance, min_gap: float) -> tuple[tuple[float, float], ...]:
    return tuple(speech_regions(utterance.samples(), min_gap=min_gap))


@cache
def _normalised(utterance: Utterance) -> np.ndarray:
    samples = utterance.samples().astype(np.float64)
    scaled = samples * 10 ** ((TARGET_LEVEL_DB - speech_level_db(utterance.samples())) / 20)
    scaled.setflags(write=False)
    return scaled


@dataclass
class _Piece:
    """One contiguous chunk of a speaker's audio placed on the timeline."""

    audio: np.ndarray
    regions: list[tuple[float, float]]  # voiced stretches, seconds from the piece's start


def _utterance_piece(utterance: Utterance) -> _Piece:
    return _Piece(_normalised(utterance), list(_voiced(utterance, REFERENCE_MIN_GAP)))


def _backchannel_piece(utterance: Utterance, rng: np.random.Generator) -> _Piece:
    """A 0.3–0.8 s cut from a voiced stretch: real speech, as short as "yeah" or "right"."""
    stretches = [r for r in _voiced(utterance, 0.0) if r[1] - r[0] >= 0.35] or list(
        _voiced(utterance, REFERENCE_MIN_GAP)
    )
    start, end = stretches[int(rng.integers(len(stretches)))]
    length = min(float(rng.uniform(0.3, 0.8)), end - start)
    offset = start + float(rng.uniform(0.0, max(0.0, end - start - length)))
    audio = _normalised(utterance)[int(offset * SAMPLE_RATE) : int((offset + length) * SAMPLE_RATE)].copy()
    fade = min(int(0.02 * SAMPLE_RATE), audio.size // 4)
    ramp = np.linspace(0.0, 1.0, fade)
    audio[:fade] *= ramp
    audio[audio.size - fade :] *= ramp[::-1]
    return _Piece(audio, [(0.0, audio.size / SAMPLE_RATE)])


def _join(pieces: Sequence[_Piece], pauses: Sequence[float]) -> _Piece:
    audio: list[np.ndarray] = []
    regions: list[tuple[float, float]] = []
    cursor = 0.0
    for index, piece in enumerate(pieces):
        if index:
            gap = np.zeros(int(pauses[index - 1] * SAMPLE_RATE))
            audio.append(gap)
            cursor += gap.size / SAMPLE_RATE
        audio.append(piece.audio)
        regions.extend((cursor + s, cursor + e) for s, e in piece.regions)
        cursor += piece.audio.size / SAMPLE_RATE
    return _Piece(np.concatenate(audio), regions)


class _Voices:
    """Each speaker's utterances, handed out in a seeded shuffled cycle (reused only when exhausted)."""

    def __init__(self, speakers: Sequence[str], rng: np.random.Generator) -> None:
        pool = by_speaker("test-other")
        self.rng = rng
        self.pool = {speaker: list(pool[speaker]) for speaker in speakers}
        self.queue: dict[str, list[Utterance]] = {speaker: [] for speaker in speakers}

    def next(self, speaker: str) -> Utterance:
        if not self.queue[speaker]:
            order = self.rng.permutation(len(self.pool[speaker]))
            self.queue[speaker] = [self.pool[speaker][i] for i in order]
        return self.queue[speaker].pop()


def _choose_speakers(spec: ConversationSpec, rng: np.random.Generator) -> tuple[str, ...]:
    if spec.speakers is not None:
        if len(spec.speakers) != spec.num_speakers:
            raise ValueError("speakers must list num_speakers ids")
        return spec.speakers
    pool = by_speaker("test-other")
    sexes: dict[str, list[str]] = {"F": [], "M": []}
    for speaker, utterances in pool.items():
        sexes[utterances[0].sex].append(speaker)
    first = "F" if rng.random() < 0.5 else "M"
    order = {sex: [speakers[i] for i in rng.permutation(len(speakers))] for sex, speakers in sexes.items()}
    chosen = []
    for index in range(spec.num_speakers):
        sex = first if index % 2 == 0 else ("M" if first == "F" else "F")
        chosen.append(order[sex].pop())
    return tuple(chosen)


def _make_turn(
    speaker: str, kind: TurnKind, voices: _Voices, rng: np.random.Generator
) -> tuple[_Piece, tuple[Utterance, ...]]:
    if kind == "backchannel":
        utterance = voices.next(speaker)
        return _backchannel_piece(utterance, rng), (utterance,)
    if kind == "monologue":
        utterances = [voices.next(speaker)]
        while True:
            candidate = voices.next(speaker)
            if sum(u.duration for u in utterances) + candidate.duration + 0.6 > 20.0:
                break
            utterances.append(candidate)
            if sum(u.duration for u in utterances) >= 12.0:
                break
        pauses = [float(rng.uniform(0.3, 0.6)) for _ in utterances[1:]]
        return _join([_utterance_piece(u) for u in utterances], pauses), tuple(utterances)
    utterance = voices.next(speaker)
    return _utterance_piece(utterance), (utterance,)


_Placed = tuple[float, str, _Piece, Turn]  # a turn on the timeline: (start_s, speaker, piece, turn)
_Layout = tuple[tuple[str, ...], list[_Placed], float]  # speakers, placed turns, where the last ends


def _layout(spec: ConversationSpec, rng: np.random.Generator, aim: float) -> _Layout:
    """Place turns on a timeline: [(start_s, speaker, piece, turn)], steering toward overlap share `aim`."""
    speakers = _choose_speakers(spec, rng)
    voices = _Voices(speakers, rng)
    placed: list[_Placed] = []
    speech_time = overlap_time = laid_out = 0.0
    cursor = 0.3
    previous: str | None = None
    order = list(speakers)  # everyone speaks once first, then turn-taking is random
    while laid_out < spec.speech_seconds or order:
        if order:
            speaker = order.pop(0)
        else:
            others = [s for s in speakers if s != previous] or list(speakers)
            speaker = others[int(rng.integers(len(others)))]
        draw = rng.random()
        kind: TurnKind
        can_backchannel = spec.num_speakers > 1 and placed and not order
        if can_backchannel and draw < spec.backchannel_prob:
            kind = "backchannel"
        elif draw < spec.backchannel_prob + spec.monologue_prob:
            kind = "monologue"
        else:
            kind = "utterance"
        piece, utterances = _make_turn(speaker, kind, voices, rng)
        length = piece.audio.size / SAMPLE_RATE
        share = overlap_time / speech_time if speech_time else 0.0
        want_overlap = spec.num_speakers > 1 and placed and share < aim
        if kind == "backchannel" and placed and previous != speaker and rng.random() < 0.5 + aim:
            # inside the previous (other) speaker's turn, if the overlap budget allows it
            last_start, _, last_piece, _ = placed[-1]
            last_len = last_piece.audio.size / SAMPLE_RATE
            if want_overlap and last_len > length + 1.0:
                start = last_start + float(rng.uniform(0.5, last_len - length - 0.3))
                overlap_time += length
            else:
                start = cursor + float(rng.uniform(0.1, 0.6))
        elif want_overlap:
            last_len = placed[-1][2].audio.size / SAMPLE_RATE
            needed = aim * (speech_time + length) - overlap_time
            amount = float(
                np.clip(needed * rng.uniform(0.8, 1.3), 0.3, min(4.0, 0.6 * last_len, 0.6 * length))
            )
            start = max(cursor - amount, placed[-1][0] + 0.2)
            overlap_time += cursor - start
        else:
            gap = rng.uniform(2.0, 4.0) if rng.random() < spec.long_silence_prob else rng.uniform(0.1, 1.2)
            start = cursor + float(gap)
        end = start + length
        text = "" if kind == "backchannel" else " ".join(u.text for u in utterances)
        turn = Turn(
            round(start, 3), round(end, 3), speaker, text, kind, tuple(u.utterance for u in utterances)
        )
        placed.append((start, speaker, piece, turn))
        speech_time += max(0.0, end - max(cursor, start))
        cursor = max(cursor, end)
        laid_out += length
        previous = speaker
    return speakers, placed, cursor


def _merge(segments: list[Segment]) -> tuple[Segment, ...]:
    """One speaker's touching or overlapping stretches become one segment (a monologue's pieces)."""
    merged: list[Segment] = []
    for speaker in sorted({s.speaker for s in segments}):
        own = sorted((s for s in segments if s.speaker == speaker), key=lambda s: s.start)
        current = own[0]
        for segment in own[1:]:
            if segment.start <= current.end:
                current = Segment(current.start, max(current.end, segment.end), speaker)
            else:
                merged.append(current)
                current = segment
        merged.append(current)
    return tuple(sorted(merged, key=lambda s: (s.start, s.speaker)))


def overlap_share(segments: Sequence[Segment]) -> float:
    """Overlapped speech time over speech time, on a 10 ms grid."""
    if not segments:
        return 0.0
    step = 0.01
    end = max(s.end for s in segments)
    counts = np.zeros(int(np.ceil(end / step)) + 1, dtype=np.int32)
    for s in segments:
        counts[round(s.start / step) : round(s.end / step)] += 1
    speech = np.count_nonzero(counts)
    return float(np.count_nonzero(counts >= 2) / speech) if speech else 0.0


def build(spec: ConversationSpec) -> Conversation:
    """The conversation `spec` describes; deterministic in `spec`."""
    # The layout steers on turn extents, the reference is their voiced part: re-aim a few times and
    # keep the layout closest to the target share.
    aim = spec.overlap_share
    best: tuple[float, _Layout, np.random.Generator] | None = None
    for _ in range(6 if spec.overlap_share else 1):
        rng = np.random.default_rng(spec.seed)
        layout = _layout(spec, rng, aim)
        achieved = overlap_share(_merge(_placed_segments(layout[1])))
        error = abs(achieved - spec.overlap_share)
        if best is None or error < best[0]:
            best = (error, layout, rng)
        if error <= 0.015:
            break
        aim = float(np.clip(aim * spec.overlap_share / max(achieved, 0.01), 0.0, 0.5))
    assert best is not None  # the loop runs at least once
    _, (speakers, placed, end), rng = best
    gains = speaker_gains(speakers, spec.level_spread_db, rng)
    total = int((end + float(rng.uniform(0.3, 1.0))) * SAMPLE_RATE)
    mix = np.zeros(total)
    for start, speaker, piece, _turn in placed:
        first = round(start * SAMPLE_RATE)
        mix[first : first + piece.audio.size] += gains[speaker] * piece.audio
    segments = _merge(_placed_segments(placed))
    clean = mix
    noisy = mix
    if spec.noise is not None and spec.snr_db is not None:  # they go together (__post_init__)
        noise = rng.normal(0.0, 1.0, total) if spec.noise == "white" else babble(total, 8, rng)
        speech_power = active_power(mix, [(x.start, x.end) for x in segments])
        noise *= np.sqrt(speech_power / (np.mean(noise**2) * 10 ** (spec.snr_db / 10)))
        noisy = mix + noise
    if spec.telephone:
        clean, noisy = telephone(clean), telephone(noisy)
    scale = 10 ** (spec.peak_dbfs / 20) / np.max(np.abs(noisy))
    return Conversation(
        spec=spec,
        samples=(noisy * scale).astype(np.float32),
        segments=segments,
        turns=tuple(sorted((p[3] for p in placed), key=lambda t: t.start)),
        clean=(clean * scale).astype(np.float32),
    )


def _placed_segments(placed: Sequence[_Placed]) -> list[Segment]:
    segments: list[Segment] = []
    for start, speaker, piece, _turn in placed:
        offset = round(start * SAMPLE_RATE) / SAMPLE_RATE
        segments.extend(
            Segment(round(offset + s, 3), round(offset + e, 3), speaker) for s, e in piece.regions
        )
    return segments


def with_changes(spec: ConversationSpec, **changes) -> ConversationSpec:
    """A copy of `spec` with some fields changed (a condition derived from a clean conversation)."""
    return replace(spec, **changes)
