"""Give each recognised word the speaker who was talking when it was said.

At a turn change a word often straddles two speakers: it goes to the speaker whose activity covers
most of its span (the frame-level activity when the diarizer has it, else the turns), never simply
to the speaker at its start.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from gpu_worker.pipeline.types import Diarization, SpeakerActivity, SpeakerTurn, SpeakerWord, TimedWord

NEAREST_TURN_DECAY_S = 1.0
"""A word outside every turn takes the nearest one, its confidence halved at this distance."""


def assign_speakers(words: Sequence[TimedWord], diarization: Diarization) -> list[SpeakerWord]:
    """Each word gets the speaker whose activity covers most of its span: the frame activity when
    present (the most active speaker inside the word, then that speaker's own turn), else the turn
    the word overlaps most (the nearest turn if none).

    Its confidence is the turn's, scaled by the share of the word inside that turn, so a word that
    straddles a speaker change says so; a word outside every turn (VAD heard silence where Whisper
    heard a word) gets less the further away the turn is. No turns at all: speaker 0, confidence 0.
    """
    turns = sorted(diarization.turns, key=lambda t: t.start)
    starts = [t.start for t in turns]
    own_turns = sorted(diarization.overlapping_turns, key=lambda t: t.start)
    own_starts = [t.start for t in own_turns]
    out = []
    for word in words:
        if not turns:
            out.append(_speaker_word(word, 0, 0.0))
            continue
        turn, share, distance = _best_turn(word, turns, starts)
        if diarization.activity is not None and own_turns:
            speaker = _most_active(word, diarization.activity)
            if speaker is not None and speaker != turn.speaker:
                own = _speaker_coverage(word, own_turns, own_starts, speaker)
                if own is not None:
                    turn, share, distance = own, _share(word, own), 0.0
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


def _most_active(word: TimedWord, activity: SpeakerActivity) -> int | None:
    """The speaker with the most activity summed over the frames inside the word (the nearest frame
    for a word shorter than one), None when no one is active there."""
    values = activity.values
    if values.size == 0:
        return None
    first = int(np.ceil((word.start - activity.start_s) / activity.step_s))
    last = int(np.floor((max(word.end, word.start) - activity.start_s) / activity.step_s))
    if last < first:
        first = last = round((0.5 * (word.start + word.end) - activity.start_s) / activity.step_s)
    first, last = max(0, first), min(values.shape[0] - 1, last)
    if last < first:
        return None
    totals = values[first : last + 1].sum(axis=0)
    best = int(np.argmax(totals))
    return best if totals[best] > 0 else None


def _speaker_coverage(
    word: TimedWord, turns: list[SpeakerTurn], starts: list[float], speaker: int
) -> SpeakerTurn | None:
    """Among `speaker`'s own (possibly overlapping) turns, the one covering most of the word."""
    start, end = word.start, max(word.end, word.start)
    best, best_overlap = None, -1.0
    for turn in turns[: bisect.bisect_right(starts, end)]:
        if turn.speaker != speaker or turn.end < start:
            continue
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > best_overlap:
            best, best_overlap = turn, overlap
    return best


def _share(word: TimedWord, turn: SpeakerTurn) -> float:
    start, end = word.start, max(word.end, word.start)
    if end == start:
        return 1.0 if turn.start <= start <= turn.end else 0.0
    return max(0.0, min(end, turn.end) - max(start, turn.start)) / (end - start)


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
