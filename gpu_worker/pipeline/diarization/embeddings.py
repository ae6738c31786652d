"""Speaker embeddings of short windows, from resemblyzer's GE2E encoder (weights ship in the wheel).

Measured here (the team's models.md): 1.5 s windows at a 0.5 s hop clustered best; each window must be
volume-normalised like resemblyzer's `preprocess_wav` (its mel input is not log-compressed, so level
matters). The encoder runs once over a padded, packed batch of windows rather than once per window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from gpu_worker.pipeline import model_cache
from gpu_worker.pipeline.diarization.speech import Region
from gpu_worker.pipeline.types import SAMPLE_RATE
from shared import model_locator
from shared.errors import ModelNotAvailable
from shared.model_locator import ModelSpec

MIN_SAMPLES = SAMPLE_RATE // 10
"""A window shorter than this (a lone click) is widened around its centre before embedding."""

MEL_N_FFT = SAMPLE_RATE * 25 // 1000  # resemblyzer's hparams: 25 ms windows every 10 ms, 40 channels
MEL_HOP = SAMPLE_RATE * 10 // 1000
MEL_CHANNELS = 40

TARGET_DBFS = -30.0
"""resemblyzer's `audio_norm_target_dBFS`: quieter windows are raised to it, louder ones kept."""

SPEC = ModelSpec(
    name="resemblyzer-ge2e",
    packages=("resemblyzer",),
    package_dirs=("",),
    files=("pretrained.pt",),
    package_hint="pip install --no-deps resemblyzer==0.1.4",
    downloadable=False,
)
"""GE2E's weights ship inside the resemblyzer wheel."""


@dataclass(frozen=True)
class WindowParams:
    window_s: float = 1.5
    hop_s: float = 0.5
    batch_size: int = 64


Window = Region
"""A slice of one speech region, embedded on its own: the same span of samples (end exclusive)."""


def make_windows(regions: Sequence[Region], params: WindowParams = WindowParams()) -> list[Window]:
    """Windows of `window_s` every `hop_s` inside each region, the last one flush with the region's
    end so nothing is left uncovered; a region shorter than a window is one window."""
    size, hop = round(params.window_s * SAMPLE_RATE), round(params.hop_s * SAMPLE_RATE)
    windows: list[Window] = []
    for region in regions:
        if region.length <= 0:
            continue
        if region.length <= size:
            windows.append(Window(region.start, region.end))
            continue
        starts = list(range(region.start, region.end - size + 1, hop))
        if starts[-1] + size < region.end:
            starts.append(region.end - size)
        windows.extend(Window(s, s + size) for s in starts)
    return windows


def normalize_volume(samples: np.ndarray) -> np.ndarray:
    """resemblyzer's `normalize_volume(wav, -30, increase_only=True)`, safe for digital silence."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    if rms <= 1e-9:
        return samples
    change_db = TARGET_DBFS - 20 * np.log10(rms)
    return samples * np.float32(10 ** (change_db / 20)) if change_db > 0 else samples


def _voice_encoder(weights: str, device: str) -> Any:
    from resemblyzer import VoiceEncoder

    encoder = VoiceEncoder(device=device, verbose=False, weights_fpath=weights)
    encoder.eval()
    return encoder


def load_encoder(device: str) -> Any:
    """resemblyzer's VoiceEncoder, once per process and device (`cpu` or `cuda`)."""
    location = model_locator.locate(SPEC, None)  # in the wheel, wherever it is installed
    if location is None or location.path is None:
        raise ModelNotAvailable(SPEC.name, model_locator.where_looked(SPEC, None))
    weights = str(location.path / "pretrained.pt")
    return model_cache.cached((SPEC.name, weights, device), lambda: _voice_encoder(weights, device))


def embed_windows(
    samples: np.ndarray,
    windows: Sequence[Window],
    *,
    device: str = "cpu",
    params: WindowParams = WindowParams(),
    progress: Callable[[float], None] = lambda fraction: None,
) -> np.ndarray:
    """L2-normalised 256-d embeddings, one row per window (float32)."""
    if not windows:
        return np.zeros((0, 256), np.float32)
    encoder = load_encoder(device)
    out = np.zeros((len(windows), 256), np.float32)
    order = sorted(range(len(windows)), key=lambda i: -windows[i].length)  # similar lengths batch together
    for first in range(0, len(order), params.batch_size):
        batch = order[first : first + params.batch_size]
        out[batch] = embed_mels(
            encoder, mel_frames([normalize_volume(_slice(samples, windows[i])) for i in batch])
        )
        progress(min(1.0, (first + len(batch)) / len(order)))
    return out


def embed_mels(encoder: Any, mels: Sequence[np.ndarray]) -> np.ndarray:
    """GE2E embeddings (L2-normalised, float32) of mel spectrograms of any lengths, in one packed
    LSTM pass: what resemblyzer's `VoiceEncoder.forward` gives each one alone."""
    import torch

    lengths = torch.tensor([m.shape[0] for m in mels])
    padded = torch.zeros((len(mels), int(lengths.max()), mels[0].shape[1]))
    for row, mel in enumerate(mels):
        padded[row, : mel.shape[0]] = torch.from_numpy(mel)
    with torch.inference_mode():
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            padded.to(encoder.device), lengths, batch_first=True, enforce_sorted=False
        )
        _, (hidden, _) = encoder.lstm(packed)
        raw = encoder.relu(encoder.linear(hidden[-1]))
        embeds = raw / torch.linalg.norm(raw, dim=1, keepdim=True).clamp_min(1e-9)
    return np.asarray(embeds.cpu().numpy(), np.float32)


@cache
def _mel_basis() -> np.ndarray:
    """librosa's Slaney mel filterbank (the one resemblyzer uses), from faster-whisper's copy of it
    (7e-10 apart): librosa's own would import scipy.signal and numba, about 4 CPU-seconds in every
    worker process, for a 40 x 201 matrix."""
    from faster_whisper.feature_extractor import FeatureExtractor

    return np.asarray(FeatureExtractor.get_mel_filters(SAMPLE_RATE, MEL_N_FFT, MEL_CHANNELS), np.float32)


def mel_frames(clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """resemblyzer's `wav_to_mel_spectrogram` of each clip (power mel, frames × 40, float32), equal
    to it to float32 rounding, with the filterbank built once and applied to all clips in one matrix
    product: librosa rebuilt it and ran an einsum per clip, which took longer than the encoder's
    LSTM on a busy 2-core host (measured). The STFT is torch's, with librosa's framing (centred,
    zero-padded, periodic Hann), since torch is loaded already."""
    import torch

    if not clips:
        return []
    window = torch.hann_window(MEL_N_FFT)
    powers = [
        torch.stft(
            torch.from_numpy(np.ascontiguousarray(clip, np.float32)),
            n_fft=MEL_N_FFT,
            hop_length=MEL_HOP,
            window=window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        .abs()
        .square()
        .numpy()
        for clip in clips
    ]
    mels = (_mel_basis() @ np.concatenate(powers, axis=1)).astype(np.float32).T
    bounds = np.cumsum([p.shape[1] for p in powers])[:-1]
    return np.split(mels, bounds)


def _slice(samples: np.ndarray, window: Window) -> np.ndarray:
    """The window's samples, widened around its centre when shorter than MIN_SAMPLES."""
    if window.length >= MIN_SAMPLES:
        return samples[window.start : window.end]
    centre = (window.start + window.end) // 2
    start = max(0, min(centre - MIN_SAMPLES // 2, samples.size - MIN_SAMPLES))
    return samples[start : start + MIN_SAMPLES]
