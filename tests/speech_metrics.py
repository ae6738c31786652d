"""Scoring helpers for speech tests: WER against a script, word-level speaker accuracy against turns."""

from __future__ import annotations

from collections import Counter

import jiwer
import numpy as np
from scipy.optimize import linear_sum_assignment

from evaluation.synthetic import CorpusItem
from shared.deepgram import DeepgramResponse, Word

# tiny.en on espeak-ng speech measured 4-12 % WER on these items (espeak's prosody is odd, and
# tiny.en is the smallest model); another CPU has measured 16 % on one of them. 0.2 leaves room for
# that while still failing on any real regression: a dropped sentence alone costs 25 % on the
# shortest item.
MAX_WER = 0.2

_NORMALIZE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.SubstituteRegexes({r"-": " "}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def word_error_rate(reference: str, hypothesis: str) -> float:
    return jiwer.wer(reference, hypothesis, reference_transform=_NORMALIZE, hypothesis_transform=_NORMALIZE)


def transcript(response: DeepgramResponse) -> str:
    return response.results.channels[0].alternatives[0].transcript


def words(response: DeepgramResponse) -> list[Word]:
    return response.results.channels[0].alternatives[0].words


def reference_speaker(item: CorpusItem, time: float) -> str:
    """The speaker of the reference turn at `time`, or of the nearest turn."""
    return min(
        item.turns,
        key=lambda t: 0.0 if t.start <= time <= t.end else min(abs(time - t.start), abs(time - t.end)),
    ).speaker


def speaker_accuracy(item: CorpusItem, response: DeepgramResponse) -> float:
    """Share of words whose speaker matches the reference, under the best speaker mapping."""
    pairs = Counter((w.speaker, reference_speaker(item, (w.start + w.end) / 2)) for w in words(response))
    hypotheses = sorted({h for h, _ in pairs}, key=str)
    references = sorted({r for _, r in pairs})
    counts = np.array([[pairs[(h, r)] for r in references] for h in hypotheses])
    rows, columns = linear_sum_assignment(-counts)
    return counts[rows, columns].sum() / counts.sum()
