"""Deepgram model names and the Whisper models this deployment serves them with.

Deepgram's families (`nova-3`, `nova-2-meeting`, ...) run `DEFAULT_WHISPER_MODEL`; Deepgram's
hosted Whisper sizes (`whisper-base`, ...) map to a fixed Whisper model. `metadata.model_info`
says which, so a client can always tell what served its request.
"""

from __future__ import annotations

# Deepgram model families: served by DEFAULT_WHISPER_MODEL. (`base` is Deepgram's tier: Whisper's
# base model is `whisper-base` on /v1/listen.)
DEEPGRAM_FAMILIES = ("nova-3", "nova-2", "nova", "enhanced", "base", "general", "whisper")
# Deepgram's hosted Whisper sizes → this service's Whisper names.
DEEPGRAM_WHISPER = {
    "whisper-tiny": "tiny",
    "whisper-base": "base",
    "whisper-small": "small",
    "whisper-medium": "medium",
    "whisper-large": "large-v3",
}


def is_family(name: str) -> bool:
    """A Deepgram family or one of its variants (`nova-2-meeting`); `whisper-*` are sizes, not variants."""
    lowered = name.lower()
    return any(
        lowered == family or (family != "whisper" and lowered.startswith(f"{family}-"))
        for family in DEEPGRAM_FAMILIES
    )


def explicit_whisper(name: str) -> str | None:
    """The Whisper model a Deepgram Whisper name stands for; None for any other name."""
    return DEEPGRAM_WHISPER.get(name.lower())


def accepted_names() -> str:
    """What `model=` takes on /v1/listen, for error messages."""
    families = ", ".join(DEEPGRAM_FAMILIES)
    return (
        f"{families} (and their variants such as nova-2-meeting or nova-3-medical: "
        f"this deployment's default model), {', '.join(DEEPGRAM_WHISPER)}"
    )


def model_note(requested: str, served: str) -> str:
    """`model_info.note`: how a Deepgram name was served."""
    if explicit_whisper(requested):
        return f"'{requested}' is served by Whisper {served}"
    return f"'{requested}' is served by Whisper {served}, this deployment's default"
