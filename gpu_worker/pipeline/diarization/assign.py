"""Give each recognised word the speaker who was talking when it was said."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from gpu_worker.pipeline.types import Diarization, SpeakerTurn, SpeakerWord, TimedWord

NEAREST_TURN_DECAY_S = 1.0
"""A word outside every turn takes the nearest one, its confidence halved at this distance."""


def assign_speakers(words: Sequence[TimedWord], diarization: Diarization) -> list[SpeakerWord]:
    """Each word gets the speaker of the turn it overlaps most (the nearest turn if none).

    Its confidence is the turn's, scaled by the share of the word inside that turn, so a word that
    straddles a speaker change says so; a word outside every turn (VAD heard silence where Whisper
    heard a word) gets less the further away the turn is. No turns at all: speaker 0, confidence 0.
    """
    turns = sorted(diarization.turns, key=lambda t: t.start)
    starts = [t.start for t in turns]
    out = []
    for word in words:
        if not turns:
            out.append(_speaker_word(word, 0, 0.0))
            continue
        turn, share, distance = _best_turn(word, turns, starts)
        if share > 0:
            confidence = turn.confidence * share
        else:
            confidence = turn.confidence * 0.5 * NEAREST_TURN_DECAY_S / (NEAREST_TURN_DECAY_S + distance)
        out.append(_speaker_word(word, turn.speaker, min(1.0, max(0.0, confidence))))
    return out


def _best_turn(
    word: TimedWord, turns: list[SpeakerTurn], starts: list[float]
) -> tuple[SpeakerTurn, float, float]:
    """(turn, share of the word inside it, distance to it) for the best turn of one word."""
    start, end = word.start, max(word.end, word.start)
    duration = end - start
    # Turns are sorted and do not overlap: only the few around the word can touch it.
    first = max(0, bisect.bisect_right(starts, start) - 1)
    best, best_overlap = None, 0.0
    index = first
    while index < len(turns) and turns[index].start <= end:
        turn = turns[index]
        overlap = min(end, turn.end) - max(start, turn.start)
        if duration == 0 and turn.start <= start <= turn.end:
            return turn, 1.0, 0.0
        if overlap > best_overlap:
            best, best_overlap = turn, overlap
        index += 1
    if best is not None:
        return best, best_overlap / duration, 0.0
    candidates = turns[max(0, first - 1) : first + 2]
    nearest = min(candidates, key=lambda t: _gap(t, start, end))
    return nearest, 0.0, _gap(nearest, start, end)


def _gap(turn: SpeakerTurn, start: float, end: float) -> float:
    return max(turn.start - end, start - turn.end, 0.0)


def _speaker_word(word: TimedWord, speaker: int, confidence: float) -> SpeakerWord:
    return SpeakerWord(
        text=word.text,
        start=word.start,
        end=word.end,
        probability=word.probability,
        speaker=speaker,
        speaker_confidence=round(confidence, 4),
    )
