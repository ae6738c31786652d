"""Session fixtures: the synthesized speech corpus, built once and cached under `.test-cache/corpus/`,
and shorter excerpts of it for tests about the service rather than about transcription quality."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from evaluation.synthetic import CorpusItem, build_corpus

CACHE_DIR = Path(__file__).resolve().parent.parent / ".test-cache" / "corpus"

CONVERSATION_TURNS = 4
"""Turns of `two_speakers` in `conversation`: both voices twice (about 20 s instead of 39 s; every
second of audio a worker transcribes costs the suite CPU time)."""


def trimmed(source: Path, seconds: float, target: Path) -> Path:
    """The first `seconds` of `source`, written once to `target` (sox)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sox", str(source), str(target), "trim", "0", f"{seconds:.2f}"], check=True)
    return target


def first_turns(item: CorpusItem, count: int, folder: Path) -> CorpusItem:
    """The item cut 0.3 s after its `count`-th turn ends, with the reference cut to match."""
    turns = item.turns[:count]
    seconds = turns[-1].end + 0.3
    path = trimmed(item.path, seconds, folder / f"{item.name}-{count}-turns.wav")
    speakers = len({turn.speaker for turn in turns})
    name = f"{item.name}-{count}-turns"
    return dataclasses.replace(
        item, name=name, path=path, turns=turns, duration=seconds, num_speakers=speakers
    )


@pytest.fixture(scope="session")
def corpus() -> dict[str, CorpusItem]:
    return build_corpus(CACHE_DIR)


@pytest.fixture(scope="session")
def conversation(corpus: dict[str, CorpusItem], tmp_path_factory: pytest.TempPathFactory) -> CorpusItem:
    """Two real-sounding voices taking turns (the start of `two_speakers`), with its reference."""
    return first_turns(corpus["two_speakers"], CONVERSATION_TURNS, tmp_path_factory.mktemp("conversation"))
