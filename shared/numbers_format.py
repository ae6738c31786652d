"""Numbers as Deepgram writes them without `numerals`/`smart_format`: spoken words.

Whisper writes digits ("$25", "3rd", "1,000", "2.5%"); Deepgram's default transcript spells them
out ("twenty five dollars", "third"). `spoken` turns one written token into its spoken words
(num2words does the arithmetic), keeping the punctuation around it; tokens that are not numbers
(or mix letters and digits, like "mp3") come back unchanged as None.
"""

from __future__ import annotations

import re

from num2words import num2words

_NUMBER = re.compile(
    r"^(?P<lead>[\"'(\[]*)(?P<currency>[$£€])?(?P<number>\d{1,3}(?:,\d{3})+|\d+)(?P<decimal>\.\d+)?"
    r"(?P<suffix>%|st|nd|rd|th|s)?(?P<trail>[.,!?;:\"')\]]*)$",
    re.IGNORECASE,
)
# "12/27", "555-1234": each group spoken on its own
_GROUPS = re.compile(r"^(?P<lead>[\"'(\[]*)(?P<groups>\d+(?:[-/]\d+)+)(?P<trail>[.,!?;:\"')\]]*)$")
_TIME = re.compile(r"^(?P<hour>\d{1,2}):(?P<minute>\d{2})(?P<trail>[.,!?;:]*)$")
_CURRENCY = {"$": ("dollar", "dollars"), "£": ("pound", "pounds"), "€": ("euro", "euros")}


def _words(text: str) -> list[str]:
    """num2words' phrase as separate words, American style (no "and", no hyphens, no commas)."""
    return [w for w in re.split(r"[\s,\-]+", text) if w and w != "and"]


def _cardinal(number: str, decimal: str | None, year_like: bool) -> list[str]:
    value = int(number.replace(",", ""))
    if decimal:  # "2.05" → "two point zero five"
        return [*_words(num2words(value)), "point", *(_words(num2words(int(d)))[0] for d in decimal[1:])]
    if year_like and "," not in number and 1100 <= value <= 2099 and value % 1000 >= 10:
        return _words(num2words(value, to="year"))
    return _words(num2words(value))


def spoken(token: str) -> list[str] | None:
    """The spoken words for a written number token, punctuation kept on the ends; else None."""
    time = _TIME.match(token)
    if time:
        hour, minute = int(time["hour"]), int(time["minute"])
        if hour <= 24 and minute < 60:
            words = _words(num2words(hour))
            if minute:
                words += (["oh"] if minute < 10 else []) + _words(num2words(minute))
            words[-1] += time["trail"]
            return words
    groups = _GROUPS.match(token)
    if groups:
        words = [w for group in re.split(r"[-/]", groups["groups"]) for w in _words(num2words(int(group)))]
        words[0] = groups["lead"] + words[0]
        words[-1] += groups["trail"]
        return words
    match = _NUMBER.match(token)
    if not match:
        return None
    suffix = (match["suffix"] or "").lower()
    number, decimal = match["number"], match["decimal"]
    if suffix in ("st", "nd", "rd", "th") and not decimal:
        words = _words(num2words(int(number.replace(",", "")), to="ordinal"))
    elif suffix == "s" and not decimal:  # "1990s" → "nineteen nineties"
        words = _cardinal(number, None, year_like=True)
        words[-1] = words[-1][:-1] + "ies" if words[-1].endswith("y") else words[-1] + "s"
    else:
        words = _cardinal(number, decimal, year_like=not match["currency"] and not suffix)
        if suffix == "%":
            words.append("percent")
    if match["currency"]:
        singular, plural = _CURRENCY[match["currency"]]
        words.append(singular if number == "1" and not decimal else plural)
    words[0] = match["lead"] + words[0]
    words[-1] += match["trail"]
    return words
