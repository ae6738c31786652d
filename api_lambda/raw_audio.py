"""Headerless audio on `/v1/listen`: Deepgram's `encoding`, `sample_rate` and `channels`.

Raw samples (`linear16`, `linear32`, `mulaw`, `alaw`) get a WAV header at the API, so the worker's
decoder reads them like any upload (the API stays free of PyAV). Headerless AMR gets its storage
magic (`#!AMR`). Containerised encodings (`flac`, `ogg-opus`, Opus or Speex in Ogg) and any body
that already has a container pass through: Deepgram ignores `encoding` for those too. What can't
be framed without a decoder (`g729`, bare Opus or Speex packets) is a clear 400.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from api_lambda.sniff import is_media
from shared.errors import InvalidParameter

# encoding → (WAV format tag, bits per sample)
_WAV = {"linear16": (1, 16), "linear32": (1, 32), "mulaw": (7, 8), "alaw": (6, 8)}
_AMR_MAGIC = {"amr-nb": b"#!AMR\n", "amr-wb": b"#!AMR-WB\n"}
_CONTAINERISED = {"flac": b"fLaC", "ogg-opus": b"OggS", "opus": b"OggS", "speex": b"OggS"}
_UNFRAMEABLE = {"g729"}
ENCODINGS = (*_WAV, *_AMR_MAGIC, *_CONTAINERISED, *_UNFRAMEABLE)
_UNKNOWN_SIZE = 0xFFFF_FFFF  # a streaming writer's placeholder: read to the end


@dataclass(frozen=True)
class RawAudio:
    encoding: str
    sample_rate: int | None
    channels: int


def _integer(name: str, value: str | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidParameter(
            f"Invalid value for '{name}': {value!r}; use a whole number from {low} to {high}"
        )
    return int(value)


def parse_raw_audio(encoding: str | None, sample_rate: str | None, channels: str | None) -> RawAudio | None:
    rate = _integer("sample_rate", sample_rate, 1000, 384_000)
    count = _integer("channels", channels, 1, 16) or 1
    if not encoding:
        return None
    name = encoding.strip().lower()
    if name not in ENCODINGS:
        raise InvalidParameter(f"Unsupported encoding {encoding!r}; use one of: {', '.join(ENCODINGS)}")
    if name in _WAV and rate is None:
        raise InvalidParameter(f"encoding={name} needs sample_rate (and channels, default 1) for raw audio")
    return RawAudio(name, rate, count)


def _wav_header(raw: RawAudio, data_size: int | None) -> bytes:
    tag, bits = _WAV[raw.encoding]
    assert raw.sample_rate is not None
    block = raw.channels * bits // 8
    size = data_size if data_size is not None and data_size < _UNKNOWN_SIZE - 36 else _UNKNOWN_SIZE
    riff = size + 36 if size != _UNKNOWN_SIZE else _UNKNOWN_SIZE
    fmt = struct.pack("<HHIIHH", tag, raw.channels, raw.sample_rate, raw.sample_rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", size)
    )


def framing(raw: RawAudio, head: bytes, body_size: int | None) -> bytes:
    """What to put before the body so a decoder can read it (b"" when it already can)."""
    if not head or is_media(head):
        return b""
    if raw.encoding in _WAV:
        return _wav_header(raw, body_size)
    if raw.encoding in _AMR_MAGIC:
        return _AMR_MAGIC[raw.encoding]
    if raw.encoding in _CONTAINERISED:
        raise InvalidParameter(
            f"encoding={raw.encoding}: the body has no {raw.encoding} container; bare packets can't be "
            "decoded here: send the audio in its file format (FLAC, or Ogg for Opus/Speex)"
        )
    raise InvalidParameter(
        f"encoding={raw.encoding} is not decodable on this deployment; send WAV, FLAC or Ogg"
    )
