"""Overlapping speech as the outputs show it: each speaker's own turns, and where they overlap.

Deepgram gives each word one speaker, and so does this service (the dominant one). What the
overlap-aware diarizer knows beyond that goes into two additive fields that Deepgram clients
ignore: `results.speaker_turns` (every speaker's turns, overlapping in time where the speech does)
and `results.overlaps` (each stretch where two or more speakers talk, with who they are).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared import deepgram as dg

from .types import Diarization, SpeakerTurn

MIN_OVERLAP_S = 0.05
"""Overlaps shorter than this (a few frames where one turn fades as the next starts) are not reported."""


def speaker_turns(diarization: Diarization, channel: int = 0) -> list[dg.SpeakerTurn]:
    """Every speaker's own turns (overlapping where the diarizer heard overlap), sorted by start."""
    turns = diarization.overlapping_turns or diarization.turns
    return [
        dg.SpeakerTurn(
            speaker=turn.speaker,
            start=round(turn.start, 3),
            end=round(turn.end, 3),
            confidence=round(min(max(turn.confidence, 0.0), 1.0), 4),
            channel=channel,
        )
        for turn in sorted(turns, key=lambda t: (t.start, t.speaker))
    ]


def overlaps(turns: Sequence[SpeakerTurn], channel: int = 0) -> list[dg.Overlap]:
    """The stretches where two or more of `turns` are active, with the speakers active there."""
    events = sorted([(t.start, 1, t.speaker) for t in turns] + [(t.end, -1, t.speaker) for t in turns])
    active: dict[int, int] = {}
    found: list[dg.Overlap] = []
    previous = None
    for time, change, speaker in events:
        if previous is not None and time > previous and len(active) >= 2:
            speakers = sorted(active)
            last = found[-1] if found else None
            if last is not None and last.end >= previous and last.speakers == speakers:
                last.end = round(time, 3)
            else:
                found.append(
                    dg.Overlap(
                        start=round(previous, 3), end=round(time, 3), speakers=speakers, channel=channel
                    )
                )
        active[speaker] = active.get(speaker, 0) + change
        if active[speaker] <= 0:
            del active[speaker]
        previous = time
    return [overlap for overlap in found if overlap.end - overlap.start >= MIN_OVERLAP_S]
