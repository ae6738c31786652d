"""Refuse obviously-not-audio uploads from their first bytes, without decoding anything.

The API stays light (no PyAV, no ffmpeg): it only rejects what is clearly something else
(documents, images, archives, text). Anything that might be media goes to the worker, whose
decoder gives the definitive answer (the job then fails with its message).
"""

from __future__ import annotations

from shared.errors import EmptyFile, NotAudio

SNIFF_BYTES = 4096

# Containers and codecs ffmpeg reads (audio, or video with a sound track).
_MEDIA_PREFIXES: tuple[bytes, ...] = (
    b"ID3",  # MP3 with an ID3v2 tag
    b"fLaC",
    b"OggS",  # Ogg Vorbis / Opus / FLAC
    b"\x1a\x45\xdf\xa3",  # EBML: WebM, Matroska
    b"FORM",  # AIFF
    b"#!AMR",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF: WMA, WMV
    b"caff",  # Core Audio
    b".snd",  # Sun/NeXT au
    b"MAC ",  # Monkey's Audio
    b"wvpk",  # WavPack
    b"TTA1",
    b"MPCK",  # Musepack
    b"FLV",
    b"RF64",
    b"DSD ",
    b"FRM8",
    b"\x00\x00\x01\xba",  # MPEG program stream
)
_RIFF_MEDIA = (b"WAVE", b"AVI ", b"RMID")

_NOT_MEDIA: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive or office document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
    (b"\xd0\xcf\x11\xe0", "an office document"),
    (b"SQLite format 3", "a database file"),
)


def _is_media(head: bytes) -> bool:
    if head.startswith(_MEDIA_PREFIXES):
        return True
    if head[:4] == b"RIFF" and head[8:12] in _RIFF_MEDIA:
        return True
    if head[4:8] == b"ftyp":  # MP4, M4A, MOV, 3GP
        return True
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio / ADTS AAC frame
        return True
    return len(head) > 188 and head[0] == 0x47 and head[188] == 0x47  # MPEG transport stream


def is_media(head: bytes) -> bool:
    """Whether the first bytes name a media container or codec ffmpeg reads."""
    return _is_media(head)


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:  # a character cut at the end of the sample is fine
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def not_media_kind(head: bytes) -> str | None:
    """What the file clearly is instead of audio, or None when it may be media."""
    if _is_media(head):
        return None
    for prefix, kind in _NOT_MEDIA:
        if head.startswith(prefix):
            return kind
    if head[:4] == b"RIFF":
        return f"a RIFF {head[8:12].decode('latin-1').strip()!r} file"
    return "text" if _looks_like_text(head) else None


def check_upload_head(head: bytes, filename: str) -> None:
    """Raise for an empty upload or one that is clearly not audio or video."""
    if not head:
        raise EmptyFile(f"Uploaded file '{filename}' is empty")
    kind = not_media_kind(head)
    if kind is not None:
        raise NotAudio(
            f"Uploaded file '{filename}' is not audio or video (it looks like {kind}); "
            "send a recording such as wav, mp3, m4a, webm, ogg or flac"
        )
