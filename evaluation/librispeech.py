"""The committed LibriSpeech excerpt: utterances with speaker, sex and (pseudo-reference) text.

The audio lives in `tests/data/librispeech/` (see its README for source, licence and what `text` is).
`speech_regions` is an energy VAD good enough for clean read speech: it is what turns an utterance's
samples into reference speech segments, so reference turns start and end where the voice does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import median_filter

SAMPLE_RATE = 16_000
DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "librispeech"

FRAME = 160
"""10 ms analysis frames for the energy VAD."""
SPEECH_RANGE_DB = 30.0
"""A frame is speech when its energy is within this many dB of the utterance's loud (95th pct) frames…"""
ABOVE_FLOOR_DB = 10.0
"""…and this many dB above its noise floor (5th pct): test-other's floors differ by 30 dB."""


@dataclass(frozen=True)
class Utterance:
    utterance: str
    speaker: str
    sex: str
    subset: str
    duration: float
    text: str
    path: Path

    def samples(self) -> np.ndarray:
        """16 kHz mono float32, as stored."""
        return _read(self.path)


@cache
def _read(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path} is {rate} Hz, the corpus is {SAMPLE_RATE} Hz")
    audio.setflags(write=False)
    return audio


@cache
def utterances(data_dir: Path = DATA_DIR) -> tuple[Utterance, ...]:
    """Every utterance in the manifest, in manifest order."""
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    return tuple(
        Utterance(
            utterance=row["utterance"],
            speaker=row["speaker"],
            sex=row["sex"],
            subset=row["subset"],
            duration=row["duration"],
            text=row["text"],
            path=data_dir / row["file"],
        )
        for row in manifest["utterances"]
    )


def by_speaker(subset: str) -> dict[str, tuple[Utterance, ...]]:
    """Utterances of one subset ("test-other" or "train-clean-100"), grouped by speaker id."""
    grouped: dict[str, list[Utterance]] = {}
    for utt in utterances():
        if utt.subset == subset:
            grouped.setdefault(utt.speaker, []).append(utt)
    return {speaker: tuple(items) for speaker, items in sorted(grouped.items())}


def speech_regions(samples: np.ndarray, *, min_gap: float = 0.0) -> list[tuple[float, float]]:
    """(start, end) seconds of voiced stretches; pauses shorter than `min_gap` are bridged."""
    frames = samples[: samples.size // FRAME * FRAME].reshape(-1, FRAME)
    energy_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    energy_db = median_filter(energy_db, size=5, mode="nearest")  # 50 ms: no clicks, no dropouts
    threshold = max(
        np.percentile(energy_db, 95) - SPEECH_RANGE_DB, np.percentile(energy_db, 5) + ABOVE_FLOOR_DB
    )
    active = energy_db > threshold
    regions: list[tuple[float, float]] = []
    index = 0
    while index < active.size:
        if not active[index]:
            index += 1
            continue
        stop = index
        while stop < active.size and active[stop]:
            stop += 1
        start_s, end_s = index * FRAME / SAMPLE_RATE, stop * FRAME / SAMPLE_RATE
        if regions and start_s - regions[-1][1] < min_gap:
            regions[-1] = (regions[-1][0], end_s)
        else:
            regions.append((start_s, end_s))
        index = stop
    return [(s, e) for s, e in regions if e - s >= 0.05]
