"""The text edits a `/v1/listen` request asks for, applied once by the worker to the result it
stores: so the transcript, words, utterances, paragraphs, callbacks and every export
(`/jobs/{id}/result?format=srt|vtt|txt`) carry the same redacted, formatted text, and nothing
unredacted is kept.

Each channel's words are edited in this order: dictation, filler words, find-and-replace,
profanity, redaction (on Whisper's digits, before they may be spelled out), numbers as words,
measurements. Utterances and paragraph sentences are then rebuilt from the edited words by time,
so all views agree.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from shared import word_edits
from shared.jobs import ListenOptions
from shared.redaction import Redactor

Word = dict[str, Any]
_EPSILON = 1e-3


def edit_words(words: Sequence[Word], listen: ListenOptions, redactor: Redactor) -> list[Word]:
    edited = list(words)
    if listen.dictation:
        edited = word_edits.dictation(edited)
    if not listen.filler_words:
        edited = word_edits.drop_fillers(edited)
    if listen.replace:
        edited = word_edits.replace(edited, listen.replace)
    if listen.profanity_filter:
        edited = word_edits.censor(edited)
    edited = redactor.words(edited)
    if listen.numerals:
        if listen.measurements:
            edited = word_edits.abbreviate_units(edited)
    else:
        edited = word_edits.spell_numbers(edited)
    return edited


def _text(words: Sequence[Mapping[str, Any]]) -> str:
    return " ".join(str(w.get("punctuated_word", w.get("word", ""))) for w in words)


def _within(words: Sequence[Word], start: float, end: float) -> list[Word]:
    return [w for w in words if start - _EPSILON <= float(w["start"]) <= end + _EPSILON]


def _paragraphs(paragraphs: dict[str, Any], words: Sequence[Word]) -> dict[str, Any]:
    blocks = []
    for paragraph in paragraphs.get("paragraphs", []):
        count = 0
        for sentence in paragraph.get("sentences", []):
            inside = _within(words, sentence["start"], sentence["end"])
            sentence["text"] = _text(inside)
            count += len(inside)
        paragraph["num_words"] = count
        label = f"Speaker {paragraph['speaker']}: " if "speaker" in paragraph else ""
        blocks.append(label + " ".join(s["text"] for s in paragraph.get("sentences", [])))
    paragraphs["transcript"] = "\n\n" + "\n\n".join(blocks) + "\n" if blocks else ""
    return paragraphs


def apply_listen_text(result: Mapping[str, Any], listen: ListenOptions) -> dict[str, Any]:
    """A copy of the stored result (Deepgram's shape, as the worker writes it) with `listen`'s edits."""
    edited = copy.deepcopy(dict(result))
    redactor = Redactor(listen.redact)
    results = edited.get("results", {})
    channel_words: list[list[Word]] = []
    for channel in results.get("channels", []):
        words: list[Word] = []
        for number, alternative in enumerate(channel.get("alternatives", [])):
            alternative["words"] = edit_words(alternative.get("words", []), listen, redactor)
            alternative["transcript"] = _text(alternative["words"])
            if "paragraphs" in alternative:
                alternative["paragraphs"] = _paragraphs(alternative["paragraphs"], alternative["words"])
            if number == 0:
                words = alternative["words"]
        channel_words.append(words)
    for utterance in results.get("utterances") or []:
        channel = int(utterance.get("channel", 0))
        source = channel_words[channel] if channel < len(channel_words) else []
        inside = _within(source, utterance["start"], utterance["end"])
        speaker = utterance.get("speaker")
        utterance["words"] = [w for w in inside if speaker is None or w.get("speaker", speaker) == speaker]
        utterance["transcript"] = _text(utterance["words"])
    return edited
