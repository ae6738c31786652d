"""`separating_vocals`: keep only the voice (demucs htdemucs) before transcription.

Music and noise under speech make Whisper hallucinate and blur speaker embeddings; demucs's
vocals stem removes most of both. No weights ship on PyPI, so the model is resolved from
MODEL_DIR first, then the caches earlier demucs runs fill, and the hub only when downloads are
allowed (`SPEC`, found by shared.model_locator). demucs >= 4.1 is needed: 4.0.x depends on torchaudio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared import model_locator
from shared.errors import ModelNotAvailable
from shared.model_locator import ModelSpec, Need, Source
from shared.settings import Settings
from shared.stages import Stage

from . import model_cache
from .torch_device import torch_device
from .types import SAMPLE_RATE, DecodedAudio, ProgressCallback, no_progress

if TYPE_CHECKING:
    from demucs.apply import BagOfModels

__all__ = ["HUB_REPO", "MODEL_NAME", "STAGE_NAME", "is_available", "load", "locate", "run", "where_looked"]

STAGE_NAME = Stage.SEPARATING_VOCALS
MODEL_NAME = "htdemucs"
HUB_REPO = "adefossez/HTDemucs"  # demucs >= 4.1: htdemucs.yaml + <signature>.safetensors
LEGACY_CHECKPOINT = "955717e8-8726e21a.th"  # demucs <= 4.0 kept htdemucs in the torch hub cache
VOCALS = "vocals"

# Long files are separated in pieces so memory stays bounded (demucs holds every stem of its
# whole input at 44.1 kHz stereo); pieces overlap and are cross-faded so no seam is audible.
PIECE_SECONDS = 600.0
FADE_SECONDS = 5.0


# --- where the weights are ----------------------------------------------------------------------
def _bag_signatures(directory: Path) -> list[str] | None:
    bag = directory / f"{MODEL_NAME}.yaml"
    if not bag.is_file():
        return None
    import yaml

    signatures = (yaml.safe_load(bag.read_text()) or {}).get("models") or []
    return [str(s) for s in signatures]


def _has_weights(directory: Path) -> bool:
    """Either `htdemucs.th`, or `htdemucs.yaml` and each model it lists as `.th` or `.safetensors`."""
    if (directory / f"{MODEL_NAME}.th").is_file():
        return True
    signatures = _bag_signatures(directory)
    if not signatures:
        return False
    return all(
        (directory / f"{sig}.safetensors").is_file() or any(directory.glob(f"{sig}*.th"))
        for sig in signatures
    )


SPEC = ModelSpec(
    name=MODEL_NAME,
    model_dir="demucs",
    hub_repo=HUB_REPO,
    needs=(Need("demucs", "'.[separation]' (demucs>=4.1)"),),
    torch_hub_file=LEGACY_CHECKPOINT,
    complete=_has_weights,
)


def locate(settings: Settings) -> Path | None:
    """The directory or checkpoint file holding htdemucs on this host, or None. Never downloads."""
    location = model_locator.locate(SPEC, settings)
    return location.path if location is not None else None


def where_looked(settings: Settings) -> list[str]:
    return model_locator.where_looked(SPEC, settings)


def is_available(settings: Settings) -> bool:
    """Cheap check (no torch import) for DEFAULT_STEMMING=auto and the model listing."""
    return model_locator.locate(SPEC, settings) is not None


# --- loading ------------------------------------------------------------------------------------
def _load_from(location: Path | None) -> BagOfModels:
    """demucs's own loaders for each layout; `None` means fetch from the hub (or demucs's mirror)."""
    from demucs.apply import BagOfModels
    from demucs.pretrained import get_model
    from demucs.states import load_model

    if location is None:
        model = get_model(MODEL_NAME)
    elif location.is_file():
        model = load_model(location)
    elif (location / f"{MODEL_NAME}.th").is_file() or any(location.glob("*.th")):
        model = get_model(MODEL_NAME, repo=location)
    else:
        from demucs.hf import load_safetensors_model

        signatures = _bag_signatures(location) or []
        model = BagOfModels([load_safetensors_model(location / f"{sig}.safetensors") for sig in signatures])
    return model if isinstance(model, BagOfModels) else BagOfModels([model])


def _load_bag(location: Path | None, device: str) -> BagOfModels:
    bag = _load_from(location)
    bag.to(device).eval()
    return bag


def load(settings: Settings) -> BagOfModels:
    """htdemucs as a demucs bag of models on the chosen device, loaded once per process."""
    location = model_locator.locate(SPEC, settings)
    if location is None:
        raise ModelNotAvailable(MODEL_NAME, where_looked(settings))
    device = torch_device(settings)
    bag = model_cache.cached(
        (MODEL_NAME, str(location.path), device), lambda: _load_bag(location.path, device)
    )
    if VOCALS not in bag.sources:
        where = location.path if location.source is not Source.HUB else HUB_REPO
        raise ModelNotAvailable(MODEL_NAME, [f"{where}: model separates {bag.sources}, no '{VOCALS}'"])
    return bag


# --- separation ---------------------------------------------------------------------------------
def _vocals(
    bag: BagOfModels, samples: np.ndarray, device: str, report: Callable[[float], None]
) -> np.ndarray:
    """Vocals of one piece of 16 kHz mono audio, back at 16 kHz mono, same length.

    Normalised as demucs's CLI does; `shifts=0` keeps the output deterministic (a rerun of a job
    gives the same transcript), at the cost of demucs's optional random-shift averaging.
    """
    import julius
    import torch
    from demucs.apply import apply_model
    from demucs.audio import convert_audio

    wav = convert_audio(
        torch.from_numpy(samples).unsqueeze(0), SAMPLE_RATE, bag.samplerate, bag.audio_channels
    )
    mean, std = wav.mean(), wav.mean(0).std()
    scale = std if float(std) > 1e-8 else torch.tensor(1.0)
    length = wav.shape[-1]
    segment = min(bag.max_allowed_segment, length / bag.samplerate)

    def on_chunk(info: dict[str, Any]) -> None:
        if info.get("state") == "end":
            done = min(1.0, (info["segment_offset"] + segment * bag.samplerate) / length)
            report((info["model_idx_in_bag"] + done) / info["models"])

    with torch.inference_mode():
        sources = apply_model(
            bag,
            ((wav - mean) / scale)[None],
            shifts=0,
            split=True,
            overlap=0.25,
            device=device,
            callback=on_chunk,
        )[0]
        vocals = (sources[bag.sources.index(VOCALS)] * scale + mean).mean(0)
        vocals = julius.resample_frac(vocals.cpu(), bag.samplerate, SAMPLE_RATE)
    out = np.zeros(len(samples), dtype=np.float32)
    n = min(len(out), vocals.shape[-1])
    out[:n] = vocals[:n].numpy()
    return out


def _pieces(total: int, piece: int, fade: int) -> list[tuple[int, int]]:
    """(start, end) of pieces covering [0, total): equal cores, neighbours sharing 2 * fade samples."""
    count = max(1, -(-total // piece)) if total > piece + 2 * fade else 1
    bounds = [round(i * total / count) for i in range(count + 1)]
    return [(max(0, bounds[i] - fade), min(total, bounds[i + 1] + fade)) for i in range(count)]


def _fade_weights(start: int, end: int, total: int, fade: int) -> np.ndarray:
    """Linear ramps over each shared stretch; the two ramps of neighbouring pieces sum to one."""
    weights = np.ones(end - start, dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, 2 * fade, dtype=np.float32)
    if start > 0:
        weights[: 2 * fade] = ramp
    if end < total:
        weights[-2 * fade :] = np.minimum(weights[-2 * fade :], ramp[::-1])
    return weights


def run(audio: DecodedAudio, *, settings: Settings, progress: ProgressCallback = no_progress) -> DecodedAudio:
    """The vocals of `audio`, 16 kHz mono; hash, duration and channel count stay those of the input."""
    bag = load(settings)
    device = torch_device(settings)
    progress(STAGE_NAME, 0.0)
    total = len(audio.samples)
    if total == 0:
        progress(STAGE_NAME, 1.0)
        return audio
    fade = int(FADE_SECONDS * SAMPLE_RATE)
    pieces = _pieces(total, int(PIECE_SECONDS * SAMPLE_RATE), fade)
    out = np.zeros(total, dtype=np.float32)
    for index, (start, end) in enumerate(pieces):

        def report(fraction: float, index: int = index) -> None:
            progress(STAGE_NAME, min(1.0, (index + fraction) / len(pieces)))

        vocals = _vocals(
            bag, np.ascontiguousarray(audio.samples[start:end], dtype=np.float32), device, report
        )
        out[start:end] += vocals * _fade_weights(start, end, total, fade)
    progress(STAGE_NAME, 1.0)
    return replace(audio, samples=out)
