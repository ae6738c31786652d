"""Session fixture: the synthesized speech corpus, built once and cached under `.test-cache/corpus/`."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.synthetic import CorpusItem, build_corpus

CACHE_DIR = Path(__file__).resolve().parent.parent / ".test-cache" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> dict[str, CorpusItem]:
    return build_corpus(CACHE_DIR)
