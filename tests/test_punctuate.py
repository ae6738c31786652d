"""Punctuation restoration: unchanged words without a model, and the whole stage with a tiny XLM-R
token classifier in the layout of oliverguhr/fullstop-punctuation-multilang-large."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from gpu_worker.pipeline import punctuate
from gpu_worker.pipeline.types import SpeakerWord, TimedWord
from shared.settings import Settings
from tests.model_factories import make_punctuation_model

needs_transformers = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="optional extra: pip install '.[punctuation]'"
)

WHISPER_TEXT = (
    "Good morning. Did you get a chance to look at the garden this weekend? I did. "
    "The tomatoes are finally turning red, and NASA says it's 3.5 degrees warmer!"
)
MARKS = set(".,?:!")


@pytest.fixture(autouse=True)
def _isolated_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def _whisper_words(text: str = WHISPER_TEXT) -> list[TimedWord]:
    return [TimedWord(w, i * 0.4, i * 0.4 + 0.3, 0.9) for i, w in enumerate(text.split())]


def _core(text: str) -> str:
    return re.sub(r"[.,;:!?…]+$", "", text).lower()


def test_without_a_model_words_are_unchanged(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    words = _whisper_words()
    assert not punctuate.is_available(settings)
    assert punctuate.method(settings, "en") == "whisper"
    assert punctuate.run(words, language="en", settings=settings) == words


@needs_transformers
def test_random_model_end_to_end(tmp_path: Path) -> None:
    """Random weights: proves loading MODEL_DIR/punctuation/, sub-word tokenisation and label mapping
    (same words, same times, only valid marks), not punctuation quality."""
    make_punctuation_model(tmp_path / "models" / "punctuation")
    settings = Settings(model_dir=tmp_path / "models", device="cpu")
    words = [
        SpeakerWord(w.text, w.start, w.end, w.probability, speaker=i // 5, speaker_confidence=0.8)
        for i, w in enumerate(_whisper_words())
    ]
    assert punctuate.is_available(settings)
    assert punctuate.method(settings, "en") == punctuate.MODEL_NAME

    out = punctuate.run(words, language="en", settings=settings)

    assert len(out) == len(words) and all(isinstance(w, SpeakerWord) for w in out)
    for before, after in zip(words, out, strict=True):
        assert (after.start, after.end, after.speaker, after.speaker_confidence) == (
            before.start,
            before.end,
            before.speaker,
            before.speaker_confidence,
        )
        assert _core(after.text) == _core(before.text)
        trailing = after.text[len(_core(after.text)) :]
        assert set(trailing) <= MARKS and len(trailing) <= 1
    assert out[0].text[0].isupper()


@needs_transformers
def test_sentence_ends_are_marked_and_capitalised(tmp_path: Path) -> None:
    """Random weights biased to always answer ".": checks the label-to-mark mapping and that each
    sentence start is capitalised, with Whisper's "!" kept where the model says "."."""
    make_punctuation_model(tmp_path / "models" / "punctuation", favour=".")
    out = punctuate.run(_whisper_words(), language="en", settings=Settings(model_dir=tmp_path / "models"))
    texts = [w.text for w in out]
    assert texts[0] == "Good." and texts[1] == "Morning." and texts[-1] == "Warmer!"
    assert "3.5." in texts  # the decimal point is part of the word, not a mark to strip
    assert all(t[-1] in ".!" and t[0] == t[0].upper() for t in texts)


@needs_transformers
def test_no_marks_lowercases_whisper_sentence_starts(tmp_path: Path) -> None:
    """Random weights biased to always answer "0" (no mark): every trailing mark goes, only the first
    word keeps a capital, but "I" and acronyms keep theirs."""
    make_punctuation_model(tmp_path / "models" / "punctuation", favour="0")
    out = punctuate.run(_whisper_words(), language="en", settings=Settings(model_dir=tmp_path / "models"))
    texts = [w.text for w in out]
    assert texts[:4] == ["Good", "morning", "did", "you"]
    assert "I" in texts and "NASA" in texts and "the" in texts and "3.5" in texts
    assert not any(t[-1] in MARKS for t in texts)


@needs_transformers
def test_long_input_is_labelled_window_by_window(tmp_path: Path) -> None:
    """Random weights biased to ".": every word of a transcript longer than one window is labelled."""
    make_punctuation_model(tmp_path / "models" / "punctuation", favour=".")
    words = _whisper_words(" ".join(["good morning to you"] * 100))
    assert len(words) > 2 * punctuate.WINDOW_WORDS
    out = punctuate.run(words, language="en", settings=Settings(model_dir=tmp_path / "models"))
    assert len(out) == len(words) and all(w.text.endswith(".") for w in out)


@needs_transformers
def test_languages_the_model_does_not_cover_are_left_alone(tmp_path: Path) -> None:
    directory = make_punctuation_model(tmp_path / "models" / "punctuation", favour=".")
    settings = Settings(model_dir=tmp_path / "models")
    words = _whisper_words()
    assert punctuate.method(settings, "ja") == "whisper"
    assert punctuate.run(words, language="ja", settings=settings) == words

    (directory / "languages.txt").write_text("ja\n")
    assert punctuate.method(settings, "ja") == punctuate.MODEL_NAME
    assert punctuate.method(settings, "en") == "whisper"


@needs_transformers
def test_hub_cache_layout_is_found(tmp_path: Path) -> None:
    snapshot = (
        tmp_path / "hub" / "models--oliverguhr--fullstop-punctuation-multilang-large" / "snapshots" / "1"
    )
    make_punctuation_model(snapshot)
    settings = Settings(model_dir=None)
    assert punctuate.locate(settings) == snapshot
    assert len(punctuate.run(_whisper_words(), language="de", settings=settings)) == len(_whisper_words())


@needs_transformers
def test_download_allowed_counts_as_available(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path, allow_model_download=True)
    assert punctuate.locate(settings) == punctuate.HUB_REPO and punctuate.is_available(settings)
