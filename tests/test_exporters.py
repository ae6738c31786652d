"""Exporters: SRT, WebVTT, text and RTTM written from a real pipeline response parse back."""

from __future__ import annotations

import io

import pytest
import srt
import webvtt

from gpu_worker.pipeline.options import PipelineOptions
from gpu_worker.pipeline.run import run_pipeline
from shared.deepgram import DeepgramResponse
from shared.exporters import MAX_CUE_SECONDS, export
from tests.speech_metrics import words


@pytest.fixture(scope="module")
def response(conversation) -> DeepgramResponse:
    return run_pipeline(conversation.path, PipelineOptions())


def test_srt_parses_back_with_every_word(response) -> None:
    cues = list(srt.parse(export(response, "srt")))
    assert cues and [c.index for c in cues] == list(range(1, len(cues) + 1))
    assert all(c.start < c.end and (c.end - c.start).total_seconds() <= MAX_CUE_SECONDS + 1 for c in cues)
    assert all(c.content.startswith("[Speaker ") for c in cues)
    text = " ".join(c.content.split("] ", 1)[1] for c in cues)
    assert text.split() == [w.punctuated_word for w in words(response)]


def test_vtt_parses_back_with_voice_tags(response) -> None:
    captions = webvtt.from_buffer(io.StringIO(export(response, "vtt")))
    assert len(captions) == len(list(srt.parse(export(response, "srt"))))
    speakers = {c.voice for c in captions}
    assert speakers == {f"Speaker {s}" for s in {w.speaker for w in words(response)}}


def test_rttm_has_one_well_formed_line_per_speaker_turn(response) -> None:
    turns = response.results.speaker_turns
    assert turns, "a diarized result carries the diarizer's turns"
    lines = export(response, "rttm").splitlines()
    assert len(lines) == len(turns)
    for line, turn in zip(lines, turns, strict=True):
        fields = line.split()
        assert len(fields) == 10 and fields[0] == "SPEAKER" and fields[2] == "1"
        assert float(fields[3]) == pytest.approx(turn.start, abs=1e-3)
        assert float(fields[4]) == pytest.approx(turn.end - turn.start, abs=1e-3)
        assert fields[7] == f"speaker_{turn.speaker}"


def test_rttm_of_a_result_without_turns_has_one_line_per_utterance(response) -> None:
    """Results stored before `speaker_turns` existed still export, one line per utterance."""
    older = response.model_copy(
        update={"results": response.results.model_copy(update={"speaker_turns": None})}
    )
    lines = export(older, "rttm").splitlines()
    assert len(lines) == len(response.results.utterances)
    for line, utterance in zip(lines, response.results.utterances, strict=True):
        fields = line.split()
        assert len(fields) == 10 and fields[0] == "SPEAKER"
        assert float(fields[3]) == pytest.approx(utterance.start, abs=1e-3)
        assert float(fields[4]) == pytest.approx(utterance.end - utterance.start, abs=1e-3)
        assert fields[7] == f"speaker_{utterance.speaker}"


def test_txt_labels_each_utterance_with_its_speaker(response) -> None:
    lines = export(response, "txt").splitlines()
    assert len(lines) == len(response.results.utterances)
    for line, utterance in zip(lines, response.results.utterances, strict=True):
        assert f"Speaker {utterance.speaker}: {utterance.transcript}" in line


def test_json_round_trips(response) -> None:
    assert DeepgramResponse.model_validate_json(export(response, "json")) == DeepgramResponse.model_validate(
        response.to_json_dict()
    )
