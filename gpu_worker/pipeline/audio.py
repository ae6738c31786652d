"""Audio in: any file ffmpeg can demux → 16 kHz mono float32 samples, its sha256 and duration.

Every way an upload can be unusable ends in one typed `InvalidAudio` error whose message names the file:

- `EmptyFile`: zero bytes.
- `NotAudio`: no demuxer recognises the bytes, or one does but the file is a still image (PNG, JPEG…),
  a text file ffmpeg reads as ANSI art, or subtitles only. An image is `NotAudio`, not `NoAudioStream`:
  it is not a recording that happens to lack sound, so "this is not audio" is the useful answer.
- `NoAudioStream`: a real media container (a video, say) without an audio track.
- `TruncatedAudio`: the file was cut short, where that is detectable without guessing: a WAV whose
  data chunk declares more bytes than the file holds; a file whose magic bytes name a container
  (MP4/M4A, Ogg, FLAC, WAV, Matroska, ID3-tagged MP3) that ffmpeg then can't open (e.g. an M4A cut
  before its `moov` index); a file that hits end-of-file while ffmpeg reads its headers, or whose
  demuxer fails mid-stream; a file whose header declares its length (WAV, FLAC STREAMINFO, MP4
  `moov`, MP3 Xing/Info/VBRI tag) decoding to clearly less than that (by 0.5 s or 1%). Formats without
  a length header (ADTS AAC, headerless MP3, WebM from MediaRecorder) that were cut simply yield the
  audio that is there.
- `ZeroLengthAudio`: a valid audio stream with no samples.
- `AudioTooLong`: over the limit, by declared duration before decoding, or while decoding (it stops).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from gpu_worker.pipeline.types import SAMPLE_RATE, DecodedAudio
from shared.errors import (
    AudioTooLong,
    EmptyFile,
    InvalidAudio,
    NoAudioStream,
    NotAudio,
    TruncatedAudio,
    ZeroLengthAudio,
)

__all__ = ["AudioProbe", "file_sha256", "load_audio", "probe_audio"]

_HASH_BLOCK = 1 << 20
_UNKNOWN_LENGTH_CAPACITY = 60 * SAMPLE_RATE
_MAX_PREALLOCATION = 1 << 28  # samples (1 GiB, ~4.7 h): a lying header can't reserve more up front.

# Magic bytes of containers whose failure to open means "damaged", not "not audio".
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "a RIFF/WAV"),
    (0, b"ID3", "an MP3"),
    (4, b"ftyp", "an MP4/M4A"),
    (0, b"OggS", "an Ogg"),
    (0, b"fLaC", "a FLAC"),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM"),
    (0, b"FORM", "an AIFF"),
)
# swresample leaves float downmixes unnormalised (stereo → 0.707 L + 0.707 R, up to 1.41x full scale);
# capping the matrix at 1 gives (L + R) / 2 and keeps samples in [-1, 1] for int16 consumers (webrtcvad).
_DOWNMIX_OPTIONS = {"rematrix_maxval": "1.0"}
# Demuxers that read something other than a recording: still images, ANSI-art text, subtitle files.
_NON_MEDIA_DEMUXERS = frozenset({"image2", "image2pipe", "tty", "srt", "webvtt", "ass", "subviewer"})


@dataclass(frozen=True)
class AudioProbe:
    """What the container says about its audio, read without decoding the samples."""

    container: str  # demuxer name, e.g. "wav", "mp3", "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str
    channels: int
    sample_rate: int
    duration: float | None
    """Seconds per the container; None when it doesn't say. May be ffmpeg's estimate (see below)."""
    duration_declared: bool
    """True when `duration` comes from a length field in the header (WAV, FLAC, MP4, MP3 with a
    Xing/VBRI tag): then decoding less than it means the file was cut. False for estimates from the
    bitrate or last timestamp, which can be far off for VBR files."""
    size_bytes: int

    def check_max_duration(self, max_seconds: float | None, name: str) -> None:
        """Reject early from metadata. Estimates count only when over twice the limit, so a VBR file
        with a bad estimate isn't refused by mistake; `load_audio` still stops at the limit."""
        if max_seconds is None or self.duration is None:
            return
        limit = max_seconds if self.duration_declared else 2 * max_seconds
        if self.duration > limit:
            raise AudioTooLong(
                f"'{name}' is {'' if self.duration_declared else 'about '}{self.duration:.1f} s long, "
                f"over the {max_seconds:g} s limit"
            )


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of the file's bytes, read in 1 MiB blocks so memory stays flat for any size."""
    digest = hashlib.sha256()
    block = bytearray(_HASH_BLOCK)
    view = memoryview(block)
    with open(path, "rb") as f:
        while n := f.readinto(block):
            digest.update(view[:n])
    return digest.hexdigest()


def probe_audio(path: str | Path) -> AudioProbe:
    """Open the file and read its audio stream's parameters; cheap (ffmpeg reads a few packets).

    Raises the header-level errors: EmptyFile, NotAudio, NoAudioStream, and TruncatedAudio /
    ZeroLengthAudio where the header alone shows it (WAV data size, an unopenable container).
    """
    container, probe = _open(Path(path))
    container.close()
    return probe


def load_audio(path: str | Path, *, max_duration_seconds: float | None = None) -> DecodedAudio:
    """Decode the best audio stream to 16 kHz mono float32. Downmixing is swresample's matrix scaled so
    no output can exceed full scale: stereo becomes (L + R) / 2, a one-sided recording half its level.

    Peak memory is one float32 array of the result (64 KB per second of audio; 0.9 GiB for 4 h) plus
    one decoded and one resampled frame: frames are resampled as they are decoded and written straight
    into a buffer sized from the declared duration. Without one the buffer grows 1.5x at a time
    through `realloc`, which for large blocks on Linux remaps pages instead of copying; an allocator
    that must copy briefly holds old and new buffers (up to 2.5x the result).
    """
    path = Path(path)
    name = path.name
    container, probe = _open(path)
    with container:
        probe.check_max_duration(max_duration_seconds, name)
        max_samples = None if max_duration_seconds is None else math.ceil(max_duration_seconds * SAMPLE_RATE)
        samples = _decode(container, probe, name, max_samples)

    decoded_seconds = len(samples) / SAMPLE_RATE
    if (
        probe.duration_declared
        and probe.duration
        and decoded_seconds < probe.duration - _tolerance(probe.duration)
    ):
        raise TruncatedAudio(
            f"'{name}' is truncated: its header declares {probe.duration:.2f} s of audio "
            f"but only {decoded_seconds:.2f} s could be decoded"
        )
    if len(samples) == 0:
        raise ZeroLengthAudio(f"'{name}' has an audio stream ({probe.codec}) but no samples")
    return DecodedAudio(
        samples=samples,
        duration=decoded_seconds,
        sha256=file_sha256(path),
        source_channels=probe.channels,
        source_path=path,
    )


def _tolerance(declared_seconds: float) -> float:
    """How much shorter than declared a decode may be before it counts as cut (codec padding etc.)."""
    return max(0.5, 0.01 * declared_seconds)


def _open(path: Path) -> tuple[av.container.InputContainer, AudioProbe]:
    name = path.name
    size = path.stat().st_size  # a missing file is the caller's bug: FileNotFoundError, not InvalidAudio
    if size == 0:
        raise EmptyFile(f"'{name}' is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(64)
    kind = next((k for off, magic, k in _MAGIC if head[off : off + len(magic)] == magic), None)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        _check_wav_data_chunk(path, size)

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except OSError:
        raise
    except EOFError as e:
        raise TruncatedAudio(
            f"'{name}' ends before its first audio packet: the file is truncated, or holds no audio"
        ) from e
    except av.FFmpegError as e:
        if kind is not None:
            raise TruncatedAudio(
                f"'{name}' has {kind} header but can't be opened: the file is truncated or corrupt"
            ) from e
        raise NotAudio(f"'{name}' is not an audio or video file ffmpeg recognises") from e

    try:
        probe = _describe(container, path, size)
    except BaseException:
        container.close()
        raise
    return container, probe


def _describe(container: av.container.InputContainer, path: Path, size: int) -> AudioProbe:
    name = path.name
    fmt = container.format.name
    if not container.streams.audio:
        if fmt in _NON_MEDIA_DEMUXERS or fmt.endswith("_pipe"):
            is_image = fmt.endswith("_pipe") or fmt.startswith("image2")
            what = "a text file" if fmt == "tty" else "an image" if is_image else "subtitles"
            raise NotAudio(f"'{name}' is {what} ({fmt}), not audio")
        kinds = "/".join(sorted({s.type for s in container.streams}))
        has = f"{kinds} streams but no audio stream" if kinds else "no streams at all, so no audio stream"
        raise NoAudioStream(f"'{name}' is a {container.format.long_name} file with {has}")

    stream = _audio_stream(container)
    ctx = stream.codec_context
    duration: float | None = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    return AudioProbe(
        container=fmt,
        codec=ctx.name,
        channels=ctx.channels,
        sample_rate=ctx.sample_rate,
        duration=duration,
        duration_declared=duration is not None and _length_in_header(fmt, path),
        size_bytes=size,
    )


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    """ffmpeg's pick of the main audio stream (default disposition, most channels), else the first."""
    try:
        best = container.streams.best("audio")  # an audio stream or None (typed Stream | None)
        return best if isinstance(best, av.AudioStream) else container.streams.audio[0]
    except (AttributeError, ValueError):
        return container.streams.audio[0]


def _length_in_header(fmt: str, path: Path) -> bool:
    """Whether ffmpeg's duration for this format comes from a length field rather than an estimate.

    ffmpeg sets FLAC's stream duration only from STREAMINFO and MP4's from `moov`; for MP3 only a
    Xing/Info/VBRI tag gives the frame count, otherwise the duration is size / first-frame bitrate.
    """
    if fmt in ("wav", "flac") or "mp4" in fmt:
        return True
    return fmt == "mp3" and _mp3_has_length_tag(path)


def _mp3_has_length_tag(path: Path) -> bool:
    with open(path, "rb") as f:
        header = f.read(10)
        offset = 0
        if header[:3] == b"ID3" and len(header) == 10:
            tag_size = (header[6] & 0x7F) << 21 | (header[7] & 0x7F) << 14 | (header[8] & 0x7F) << 7
            tag_size |= header[9] & 0x7F
            offset = 10 + tag_size + (10 if header[5] & 0x10 else 0)
        f.seek(offset)
        data = f.read(8192)
    sync = re.search(rb"\xff[\xe0-\xff]", data)  # the first MPEG audio frame
    if sync is None:
        return False
    frame_start = data[sync.start() : sync.start() + 48]  # the tag follows the side info: byte 13, 21 or 36
    return any(tag in frame_start for tag in (b"Xing", b"Info", b"VBRI"))


def _check_wav_data_chunk(path: Path, size: int) -> None:
    """Compare the RIFF `data` chunk's declared size with the bytes present.

    ffmpeg silently clamps a too-large data size to the file, so a WAV cut in half would decode as a
    shorter valid file. Sizes of 0 or >= 2 GiB are placeholders streaming writers leave; ignored.
    """
    name = path.name
    byte_rate = 0
    with open(path, "rb") as f:
        f.seek(12)
        for _ in range(64):  # chunk headers before `data`: fmt, fact, LIST, bext, JUNK...
            header = f.read(8)
            if len(header) < 8:
                return
            chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"fmt " and chunk_size >= 16:
                byte_rate = struct.unpack("<I", f.read(16)[8:12])[0]
                f.seek(chunk_size - 16 + (chunk_size & 1), 1)
            elif chunk_id == b"data":
                present = size - f.tell()
                if present == 0 and chunk_size == 0:
                    raise ZeroLengthAudio(f"'{name}' is a WAV file with no samples in its data chunk")
                if 0 < chunk_size < 0x8000_0000 and byte_rate and chunk_size > present:
                    declared_s, present_s = chunk_size / byte_rate, present / byte_rate
                    if present_s < declared_s - _tolerance(declared_s):
                        raise TruncatedAudio(
                            f"'{name}' is truncated: its WAV header declares {declared_s:.2f} s of audio "
                            f"but the file holds only {present_s:.2f} s"
                        )
                return
            else:
                f.seek(chunk_size + (chunk_size & 1), 1)


class _SampleBuffer:
    """A float32 array filled front to back and resized in place, so the samples exist only once."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(capacity, 1), dtype=np.float32)
        self.size = 0

    def append(self, chunk: np.ndarray) -> None:
        end = self.size + len(chunk)
        if end > len(self._data):
            self._data.resize(max(end, len(self._data) * 3 // 2), refcheck=False)
        self._data[self.size : end] = chunk
        self.size = end

    def finish(self) -> np.ndarray:
        self._data.resize(self.size, refcheck=False)
        return self._data


def _decode(
    container: av.container.InputContainer, probe: AudioProbe, name: str, max_samples: int | None
) -> np.ndarray:
    """Demux → decode → resample frame by frame into one buffer; stop as soon as `max_samples` passes.

    A packet the decoder rejects is skipped, as the ffmpeg CLI does (one damaged frame shouldn't lose
    a recording); a file cut mid-packet is caught afterwards by the declared-duration check.
    """
    stream = _audio_stream(container)
    if probe.duration:
        capacity = math.ceil(probe.duration * SAMPLE_RATE * 1.01) + SAMPLE_RATE
    else:
        capacity = _UNKNOWN_LENGTH_CAPACITY
    capacity = min(capacity, _MAX_PREALLOCATION if max_samples is None else max_samples + SAMPLE_RATE)
    buffer = _SampleBuffer(capacity)
    resampler: av.AudioResampler | None = None
    source_format: tuple[str, str, int] | None = None
    decode_errors = 0

    def write(frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            buffer.append(frame.to_ndarray().reshape(-1))
        if max_samples is not None and buffer.size > max_samples:
            raise AudioTooLong(
                f"'{name}' is longer than the {max_samples / SAMPLE_RATE:g} s limit (decoding stopped there)"
            )

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as e:
            raise TruncatedAudio(f"'{name}' is truncated or corrupt: reading it failed mid-stream") from e
        try:
            frames = packet.decode()
        except av.FFmpegError:
            decode_errors += 1
            continue
        for frame in frames:
            # A stream may change rate or layout mid-way; the resampler is fixed to its first frame.
            frame_format = (frame.format.name, frame.layout.name, frame.sample_rate)
            if resampler is None or frame_format != source_format:
                if resampler is not None:
                    write(resampler.resample(None))
                resampler = av.AudioResampler(
                    format="flt", layout="mono", rate=SAMPLE_RATE, options=_DOWNMIX_OPTIONS
                )
                source_format = frame_format
            write(resampler.resample(frame))
    if resampler is not None:
        write(resampler.resample(None))

    if buffer.size == 0 and decode_errors:
        raise InvalidAudio(
            f"'{name}' has an audio stream ({probe.codec}) but none of its packets could be decoded"
        )
    return buffer.finish()
