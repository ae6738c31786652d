"""Typed data passed between pipeline stages. Frozen: a stage never edits another stage's output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.options import check_speaker_bounds
from shared.stages import Stage

SAMPLE_RATE = 16_000

SegmentCallback = Callable[["TranscriptSegment"], None]
"""Called with each transcribed segment as soon as Whisper has decoded it (for streaming)."""

ProgressCallback = Callable[[Stage, float], None]
"""Called with the stage running and the fraction of it done (0.0 at its start, 1.0 at its end)."""


def no_progress(stage: Stage, fraction: float) -> None:
    """Default progress callback: report nothing."""


@dataclass(frozen=True)
class DecodedAudio:
    """16 kHz mono float32 samples plus facts about the input file."""

    samples: np.ndarray = field(repr=False)
    duration: float
    sha256: str
    source_channels: int
    source_path: Path | None = None

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE


@dataclass(frozen=True)
class TimedWord:
    """One recognised word. `text` keeps Whisper's punctuation, stripped of surrounding spaces."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class TranscriptSegment:
    start: float
    end: float
    text: str
    words: tuple[TimedWord, ...]
    # Whisper's own account of the segment (OpenAI's verbose_json reports it)
    id: int = 0
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0


@dataclass(frozen=True)
class Transcript:
    """What the transcribing stage produced: Whisper's segments in order, and how it ran."""

    segments: tuple[TranscriptSegment, ...]
    language: str
    """Whisper's code for the language transcribed (e.g. "en"): the request's, or the one it
    detected from the opening audio."""
    language_probability: float
    """Whisper's probability (0–1) for `language`; 1.0 when the request named the language."""
    model_name: str
    """The Whisper model that ran, by the name the response's metadata reports."""

    @property
    def words(self) -> tuple[TimedWord, ...]:
        return tuple(w for s in self.segments for w in s.words)


@dataclass(frozen=True)
class AlignedWords:
    """Word timings after the aligning stage; `method` says which aligner produced them."""

    words: tuple[TimedWord, ...]
    method: str  # "whisper" | "ctc"
    model_name: str | None = None


@dataclass(frozen=True)
class SpeakerCount:
    """What a request says about how many speakers there are: a fixed count, or bounds on it (None:
    not said). Checked once, here (ValueError on impossible values), so every stage that steers
    its count by it can rely on it."""

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def __post_init__(self) -> None:
        check_speaker_bounds(self.num_speakers, self.min_speakers, self.max_speakers)


@dataclass(frozen=True)
class DiarizationRequest:
    """What the diarizing stage asks of whichever backend it chose; each backend's own tunables
    (and models) are its other arguments."""

    audio: DecodedAudio
    speakers: SpeakerCount = SpeakerCount()
    device: str = "cpu"
    progress: ProgressCallback = no_progress


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of audio given to one speaker; `confidence` in [0, 1]."""

    start: float
    end: float
    speaker: int
    confidence: float


@dataclass(frozen=True)
class SpeakerActivity:
    """Frame-level activity of each speaker, in [0, 1]; several may be active at once (overlap).
    Frame i is centred at `start_s + i * step_s`."""

    step_s: float
    start_s: float
    values: np.ndarray = field(repr=False)
    """float32, shape (frames, num_speakers); column = speaker number."""

    def frame_times(self) -> np.ndarray:
        return self.start_s + self.step_s * np.arange(self.values.shape[0])


@dataclass(frozen=True)
class Diarization:
    """Who spoke when. Speakers are numbered 0.. in order of first speech.

    `turns` are time-sorted and never overlap: one speaker per instant, the dominant one where
    several talk (what Deepgram's one-speaker-per-word output needs). `overlapping_turns` are every
    speaker's own turns, which may overlap in time (sorted by start); `activity`, when the backend has
    it, is the frame-level evidence both were derived from and what word assignment reads.
    """

    turns: tuple[SpeakerTurn, ...]
    num_speakers: int
    backend: str  # "segmentation" | "windows" | "nemo" | "none"
    overlapping_turns: tuple[SpeakerTurn, ...] = ()
    """Every speaker's own turns; empty when the backend only knows one speaker per instant."""
    activity: SpeakerActivity | None = field(default=None, compare=False, repr=False)
    embedding_model: str | None = None

    @classmethod
    def without_overlap(
        cls, turns: Sequence[SpeakerTurn], backend: str, embedding_model: str | None
    ) -> Diarization:
        """A backend's answer when it knows one speaker per instant: its turns are both views."""
        return cls(
            turns=tuple(turns),
            num_speakers=len({t.speaker for t in turns}),
            backend=backend,
            overlapping_turns=tuple(turns),
            embedding_model=embedding_model,
        )


@dataclass(frozen=True)
class SpeakerWord:
    """A word with its speaker, after diarization and post-processing."""

    text: str
    start: float
    end: float
    probability: float
    speaker: int
    speaker_confidence: float
