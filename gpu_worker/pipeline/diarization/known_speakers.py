"""Name diarized speakers after reference samples (`known_speaker_names[]` of the OpenAI API).

Each reference sample and each diarized speaker becomes one voice print: the mean of resemblyzer
GE2E embeddings (the diarizer's own encoder and windows) over its speech, L2-normalised. The
cosine similarities of names × speakers are assigned one-to-one with the Hungarian method
(`scipy.optimize.linear_sum_assignment`, maximising the total similarity), and a pair is kept only
when its similarity reaches `min_similarity`: a speaker like none of the samples keeps its letter,
and a name like no speaker is used nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpu_worker.pipeline.audio import load_audio
from gpu_worker.pipeline.diarization.embeddings import embed_windows, make_windows
from gpu_worker.pipeline.diarization.speech import Region, speech_regions
from gpu_worker.pipeline.types import SAMPLE_RATE, DecodedAudio, Diarization
from shared.errors import InvalidParameter

MIN_REFERENCE_SECONDS = 1.0
MAX_REFERENCE_SECONDS = 30.0


def _voice_print(samples: np.ndarray, regions: Sequence[Region], device: str) -> np.ndarray | None:
    windows = make_windows(regions)
    if not windows:
        return None
    mean = embed_windows(samples, windows, device=device).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


def reference_print(path: Path, name: str, device: str) -> np.ndarray:
    """The voice print of one reference sample; InvalidParameter when it can't make one."""
    decoded = load_audio(path, max_duration_seconds=MAX_REFERENCE_SECONDS)
    if decoded.duration < MIN_REFERENCE_SECONDS:
        raise InvalidParameter(
            f"the reference sample for known speaker '{name}' is {decoded.duration:.1f} s long; "
            f"send {MIN_REFERENCE_SECONDS:g} to {MAX_REFERENCE_SECONDS:g} s of that speaker alone"
        )
    regions = speech_regions(decoded.samples) or [Region(0, decoded.samples.size)]
    voice = _voice_print(decoded.samples, regions, device)
    if voice is None:
        raise InvalidParameter(f"the reference sample for known speaker '{name}' has no speech in it")
    return voice


def speaker_prints(audio: DecodedAudio, diarization: Diarization, device: str) -> dict[int, np.ndarray]:
    """One voice print per diarized speaker, from that speaker's turns."""
    prints: dict[int, np.ndarray] = {}
    for speaker in sorted({turn.speaker for turn in diarization.turns}):
        regions = [
            Region(round(t.start * SAMPLE_RATE), min(round(t.end * SAMPLE_RATE), audio.samples.size))
            for t in diarization.turns
            if t.speaker == speaker
        ]
        voice = _voice_print(audio.samples, [r for r in regions if r.length > 0], device)
        if voice is not None:
            prints[speaker] = voice
    return prints


def assign_names(
    names: Sequence[str],
    references: np.ndarray,
    speakers: dict[int, np.ndarray],
    min_similarity: float,
) -> dict[int, str]:
    """Hungarian assignment of names (rows of `references`) to speakers by cosine similarity."""
    from scipy.optimize import linear_sum_assignment

    if not names or not speakers:
        return {}
    ids = sorted(speakers)
    similarity = references @ np.stack([speakers[i] for i in ids]).T  # both sides unit length
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return {ids[c]: names[r] for r, c in zip(rows, cols, strict=True) if similarity[r, c] >= min_similarity}


def name_speakers(
    audio: DecodedAudio,
    diarization: Diarization,
    known: Sequence[tuple[str, Path]],
    *,
    min_similarity: float,
    device: str = "cpu",
) -> dict[int, str]:
    """Diarized speaker → known name, for the speakers that match a reference well enough."""
    if not known:
        return {}
    references = np.stack([reference_print(path, name, device) for name, path in known])
    return assign_names(
        [name for name, _ in known], references, speaker_prints(audio, diarization, device), min_similarity
    )
