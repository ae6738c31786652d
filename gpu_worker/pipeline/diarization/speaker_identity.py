"""Global identities for the segmentation model's local speakers, from dense-window clustering.

pyannote embeds each (chunk, local speaker) once and clusters those embeddings. With the bundled GE2E
encoder that under-counted on real voices (measured on the corpus: a clean 3-speaker conversation
came out as 2, confusion 0.19), while 1.5 s windows every 0.5 s clustered by NME-SC counted it
right (confusion 0.0): many overlapping windows average out what one short clip gets wrong.

So the speakers' identities come from the windows diarizer, run on the segmentation model's own
speech activity instead of Silero's; each chunk's local speaker then takes the global speaker its
frames were given most often (one-to-one within a chunk: two local speakers of one chunk are two
people). The segmentation keeps what windows can't give: overlapping speech and sharp boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gpu_worker.pipeline.diarization import segmentation_model as sm
from gpu_worker.pipeline.diarization.embeddings import Window
from gpu_worker.pipeline.diarization.speech import Region
from gpu_worker.pipeline.types import SAMPLE_RATE, SpeakerTurn


def aggregate_chunks(offsets: np.ndarray, per_chunk: np.ndarray) -> np.ndarray:
    """(frames,) a per-chunk, per-frame value (chunks × FRAMES_PER_CHUNK) averaged over the chunks
    that see each frame, with a Hann weight (a chunk's edges have the least context)."""
    n_frames = int(offsets[-1]) + sm.FRAMES_PER_CHUNK
    total = np.zeros(n_frames, np.float32)
    weight = np.zeros(n_frames, np.float32)
    window = np.hanning(sm.FRAMES_PER_CHUNK + 2)[1:-1].astype(np.float32)
    for offset, values in zip(offsets, per_chunk, strict=True):
        span = slice(int(offset), int(offset) + sm.FRAMES_PER_CHUNK)
        total[span] += window * values
        weight[span] += window
    return total / np.maximum(weight, 1e-6)


def speech_activity(offsets: np.ndarray, activations: np.ndarray) -> np.ndarray:
    """(frames,) probability that anyone speaks: each chunk's most active local speaker, aggregated."""
    return aggregate_chunks(offsets, activations.max(axis=2))


def simultaneous_speakers(offsets: np.ndarray, activations: np.ndarray, onset: float) -> np.ndarray:
    """(frames,) how many local speakers are active at once (above `onset`), aggregated."""
    return aggregate_chunks(offsets, (activations > onset).sum(axis=2))


def overlapped_windows(windows: Sequence[Window], overlap: np.ndarray, max_fraction: float) -> np.ndarray:
    """(windows,) bool: more than `max_fraction` of the window's frames hold overlapping speech
    (`overlap`, a bool per model frame). Such a window's embedding mixes two voices."""
    out = np.zeros(len(windows), bool)
    for index, window in enumerate(windows):
        first = window.start // sm.FRAME_STEP_SAMPLES
        last = max(first + 1, window.end // sm.FRAME_STEP_SAMPLES)
        frames = overlap[first:last]
        out[index] = frames.size > 0 and float(frames.mean()) > max_fraction
    return out


def speech_regions(
    speech: np.ndarray, onset: float, n_samples: int, *, min_gap_s: float = 0.2, min_speech_s: float = 0.1
) -> list[Region]:
    """Regions (in samples) where `speech` exceeds `onset`; pauses under `min_gap_s` are bridged and
    bursts under `min_speech_s` dropped, as a VAD would."""
    active = speech > onset
    padded = np.concatenate(([False], active, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[list[int]] = []
    gap = min_gap_s / sm.FRAME_STEP_S
    for run in runs:
        if merged and run[0] - merged[-1][1] < gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)

    def sample(frame: float) -> int:
        seconds = sm.FRAME_START_S + (frame - 0.5) * sm.FRAME_STEP_S
        return int(min(n_samples, max(0, round(seconds * SAMPLE_RATE))))

    regions = [Region(sample(a), sample(b)) for a, b in merged]
    return [r for r in regions if r.length >= min_speech_s * SAMPLE_RATE]


def frame_labels(turns: Sequence[SpeakerTurn], n_frames: int) -> np.ndarray:
    """(frames,) speaker of each segmentation frame by the (non-overlapping) turns; −1 outside them."""
    labels = np.full(n_frames, -1, int)
    times = sm.FRAME_START_S + sm.FRAME_STEP_S * np.arange(n_frames)
    for turn in turns:
        labels[(times >= turn.start) & (times < turn.end)] = turn.speaker
    return labels


def map_by_votes(
    offsets: np.ndarray, activations: np.ndarray, labels: np.ndarray, num_speakers: int, onset: float
) -> np.ndarray:
    """(chunks, 3) global speaker of each chunk's local speaker (−1: silent or unlabelled).

    A local speaker's votes are its activations over the frames where it talks alone (all its
    active frames when it never does), counted for the label of each frame."""
    from scipy.optimize import linear_sum_assignment

    mapping = np.full((activations.shape[0], sm.LOCAL_SPEAKERS), -1, int)
    if num_speakers == 0:
        return mapping
    for c, (offset, activation) in enumerate(zip(offsets, activations, strict=True)):
        frame_label = labels[int(offset) : int(offset) + sm.FRAMES_PER_CHUNK]
        active = activation[: frame_label.size] > onset
        alone = active & (active.sum(axis=1, keepdims=True) == 1)
        votes = np.zeros((sm.LOCAL_SPEAKERS, num_speakers))
        labelled = frame_label >= 0
        for local in range(sm.LOCAL_SPEAKERS):
            frames = alone[:, local] if alone[:, local].any() else active[:, local]
            frames = frames & labelled
            np.add.at(votes[local], frame_label[frames], activation[: frame_label.size][frames, local])
        speaking = np.flatnonzero(votes.sum(axis=1) > 0)
        if speaking.size == 0:
            continue
        rows, columns = linear_sum_assignment(-votes[speaking])
        mapping[c, speaking[rows]] = columns
        # More local speakers than global ones: the rest join the speaker they voted for most.
        for spare in set(speaking) - set(speaking[rows]):
            mapping[c, spare] = int(votes[spare].argmax())
    return mapping
