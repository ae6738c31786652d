"""Speaker encoders behind one small interface, so the diarizer doesn't care which model embeds.

A `SpeakerEncoder` turns 16 kHz float32 clips (any length, one voice each) into L2-normalised rows,
one per clip, batched. Two implement it: resemblyzer's GE2E (weights ship in its wheel, used
anywhere) and WeSpeaker ResNet34 (`wespeaker.py`, the stronger encoder behind pyannote 3.x, used
when a deployment has its weights; `SPEAKER_ENCODER` chooses). Another model plugs in by
implementing `name`, `dim` and `embed`, and by being returned from `load_encoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from gpu_worker.pipeline import model_cache
from gpu_worker.pipeline.diarization import wespeaker
from gpu_worker.pipeline.diarization.embeddings import embed_mels, mel_frames, normalize_volume
from gpu_worker.pipeline.diarization.embeddings import load_encoder as _load_resemblyzer
from shared.errors import ModelNotAvailable
from shared.settings import Settings, SpeakerEncoderChoice


class SpeakerEncoder(Protocol):
    name: str
    """Recorded in `Diarization.embedding_model`."""
    dim: int

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """(len(clips), dim) float32, each row L2-normalised."""
        ...


class ResemblyzerEncoder:
    """GE2E (256-d). Like resemblyzer's own `embed_utterance`, a clip longer than 1.6 s is cut into
    1.6 s partials at a 0.8 s hop whose embeddings are averaged: the model was trained on 1.6 s.
    Each clip is volume-normalised first (its mel is power, not log: level matters, the team's models.md).
    """

    name = "resemblyzer-ge2e"
    dim = 256
    partial_frames = 160  # 10 ms mel frames
    hop_frames = 80

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        if not clips:
            return np.zeros((0, self.dim), np.float32)
        model = _load_resemblyzer(self.device)
        partials: list[np.ndarray] = []
        owner: list[int] = []
        mels = mel_frames([normalize_volume(np.asarray(clip, np.float32)) for clip in clips])
        for index, mel in enumerate(mels):
            for piece in self._partials(mel):
                partials.append(piece)
                owner.append(index)
        sums = np.zeros((len(clips), self.dim), np.float64)
        order = sorted(range(len(partials)), key=lambda i: -partials[i].shape[0])
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            rows = embed_mels(model, [partials[i] for i in batch])
            for row, i in enumerate(batch):
                sums[owner[i]] += rows[row]
        norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        return (sums / norms).astype(np.float32)

    def _partials(self, mel: np.ndarray) -> list[np.ndarray]:
        n = mel.shape[0]
        if n <= self.partial_frames + self.hop_frames // 2:
            return [mel]
        starts = list(range(0, n - self.partial_frames + 1, self.hop_frames))
        if n - (starts[-1] + self.partial_frames) > self.hop_frames // 2:
            starts.append(n - self.partial_frames)
        return [mel[s : s + self.partial_frames] for s in starts]


def load_encoder(device: str = "cpu", settings: Settings | None = None) -> SpeakerEncoder:
    """The encoder `settings.speaker_encoder` asks for, loaded once per process: with `auto`, WeSpeaker
    ResNet34 where this deployment has its weights (MODEL_DIR or the hub cache), else resemblyzer.
    `wespeaker` without the weights is ModelNotAvailable naming where it was looked for."""
    choice = settings.speaker_encoder if settings is not None else SpeakerEncoderChoice.RESEMBLYZER
    if settings is None or choice == SpeakerEncoderChoice.RESEMBLYZER:
        return _resemblyzer(device)
    location = wespeaker.locate(settings)
    if location is not None:
        return model_cache.cached(
            (wespeaker.NAME, location, device), lambda: wespeaker.WeSpeakerEncoder(location, device)
        )
    if choice == SpeakerEncoderChoice.WESPEAKER:
        raise ModelNotAvailable(wespeaker.NAME, wespeaker.where_looked(settings))
    return _resemblyzer(device)


def _resemblyzer(device: str) -> SpeakerEncoder:
    return model_cache.cached(("resemblyzer-encoder", device), lambda: ResemblyzerEncoder(device))
