"""Deepgram's feature parameters beyond transcription: what this deployment does with each.

Nothing is ignored in silence. A feature it implements is parsed here into `ListenOptions`
fields (redaction by rule, profanity, find-and-replace, search, extra, filler words, dictation,
measurements). One that needs a model it doesn't ship (summaries, topics, intents, sentiment,
entities) gets a `metadata.warnings` entry, Deepgram's way of saying a parameter had no effect.
A redaction it can't do is a 400: answering unredacted text to a request for redaction could
leak what the caller meant to hide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import InvalidParameter
from shared.jobs import ListenWarning
from shared.redaction import RULE_KINDS

UNSUPPORTED = "unsupported_feature"
PARTIAL = "partial_support"
DEPRECATED = "deprecated"
# Audio intelligence: needs language models this deployment doesn't run.
_INTELLIGENCE = {
    "summarize": "summaries",
    "topics": "topic detection",
    "custom_topic": "topic detection",
    "intents": "intent recognition",
    "custom_intent": "intent recognition",
    "sentiment": "sentiment analysis",
    "detect_entities": "entity detection",
}
_OFF = ("false", "0", "")


def warning(parameter: str, kind: str, message: str) -> ListenWarning:
    return ListenWarning(parameter=parameter, type=kind, message=message)


def _pairs(values: list[str], name: str, *, allow_empty_value: bool) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, colon, replacement = value.partition(":")
        if not colon or not key.strip() or (not allow_empty_value and not replacement.strip()):
            raise InvalidParameter(f"Invalid value for '{name}': {value!r}; use {name}=key:value")
        pairs.append((key.strip(), replacement.strip()))
    return tuple(pairs)


def _redact(values: list[str]) -> tuple[str, ...]:
    kinds = [k.strip().lower() for v in values for k in v.split(",") if k.strip()]
    kinds = [k for k in kinds if k not in _OFF]
    refused = [k for k in kinds if k not in RULE_KINDS]
    if refused:
        raise InvalidParameter(
            f"redact={','.join(refused)} needs a named-entity model that this deployment doesn't run, "
            f"and an unredacted answer could leak what you meant to hide; use redact={', '.join(RULE_KINDS)}"
        )
    return tuple(dict.fromkeys(kinds))


def parse_features(
    all_: Callable[[str], list[str]], one: Callable[[str], str | None], flag: Callable[..., bool]
) -> tuple[dict[str, Any], list[ListenWarning]]:
    """`ListenOptions` fields and warnings from the query (`all_`, `one`, `flag` read it)."""
    warnings: list[ListenWarning] = []
    for name, what in _INTELLIGENCE.items():
        values = [v.lower() for v in all_(name)]
        if any(v not in _OFF for v in values):
            warnings.append(
                warning(name, UNSUPPORTED, f"{what} is not available on this deployment; no {name} result")
            )
    if all_("language_hint"):
        warnings.append(
            warning("language_hint", UNSUPPORTED, "language hints are not used: Whisper detects the language")
        )
    version = one("version")
    if version and version.lower() != "latest":
        warnings.append(
            warning("version", UNSUPPORTED, f"only 'latest' is served; version {version!r} was not")
        )
    if one("tier"):
        warnings.append(warning("tier", DEPRECATED, "tier is deprecated and has no effect; choose a model"))
    alternatives = one("alternatives")
    if alternatives and alternatives not in ("1", "0"):
        warnings.append(warning("alternatives", UNSUPPORTED, "one alternative is returned per channel"))
    filler_words = flag("filler_words")
    if filler_words:
        warnings.append(
            warning(
                "filler_words",
                PARTIAL,
                "Whisper leaves out most filler words; those it writes (uh, um...) are kept",
            )
        )
    fields = {
        "filler_words": filler_words,
        "dictation": flag("dictation"),
        "measurements": flag("measurements"),
        "profanity_filter": flag("profanity_filter"),
        "redact": _redact(all_("redact")),
        "replace": _pairs(all_("replace"), "replace", allow_empty_value=True),
        "search": tuple(dict.fromkeys(q.strip() for q in all_("search") if q.strip())),
        "extra": _pairs(all_("extra"), "extra", allow_empty_value=False),
    }
    return fields, warnings
