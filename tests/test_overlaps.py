"""Overlapping speech in the outputs: `results.speaker_turns`, `results.overlaps` and RTTM."""

from __future__ import annotations

from gpu_worker.pipeline.overlaps import overlaps, speaker_turns
from gpu_worker.pipeline.types import Diarization, SpeakerTurn
from shared import deepgram as dg
from shared.exporters import export


def _turns() -> list[SpeakerTurn]:
    return [
        SpeakerTurn(0.0, 4.0, 0, 0.9),
        SpeakerTurn(3.0, 6.0, 1, 0.8),  # talks over speaker 0 from 3.0 to 4.0
        SpeakerTurn(5.5, 7.0, 2, 0.7),  # and speaker 2 over speaker 1 from 5.5 to 6.0
        SpeakerTurn(8.0, 9.0, 0, 0.9),
        SpeakerTurn(9.0, 10.0, 1, 0.9),  # touching, not overlapping
    ]


def test_overlaps_name_who_talks_at_once() -> None:
    found = overlaps(_turns())
    assert [(o.start, o.end, o.speakers) for o in found] == [(3.0, 4.0, [0, 1]), (5.5, 6.0, [1, 2])]


def test_three_speakers_at_once_and_tiny_overlaps() -> None:
    turns = [SpeakerTurn(0.0, 3.0, 0, 1.0), SpeakerTurn(1.0, 3.0, 1, 1.0), SpeakerTurn(2.0, 2.5, 2, 1.0),
             SpeakerTurn(2.98, 4.0, 2, 1.0)]  # fmt: skip
    found = overlaps(turns)
    assert [(o.start, o.end, o.speakers) for o in found] == [
        (1.0, 2.0, [0, 1]),
        (2.0, 2.5, [0, 1, 2]),
        (2.5, 2.98, [0, 1]),
    ]  # the 20 ms where speaker 2 starts again before 0 and 1 stop is below MIN_OVERLAP_S


def test_speaker_turns_keep_overlap_and_fall_back_to_flat_turns() -> None:
    flat = (SpeakerTurn(0.0, 3.0, 0, 0.9), SpeakerTurn(3.0, 6.0, 1, 0.8))
    with_overlap = Diarization(flat, 2, "test", overlapping_turns=tuple(_turns()[:2]))
    assert [(t.start, t.end) for t in speaker_turns(with_overlap)] == [(0.0, 4.0), (3.0, 6.0)]
    assert [(t.start, t.end) for t in speaker_turns(Diarization(flat, 2, "test"))] == [(0.0, 3.0), (3.0, 6.0)]


def test_rttm_export_writes_overlapping_turns() -> None:
    turns = [
        dg.SpeakerTurn(speaker=t.speaker, start=t.start, end=t.end, confidence=t.confidence) for t in _turns()
    ]
    response = dg.DeepgramResponse(
        metadata=dg.Metadata(
            request_id="r", sha256="0", created="now", duration=10.0, channels=1, models=[], model_info={}
        ),
        results=dg.Results(channels=[], speaker_turns=turns, overlaps=overlaps(_turns())),
    )
    lines = [line.split() for line in export(response, "rttm").splitlines()]
    spans = [(float(f[3]), float(f[3]) + float(f[4]), f[7]) for f in lines]
    assert spans[:2] == [(0.0, 4.0, "speaker_0"), (3.0, 6.0, "speaker_1")]
    assert spans[0][1] > spans[1][0]  # the file says both talk from 3.0 to 4.0
    assert response.to_json_dict()["results"]["overlaps"][0] == {
        "start": 3.0,
        "end": 4.0,
        "speakers": [0, 1],
        "channel": 0,
    }
