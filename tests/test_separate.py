"""Vocal separation stage: the "not installed" path for real, and the whole stage with a tiny HTDemucs."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpu_worker.pipeline import separate
from gpu_worker.pipeline.audio import load_audio
from gpu_worker.pipeline.types import DecodedAudio, ProgressCallback
from shared.errors import ModelNotAvailable
from shared.settings import Settings
from shared.stages import Stage
from tests.model_factories import make_htdemucs

needs_demucs = pytest.mark.skipif(
    importlib.util.find_spec("demucs") is None, reason="optional extra: pip install '.[separation]'"
)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the models a test puts in place may be found: empty hub and torch caches."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


@pytest.fixture(scope="module")
def clip(corpus) -> DecodedAudio:
    """The first 6 s of a real espeak recording (kept short: the tests run on two shared CPU cores)."""
    audio = load_audio(corpus["single_speaker"].path)
    return replace(audio, samples=audio.samples[: 6 * 16_000].copy(), duration=6.0)


def _progress_log() -> tuple[list[float], ProgressCallback]:
    seen: list[float] = []

    def record(stage: Stage, fraction: float) -> None:
        assert stage is Stage.SEPARATING_VOCALS
        seen.append(fraction)

    return seen, record


def test_missing_weights_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    assert not separate.is_available(settings)
    with pytest.raises(ModelNotAvailable) as raised:
        separate.run(DecodedAudio(np.zeros(16_000, np.float32), 1.0, "x", 1), settings=settings)
    assert raised.value.name == "htdemucs"
    assert any(str(tmp_path / "models" / "demucs") in place for place in raised.value.where_looked)
    assert any("hub download (disabled)" in place for place in raised.value.where_looked)


@needs_demucs
def test_download_allowed_counts_as_available(tmp_path: Path) -> None:
    assert separate.is_available(Settings(model_dir=tmp_path, allow_model_download=True))


@needs_demucs
def test_separates_speech_clip_with_model_dir_weights(tmp_path: Path, clip: DecodedAudio) -> None:
    """Random weights: proves loading MODEL_DIR/demucs/htdemucs.th, resampling to 44.1 kHz stereo and
    back, and the output contract (16 kHz mono, same length, input facts kept), not separation quality."""
    make_htdemucs(tmp_path / "models" / "demucs")
    settings = Settings(model_dir=tmp_path / "models", device="cpu")
    assert separate.is_available(settings)
    seen, progress = _progress_log()

    vocals = separate.run(clip, settings=settings, progress=progress)

    assert vocals.samples.dtype == np.float32
    assert vocals.samples.shape == clip.samples.shape
    assert np.isfinite(vocals.samples).all()
    assert not np.array_equal(vocals.samples, clip.samples)
    assert (vocals.duration, vocals.sha256, vocals.source_channels, vocals.sample_rate) == (
        clip.duration,
        clip.sha256,
        clip.source_channels,
        16_000,
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


@needs_demucs
def test_long_audio_is_separated_in_crossfaded_pieces(
    tmp_path: Path, clip: DecodedAudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random weights: the piecewise path (several overlapping pieces, cross-faded) yields one
    seamless signal of the input's length; pieces are shortened so a short clip needs several."""
    make_htdemucs(tmp_path / "models" / "demucs")
    settings = Settings(model_dir=tmp_path / "models", device="cpu")
    monkeypatch.setattr(separate, "PIECE_SECONDS", 2.0)
    monkeypatch.setattr(separate, "FADE_SECONDS", 0.25)
    audio = clip
    seen, progress = _progress_log()

    vocals = separate.run(audio, settings=settings, progress=progress)

    assert vocals.samples.shape == audio.samples.shape and np.isfinite(vocals.samples).all()
    assert len(seen) > 3 and seen == sorted(seen) and seen[-1] == 1.0


@pytest.mark.parametrize("total", [1_000, 16_000 * 25, 16_000 * 61 + 7])
def test_pieces_cover_the_audio_and_fades_sum_to_one(total: int) -> None:
    piece, fade = 16_000 * 10, 16_000
    weights = np.zeros(total)
    for start, end in separate._pieces(total, piece, fade):
        weights[start:end] += separate._fade_weights(start, end, total, fade)
    np.testing.assert_allclose(weights, 1.0, atol=1e-6)


@needs_demucs
def test_hub_cache_layout_is_found_without_model_dir(tmp_path: Path) -> None:
    """Random weights: proves the demucs>=4.1 hub layout (htdemucs.yaml + <sig>.safetensors) loads from
    the hub cache offline."""
    snapshot = tmp_path / "hub" / "models--adefossez--HTDemucs" / "snapshots" / "0123abcd"
    make_htdemucs(snapshot, layout="safetensors")
    settings = Settings(model_dir=None, device="cpu")
    assert separate.locate(settings) == snapshot
    audio = DecodedAudio(np.zeros(16_000, np.float32), 1.0, "silence", 1)
    vocals = separate.run(audio, settings=settings)
    assert vocals.samples.shape == audio.samples.shape and np.isfinite(vocals.samples).all()


@needs_demucs
def test_model_without_vocals_is_refused(tmp_path: Path) -> None:
    """A demucs checkpoint that separates other stems can't serve this stage."""
    import torch
    from demucs.htdemucs import HTDemucs

    model = HTDemucs(sources=["drums", "bass"], channels=4, t_layers=1, t_heads=2, dconv_comp=2)
    args, kwargs = model._init_args_kwargs
    (tmp_path / "models" / "demucs").mkdir(parents=True)
    torch.save(
        {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict()},
        tmp_path / "models" / "demucs" / "htdemucs.th",
    )
    with pytest.raises(ModelNotAvailable, match="vocals"):
        separate.load(Settings(model_dir=tmp_path / "models", device="cpu"))
