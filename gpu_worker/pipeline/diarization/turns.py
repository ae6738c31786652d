"""From labelled windows to speaker turns.

Windows overlap (1.5 s every 0.5 s), so each 10 ms frame of speech is covered by up to three of
them; the frame goes to the speaker most of them voted for. A frame's confidence is the mean, over
the windows covering it, of each window's confidence where it agrees with the frame's speaker and
zero where it does not: disagreement between overlapping windows lowers it, as it should.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpu_worker.pipeline.diarization.embeddings import Window
from gpu_worker.pipeline.diarization.speech import Region
from gpu_worker.pipeline.types import SAMPLE_RATE, SpeakerTurn


@dataclass(frozen=True)
class TurnParams:
    frame_s: float = 0.01
    min_turn_s: float = 0.3
    """A speaker change lasting less than this inside one speech region is a flicker, not a turn."""
    max_gap_s: float = 1.0
    """Same-speaker turns separated by less silence than this are one turn (pauses between sentences)."""


def windows_to_turns(
    windows: Sequence[Window],
    labels: np.ndarray,
    confidences: np.ndarray,
    regions: Sequence[Region],
    duration: float,
    params: TurnParams = TurnParams(),
) -> list[SpeakerTurn]:
    """Sorted, non-overlapping turns; speakers renumbered 0.. by first appearance."""
    if not windows:
        return []
    per_frame = SAMPLE_RATE * params.frame_s
    n_frames = max(1, int(np.ceil(duration / params.frame_s)))
    k = int(labels.max()) + 1
    votes = np.zeros((n_frames, k))
    agreeing = np.zeros((n_frames, k))
    for window, label, confidence in zip(windows, labels, confidences, strict=True):
        a, b = _frames(window.start, window.end, per_frame, n_frames)
        votes[a:b, label] += 1.0
        agreeing[a:b, label] += confidence
    covered = votes.sum(axis=1)
    frame_labels = np.where(covered > 0, votes.argmax(axis=1), -1)
    speech = np.zeros(n_frames, bool)
    for region in regions:
        a, b = _frames(region.start, region.end, per_frame, n_frames)
        speech[a:b] = True
        _absorb_flickers(frame_labels[a:b], votes[a:b], round(params.min_turn_s / params.frame_s))
    frame_labels[~speech] = -1
    frame_confidence = agreeing[np.arange(n_frames), np.maximum(frame_labels, 0)] / np.maximum(covered, 1)

    turns: list[tuple[int, int, int]] = []  # (first frame, end frame, label)
    max_gap = round(params.max_gap_s / params.frame_s)
    for a, b, label in label_runs(frame_labels):
        if label < 0:
            continue
        if turns and turns[-1][2] == label and a - turns[-1][1] <= max_gap:
            turns[-1] = (turns[-1][0], b, label)
        else:
            turns.append((a, b, label))

    order: dict[int, int] = {}
    result = []
    for a, b, label in turns:
        inside = frame_labels[a:b] == label
        confidence = float(frame_confidence[a:b][inside].mean())
        result.append(
            SpeakerTurn(
                start=round(a * params.frame_s, 3),
                end=round(min(b * params.frame_s, duration), 3),
                speaker=order.setdefault(label, len(order)),
                confidence=round(min(1.0, max(0.0, confidence)), 4),
            )
        )
    return result


def _frames(start: int, end: int, per_frame: float, n_frames: int) -> tuple[int, int]:
    a = min(n_frames, int(np.floor(start / per_frame)))
    return a, min(n_frames, max(a + 1, int(np.ceil(end / per_frame))))


def label_runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, value) of each run of equal values."""
    if values.size == 0:
        return []
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [values.size]))
    return [(int(a), int(b), int(values[a])) for a, b in zip(starts, ends, strict=True)]


def _absorb_flickers(labels: np.ndarray, votes: np.ndarray, min_frames: int) -> None:
    """In place: give each too-short run (shortest first) to the neighbour its frames voted for more."""
    while True:
        runs = label_runs(labels)
        if len(runs) < 2:
            return
        shortest = min(range(len(runs)), key=lambda i: runs[i][1] - runs[i][0])
        a, b, _ = runs[shortest]
        if b - a >= min_frames:
            return
        neighbours = [
            runs[i][2] for i in (shortest - 1, shortest + 1) if 0 <= i < len(runs) and runs[i][2] >= 0
        ]
        if not neighbours or runs[shortest][2] < 0:
            return
        labels[a:b] = max(neighbours, key=lambda label: votes[a:b, label].sum())


def tidy_turns(turns: Sequence[SpeakerTurn], duration: float) -> list[SpeakerTurn]:
    """Turns from elsewhere (an RTTM) made to fit a Diarization: inside [0, duration], sorted, no
    overlap (a turn starting inside the previous one starts where it ends), touching same-speaker
    turns joined, speakers renumbered 0.. by first appearance."""
    out: list[SpeakerTurn] = []
    for turn in sorted(turns, key=lambda t: (t.start, t.end)):
        start = max(0.0, turn.start, out[-1].end if out else 0.0)
        end = min(duration, turn.end)
        if end <= start:
            continue
        if out and out[-1].speaker == turn.speaker and start <= out[-1].end:
            out[-1] = SpeakerTurn(out[-1].start, end, turn.speaker, min(out[-1].confidence, turn.confidence))
        else:
            out.append(SpeakerTurn(start, end, turn.speaker, turn.confidence))
    order: dict[int, int] = {}
    return [SpeakerTurn(t.start, t.end, order.setdefault(t.speaker, len(order)), t.confidence) for t in out]
