"""The real-voice evaluation corpus: the builder makes what its conditions claim, and the metrics
score a known hypothesis to a known value. No Whisper and no diarizer here."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from pyannote.core import Annotation, Segment
from scipy.signal import welch

from evaluation import librispeech
from evaluation.conditions import CONDITIONS, LONG, QUICK, by_name, conversations
from evaluation.conversations import SAMPLE_RATE, ConversationSpec, build, overlap_share
from evaluation.metrics import (
    annotation_from_turns,
    corpus_wer,
    diarization_scores,
    normalise_text,
    wer,
    word_speaker_accuracy,
)

DATA = Path(__file__).parent / "data" / "librispeech"


def _first(condition: str):
    return build(by_name(condition).specs[0])


def _active_power(samples: np.ndarray, conversation) -> float:
    mask = np.zeros(samples.size, dtype=bool)
    for s in conversation.segments:
        mask[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)] = True
    return float(np.mean(samples[mask].astype(np.float64) ** 2))


def test_committed_excerpt_matches_its_manifest() -> None:
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    rows = manifest["utterances"]
    assert {r["sex"] for r in rows if r["subset"] == "test-other"} == {"F", "M"}
    assert len({r["speaker"] for r in rows if r["subset"] == "test-other"}) == 10
    assert len({r["speaker"] for r in rows if r["subset"] == "train-clean-100"}) >= 30
    for utt in librispeech.utterances():
        assert utt.path.is_file(), utt.path
        assert utt.samples().size / SAMPLE_RATE == pytest.approx(utt.duration, abs=0.002)
        assert utt.text.strip()
    assert "not a human reference" in manifest["reference_text"]


def test_building_is_deterministic() -> None:
    spec = ConversationSpec(name="det", num_speakers=3, seed=7, speech_seconds=30, overlap_share=0.15)
    first, second = build(spec), build(spec)
    assert np.array_equal(first.samples, second.samples)
    assert first.segments == second.segments and first.turns == second.turns
    other = build(ConversationSpec(name="det", num_speakers=3, seed=8, speech_seconds=30))
    assert other.segments != first.segments


def test_clean_conversations_cover_1_to_6_speakers_and_turn_lengths(tmp_path: Path) -> None:
    built = [c for _, c in conversations(["clean"])]
    assert sorted({c.num_speakers for c in built}) == [1, 2, 3, 4, 5, 6]
    for conversation in built:
        assert conversation.num_speakers == conversation.spec.num_speakers
        assert overlap_share(conversation.segments) == 0.0
        assert all(0 <= s.start < s.end <= conversation.duration for s in conversation.segments)
    turns = [t for c in built for t in c.turns]
    backchannels = [t.end - t.start for t in turns if t.kind == "backchannel"]
    monologues = [t.end - t.start for t in turns if t.kind == "monologue"]
    assert backchannels and min(backchannels) >= 0.29 and max(backchannels) <= 0.81
    assert monologues and max(monologues) <= 20.0 and max(monologues) >= 12.0
    gaps = [b.start - a.end for c in built for a, b in zip(c.segments, c.segments[1:], strict=False)]
    assert max(gaps) >= 2.0  # silences between some turns

    # RTTM export: same segments, durations add up, audio at the stated rate
    conversation = built[2]
    wav = conversation.export(tmp_path)
    lines = (tmp_path / f"{conversation.name}.rttm").read_text().splitlines()
    assert len(lines) == len(conversation.segments)
    rttm_total = sum(float(line.split()[4]) for line in lines)
    assert rttm_total == pytest.approx(sum(s.end - s.start for s in conversation.segments), abs=0.01)
    assert {line.split()[7] for line in lines} == set(conversation.speakers)
    with wave.open(str(wav)) as handle:
        assert handle.getframerate() == SAMPLE_RATE
        assert handle.getnframes() == conversation.samples.size


def test_overlap_condition_overlaps_10_to_20_percent_of_speech() -> None:
    for _, conversation in conversations(["overlap"]):
        assert 0.10 <= overlap_share(conversation.segments) <= 0.20, conversation.name
        assert conversation.num_speakers == conversation.spec.num_speakers


def test_level_condition_spreads_speakers_10_db() -> None:
    conversation = _first("levels")
    levels = []
    for speaker in conversation.speakers:
        own = [s for s in conversation.segments if s.speaker == speaker]
        voiced = np.concatenate(
            [conversation.clean[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)] for s in own]
        )
        levels.append(10 * np.log10(np.mean(voiced.astype(np.float64) ** 2)))
    assert max(levels) - min(levels) == pytest.approx(10.0, abs=2.0)


@pytest.mark.parametrize("condition", ["white-20db", "white-10db", "babble-20db", "babble-10db"])
def test_noise_is_mixed_at_the_target_snr(condition: str) -> None:
    conversation = _first(condition)
    noise = conversation.samples.astype(np.float64) - conversation.clean
    snr = 10 * np.log10(_active_power(conversation.clean, conversation) / np.mean(noise**2))
    assert snr == pytest.approx(conversation.spec.snr_db, abs=1.0)
    clean_twin = build(by_name("clean").specs[2 if conversation.num_speakers == 2 else 4])
    assert clean_twin.segments == conversation.segments  # same layout as its clean conversation


def test_quiet_recording_peaks_at_minus_30_dbfs() -> None:
    conversation = _first("quiet")
    peak = 20 * np.log10(np.max(np.abs(conversation.samples)))
    assert peak == pytest.approx(-30.0, abs=0.5)


def test_telephone_band_has_no_energy_above_4_khz(tmp_path: Path) -> None:
    conversation = _first("telephone")
    freqs, power = welch(conversation.samples, fs=SAMPLE_RATE, nperseg=1024)
    above = 10 * np.log10(power[freqs > 4000].sum() / power.sum())
    assert above < -50.0
    wav = conversation.export(tmp_path)
    with wave.open(str(wav)) as handle:
        assert handle.getframerate() == 8000


def test_long_conversation_lasts_over_30_minutes() -> None:
    conversation = build(LONG.specs[0])
    assert conversation.duration >= 30 * 60
    assert conversation.num_speakers == 3


def test_quick_subset_names_real_conversations() -> None:
    names = {spec.name for condition in CONDITIONS for spec in condition.specs}
    assert all(set(wanted) <= names for wanted in QUICK.values())


def _two_speaker_reference() -> Annotation:
    reference = Annotation(uri="hand")
    reference[Segment(0, 10)] = "A"
    reference[Segment(10, 20)] = "B"
    return reference


def test_metrics_score_the_reference_as_perfect() -> None:
    conversation = _first("overlap")
    reference = conversation.annotation()
    scores = diarization_scores(reference, reference)
    assert scores.der == 0.0 and scores.der_collar == 0.0 and scores.jer == 0.0
    assert scores.count_exact


def test_metrics_give_known_values_for_a_hand_made_hypothesis() -> None:
    reference = _two_speaker_reference()
    hypothesis = annotation_from_turns([(0, 12, 0), (12, 20, 1)])
    scores = diarization_scores(reference, hypothesis)
    assert scores.der == pytest.approx(2 / 20)
    # pyannote's 0.25 collar removes ±0.125 s around the boundaries at 0, 10 and 20 s
    assert scores.der_collar == pytest.approx(1.875 / 19.5)
    assert scores.jer == pytest.approx((2 / 12 + 2 / 10) / 2)
    missed = diarization_scores(reference, annotation_from_turns([(0, 20, 0)]))
    assert missed.der == pytest.approx(10 / 20) and missed.speakers_found == 1


def test_word_speaker_accuracy_maps_speakers_and_skips_overlap() -> None:
    reference = _two_speaker_reference()
    reference[Segment(15, 16)] = "A"  # overlap with B
    words = [
        (1.0, 1.4, 7),  # A -> hyp 7
        (5.0, 5.3, 7),
        (11.0, 11.5, 3),  # B -> hyp 3
        (12.0, 12.4, 7),  # wrong
        (15.2, 15.6, 3),  # inside the overlap: skipped
        (20.5, 20.9, 3),  # after all speech: skipped
    ]
    score = word_speaker_accuracy(reference, words)
    assert (score.scored, score.skipped) == (4, 2)
    assert score.accuracy == pytest.approx(3 / 4)


def test_wer_normalises_case_and_punctuation() -> None:
    assert normalise_text("Hold on, hold fast. Box-car? Don't!") == "hold on hold fast box car don't"
    assert wer("the cat sat on the mat", "The cat, sat on a mat.") == pytest.approx(1 / 6)


def test_corpus_wer_pools_errors_over_reference_words() -> None:
    references = ["the cat sat on the mat", "Hello there."]
    hypotheses = ["The cat, sat on a mat.", "hello"]
    assert corpus_wer(references, hypotheses) == pytest.approx(2 / 8)  # not the mean of 1/6 and 1/2
    assert corpus_wer(references, ["", "hello there"]) == pytest.approx(6 / 8)  # nothing heard: 6 errors
