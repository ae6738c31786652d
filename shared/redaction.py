"""`redact=numbers|pci|ssn` on a transcript's words, by rule, keeping word timings.

A run of consecutive number words ("4567", "four five six seven", "twenty five") is read as its
digits; the run is then redacted when the request's kinds cover it:

- `numbers` (also `true`, `aggressive_numbers`): every number run.
- `pci`: a card number (13-19 digits), an expiry date or a CVV after words that announce one.
- `ssn`: nine digits, or `ddd-dd-dddd`.

A redacted run becomes one word spanning the run's time, `[NUMBER_1]`, `[CREDIT_CARD_1]`,
`[SSN_1]`... (Deepgram's entity tokens: the same value gets the same number everywhere).
Redaction that needs a language model (`pii`, `phi`, names, places) is refused by the API instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Word = dict[str, Any]

NUMBER_KINDS = ("numbers", "true", "aggressive_numbers")
RULE_KINDS = (*NUMBER_KINDS, "pci", "ssn")

_ONES = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7",
    "eighty": "8", "ninety": "9",
}  # fmt: skip
_SCALES = {"hundred": "00", "thousand": "000"}
_ORDINALS = {
    "first": "1", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6", "seventh": "7",
    "eighth": "8", "ninth": "9", "tenth": "10", "eleventh": "11", "twelfth": "12", "thirteenth": "13",
    "fourteenth": "14", "fifteenth": "15", "sixteenth": "16", "seventeenth": "17", "eighteenth": "18",
    "nineteenth": "19", "twentieth": "20", "thirtieth": "30",
}  # fmt: skip
_ORDINAL = re.compile(r"^(\d+)(st|nd|rd|th)$")
_DIGITS = re.compile(r"^[\d\-/,.]*\d[\d\-/,.]*$")
_PCI_CUES = ("card", "visa", "mastercard", "amex", "expir", "expires", "cvv", "cvc", "security")


def _bare(word: Mapping[str, Any]) -> str:
    return str(word.get("word", "")).lower().strip(".,!?;:\"'()")


def _token_digits(text: str) -> str | None:
    """The digits a single word stands for ("4567", "5", "twenty" → "2?"), or None."""
    if _DIGITS.match(text):
        return re.sub(r"\D", "", text)
    if ordinal := _ORDINAL.match(text):
        return ordinal.group(1)
    if text in _ORDINALS:
        return _ORDINALS[text]
    if text in _ONES:
        return _ONES[text]
    if text in _TENS:
        return _TENS[text] + "0"
    return None


def _run_digits(texts: Sequence[str]) -> str:
    """A run's digits: "twenty five" → "25", "four five" → "45", "one hundred" → "100"."""
    digits = ""
    for index, text in enumerate(texts):
        if text in _SCALES:
            digits += _SCALES[text]
        elif (
            text in _TENS
            and index + 1 < len(texts)
            and texts[index + 1] in _ONES
            and len(_ONES[texts[index + 1]]) == 1
        ):
            digits += _TENS[text]
        elif text in _ONES and index > 0 and texts[index - 1] in _TENS and len(_ONES[text]) == 1:
            digits += _ONES[text]
        else:
            digits += _token_digits(text) or ""
    return digits


def _runs(words: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, str]]:
    """(first, last + 1, digits) of each run of number words."""
    runs, start = [], None
    for index in range(len(words) + 1):
        text = _bare(words[index]) if index < len(words) else ""
        is_number = bool(text) and (
            _token_digits(text) is not None or (start is not None and text in _SCALES)
        )
        if is_number and start is None:
            start = index
        elif not is_number and start is not None:
            texts = [_bare(w) for w in words[start:index]]
            runs.append((start, index, _run_digits(texts)))
            start = None
    return runs


def _kind(words: Sequence[Mapping[str, Any]], first: int, digits: str, kinds: set[str]) -> str | None:
    raw = " ".join(str(w.get("punctuated_word", w.get("word", ""))) for w in words[first : first + 3])
    context = " ".join(_bare(w) for w in words[max(0, first - 6) : first])
    if "ssn" in kinds and (len(digits) == 9 or re.search(r"\b\d{3}-\d{2}-\d{4}\b", raw)):
        return "SSN"
    if "pci" in kinds:
        if 13 <= len(digits) <= 19:
            return "CREDIT_CARD"
        if any(cue in context for cue in _PCI_CUES) and 3 <= len(digits) <= 4:
            return "CREDIT_CARD_CVV" if "cv" in context or "security" in context else "CREDIT_CARD_EXPIRATION"
    if kinds & set(NUMBER_KINDS):
        return "NUMBER"
    return None


class Redactor:
    """Redacts word lists; one per result, so a value keeps its token number across channels."""

    def __init__(self, kinds: Sequence[str]) -> None:
        self.kinds = {k.lower() for k in kinds}
        self.tokens: dict[tuple[str, str], str] = {}

    def _token(self, kind: str, digits: str) -> str:
        key = (kind, digits)
        if key not in self.tokens:
            count = sum(1 for k, _ in self.tokens if k == kind) + 1
            self.tokens[key] = f"[{kind}_{count}]"
        return self.tokens[key]

    def words(self, words: Sequence[Word]) -> list[Word]:
        if not self.kinds:
            return list(words)
        out: list[Word] = []
        cursor = 0
        for first, end, digits in _runs(words):
            kind = _kind(words, first, digits, self.kinds)
            if kind is None:
                continue
            out.extend(words[cursor:first])
            run = words[first:end]
            token = self._token(kind, digits)
            trail_match = re.search(r"[.,!?;:]*$", str(run[-1].get("punctuated_word", "")))
            assert trail_match is not None  # the pattern matches every string (maybe empty)
            trail = trail_match.group()
            merged = {k: v for k, v in run[0].items()}
            merged.update(
                word=token,
                punctuated_word=token + trail,
                end=run[-1]["end"],
                confidence=min(float(w.get("confidence", 0.0)) for w in run),
            )
            out.append(merged)
            cursor = end
        out.extend(words[cursor:])
        return out
