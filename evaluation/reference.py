"""The reference a corpus item is scored against: who said what, and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TurnKind = Literal["utterance", "monologue", "backchannel"]


@dataclass(frozen=True)
class Turn:
    """What one speaker says in one go (seconds); `text` is "" for a back-channel (its words are
    unknown). `utterances` names the LibriSpeech utterances a conversation's turn is made of; a
    synthesized (espeak) turn has none."""

    start: float
    end: float
    speaker: str
    text: str
    kind: TurnKind = "utterance"
    utterances: tuple[str, ...] = ()
