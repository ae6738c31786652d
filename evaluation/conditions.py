"""The named conditions of the diarization corpus: which conversations exist, and how each is built.

    from evaluation.conditions import CONDITIONS, conversations
    for condition, conversation in conversations(["clean", "white-10db"]):
        conversation.samples, conversation.annotation(), conversation.turns

Every condition is a list of `ConversationSpec`s; building is deterministic, so the corpus is the same
everywhere. Noisy, quiet and telephone conditions reuse the layout (speakers, turns, seed) of clean
conversations, so a difference in score is the condition's and not the conversation's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from evaluation.conversations import Conversation, ConversationSpec, build

__all__ = ["CONDITIONS", "LONG", "QUICK", "Condition", "by_name", "conversations"]


@dataclass(frozen=True)
class Condition:
    name: str
    group: str
    """Summary rows are per group: clean, overlap, levels, noise-20db, noise-10db, quiet, telephone, long."""
    specs: tuple[ConversationSpec, ...]
    description: str


def _clean(num_speakers: int, variant: str) -> ConversationSpec:
    seed = 1000 + 10 * num_speakers + (0 if variant == "a" else 1)
    return ConversationSpec(
        name=f"clean-{num_speakers}spk-{variant}",
        num_speakers=num_speakers,
        seed=seed,
        speech_seconds=min(20.0 + 12.0 * num_speakers, 90.0),
        level_spread_db=3.0,
    )


def _derived(base: ConversationSpec, suffix: str, **changes) -> ConversationSpec:
    return replace(base, name=f"{base.name}-{suffix}", **changes)


_CLEAN = tuple(_clean(n, v) for n in range(1, 7) for v in ("a", "b"))
_BASES = (_clean(2, "a"), _clean(3, "a"))


def _noisy(kind: str, snr: float) -> Condition:
    return Condition(
        f"{kind}-{snr:g}db",
        f"noise-{snr:g}db",
        tuple(_derived(base, f"{kind}{snr:g}", noise=kind, snr_db=snr) for base in _BASES),
        f"clean 2- and 3-speaker conversations with {kind} noise at {snr:g} dB SNR (over active speech)"
        + (", babble = 8 other LibriSpeech voices" if kind == "babble" else ""),
    )


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", "clean", _CLEAN, "1-6 speakers, two conversations each; gaps, back-channels, ±1.5 dB"),
    Condition(
        "overlap",
        "overlap",
        tuple(
            ConversationSpec(
                name=f"overlap-{n}spk",
                num_speakers=n,
                seed=2000 + n,
                speech_seconds=30.0 + 10.0 * n,
                overlap_share=0.15,
                level_spread_db=3.0,
            )
            for n in (2, 3, 4)
        ),
        "2, 3 and 4 speakers talking over each other on ~15% of the speech time",
    ),
    Condition(
        "levels",
        "levels",
        tuple(
            ConversationSpec(
                name=f"levels-{n}spk",
                num_speakers=n,
                seed=3000 + n,
                speech_seconds=45.0,
                level_spread_db=10.0,
            )
            for n in (2, 3)
        ),
        "speakers 10 dB apart (loudest to quietest)",
    ),
    _noisy("white", 20),
    _noisy("white", 10),
    _noisy("babble", 20),
    _noisy("babble", 10),
    Condition(
        "quiet",
        "quiet",
        (_derived(_clean(2, "b"), "quiet", peak_dbfs=-30.0),),
        "a clean 2-speaker conversation with its peak at -30 dBFS",
    ),
    Condition(
        "telephone",
        "telephone",
        (_derived(_clean(2, "b"), "telephone", telephone=True),),
        "300-3400 Hz, written as an 8 kHz WAV (the decoder resamples)",
    ),
)

LONG = Condition(
    "long",
    "long",
    (
        ConversationSpec(
            name="long-3spk",
            num_speakers=3,
            seed=4000,
            speech_seconds=2000.0,
            overlap_share=0.05,
            level_spread_db=4.0,
        ),
    ),
    "31 minutes, 3 speakers, turns cycled (utterances reused), 5% overlap",
)

QUICK: dict[str, tuple[str, ...]] = {
    "clean": ("clean-2spk-a", "clean-3spk-a", "clean-4spk-a"),
    "white-10db": ("clean-2spk-a-white10",),
    "quiet": ("clean-2spk-b-quiet",),
}
"""The --quick subset: condition name -> the conversations kept."""


def by_name(name: str) -> Condition:
    for condition in (*CONDITIONS, LONG):
        if condition.name == name:
            return condition
    raise KeyError(f"unknown condition {name!r}; known: {', '.join(c.name for c in (*CONDITIONS, LONG))}")


def conversations(
    names: Iterable[str] | None = None, *, include_long: bool = False, quick: bool = False
) -> Iterator[tuple[Condition, Conversation]]:
    """Build the conversations of the named conditions (all but `long` by default), one at a time."""
    if names is None:
        chosen = list(QUICK) if quick else [c.name for c in CONDITIONS]
        if include_long and not quick:
            chosen.append(LONG.name)
    else:
        chosen = list(names)
    for name in chosen:
        condition = by_name(name)
        for spec in condition.specs:
            if quick and name in QUICK and spec.name not in QUICK[name]:
                continue
            yield condition, build(spec)
