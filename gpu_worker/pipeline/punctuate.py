"""Punctuation restoration (part of `post_processing`), when a token-classification model is installed.

Whisper already punctuates, but it drops marks on long unpunctuated stretches and after the
speaker splits that diarization introduces. A model in the layout of
`oliverguhr/fullstop-punctuation-multilang-large` (labels `0 . , ? - :` per word, as the
deepmultilingualpunctuation package uses it) re-predicts each word's trailing mark; sentence
starts are re-cased to match. No weights ship on PyPI: without a model the words are returned
unchanged and `method()` reports "whisper".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from shared import model_locator
from shared.model_locator import ModelSpec, Need, Source
from shared.settings import Settings
from shared.stages import Stage

from . import model_cache
from .torch_device import torch_device
from .types import SpeakerWord, TimedWord

__all__ = [
    "HUB_REPO",
    "METHOD_WHISPER",
    "MODEL_NAME",
    "SPEC",
    "STAGE_NAME",
    "is_available",
    "load",
    "locate",
    "method",
    "run",
]

STAGE_NAME = Stage.POST_PROCESSING
MODEL_NAME = "fullstop-punctuation-multilang-large"
HUB_REPO = f"oliverguhr/{MODEL_NAME}"
METHOD_WHISPER = "whisper"

# The languages the fullstop model was trained on; a deployment with another model lists its own
# in MODEL_DIR/punctuation/languages.txt (one code a line).
DEFAULT_LANGUAGES = frozenset({"en", "de", "fr", "it"})
# Model label -> mark appended to the word. A dash ("-") is not a word-level mark in a transcript's
# punctuated words, so it becomes the pause it stands for: a comma.
LABEL_MARKS = {".": ".", ",": ",", "?": "?", "-": ",", ":": ":"}
SENTENCE_END = frozenset(".?!")
# Languages that capitalise nouns: a word that loses its sentence start keeps its capital there.
NOUN_CASE_LANGUAGES = frozenset({"de", "lb"})
WINDOW_WORDS = 150  # words labelled per forward pass (about 250 XLM-R tokens, under the 512 limit)
CONTEXT_WORDS = 20  # extra words on each side, seen by the model but labelled by a neighbour window
SPEC = ModelSpec(
    name=MODEL_NAME,
    model_dir="punctuation",
    files=("config.json", "model.safetensors|pytorch_model.bin"),
    hub_repo=HUB_REPO,
    needs=(Need("transformers", "'.[punctuation]'"),),
)

_TRAILING_MARKS = re.compile(r"[.,;:!?…]+$")

W = TypeVar("W", TimedWord, SpeakerWord)


@dataclass(frozen=True)
class PunctuationModel:
    name: str
    model: Any  # transformers token-classification model
    tokenizer: Any
    marks: dict[int, str]  # label id -> mark ("" for none)
    max_tokens: int
    device: str


# --- where the weights are ----------------------------------------------------------------------
def locate(settings: Settings) -> Path | str | None:
    """The model directory, the hub repo to download (when allowed), or None. Never downloads."""
    location = model_locator.locate(SPEC, settings)
    if location is None:
        return None
    return HUB_REPO if location.source is Source.HUB else location.path


def is_available(settings: Settings) -> bool:
    """Cheap check (no torch import) for the model listing."""
    return locate(settings) is not None


def _languages(location: Path | str) -> frozenset[str]:
    listed = Path(location) / "languages.txt" if isinstance(location, Path) else None
    if listed is None or not listed.is_file():
        return DEFAULT_LANGUAGES
    return frozenset(line.strip().lower() for line in listed.read_text().splitlines() if line.strip())


def _base_language(language: str | None) -> str:
    return (language or "").split("-")[0].split("_")[0].lower()


def method(settings: Settings, language: str | None = None) -> str:
    """What `run` will do: the model's name, or "whisper" (Whisper's own punctuation kept)."""
    location = locate(settings)
    if location is None or (language is not None and _base_language(language) not in _languages(location)):
        return METHOD_WHISPER
    return MODEL_NAME


# --- loading ------------------------------------------------------------------------------------
def _load(location: str, local: bool, device: str) -> PunctuationModel:
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no tqdm bars in worker logs
    model = (
        AutoModelForTokenClassification.from_pretrained(location, local_files_only=local).to(device).eval()
    )
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local)
    marks = {int(i): LABEL_MARKS.get(str(label), "") for i, label in model.config.id2label.items()}
    positions = getattr(model.config, "max_position_embeddings", 514)
    max_tokens = min(int(tokenizer.model_max_length), positions - 2, 512)
    return PunctuationModel(
        name=MODEL_NAME,
        model=model,
        tokenizer=tokenizer,
        marks=marks,
        max_tokens=max_tokens,
        device=device,
    )


def load(settings: Settings) -> PunctuationModel | None:
    """The punctuation model, loaded once per process; None when this host has none."""
    location = locate(settings)
    if location is None:
        return None
    device = torch_device(settings)
    local = isinstance(location, Path)
    return model_cache.cached(
        (MODEL_NAME, str(location), device), lambda: _load(str(location), local, device)
    )


# --- prediction ---------------------------------------------------------------------------------
def _predict_marks(punctuator: PunctuationModel, words: Sequence[str]) -> list[str]:
    """The mark the model puts after each word ("" for none), window by window with context."""
    import torch

    marks = [""] * len(words)
    for first in range(0, len(words), WINDOW_WORDS):
        lo, hi = max(0, first - CONTEXT_WORDS), min(len(words), first + WINDOW_WORDS + CONTEXT_WORDS)
        encoded = punctuator.tokenizer(
            list(words[lo:hi]),
            is_split_into_words=True,
            truncation=True,
            max_length=punctuator.max_tokens,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = punctuator.model(**{k: v.to(punctuator.device) for k, v in encoded.items()}).logits[0]
        labels = logits.argmax(-1).tolist()
        last_token: dict[int, int] = {}
        for position, word_id in enumerate(encoded.word_ids()):
            if word_id is not None:
                last_token[word_id] = position  # a word's label is its last sub-token's
        for offset, position in last_token.items():
            index = lo + offset
            if first <= index < first + WINDOW_WORDS:
                marks[index] = punctuator.marks.get(labels[position], "")
    return marks


def _recase(text: str, starts_sentence: bool, was_start: bool, language: str) -> str:
    """Capitalise a sentence start; undo Whisper's capital on a word that no longer starts one."""
    if starts_sentence:
        return text[:1].upper() + text[1:]
    keep = language in NOUN_CASE_LANGUAGES or text == "I" or text.startswith("I'") or not text[1:].islower()
    if was_start and not keep:
        return text[:1].lower() + text[1:]
    return text


def run(words: Sequence[W], *, language: str | None, settings: Settings) -> list[W]:
    """`words` with restored punctuation and sentence-start casing; same words, same order, same times.

    Unchanged when no model is installed or the model does not cover `language`.
    """
    covered = bool(words) and method(settings, language) != METHOD_WHISPER
    punctuator = load(settings) if covered else None
    if punctuator is None:
        return list(words)
    bare = [_TRAILING_MARKS.sub("", w.text) or w.text for w in words]
    marks = _predict_marks(punctuator, bare)
    out: list[W] = []
    starts_sentence, was_start = True, True
    for word, text, mark in zip(words, bare, marks, strict=True):
        if not _TRAILING_MARKS.sub("", word.text):  # a bare mark ("…", "?") stays as Whisper wrote it
            out.append(word)
            continue
        if mark == "." and word.text.endswith("!"):
            mark = "!"  # the model has no exclamation label; keep Whisper's
        out.append(
            replace(word, text=_recase(text, starts_sentence, was_start, _base_language(language)) + mark)
        )
        starts_sentence = mark in SENTENCE_END
        was_start = word.text[-1:] in SENTENCE_END
    return out
