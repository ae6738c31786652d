"""`post_processing` stage: sentences, utterances and paragraphs from speaker-labelled words.

Utterances follow Deepgram: a new utterance starts when the speaker changes or the pause between
two words exceeds `utt_split` seconds. Paragraphs group whole sentences of one speaker and break
on a speaker change or a long pause.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from statistics import fmean

from .types import SpeakerWord

_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
_CLOSERS = "\"'”’)]}"
PARAGRAPH_PAUSE_FACTOR = 2.0


@dataclass(frozen=True)
class WordGroup:
    """Consecutive words of one speaker: an utterance, a sentence or a paragraph."""

    words: tuple[SpeakerWord, ...]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def speaker(self) -> int:
        return self.words[0].speaker

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def confidence(self) -> float:
        return fmean(word.probability for word in self.words)


@dataclass(frozen=True)
class Paragraph:
    sentences: tuple[WordGroup, ...]
    """Whole sentences of one speaker, in order; the next paragraph starts at a speaker change or at
    a pause longer than PARAGRAPH_PAUSE_FACTOR × utt_split."""

    @property
    def words(self) -> tuple[SpeakerWord, ...]:
        return tuple(word for sentence in self.sentences for word in sentence.words)


@dataclass(frozen=True)
class PostProcessed:
    """The stage's result: every word in time order, and the same words grouped twice, into
    utterances and into paragraphs (Deepgram's `utterances` and `paragraphs` of a response)."""

    words: tuple[SpeakerWord, ...]
    utterances: tuple[WordGroup, ...]
    paragraphs: tuple[Paragraph, ...]


def ends_sentence(text: str) -> bool:
    return text.rstrip(_CLOSERS).endswith(_SENTENCE_END)


def _split(words: Sequence[SpeakerWord], breaks_after) -> Iterator[WordGroup]:
    current: list[SpeakerWord] = []
    for index, word in enumerate(words):
        current.append(word)
        following = words[index + 1] if index + 1 < len(words) else None
        if following is None or breaks_after(word, following):
            yield WordGroup(tuple(current))
            current = []


def split_utterances(words: Sequence[SpeakerWord], utt_split: float) -> list[WordGroup]:
    return list(
        _split(words, lambda word, nxt: nxt.speaker != word.speaker or nxt.start - word.end > utt_split)
    )


def split_sentences(words: Sequence[SpeakerWord]) -> list[WordGroup]:
    """Sentences end at terminal punctuation; a speaker change also ends one (no shared sentences)."""
    return list(_split(words, lambda word, nxt: ends_sentence(word.text) or nxt.speaker != word.speaker))


def split_paragraphs(sentences: Sequence[WordGroup], pause: float) -> list[Paragraph]:
    paragraphs: list[Paragraph] = []
    current: list[WordGroup] = []
    for sentence in sentences:
        if current and (sentence.speaker != current[-1].speaker or sentence.start - current[-1].end > pause):
            paragraphs.append(Paragraph(tuple(current)))
            current = []
        current.append(sentence)
    if current:
        paragraphs.append(Paragraph(tuple(current)))
    return paragraphs


def run(words: Sequence[SpeakerWord], *, utt_split: float) -> PostProcessed:
    ordered = tuple(sorted(words, key=lambda word: (word.start, word.end)))
    sentences = split_sentences(ordered)
    return PostProcessed(
        words=ordered,
        utterances=tuple(split_utterances(ordered, utt_split)),
        paragraphs=tuple(split_paragraphs(sentences, PARAGRAPH_PAUSE_FACTOR * utt_split)),
    )
