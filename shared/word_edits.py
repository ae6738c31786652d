"""Word-list edits for Deepgram's formatting parameters: each takes and returns a list of word
dicts (`word`, `punctuated_word`, `start`, `end`, ...), keeping timings.

- `dictation`: spoken punctuation commands ("comma", "question mark", "new line") become symbols.
- `drop_fillers`: Deepgram's default `filler_words=false` leaves out "uh", "um" and the like.
- `replace`: `find:replacement` pairs, case-insensitive, on whole words or phrases.
- `censor`: `profanity_filter=true`, with better-profanity's maintained word list.
- `spell_numbers`: digits as words (Deepgram's default without `numerals`/`smart_format`).
- `abbreviate_units`: `measurements=true`: "5 kilograms" → "5 kg".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from shared.numbers_format import spoken

Word = dict[str, Any]

FILLERS = frozenset({"uh", "um", "uhm", "umm", "uh-huh", "mhm", "mm-hmm", "hmm", "er", "erm", "ah"})
_COMMANDS: dict[tuple[str, ...], str] = {
    ("comma",): ",",
    ("period",): ".",
    ("full", "stop"): ".",
    ("question", "mark"): "?",
    ("exclamation", "mark"): "!",
    ("exclamation", "point"): "!",
    ("colon",): ":",
    ("semicolon",): ";",
    ("semi", "colon"): ";",
    ("new", "line"): "\n",
    ("new", "paragraph"): "\n\n",
}
_UNITS = {
    "kilograms": "kg", "kilogram": "kg", "grams": "g", "gram": "g", "milligrams": "mg", "milligram": "mg",
    "kilometers": "km", "kilometer": "km", "kilometres": "km", "meters": "m", "meter": "m", "metres": "m",
    "centimeters": "cm", "centimeter": "cm", "millimeters": "mm", "millimeter": "mm", "miles": "mi",
    "feet": "ft", "foot": "ft", "inches": "in", "inch": "in", "liters": "L", "liter": "L", "litres": "L",
    "milliliters": "mL", "milliliter": "mL", "pounds": "lb", "ounces": "oz", "ounce": "oz",
    "mph": "mph", "celsius": "°C", "fahrenheit": "°F",
}  # fmt: skip
_TRAIL = re.compile(r"[.,!?;:\"')\]]*$")


def bare(word: Word) -> str:
    return str(word.get("word", "")).lower().strip(".,!?;:\"'()")


def _text(word: Word) -> str:
    return str(word.get("punctuated_word", word.get("word", "")))


def _trail(word: Word) -> str:
    """The punctuation the word ends with ("" for none: the pattern matches every string)."""
    match = _TRAIL.search(_text(word))
    assert match is not None
    return match.group()


def _with_text(word: Word, text: str) -> Word:
    return {**word, "punctuated_word": text, "word": text.lower().strip(".,!?;:\"'()[]") or text}


def _rewrite(
    words: Sequence[Word],
    rules: Iterable[tuple[tuple[str, ...], str]],
    apply: Callable[[list[Word], Sequence[Word], str], bool],
) -> list[Word]:
    """Walk `words`; where a rule's phrase starts, `apply(out, span, value)` puts what stands for
    the span into `out` (False: this rule doesn't apply here). The first rule that applies wins."""
    out: list[Word] = []
    index = 0
    while index < len(words):
        for phrase, value in rules:
            span = words[index : index + len(phrase)]
            if tuple(bare(w) for w in span) == phrase and apply(out, span, value):
                index += len(phrase)
                break
        else:
            out.append(words[index])
            index += 1
    return out


def _attach_symbol(out: list[Word], span: Sequence[Word], symbol: str) -> bool:
    if not out:  # nothing before the command to punctuate
        return False
    out[-1] = {**out[-1], "punctuated_word": _text(out[-1]).rstrip(".,!?;:") + symbol}
    return True


def dictation(words: Sequence[Word]) -> list[Word]:
    return _rewrite(words, _COMMANDS.items(), _attach_symbol)


def drop_fillers(words: Sequence[Word]) -> list[Word]:
    return [w for w in words if bare(w) not in FILLERS]


def _substitute(out: list[Word], span: Sequence[Word], replacement: str) -> bool:
    if replacement:  # `find:` with nothing after the colon removes the words
        out.append(_with_text({**span[0], "end": span[-1]["end"]}, replacement + _trail(span[-1])))
    return True


def replace(words: Sequence[Word], pairs: Sequence[tuple[str, str]]) -> list[Word]:
    """Longest phrases first; the replacement keeps the last matched word's trailing punctuation;
    an empty replacement removes the words."""
    rules = sorted(((tuple(f.lower().split()), r) for f, r in pairs if f.split()), key=lambda p: -len(p[0]))
    return _rewrite(words, rules, _substitute)


@lru_cache(maxsize=1)
def _profanity() -> Any:
    from better_profanity import profanity

    profanity.load_censor_words()
    return profanity


def censor(words: Sequence[Word]) -> list[Word]:
    """A profane word keeps its first letter: "fuck," → "f***,"."""
    filter_ = _profanity()
    out = []
    for word in words:
        text = bare(word)
        if text and filter_.contains_profanity(text):
            masked = text[0] + "*" * (len(text) - 1)
            trail = _trail(word)
            word = {**word, "word": masked, "punctuated_word": masked + trail}
        out.append(word)
    return out


def spell_numbers(words: Sequence[Word]) -> list[Word]:
    """A number token becomes its spoken words, sharing its time span evenly."""
    out: list[Word] = []
    for word in words:
        parts = spoken(_text(word))
        if not parts:
            out.append(word)
            continue
        start, end = float(word["start"]), float(word["end"])
        step = (end - start) / len(parts)
        for number, part in enumerate(parts):
            piece = _with_text(word, part)
            piece.update(start=round(start + number * step, 3), end=round(start + (number + 1) * step, 3))
            out.append(piece)
    return out


def abbreviate_units(words: Sequence[Word]) -> list[Word]:
    out: list[Word] = []
    for word in words:
        unit = _UNITS.get(bare(word))
        if unit and out and re.search(r"\d[.,]?$", _text(out[-1]).rstrip(".,")):
            word = {
                **word,
                "punctuated_word": unit + _trail(word),
                "word": unit.lower(),
            }
        out.append(word)
    return out
