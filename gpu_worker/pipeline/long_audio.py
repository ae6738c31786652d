"""faster-whisper's sequential transcription with memory bounded for long files.

`WhisperModel.transcribe(audio, vad_filter=True)` holds several whole-file copies at once, measured
on a 2-hour file (bench/memory.py): 7.8 GiB peak before the first segment. Its Silero VAD pads the
samples and stacks them with context (2.1x the audio), its `collect_chunks` joins the speech by
repeated `np.concatenate` (2x the speech, and quadratic time), and its log-mel pads the speech again
and takes the STFT of every frame in one go (400 float32 samples per 10 ms frame, then complex128
spectra: 16x the audio). Here:

- `speech_chunks` runs the same VAD block by block (`VAD_BLOCK_S`), each block ending at its
  quietest moment near the nominal end, and joins chunks across a block edge where the VAD would
  have bridged the gap; a file no longer than one block is one call, exactly as before.
- `gather` copies the speech into one array sized up front.
- `BlockFeatureExtractor` computes the same log-mel `FEATURE_BLOCK_FRAMES` frames at a time (the
  STFT of a frame depends only on its own 400 samples) into one preallocated array, and normalises
  by the global maximum afterwards, as the original does; short inputs take the original code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .heap import release_freed_memory
from .types import SAMPLE_RATE

if TYPE_CHECKING:
    from faster_whisper.transcribe import Segment
    from faster_whisper.vad import VadOptions

VAD_BLOCK_S = 1800.0
"""Speech detection runs on at most this much audio at a time: its transient (2.1x the block plus
~160 MiB of onnxruntime buffers, ~400 MiB for 30 minutes) comes before the speech is gathered, when
the least is resident, and a file up to this long gets exactly the library's chunks."""
EDGE_SEARCH_S = 30.0
"""A block ends at the quietest `EDGE_WINDOW_S` in its last this-many seconds ..."""
EDGE_WINDOW_S = 0.5
_VAD_WINDOW = 512  # Silero's window in faster-whisper, in samples
FEATURE_BLOCK_FRAMES = 3000
"""... and the log-mel is computed 30 s (3000 frames) at a time (a ~25 MB transient)."""


def speech_chunks(samples: np.ndarray, vad: VadOptions) -> list[dict[str, int]]:
    """faster-whisper's VAD speech chunks ({"start", "end"} in samples) of the whole file."""
    from faster_whisper.vad import get_speech_timestamps

    chunks: list[dict[str, int]] = []
    bridge = max(0.0, vad.min_silence_duration_ms - 2 * vad.speech_pad_ms) * SAMPLE_RATE / 1000
    for start, end in _blocks(samples):
        found = [
            {"start": c["start"] + start, "end": c["end"] + start}
            for c in get_speech_timestamps(samples[start:end], vad)
        ]
        if chunks and found and found[0]["start"] - chunks[-1]["end"] < bridge:
            chunks[-1]["end"] = found.pop(0)["end"]  # a pause the VAD would have kept: one chunk again
        chunks.extend(found)
    release_freed_memory()  # the VAD's onnxruntime buffers, which glibc would keep
    return chunks


def _blocks(samples: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, end) sample ranges of at most VAD_BLOCK_S, each cut at a quiet moment."""
    size, search = int(VAD_BLOCK_S * SAMPLE_RATE), int(EDGE_SEARCH_S * SAMPLE_RATE)
    window = int(EDGE_WINDOW_S * SAMPLE_RATE)
    start = 0
    while samples.size - start > size:
        nominal = start + size
        region = samples[nominal - search : nominal]
        n = region.size // window
        frames = region[: n * window].reshape(n, window)
        energy = np.einsum("ij,ij->i", frames, frames)
        quiet = nominal - search + int(np.argmin(energy)) * window + window // 2
        end = quiet - quiet % _VAD_WINDOW  # on the VAD's 512-sample grid, as in one call
        yield start, end
        start = end
    yield start, samples.size


def gather(samples: np.ndarray, chunks: list[dict[str, int]]) -> np.ndarray:
    """The chunks' samples back to back (what `collect_chunks` + `np.concatenate` give), one copy."""
    out = np.empty(sum(c["end"] - c["start"] for c in chunks), np.float32)
    at = 0
    for chunk in chunks:
        piece = samples[chunk["start"] : chunk["end"]]
        out[at : at + piece.size] = piece
        at += piece.size
    return out


def restore_times(segments: Iterable[Segment], chunks: list[dict[str, int]]) -> Iterable[Segment]:
    """Segments timed on the gathered speech, re-timed on the original file."""
    from faster_whisper.transcribe import restore_speech_timestamps

    return restore_speech_timestamps(segments, chunks, SAMPLE_RATE) if chunks else segments


def block_feature_extractor(original: Any) -> Any:
    """A `BlockFeatureExtractor` with `original`'s settings (mel bins, hop, FFT size, chunk length)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    class BlockFeatureExtractor(FeatureExtractor):
        def __call__(self, waveform: np.ndarray, padding: int = 160, chunk_length: int | None = None) -> Any:
            frames = (waveform.size + padding) // self.hop_length
            if frames <= FEATURE_BLOCK_FRAMES or self.n_fft // 2 > waveform.size + padding:
                return super().__call__(waveform, padding, chunk_length)
            if chunk_length is not None:  # as the original: the window length for later slicing
                self.n_samples = chunk_length * self.sampling_rate
                self.nb_max_frames = self.n_samples // self.hop_length
            return _log_mel(self, np.asarray(waveform, np.float32), padding, frames)

    extractor = BlockFeatureExtractor(
        feature_size=original.mel_filters.shape[0],
        sampling_rate=original.sampling_rate,
        hop_length=original.hop_length,
        chunk_length=original.chunk_length,
        n_fft=original.n_fft,
    )
    return extractor


def _log_mel(extractor: Any, waveform: np.ndarray, padding: int, frames: int) -> np.ndarray:
    """The original's log-mel, block by block: frame f is the FFT of samples [f·hop − n_fft/2,
    f·hop + n_fft/2) of the waveform zero-padded by `padding` and then reflect-padded by n_fft/2."""
    hop, n_fft = extractor.hop_length, extractor.n_fft
    half, length = n_fft // 2, waveform.size + padding
    window = np.hanning(n_fft + 1)[:-1].astype("float32")
    out = np.empty((extractor.mel_filters.shape[0], frames), np.float32)
    for first in range(0, frames, FEATURE_BLOCK_FRAMES):
        last = min(first + FEATURE_BLOCK_FRAMES, frames)
        index = np.arange(first * hop - half, (last - 1) * hop + half + (n_fft - 2 * half))
        index = np.abs(index)  # reflect at the start (no edge repeat), as np.pad(mode="reflect")
        index = np.where(index >= length, 2 * (length - 1) - index, index)  # and at the end
        block = np.where(index < waveform.size, waveform[np.minimum(index, waveform.size - 1)], 0.0)
        spectrum = extractor.stft(
            block.astype(np.float32), n_fft, hop, window=window, center=False, return_complex=True
        ).astype("complex64")
        magnitudes = np.abs(spectrum) ** 2
        mel = extractor.mel_filters @ magnitudes
        out[:, first:last] = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
    np.maximum(out, out.max() - 8.0, out=out)
    out += 4.0
    out /= 4.0
    return out
