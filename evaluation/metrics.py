"""Scores for a diarization (and a transcript) against a built conversation's reference.

- DER via pyannote.metrics, overlap scored (`skip_overlap=False`), at collar 0 and collar 0.25.
  pyannote's collar is the *total* width removed around each reference boundary (±0.125 s for 0.25).
- JER via pyannote.metrics, collar 0, overlap scored.
- Speaker count: the hypothesis' number of speakers against the reference's.
- Word-speaker accuracy. The reference has words per turn but not word times, so it is scored from
  the hypothesis side: for each hypothesis word (start, end, speaker), look at the reference over the
  word's span (a zero-length span is widened to 20 ms). If more than half of the span has exactly one
  reference speaker active, that speaker is the word's reference label; a word whose span is mostly
  overlapped speech, non-speech, or split with no majority is skipped. Hypothesis speakers are mapped
  to reference speakers with pyannote's optimal (Hungarian, time-overlap) mapping between the
  reference and the hypothesis turns made of the words (a speaker left unmapped counts as wrong).
  Accuracy = correct / scored words.
- WER via jiwer after lower-casing and dropping punctuation, against the turns' text joined in order
  of start (in this corpus a pseudo-reference: see tests/data/librispeech/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pyannote.core import Annotation, Segment

__all__ = [
    "DiarizationScores",
    "WordSpeakerScore",
    "annotation_from_turns",
    "diarization_scores",
    "normalise_text",
    "wer",
    "word_speaker_accuracy",
]

GRID = 0.01
"""Seconds per cell when reading the reference over a word's span."""


@dataclass(frozen=True)
class DiarizationScores:
    der: float
    """collar 0, overlap scored"""
    der_collar: float
    """collar 0.25 (pyannote: ±0.125 s), overlap scored"""
    jer: float
    speakers_found: int
    speakers_true: int

    @property
    def count_exact(self) -> bool:
        return self.speakers_found == self.speakers_true


@dataclass(frozen=True)
class WordSpeakerScore:
    accuracy: float
    scored: int
    skipped: int


def annotation_from_turns(turns: Iterable[tuple[float, float, object]], uri: str = "hyp") -> Annotation:
    """An Annotation from (start, end, speaker) triples; empty or inverted spans are dropped."""
    annotation = Annotation(uri=uri)
    for index, (start, end, speaker) in enumerate(turns):
        if end > start:
            annotation[Segment(float(start), float(end)), index] = str(speaker)
    return annotation


def diarization_scores(
    reference: Annotation, hypothesis: Annotation, duration: float | None = None
) -> DiarizationScores:
    """Scored over [0, duration] when given (the whole recording), else the union of both extents."""
    from pyannote.core import Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    if duration is None:
        extent = (reference.get_timeline() | hypothesis.get_timeline()).extent()
        duration = extent.end
    uem = Timeline([Segment(0.0, float(duration))])
    der = DiarizationErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis, uem=uem)
    der_collar = DiarizationErrorRate(collar=0.25, skip_overlap=False)(reference, hypothesis, uem=uem)
    jer = JaccardErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis, uem=uem)
    return DiarizationScores(
        der=float(der),
        der_collar=float(der_collar),
        jer=float(jer),
        speakers_found=len(hypothesis.labels()),
        speakers_true=len(reference.labels()),
    )


def _activity(reference: Annotation, end: float) -> tuple[list[str], np.ndarray]:
    labels = sorted(reference.labels())
    active = np.zeros((len(labels), int(np.ceil(end / GRID)) + 2), dtype=bool)
    for segment, _, label in reference.itertracks(yield_label=True):
        active[labels.index(label), round(segment.start / GRID) : round(segment.end / GRID)] = True
    return labels, active


def word_speaker_accuracy(
    reference: Annotation, words: Sequence[tuple[float, float, object]]
) -> WordSpeakerScore:
    """See the module docstring for the definition; `words` are (start, end, speaker)."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    if not words:
        return WordSpeakerScore(0.0, 0, 0)
    hypothesis = annotation_from_turns(((s, max(e, s + 2 * GRID), spk) for s, e, spk in words))
    mapping = DiarizationErrorRate().optimal_mapping(reference, hypothesis)
    end = max(max(e for _, e, _ in words), reference.get_timeline().extent().end)
    labels, active = _activity(reference, end)
    counts = active.sum(axis=0)
    correct = scored = skipped = 0
    for start, stop, speaker in words:
        first = round(start / GRID)
        last = max(first + 2, round(stop / GRID))
        span = last - first
        single = counts[first:last] == 1
        best_label, best = None, 0
        for index, label in enumerate(labels):
            own = int(np.count_nonzero(single & active[index, first:last]))
            if own > best:
                best_label, best = label, own
        if best_label is None or best * 2 <= span:
            skipped += 1
            continue
        scored += 1
        correct += mapping.get(str(speaker)) == best_label
    return WordSpeakerScore(correct / scored if scored else 0.0, scored, skipped)


_PUNCTUATION = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


def normalise_text(text: str) -> str:
    """Lower case, punctuation (hyphens included) to spaces, apostrophes inside words kept."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return corpus_wer([reference], [hypothesis])


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """WER over several transcripts at once: all their errors over all their reference words (an
    empty hypothesis misses every word of its reference)."""
    import jiwer

    refs, hyps = [normalise_text(r) for r in references], [normalise_text(h) for h in hypotheses]
    if not all(refs):
        raise ValueError("empty reference")
    return float(jiwer.wer(refs, [h or "<empty>" for h in hyps]))
