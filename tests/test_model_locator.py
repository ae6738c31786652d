"""The one model locator: real files in a temporary MODEL_DIR and a temporary Hugging Face cache laid
out as huggingface_hub writes it (blobs, snapshots of symlinks, refs/main)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gpu_worker.pipeline import model_cache
from shared import model_catalog
from shared.model_locator import ModelSpec, Need, Source, locate, where_looked
from shared.settings import Settings

REPO = "acme/tiny-aligner"
SPEC = ModelSpec(
    name="aligner",
    model_dir="alignment/xx",
    files=("config.json", "model.safetensors|pytorch_model.bin"),
    hub_repo=REPO,
)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def cache_snapshot(hub: Path, repo: str, commit: str, files: dict[str, bytes], *, main: bool) -> Path:
    """One revision of `repo` as huggingface_hub stores it: content in blobs/, named by symlinks."""
    root = hub / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (root / "blobs").mkdir(exist_ok=True)
    for name, content in files.items():
        blob = root / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    if main:
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / "main").write_text(commit)
    return snapshot


COMPLETE = {"config.json": b"{}", "model.safetensors": b"weights"}


def test_model_dir_copy_is_found_only_when_complete(tmp_path: Path, hub: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    folder = tmp_path / "models" / "alignment" / "xx"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert locate(SPEC, settings) is None
    places = where_looked(SPEC, settings)
    assert f"MODEL_DIR ({folder}) with config.json, model.safetensors or pytorch_model.bin" in places
    assert f"hub cache ({hub}) for {REPO}" in places and "hub download (disabled)" in places
    (folder / "pytorch_model.bin").write_bytes(b"weights")
    found = locate(SPEC, settings)
    assert found is not None and (found.source, found.path, found.label) == (
        Source.MODEL_DIR,
        folder,
        "aligner",
    )


def test_hub_cache_prefers_the_snapshot_main_names(tmp_path: Path, hub: Path) -> None:
    main = cache_snapshot(hub, REPO, "a" * 40, COMPLETE, main=True)
    cache_snapshot(hub, REPO, "b" * 40, {**COMPLETE, "config.json": b'{"newer": 1}'}, main=False)
    found = locate(SPEC, Settings(model_dir=None))
    assert found is not None and (found.source, found.path, found.label) == (Source.HUB_CACHE, main, REPO)


def test_an_incomplete_main_snapshot_falls_back_to_another_one(tmp_path: Path, hub: Path) -> None:
    cache_snapshot(hub, REPO, "a" * 40, {"config.json": b"{}"}, main=True)
    older = cache_snapshot(hub, REPO, "c" * 40, COMPLETE, main=False)  # no ref: a scan finds it
    found = locate(SPEC, Settings(model_dir=None))
    assert found is not None and found.path == older


def test_model_dir_comes_before_the_hub_cache(tmp_path: Path, hub: Path) -> None:
    cache_snapshot(hub, REPO, "a" * 40, COMPLETE, main=True)
    folder = tmp_path / "models" / "alignment" / "xx"
    folder.mkdir(parents=True)
    for name, content in COMPLETE.items():
        (folder / name).write_bytes(content)
    found = locate(SPEC, Settings(model_dir=tmp_path / "models"))
    assert found is not None and found.source is Source.MODEL_DIR


def test_download_only_when_allowed_and_the_spec_permits_it(hub: Path) -> None:
    allowed = Settings(model_dir=None, allow_model_download=True)
    found = locate(SPEC, allowed)
    assert found is not None and (found.source, found.path) == (Source.HUB, None)
    assert "hub download (allowed)" in where_looked(SPEC, allowed)
    never = ModelSpec(name="nc", hub_repo="acme/non-commercial", downloadable=False)
    assert locate(never, allowed) is None
    assert not any(place.startswith("hub download") for place in where_looked(never, allowed))


def test_every_local_place_of_every_alternative_comes_before_a_download(tmp_path: Path, hub: Path) -> None:
    fallback = ModelSpec(name="multi", files=("config.json",), hub_repo="acme/multi", downloadable=False)
    snapshot = cache_snapshot(hub, "acme/multi", "d" * 40, {"config.json": b"{}"}, main=True)
    found = locate([SPEC, fallback], Settings(model_dir=None, allow_model_download=True))
    assert found is not None and (found.spec, found.path) == (fallback, snapshot)


def test_a_missing_python_package_makes_the_model_unavailable(tmp_path: Path, hub: Path) -> None:
    needy = ModelSpec(
        name="needy", hub_repo=REPO, files=("config.json",), needs=(Need("no_such_pkg", "nope"),)
    )
    cache_snapshot(hub, REPO, "a" * 40, COMPLETE, main=True)
    assert locate(needy, Settings(model_dir=None)) is None
    assert "python package no_such_pkg (not installed: pip install nope)" in where_looked(needy, None)


def test_offline_packages_are_found_where_pip_put_them(hub: Path) -> None:
    single = model_catalog.locate(Settings(model_dir=None), "tiny.en")
    assert single is not None and single.source is Source.PACKAGE and (single.path / "model.bin").is_file()
    split = model_catalog.locate(Settings(model_dir=None), "base")
    assert split is not None and len(split.parts) == 2
    assert [(p / f"model.bin.part{i}").is_file() for i, p in enumerate(split.parts, 1)] == [True, True]


def test_whisper_names_are_faster_whispers_own_plus_the_offline_packages(tmp_path: Path, hub: Path) -> None:
    from faster_whisper.utils import _MODELS, available_models

    # The API's snapshot of faster-whisper's table. When faster-whisper changes it, refresh with:
    # python -c "import json, faster_whisper as f; from faster_whisper.utils import _MODELS as m; json.dump(
    #   {'source': 'faster_whisper.utils._MODELS', 'faster_whisper': f.__version__, 'models': m},
    #   open('shared/whisper_models.json', 'w'), indent=2)"
    assert model_catalog.whisper_repos() == _MODELS, "shared/whisper_models.json is out of date"
    assert set(model_catalog.KNOWN_MODELS) == {*available_models(), *model_catalog.OFFLINE_PACKAGES}
    assert model_catalog.whisper_spec("large-v3").hub_repo == _MODELS["large-v3"]
    settings = Settings(model_dir=tmp_path)
    places = model_catalog.where_looked(settings, "large-v3")
    assert f"MODEL_DIR ({tmp_path / 'large-v3'}) with model.bin" in places
    assert f"hub cache ({hub}) for {_MODELS['large-v3']}" in places
    custom = tmp_path / "my-finetune"
    custom.mkdir()
    (custom / "model.bin").write_bytes(b"ct2")
    assert model_catalog.available_models(settings)["my-finetune"].path == custom


def test_the_model_cache_loads_each_key_once() -> None:
    calls: list[str] = []

    def load(name: str) -> object:
        calls.append(name)
        return object()

    first = model_cache.cached(("test-kind", "a"), lambda: load("a"))
    assert model_cache.cached(("test-kind", "a"), lambda: load("a")) is first
    assert model_cache.cached(("test-kind", "b"), lambda: load("b")) is not first
    assert calls == ["a", "b"] and model_cache.loaded_kinds().count("test-kind") == 2


def test_the_api_knows_every_name_without_faster_whisper() -> None:
    """The Lambda API has no faster-whisper: with the fleet scaled to zero it must still accept
    `large-v3` (the request that starts a worker), so the names cannot come from an import."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['faster_whisper'] = None\n"
        "from shared.model_catalog import KNOWN_MODELS\n"
        "print(','.join(KNOWN_MODELS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert {"large-v3", "turbo", "tiny.en", "base", "distil-large-v3"} <= set(out.strip().split(","))
