"""A user's file name is metadata, never a path.

Objects and local files are named by the service (`audio` plus a safe extension, under the job's
own folder); the name the user gave is kept only for display, with control characters removed
and its length capped, so it can't steer a path, break a header or a log line.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_NAME = "audio"
MAX_DISPLAY_CHARS = 255
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})$")
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def safe_extension(name: str | None) -> str:
    """`.wav` from `Call 1.WAV` (lowercased): letters and digits only, at most 10; else ""."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    match = _EXTENSION.search(base)
    return f".{match.group(1).lower()}" if match and match.start() > 0 else ""


def stored_name(name: str | None) -> str:
    """The name the service gives a job's audio (object key tail, local file): `audio.wav`."""
    return DEFAULT_NAME + safe_extension(name)


def display_name(name: str | None) -> str:
    """The user's name for messages and the job record: printable, one line, at most 255 chars."""
    cleaned = "".join(" " if unicodedata.category(c) in _UNPRINTABLE else c for c in name or "")
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > MAX_DISPLAY_CHARS:
        cleaned = cleaned[: MAX_DISPLAY_CHARS - 1] + "…"
    return cleaned or DEFAULT_NAME
