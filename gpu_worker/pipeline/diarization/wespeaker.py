"""WeSpeaker ResNet34 speaker embeddings (the encoder behind pyannote 3.x), where a deployment has them.

On real meetings the bundled GE2E encoder (resemblyzer) is the bottleneck: the same and different
speakers' cosines overlap. WeSpeaker's ResNet34 trained on VoxCeleb (`pyannote/wespeaker-voxceleb-
resnet34-LM`, CC BY 4.0) separates them far better, but no offline copy installs from PyPI, so it is
used only where it is found, in this order:

1. `MODEL_DIR/wespeaker-voxceleb-resnet34-LM/pytorch_model.bin` (the hub repository's layout: a
   pyannote checkpoint, or WeSpeaker's own `avg_model.pt` renamed), or any `*.onnx` there (WeSpeaker's
   ONNX export: input fbank (batch, frames, 80), output (batch, 256));
2. the Hugging Face hub cache, then the hub itself only with `ALLOW_MODEL_DOWNLOAD=true`
   (`SPEC`, found by shared.model_locator).

The network is re-implemented here in plain torch (ResNet34 with 32 base channels, temporal mean +
standard deviation pooling, one 256-d linear layer) so that pyannote.audio, which does not import
beside this torch, is not needed; its checkpoint loads with every key matched.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gpu_worker.pipeline.diarization.checkpoint import load_state_dict
from gpu_worker.pipeline.diarization.fbank import NUM_MEL_BINS, kaldi_fbank
from shared import model_locator
from shared.model_locator import ModelSpec, Source
from shared.settings import Settings

NAME = "wespeaker-voxceleb-resnet34-LM"
HUB_REPO = "pyannote/wespeaker-voxceleb-resnet34-LM"
WEIGHTS_FILE = "pytorch_model.bin"
EMBEDDING_DIM = 256
_HEAD_PREFIXES = ("projection.", "loss.", "margin.")
"""Training-only heads in WeSpeaker's own checkpoints; ignored, everything else must match."""
SPEC = ModelSpec(name=NAME, model_dir=NAME, files=(f"{WEIGHTS_FILE}|*.onnx",), hub_repo=HUB_REPO)


@dataclass(frozen=True)
class WeSpeakerLocation:
    """The weights file this machine has and how it was found."""

    path: Path
    format: Literal["torch", "onnx"]
    """A torch checkpoint (the hub's `pytorch_model.bin`) or WeSpeaker's ONNX export."""
    source: Source
    """Where it was found: MODEL_DIR, the hub cache or the hub itself."""


def locate(settings: Settings) -> WeSpeakerLocation | None:
    """Where this machine has the WeSpeaker ResNet34 weights (fetched from the hub when downloads are
    allowed and nothing local has them), or None."""
    location = model_locator.locate(SPEC, settings)
    if location is None:
        return None
    folder = model_locator.fetch(location, [WEIGHTS_FILE])
    if folder is None:  # no network, gated repository, no token: simply not available
        return None
    if (folder / WEIGHTS_FILE).is_file():
        return WeSpeakerLocation(folder / WEIGHTS_FILE, "torch", location.source)
    return WeSpeakerLocation(sorted(folder.glob("*.onnx"))[0], "onnx", location.source)


def where_looked(settings: Settings) -> list[str]:
    return model_locator.where_looked(SPEC, settings)


def build_resnet34() -> Any:
    """The ResNet34 speaker network, randomly initialised (torch imported only here)."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, in_planes: int, planes: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = nn.Sequential()
            if stride != 1 or in_planes != planes:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class ResNet34(nn.Module):
        layer1: nn.Sequential  # set by name in __init__, as the checkpoint's keys want
        layer2: nn.Sequential
        layer3: nn.Sequential
        layer4: nn.Sequential

        def __init__(self, channels: int = 32, blocks: Sequence[int] = (3, 4, 6, 3)) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            planes_in = channels
            for index, (count, stride) in enumerate(zip(blocks, (1, 2, 2, 2), strict=True)):
                planes = channels * 2**index
                layers = []
                for block in range(count):
                    layers.append(BasicBlock(planes_in, planes, stride if block == 0 else 1))
                    planes_in = planes
                setattr(self, f"layer{index + 1}", nn.Sequential(*layers))
            pooled = 2 * (NUM_MEL_BINS // 8) * channels * 8
            self.seg_1 = nn.Linear(pooled, EMBEDDING_DIM)

        def forward(self, fbank: torch.Tensor) -> torch.Tensor:
            """(batch, frames, 80) features → (batch, 256) embeddings."""
            x = fbank.transpose(1, 2).unsqueeze(1)
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = x.flatten(start_dim=1, end_dim=2)  # (batch, channels × bins, frames)
            stats = torch.cat([x.mean(dim=-1), x.std(dim=-1)], dim=-1)
            return self.seg_1(stats)

    return ResNet34()


def load_torch_model(path: Path) -> Any:
    """The network with the checkpoint's weights; ValueError naming the keys when they don't match."""
    state = load_state_dict(path)
    weights = {
        key.removeprefix("resnet."): value
        for key, value in state.items()
        if not key.removeprefix("resnet.").startswith(_HEAD_PREFIXES)
    }
    model = build_resnet34()
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:  # missing, unexpected or mis-shaped keys
        raise ValueError(f"{path} is not a WeSpeaker ResNet34 checkpoint: {error}") from error
    return model.eval()


class WeSpeakerEncoder:
    """256-d WeSpeaker embeddings of 16 kHz clips, L2-normalised rows (the SpeakerEncoder interface)."""

    name = NAME
    dim = EMBEDDING_DIM

    def __init__(self, location: WeSpeakerLocation, device: str = "cpu") -> None:
        self.location = location
        self.device = device
        self._lock = threading.Lock()
        if location.format == "onnx":
            import onnxruntime

            self._session = onnxruntime.InferenceSession(
                str(location.path), providers=["CPUExecutionProvider"]
            )
            self._model: Any = None  # the torch module of load_torch_model (torch loads lazily)
        else:
            self._session = None
            self._model = load_torch_model(location.path).to(device)

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """One row per clip; clips of equal length are batched together."""
        rows = np.zeros((len(clips), EMBEDDING_DIM), dtype=np.float32)
        features = [kaldi_fbank(clip) for clip in clips]
        by_length: dict[int, list[int]] = {}
        for index, feature in enumerate(features):
            by_length.setdefault(feature.shape[0], []).append(index)
        for indices in by_length.values():
            batch = np.stack([features[i] for i in indices])
            rows[indices] = self._forward(batch)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, 1e-12)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        if self._session is not None:
            feed = {self._session.get_inputs()[0].name: batch}
            return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
        import torch

        with self._lock, torch.inference_mode():
            return self._model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()
