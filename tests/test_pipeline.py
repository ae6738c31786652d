"""The whole pipeline on synthesized conversations with a known script and known turn times.

Real tiny.en (offline package), real Silero VAD, real resemblyzer embeddings, real clustering.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from evaluation.synthetic import CorpusItem
from gpu_worker.pipeline import transcribe_file
from gpu_worker.pipeline.options import PipelineOptions
from gpu_worker.pipeline.run import PipelineRun, run_pipeline, run_pipeline_detailed
from shared.deepgram import DeepgramResponse
from shared.errors import InvalidParameter, JobCancelled, ModelNotAvailable
from shared.settings import Settings
from shared.stages import PIPELINE_STAGES, Stage
from tests.speech_metrics import MAX_WER, speaker_accuracy, transcript, word_error_rate, words

pytestmark = pytest.mark.slow

# Word-level speaker accuracy measured 0.97-1.0; errors sit on words that straddle a turn edge.
MIN_SPEAKER_ACCURACY = 0.9

CONVERSATIONS = ["single_speaker", "two_speakers", "three_speakers", "long_silence"]


@pytest.fixture(scope="module")
def runs(corpus: dict[str, CorpusItem]) -> dict[str, PipelineRun]:
    """Each conversation through the pipeline once (tiny.en, batch_size 1), shared by the tests."""
    options = PipelineOptions(whisper_model="tiny.en", batch_size=1)
    return {name: run_pipeline_detailed(corpus[name].path, options) for name in CONVERSATIONS}


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_transcript_matches_the_script(name: str, corpus, runs) -> None:
    wer = word_error_rate(corpus[name].script, transcript(runs[name].response))
    assert wer <= MAX_WER, f"{name}: WER {wer:.3f}: {transcript(runs[name].response)!r}"


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_speaker_count_is_estimated(name: str, corpus, runs) -> None:
    speakers = {w.speaker for w in words(runs[name].response)}
    assert len(speakers) == corpus[name].num_speakers
    assert runs[name].response.metadata.model_info["num_speakers"] == corpus[name].num_speakers


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_words_are_given_to_the_right_speaker(name: str, corpus, runs) -> None:
    accuracy = speaker_accuracy(corpus[name], runs[name].response)
    assert accuracy >= MIN_SPEAKER_ACCURACY, f"{name}: speaker accuracy {accuracy:.3f}"


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_words_have_speakers_and_sane_monotonic_timings(name: str, corpus, runs) -> None:
    response = runs[name].response
    duration = corpus[name].duration
    found = words(response)
    assert found
    for word in found:
        assert word.speaker is not None and 0.0 <= word.speaker_confidence <= 1.0
        assert 0.0 <= word.start <= word.end <= duration + 0.05
        assert word.punctuated_word and word.word == word.word.lower()
    starts = [w.start for w in found]
    assert starts == sorted(starts)


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_response_is_valid_deepgram_json(name: str, corpus, runs) -> None:
    payload = json.loads(runs[name].response.model_dump_json(exclude_none=True))
    parsed = DeepgramResponse.model_validate(payload)
    assert len(parsed.metadata.sha256) == 64
    assert abs(parsed.metadata.duration - corpus[name].duration) < 0.05
    assert parsed.results.channels[0].detected_language == "en"
    utterances = parsed.results.utterances
    assert utterances and all(u.words and u.transcript for u in utterances)
    assert [u.start for u in utterances] == sorted(u.start for u in utterances)
    paragraphs = parsed.results.channels[0].alternatives[0].paragraphs
    assert paragraphs is not None
    assert sum(p.num_words for p in paragraphs.paragraphs) == len(words(parsed))


def test_sha256_is_the_input_files(corpus, runs) -> None:
    import hashlib

    item = corpus["two_speakers"]
    assert runs["two_speakers"].response.metadata.sha256 == hashlib.sha256(item.path.read_bytes()).hexdigest()


def test_utterances_split_on_speaker_change_and_long_pauses(corpus, runs) -> None:
    item = corpus["long_silence"]
    utterances = runs["long_silence"].response.results.utterances
    # The male speaker's two turns are separated by 9 s of silence: they must be two utterances.
    gap_start = item.turns[1].end
    gap_end = item.turns[2].start
    assert not any(u.start < gap_end - 0.5 and u.end > gap_start + 0.5 for u in utterances)
    for utterance in utterances:
        assert {w.speaker for w in utterance.words} == {utterance.speaker}
        pauses = [b.start - a.end for a, b in zip(utterance.words, utterance.words[1:], strict=False)]
        assert all(p <= 0.8 + 1e-6 for p in pauses)


def test_progress_reports_the_seed_stages_in_order(conversation) -> None:
    seen: list[tuple[Stage, float]] = []
    run_pipeline(conversation.path, PipelineOptions(), progress=lambda s, f: seen.append((s, f)))
    order = list(dict.fromkeys(stage for stage, _ in seen))
    assert order == [s for s in PIPELINE_STAGES if s is not Stage.SEPARATING_VOCALS]
    for stage in order:
        fractions = [f for s, f in seen if s is stage]
        assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)


def test_cancellation_stops_at_the_next_stage_boundary(conversation) -> None:
    seen: list[Stage] = []

    def progress(stage: Stage, fraction: float) -> None:
        seen.append(stage)

    with pytest.raises(JobCancelled, match="aligning"):
        run_pipeline(
            conversation.path,
            PipelineOptions(),
            progress=progress,
            should_stop=lambda: Stage.TRANSCRIBING in seen,
        )
    assert Stage.DIARIZING not in seen


def test_forced_speaker_count_is_honoured(conversation) -> None:
    """Forcing 3 speakers on 2 voices: both backends report 3. The windows backend labels every
    window, so a split voice shows in the words too; the segmentation backend gives each word the
    dominant speaker, and a split-off cluster may dominate no word, so only its count is checked."""
    response = run_pipeline(conversation.path, PipelineOptions(num_speakers=3))
    assert response.metadata.model_info["diarizer"] == "segmentation"
    assert response.metadata.model_info["num_speakers"] == 3
    windows = run_pipeline(
        conversation.path,
        PipelineOptions(num_speakers=3),
        settings=Settings(diarizer="windows", device="cpu"),
    )
    assert len({w.speaker for w in words(windows)}) == 3


def test_without_diarization_words_carry_no_speaker(corpus) -> None:
    response = transcribe_file(corpus["single_speaker"].path, PipelineOptions(diarize=False))  # public API
    assert word_error_rate(corpus["single_speaker"].script, transcript(response)) <= MAX_WER
    assert all(w.speaker is None for w in words(response))
    assert response.metadata.model_info["diarizer"] == "none"


def test_batched_transcription_matches_the_script(conversation) -> None:
    item = conversation  # two voices with pauses between them, where the batched pipeline once lost speech
    response = run_pipeline(item.path, PipelineOptions(batch_size=8))
    assert word_error_rate(item.script, transcript(response)) <= MAX_WER
    assert response.metadata.model_info["batch_size"] == 8


def test_suppress_numerals_writes_numbers_as_words(tmp_path) -> None:
    clip = tmp_path / "numbers.wav"
    text = "We sold twenty five boxes for three hundred dollars in nineteen ninety nine."
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "150", "-w", str(clip), text], check=True)
    plain = transcript(run_pipeline(clip, PipelineOptions(diarize=False)))
    spelled = transcript(run_pipeline(clip, PipelineOptions(diarize=False, suppress_numerals=True)))
    assert any(ch.isdigit() for ch in plain), plain  # tiny.en writes digits by default …
    assert not any(ch.isdigit() or ch in "$%" for ch in spelled), spelled  # … and none when suppressed


def test_multilingual_base_model_detects_english(conversation) -> None:
    item = conversation
    response = run_pipeline(item.path, PipelineOptions(whisper_model="base", diarize=False))
    channel = response.results.channels[0]
    assert channel.detected_language == "en" and channel.language_confidence > 0.5
    assert word_error_rate(item.script, transcript(response)) <= MAX_WER


def test_missing_model_is_refused_by_name(corpus) -> None:
    with pytest.raises(ModelNotAvailable, match=r"'medium\.en'") as error:
        run_pipeline(corpus["single_speaker"].path, PipelineOptions(whisper_model="medium.en"))
    assert any("MODEL_DIR" in place for place in error.value.where_looked)


def test_missing_model_directory_is_looked_in(tmp_path, corpus) -> None:
    settings = Settings(model_dir=tmp_path)
    with pytest.raises(ModelNotAvailable, match=re.escape(str(tmp_path))):
        run_pipeline(
            corpus["single_speaker"].path, PipelineOptions(whisper_model="large-v3"), settings=settings
        )


def test_english_only_model_refuses_another_language(corpus) -> None:
    with pytest.raises(InvalidParameter, match="only transcribes English, but language 'fr' was requested"):
        run_pipeline(corpus["single_speaker"].path, PipelineOptions(language="fr"))
    with pytest.raises(InvalidParameter, match="Unknown language 'xx'"):
        run_pipeline(corpus["single_speaker"].path, PipelineOptions(whisper_model="base", language="xx"))


def test_cli_prints_diarized_deepgram_json(conversation, tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpu_worker.pipeline", str(conversation.path), "--model", "tiny.en"],
        capture_output=True,
        text=True,
        check=True,
    )
    response = DeepgramResponse.model_validate_json(done.stdout)
    assert len({w.speaker for w in words(response)}) == 2
    assert "transcribing" in done.stderr and "diarizing" in done.stderr  # the progress bars


def test_cli_reports_bad_input_clearly(tmp_path) -> None:
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is not audio")
    done = subprocess.run(
        [sys.executable, "-m", "gpu_worker.pipeline", str(bogus), "--quiet"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "notes.wav" in done.stderr and "error:" in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "gpu_worker.pipeline", str(tmp_path / "absent.wav")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_warm_up_loads_whisper_and_the_speaker_encoder() -> None:
    """What a worker calls before its first job: afterwards both models sit in the process caches."""
    from gpu_worker.pipeline import model_cache
    from gpu_worker.pipeline.diarization import segmentation_model
    from gpu_worker.pipeline.diarization.embeddings import SPEC as RESEMBLYZER
    from gpu_worker.pipeline.models import KIND as WHISPER
    from gpu_worker.pipeline.run import warm_up

    model_cache.clear()
    warm_up("tiny.en", Settings())
    loaded = model_cache.loaded_kinds()
    assert loaded.count(WHISPER) == 1 and loaded.count(RESEMBLYZER.name) == 1
    assert segmentation_model.MODEL_NAME in loaded  # the default diarizer's own model too
