"""Alignment stage: the numpy CTC forced aligner against exhaustive search, the Whisper fallback, and the
whole stage with a tiny wav2vec2 CTC model on a real recording and a real Whisper transcript."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from gpu_worker.pipeline import align, transcribe
from gpu_worker.pipeline.audio import load_audio
from gpu_worker.pipeline.models import get_whisper
from gpu_worker.pipeline.options import PipelineOptions
from gpu_worker.pipeline.types import DecodedAudio, TimedWord, Transcript
from shared.errors import ModelNotAvailable
from shared.settings import Settings
from shared.stages import Stage
from tests.model_factories import make_ctc_aligner

BLANK = 0
needs_transformers = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="optional extra: pip install '.[align]'"
)


@pytest.fixture(autouse=True)
def _isolated_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the models a test puts in place may be found."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.fixture(scope="module")
def recording(corpus) -> tuple[DecodedAudio, Transcript]:
    """A real espeak recording and tiny.en's transcript of it (several segments)."""
    audio = load_audio(corpus["single_speaker"].path)
    whisper = get_whisper("tiny.en", Settings(model_dir=None))
    return audio, transcribe.run(audio, whisper, PipelineOptions(batch_size=1))


# --- forced alignment on hand-built emissions --------------------------------------------------------
def _log_probs(best: list[int], vocabulary: int = 3, confidence: float = 0.9) -> np.ndarray:
    """Emissions where frame t strongly prefers label best[t]."""
    probs = np.full((len(best), vocabulary), (1 - confidence) / (vocabulary - 1))
    probs[np.arange(len(best)), best] = confidence
    return np.log(probs)


def test_follows_the_obvious_path() -> None:
    # frames say: blank a a blank b blank  -> tokens "ab"
    path = align.forced_align(_log_probs([BLANK, 1, 1, BLANK, 2, BLANK]), [1, 2], BLANK)
    assert path.tolist() == [-1, 0, 0, -1, 1, -1]


def test_repeated_token_needs_a_blank_between() -> None:
    # the frames say "a a a", but the text is "aa": CTC must put a blank between the two a's
    path = align.forced_align(_log_probs([1, 1, 1]), [1, 1], BLANK)
    assert path.tolist() == [0, -1, 1]


def test_too_few_frames_is_none() -> None:
    assert align.forced_align(_log_probs([1, 1]), [1, 1], BLANK) is None
    assert align._min_frames([1, 1]) == 3


def _brute_force_best(log_probs: np.ndarray, tokens: list[int]) -> float:
    """Best score over every label sequence that collapses (merge repeats, drop blanks) to `tokens`."""
    best = -np.inf
    for labels in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        collapsed = [k for k, _ in itertools.groupby(labels) if k != BLANK]
        if collapsed == tokens:
            best = max(best, float(log_probs[np.arange(len(labels)), labels].sum()))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_matches_exhaustive_search_on_random_emissions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frames = int(rng.integers(3, 7))
    tokens = [int(t) for t in rng.integers(1, 3, size=int(rng.integers(1, 3)))]
    log_probs = np.log(rng.dirichlet(np.ones(3), size=frames))

    path = align.forced_align(log_probs, tokens, BLANK)
    best = _brute_force_best(log_probs, tokens)

    if not np.isfinite(best):
        assert path is None
        return
    # score the returned path: token index -> its label, -1 -> blank
    labels = [BLANK if i < 0 else tokens[i] for i in path]
    assert float(log_probs[np.arange(frames), labels].sum()) == pytest.approx(best)
    # and it spells the tokens in order, each at least once
    assert [i for i, _ in itertools.groupby(path) if i >= 0] == list(range(len(tokens)))


# --- text to tokens and timing repair -------------------------------------------------------------
def test_words_map_to_the_vocabulary_case_and_unaccented_letters() -> None:
    vocab = {"<pad>": 0, "|": 1, "A": 2, "B": 3, "E": 4, "'": 5}
    aligner = align.CtcAligner("t", None, vocab, blank_id=0, delimiter_id=1, normalize=True, device="cpu")
    words = [TimedWord("abé,", 0, 1, 1), TimedWord("42", 1, 2, 1), TimedWord("B'a", 2, 3, 1)]
    tokens, owners = align._tokens(words, aligner, with_delimiter=True)
    assert tokens == [2, 3, 4, 1, 3, 5, 2]
    assert owners == [0, 0, 0, -1, 2, 2, 2]


def test_unaligned_words_keep_whisper_timing_within_the_gap() -> None:
    words = [TimedWord("one", 0.0, 0.5, 1), TimedWord("42", 0.4, 1.2, 1), TimedWord("two", 1.0, 1.5, 1)]
    timings = [(0.1, 0.6), None, (0.9, 1.4)]
    out = align._monotonic(words, timings, duration=2.0)
    assert [(w.start, w.end) for w in out] == [(0.1, 0.6), (0.6, 0.9), (0.9, 1.4)]


# --- the stage ----------------------------------------------------------------------------------
def test_without_a_model_whisper_timings_are_kept(tmp_path: Path, recording) -> None:
    audio, transcript = recording
    settings = Settings(model_dir=tmp_path / "models")
    assert not align.is_available(settings) and not align.is_available(settings, "en")

    result = align.run(audio, transcript, language="en", settings=settings)

    assert result.method == "whisper" and result.model_name is None
    assert result.words == transcript.words


def test_required_ctc_without_a_model_is_a_clear_error(tmp_path: Path, recording) -> None:
    audio, transcript = recording
    settings = Settings(model_dir=tmp_path / "models")
    with pytest.raises(ModelNotAvailable) as raised:
        align.run(audio, transcript, language="en", settings=settings, require_ctc=True)
    assert raised.value.name == "ctc-alignment/en"
    assert any(str(tmp_path / "models" / "alignment" / "en") in p for p in raised.value.where_looked)
    assert any("facebook/wav2vec2-base-960h" in p for p in raised.value.where_looked)


@needs_transformers
def test_ctc_alignment_end_to_end(tmp_path: Path, recording) -> None:
    """Random weights: proves loading MODEL_DIR/alignment/en/, emissions over each segment, forced
    alignment and mapping back to words (count, text, monotonic times inside the audio), not accuracy."""
    audio, transcript = recording
    make_ctc_aligner(tmp_path / "models" / "alignment" / "en")
    settings = Settings(model_dir=tmp_path / "models", device="cpu")
    assert align.is_available(settings) and align.is_available(settings, "en-US")
    seen: list[float] = []

    result = align.run(
        audio,
        transcript,
        language="en",
        settings=settings,
        progress=lambda s, f: seen.append(f),
        require_ctc=True,
    )

    assert result.method == "ctc" and result.model_name == "alignment/en"
    assert len(transcript.segments) > 1
    assert [w.text for w in result.words] == [w.text for w in transcript.words]
    assert [w.probability for w in result.words] == [w.probability for w in transcript.words]
    starts = [w.start for w in result.words]
    assert all(isinstance(t, float) for w in result.words for t in (w.start, w.end))
    assert all(0.0 <= w.start <= w.end <= audio.duration for w in result.words)
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in itertools.pairwise(result.words))
    assert result.words != transcript.words  # the timings came from the CTC path
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


@needs_transformers
def test_multilingual_model_in_hub_cache_serves_other_languages(tmp_path: Path, recording) -> None:
    """Random weights: a wav2vec2 CTC model in the hub cache layout of the MMS aligner is found for a
    language with no model of its own."""
    audio, transcript = recording
    repo = align.MULTILINGUAL_REPO.replace("/", "--")
    snapshot = tmp_path / "hub" / f"models--{repo}" / "snapshots" / "c0ffee"
    make_ctc_aligner(snapshot)
    settings = Settings(model_dir=None, device="cpu")
    assert align.locate(settings, "fr") == (align.MULTILINGUAL_REPO, snapshot)

    result = align.run(audio, transcript, language="fr", settings=settings)

    assert result.method == "ctc" and len(result.words) == len(transcript.words)


@needs_transformers
def test_uppercase_vocabulary_aligns_lowercase_words(tmp_path: Path, recording) -> None:
    """Random weights: an upper-case character vocabulary (as facebook/wav2vec2-base-960h has) still
    spells Whisper's mixed-case words."""
    audio, transcript = recording
    directory = make_ctc_aligner(tmp_path / "models" / "alignment" / "en", uppercase=True)
    assert "A" in json.loads((directory / "vocab.json").read_text())
    result = align.run(audio, transcript, settings=Settings(model_dir=tmp_path / "models", device="cpu"))
    assert result.method == "ctc" and len(result.words) == len(transcript.words)


def test_progress_reports_the_aligning_stage(tmp_path: Path, recording) -> None:
    audio, transcript = recording
    stages: set[Stage] = set()
    align.run(audio, transcript, settings=Settings(model_dir=tmp_path), progress=lambda s, f: stages.add(s))
    assert stages == {Stage.ALIGNING}


@needs_transformers
def test_long_segments_are_emitted_window_by_window(
    tmp_path: Path, recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random weights: emissions computed in several windows keep wav2vec2's 20 ms frame clock, and
    the stage's output contract holds (windows are shortened so that one segment needs several)."""
    audio, transcript = recording
    make_ctc_aligner(tmp_path / "models" / "alignment" / "en")
    settings = Settings(model_dir=tmp_path / "models", device="cpu")
    monkeypatch.setattr(align, "WINDOW_SECONDS", 1.3)
    log_probs, frame_seconds = align._log_probs(align.load(settings, "en"), audio.samples[: 16_000 * 5])
    assert len(log_probs) > 200 and frame_seconds == pytest.approx(0.02, rel=0.02)

    result = align.run(audio, transcript, settings=settings)

    assert [w.text for w in result.words] == [w.text for w in transcript.words]
    assert all(0.0 <= a.start <= a.end <= b.start for a, b in itertools.pairwise(result.words))
