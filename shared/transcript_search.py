"""`search=`: Deepgram's `results.channels[].search[]`, found in the transcript's words.

Each query is compared with every run of as many consecutive words (rapidfuzz's ratio on the
lower-case text, so "kubernetes" finds "Kubernetes," and near misspellings); hits at or above
`MIN_CONFIDENCE` are returned best first, with the run's time span and text as the snippet.
Deepgram searches the audio phonetically; this searches what Whisper wrote, which is what a
client can check against the transcript.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rapidfuzz import fuzz

MIN_CONFIDENCE = 0.6
MAX_HITS = 10


def _bare(word: Mapping[str, Any]) -> str:
    return str(word.get("word", "")).lower().strip(".,!?;:\"'()")


def search(words: Sequence[Mapping[str, Any]], queries: Sequence[str]) -> list[dict[str, Any]]:
    results = []
    texts = [_bare(w) for w in words]
    for query in queries:
        size = max(1, len(query.split()))
        target = " ".join(query.lower().split())
        hits = []
        for first in range(0, max(0, len(words) - size + 1)):
            window = " ".join(texts[first : first + size])
            score = fuzz.ratio(target, window) / 100
            if score >= MIN_CONFIDENCE:
                span = words[first : first + size]
                hits.append(
                    {
                        "confidence": round(score, 4),
                        "start": span[0]["start"],
                        "end": span[-1]["end"],
                        "snippet": " ".join(str(w.get("punctuated_word", w.get("word", ""))) for w in span),
                    }
                )
        hits.sort(key=lambda hit: (-hit["confidence"], hit["start"]))
        results.append({"query": query, "hits": hits[:MAX_HITS]})
    return results
