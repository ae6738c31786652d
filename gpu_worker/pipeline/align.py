"""`aligning`: sharpen Whisper's word timings by CTC forced alignment, when a model is installed.

Whisper's own word times come from cross-attention and can drift by a few hundred milliseconds,
enough to hand a word at a turn boundary to the wrong speaker. A character-level CTC model
(wav2vec2 fine-tuned for ASR) aligned against the known transcript pins each word to the frames
that spell it. No such weights ship on PyPI, so when none is installed the stage keeps Whisper's
timings and says so (`method="whisper"`); a caller that requires CTC gets `ModelNotAvailable`.

torchaudio (whose `forced_align` WhisperX uses) is not installable beside a CPU-only torch here,
so the Viterbi alignment is implemented below in numpy.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from shared import model_locator
from shared.errors import ModelNotAvailable
from shared.model_locator import ModelSpec, Need
from shared.settings import Settings
from shared.stages import Stage

from . import model_cache
from .torch_device import torch_device
from .types import (
    SAMPLE_RATE,
    AlignedWords,
    DecodedAudio,
    ProgressCallback,
    TimedWord,
    Transcript,
    TranscriptSegment,
    no_progress,
)

__all__ = [
    "HUB_MODELS",
    "METHOD_CTC",
    "METHOD_WHISPER",
    "MODEL_NAME",
    "MULTILINGUAL_REPO",
    "STAGE_NAME",
    "CtcAligner",
    "forced_align",
    "is_available",
    "load",
    "locate",
    "run",
    "where_looked",
]

STAGE_NAME = Stage.ALIGNING
MODEL_NAME = "ctc-alignment"  # reported as ctc-alignment/<language> in errors
METHOD_CTC = "ctc"
METHOD_WHISPER = "whisper"

# Character-level wav2vec2 CTC models per language (Apache-2.0), fetched only when
# ALLOW_MODEL_DOWNLOAD=true. English is the transformers twin of torchaudio's WAV2VEC2_ASR_BASE_960H.
HUB_MODELS: dict[str, str] = {
    "en": "facebook/wav2vec2-base-960h",
    **{
        code: f"jonatasgrosman/wav2vec2-large-xlsr-53-{name}"
        for code, name in {
            "fr": "french",
            "de": "german",
            "es": "spanish",
            "it": "italian",
            "nl": "dutch",
            "pt": "portuguese",
            "ru": "russian",
            "pl": "polish",
            "ja": "japanese",
            "zh": "chinese-zh-cn",
        }.items()
    },
}
# ctc-forced-aligner's multilingual model. CC-BY-NC-4.0, so it is used when a deployment has put it
# in MODEL_DIR or the hub cache itself, never downloaded implicitly. Its vocabulary is romanised
# lower-case Latin: words in other scripts are left with Whisper's timing.
MULTILINGUAL_REPO = "MahmoudAshraf/mms-300m-1130-forced-aligner"
MULTILINGUAL_DIR = "mms"

# Scripts written without spaces: no word-delimiter token is forced between their words.
LANGUAGES_WITHOUT_SPACES = frozenset({"ja", "zh", "th", "lo", "my", "km", "yue"})
SEGMENT_PAD_SECONDS = 0.5  # Whisper's segment edges can be early or late; give the aligner slack.
WINDOW_SECONDS = 30.0  # emissions are computed in windows of at most this long (bounded memory)
MIN_SAMPLES = 400  # wav2vec2's convolutional front end needs 25 ms for one frame
MODEL_FILES = ("config.json", "vocab.json", "model.safetensors|pytorch_model.bin")
NEEDS = (Need("transformers", "'.[align]'"),)


@dataclass(frozen=True)
class CtcAligner:
    """A loaded CTC model and the facts about its vocabulary that alignment needs."""

    name: str
    model: Any  # transformers.PreTrainedModel with a CTC head
    vocab: dict[str, int]
    blank_id: int
    delimiter_id: int | None
    normalize: bool  # zero-mean/unit-variance input, as the model's feature extractor did in training
    device: str


# --- where the weights are ----------------------------------------------------------------------
def _base_language(language: str | None) -> str | None:
    return language.split("-")[0].split("_")[0].lower() if language else None


def specs(language: str | None) -> list[ModelSpec]:
    """The models that may align `language`, in resolution order: its own, then the multilingual one.

    A language's own model is looked for in MODEL_DIR/alignment/<lang>/ and, for the languages with a
    default, the hub (downloaded when allowed); MMS in MODEL_DIR/alignment/mms/ or the hub cache only.
    """
    base = _base_language(language)
    own = [
        ModelSpec(
            name=f"alignment/{base}",
            model_dir=f"alignment/{base}",
            files=MODEL_FILES,
            hub_repo=HUB_MODELS.get(base) if base else None,
            needs=NEEDS,
        )
    ]
    mms = ModelSpec(
        name=f"alignment/{MULTILINGUAL_DIR}",
        model_dir=f"alignment/{MULTILINGUAL_DIR}",
        files=MODEL_FILES,
        hub_repo=MULTILINGUAL_REPO,
        needs=NEEDS,
        downloadable=False,
    )
    return [*(own if base else []), mms]


def locate(settings: Settings, language: str | None) -> tuple[str, Path | None] | None:
    """(model name, directory) of the alignment model for `language`, or None. Never downloads.

    The name is `alignment/<dir>` for MODEL_DIR, else the hub repository. A directory of None means
    the hub model would be downloaded (ALLOW_MODEL_DOWNLOAD=true).
    """
    location = model_locator.locate(specs(language), settings)
    return (location.label, location.path) if location is not None else None


def where_looked(settings: Settings, language: str | None) -> list[str]:
    places = model_locator.where_looked(specs(language), settings)
    if _base_language(language) not in HUB_MODELS:
        places.append(f"hub download (no default alignment model for language {language!r})")
    return places


def is_available(settings: Settings, language: str | None = None) -> bool:
    """Cheap check (no torch import). Without a language: could any language be aligned?"""
    if language is not None:
        return locate(settings, language) is not None
    root = settings.model_dir / "alignment" if settings.model_dir is not None else None
    local = sorted(p.name for p in root.iterdir() if p.is_dir()) if root and root.is_dir() else []
    return any(locate(settings, code) is not None for code in dict.fromkeys([*HUB_MODELS, *local]))


# --- loading ------------------------------------------------------------------------------------
def _load(name: str, path: str | None, device: str) -> CtcAligner:
    from transformers import AutoModelForCTC, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no tqdm bars in worker logs
    source = path if path is not None else name
    local = path is not None
    model = AutoModelForCTC.from_pretrained(source, local_files_only=local).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    vocab = dict(tokenizer.get_vocab())
    delimiter = getattr(tokenizer, "word_delimiter_token", None)
    normalize = True
    preprocessor = Path(path) / "preprocessor_config.json" if path is not None else None
    if preprocessor is not None and preprocessor.is_file():
        normalize = bool(json.loads(preprocessor.read_text()).get("do_normalize", True))
    # HF CTC heads are trained with the pad token as blank; MMS conversions name theirs "<blank>".
    blank = vocab.get("<blank>", model.config.pad_token_id)
    blank = blank if blank is not None else tokenizer.pad_token_id
    return CtcAligner(
        name=name,
        model=model,
        vocab=vocab,
        blank_id=int(blank),
        delimiter_id=vocab.get(delimiter) if delimiter else None,
        normalize=normalize,
        device=device,
    )


def load(settings: Settings, language: str | None) -> CtcAligner:
    """The CTC model for `language`, loaded once per process; ModelNotAvailable when none is."""
    found = locate(settings, language)
    if found is None:
        raise ModelNotAvailable(f"{MODEL_NAME}/{_base_language(language)}", where_looked(settings, language))
    name, path = found
    source, device = str(path) if path is not None else None, torch_device(settings)
    return model_cache.cached(("ctc-alignment", name, source, device), lambda: _load(name, source, device))


# --- forced alignment ---------------------------------------------------------------------------
def forced_align(log_probs: np.ndarray, tokens: Sequence[int], blank: int) -> np.ndarray | None:
    """Most probable CTC path that spells `tokens`, as the token index of each frame (-1 = blank).

    Viterbi over the usual CTC topology (a blank before, between and after the tokens; a token may
    repeat over frames; a blank may be skipped between two different tokens), as torchaudio's
    `forced_align` does. `log_probs` is (frames, vocabulary). None when the frames are too few.
    """
    frames = log_probs.shape[0]
    states = 2 * len(tokens) + 1
    labels = np.full(states, blank, dtype=np.int64)
    labels[1::2] = np.asarray(tokens, dtype=np.int64)
    can_skip = np.zeros(states, dtype=bool)
    can_skip[3::2] = labels[3::2] != labels[1:-2:2]
    emit = log_probs[:, labels].astype(np.float64)

    score = np.full(states, -np.inf)
    score[:2] = emit[0, :2]
    moves = np.zeros((frames, states), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    for t in range(1, frames):
        from_prev = np.concatenate(([-np.inf], score[:-1]))
        from_skip = np.where(can_skip, np.concatenate(([-np.inf, -np.inf], score[:-2])), -np.inf)
        options = np.stack((score, from_prev, from_skip))
        moves[t] = np.argmax(options, axis=0)
        score = options[moves[t], np.arange(states)] + emit[t]

    final = states - 1 if states == 1 or score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[final]):
        return None
    path = np.empty(frames, dtype=np.int64)
    state = final
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= int(moves[t, state])
    return np.where(path % 2 == 1, (path - 1) // 2, -1)


def _min_frames(tokens: Sequence[int]) -> int:
    """Frames a CTC path needs for `tokens`: one each, plus a blank between equal neighbours."""
    return len(tokens) + sum(1 for a, b in pairwise(tokens) if a == b)


# --- text to tokens -----------------------------------------------------------------------------
def _char_id(char: str, vocab: dict[str, int]) -> int | None:
    """The vocabulary id of `char`, trying its other case and its unaccented letter."""
    base = unicodedata.normalize("NFKD", char)[:1]
    for candidate in (char, char.lower(), char.upper(), base, base.lower(), base.upper()):
        if candidate and candidate in vocab:
            return vocab[candidate]
    return None


def _tokens(
    words: Sequence[TimedWord], aligner: CtcAligner, with_delimiter: bool
) -> tuple[list[int], list[int]]:
    """Token ids of the words' spellable characters, and the word index owning each (-1: delimiter)."""
    tokens: list[int] = []
    owners: list[int] = []
    for index, word in enumerate(words):
        ids = [
            i for c in word.text if (i := _char_id(c, aligner.vocab)) is not None and i != aligner.blank_id
        ]
        if not ids:
            continue
        if with_delimiter and aligner.delimiter_id is not None and tokens:
            tokens.append(aligner.delimiter_id)
            owners.append(-1)
        tokens += ids
        owners += [index] * len(ids)
    return tokens, owners


# --- emissions ----------------------------------------------------------------------------------
def _log_probs(aligner: CtcAligner, samples: np.ndarray) -> tuple[np.ndarray, float]:
    """Frame log-probabilities over `samples` (16 kHz), and the seconds per frame."""
    import torch

    count = -(-len(samples) // int(WINDOW_SECONDS * SAMPLE_RATE))  # equal windows: no tiny last one
    bounds = np.linspace(0, len(samples), count + 1).astype(int)
    parts = []
    for lo, hi in pairwise(bounds):
        piece = samples[lo:hi].astype(np.float32)
        if aligner.normalize:
            piece = (piece - piece.mean()) / np.sqrt(piece.var() + 1e-7)
        inputs = torch.from_numpy(np.ascontiguousarray(piece))[None].to(aligner.device)
        with torch.inference_mode():
            logits = aligner.model(inputs).logits[0].float()
        parts.append(torch.log_softmax(logits, dim=-1).cpu().numpy())
    log_probs = np.concatenate(parts)
    return log_probs, len(samples) / SAMPLE_RATE / max(1, len(log_probs))


# --- the stage ----------------------------------------------------------------------------------
def _windows(segments: Sequence[TranscriptSegment], duration: float) -> list[tuple[float, float]]:
    """The audio each segment is aligned in: its span, padded into the silence around it but only up
    to the middle of the gap to a neighbour, so two segments never claim the same speech."""
    spans = [
        (float(min(s.start, *(w.start for w in s.words))), float(max(s.end, *(w.end for w in s.words))))
        for s in segments
    ]
    windows = []
    for i, (lo, hi) in enumerate(spans):
        left = (spans[i - 1][1] + lo) / 2 if i > 0 else 0.0
        right = (hi + spans[i + 1][0]) / 2 if i + 1 < len(spans) else duration
        windows.append(
            (
                max(0.0, lo - SEGMENT_PAD_SECONDS, min(lo, left)),
                min(duration, hi + SEGMENT_PAD_SECONDS, max(hi, right)),
            )
        )
    return windows


def _align_segment(
    aligner: CtcAligner,
    audio: DecodedAudio,
    words: Sequence[TimedWord],
    window: tuple[float, float],
    language: str,
) -> list[tuple[float, float] | None]:
    """CTC timings of each word of one segment; None for a word that could not be aligned."""
    timings: list[tuple[float, float] | None] = [None] * len(words)
    tokens, owners = _tokens(words, aligner, _base_language(language) not in LANGUAGES_WITHOUT_SPACES)
    if not tokens:
        return timings
    start, end = window
    samples = audio.samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
    if len(samples) < MIN_SAMPLES:
        return timings
    log_probs, frame_seconds = _log_probs(aligner, samples)
    if len(log_probs) < _min_frames(tokens):
        return timings
    path = forced_align(log_probs, tokens, aligner.blank_id)
    if path is None:
        return timings
    owner_of_frame = np.where(path >= 0, np.asarray(owners)[np.maximum(path, 0)], -1)
    for index in set(owners) - {-1}:
        frames = np.flatnonzero(owner_of_frame == index)
        timings[index] = (start + frames[0] * frame_seconds, start + (frames[-1] + 1) * frame_seconds)
    return timings


def _monotonic(
    words: Sequence[TimedWord], timings: Sequence[tuple[float, float] | None], duration: float
) -> list[TimedWord]:
    """Words in order, never overlapping; an unaligned word keeps Whisper's times, clamped into the
    gap its aligned neighbours leave."""
    next_aligned_start = [duration] * len(words)
    upcoming = duration
    for i in range(len(words) - 1, -1, -1):
        next_aligned_start[i] = upcoming
        if (timing := timings[i]) is not None:
            upcoming = timing[0]
    out: list[TimedWord] = []
    previous_end = 0.0
    for word, timing, limit in zip(words, timings, next_aligned_start, strict=True):
        if timing is None:
            high = max(limit, previous_end)
            start = min(max(word.start, previous_end), high)
            end = min(max(word.end, start), high)
        else:
            start = max(timing[0], previous_end)
            end = max(timing[1], start)
        start, end = min(start, duration), min(end, duration)
        out.append(replace(word, start=round(float(start), 3), end=round(float(end), 3)))
        previous_end = end
    return out


def run(
    audio: DecodedAudio,
    transcript: Transcript,
    *,
    language: str | None = None,
    settings: Settings,
    progress: ProgressCallback = no_progress,
    require_ctc: bool = False,
) -> AlignedWords:
    """Word timings for `transcript`: CTC-aligned when a model for the language is installed.

    Word count, text and probabilities are kept; only start/end change. Without a model the
    result is Whisper's own timings with `method="whisper"`, unless `require_ctc` is set.
    """
    language = language or transcript.language
    progress(STAGE_NAME, 0.0)
    if locate(settings, language) is None:
        if require_ctc:
            raise ModelNotAvailable(
                f"{MODEL_NAME}/{_base_language(language)}", where_looked(settings, language)
            )
        progress(STAGE_NAME, 1.0)
        return AlignedWords(transcript.words, METHOD_WHISPER)
    aligner = load(settings, language)
    words: list[TimedWord] = []
    timings: list[tuple[float, float] | None] = []
    segments = [s for s in transcript.segments if s.words]
    for done, (segment, window) in enumerate(zip(segments, _windows(segments, audio.duration), strict=True)):
        timings += _align_segment(aligner, audio, segment.words, window, language)
        words += segment.words
        progress(STAGE_NAME, (done + 1) / len(segments))
    progress(STAGE_NAME, 1.0)
    return AlignedWords(tuple(_monotonic(words, timings, audio.duration)), METHOD_CTC, aligner.name)
