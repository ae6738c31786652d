"""WeSpeaker ResNet34 speaker encoder: loading and integration.

No offline WeSpeaker weights exist on this machine, so these tests build a RANDOMLY INITIALISED
ResNet34 of the real architecture, save it in the real layouts (a pyannote checkpoint in
MODEL_DIR/wespeaker-voxceleb-resnet34-LM/ and in the Hugging Face hub cache) and run the encoder on
real speech. That proves locating, loading (every key matched), feature extraction and output
shapes, and that the diarizer picks it when present; it proves nothing about embedding quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gpu_worker.pipeline import diarize  # noqa: E402
from gpu_worker.pipeline.diarization import wespeaker  # noqa: E402
from gpu_worker.pipeline.diarization.encoders import load_encoder  # noqa: E402
from gpu_worker.pipeline.diarization.fbank import kaldi_fbank  # noqa: E402
from gpu_worker.pipeline.types import DecodedAudio  # noqa: E402
from shared.errors import ModelNotAvailable  # noqa: E402
from shared.settings import Settings  # noqa: E402


class PyannoteSpecifications:
    """Stands for the pyannote objects a real checkpoint pickles next to its weights."""

    def __init__(self) -> None:
        self.duration = 5.0


def _save_pyannote_checkpoint(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = wespeaker.build_resnet34()
    state = {f"resnet.{key}": value for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "pyannote.audio": {"specifications": PyannoteSpecifications()}}, path)
    return state


def _speech(seconds: float = 2.0, f0: float = 140.0) -> np.ndarray:
    t = np.arange(int(16_000 * seconds)) / 16_000
    voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    return (0.1 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_fbank_is_a_real_mel_filterbank() -> None:
    t = np.arange(16_000) / 16_000
    low, high = (0.3 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in (500.0, 4000.0))
    features_low = kaldi_fbank(low)
    assert features_low.shape == (98, 80)  # 1 + (16000 - 400) // 160 frames
    assert np.allclose(features_low.mean(axis=0), 0.0, atol=1e-3)  # mean-normalised over time
    # Before normalisation a 500 Hz tone peaks in a lower mel bin than a 4 kHz tone.
    raw = [kaldi_fbank(np.concatenate([x, np.zeros_like(x)])) for x in (low, high)]
    peak_low, peak_high = (int(np.argmax(r[:40].mean(axis=0))) for r in raw)
    assert peak_low < peak_high


def test_model_dir_checkpoint_loads_every_key(tmp_path: Path) -> None:
    path = tmp_path / wespeaker.NAME / wespeaker.WEIGHTS_FILE
    saved = _save_pyannote_checkpoint(path)
    location = wespeaker.locate(Settings(model_dir=tmp_path))
    assert location is not None and (location.source, location.format) == ("model_dir", "torch")
    model = wespeaker.load_torch_model(location.path)
    loaded = model.state_dict()
    assert set(loaded) == {key.removeprefix("resnet.") for key in saved}
    assert all(torch.equal(loaded[k.removeprefix("resnet.")], v) for k, v in saved.items())


def test_checkpoint_with_wrong_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / wespeaker.NAME / wespeaker.WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {"conv1.weight": torch.zeros(3, 3)}}, path)
    with pytest.raises(ValueError, match="not a WeSpeaker ResNet34"):
        wespeaker.load_torch_model(path)


def test_hub_cache_layout_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    repo = tmp_path / "models--pyannote--wespeaker-voxceleb-resnet34-LM"
    _save_pyannote_checkpoint(repo / "snapshots" / "abc123" / wespeaker.WEIGHTS_FILE)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    location = wespeaker.locate(Settings(model_dir=None))
    assert location is not None and location.source == "hub_cache"
    assert location.path.name == wespeaker.WEIGHTS_FILE


def test_nothing_found_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert wespeaker.locate(Settings(model_dir=tmp_path)) is None
    places = " ".join(wespeaker.where_looked(Settings(model_dir=tmp_path)))
    assert wespeaker.NAME in places and wespeaker.HUB_REPO in places


def test_encoder_embeds_clips_of_any_length(tmp_path: Path) -> None:
    _save_pyannote_checkpoint(tmp_path / wespeaker.NAME / wespeaker.WEIGHTS_FILE)
    encoder = wespeaker.WeSpeakerEncoder(wespeaker.locate(Settings(model_dir=tmp_path)))
    clips = [_speech(2.0), _speech(1.0, 220.0), _speech(2.0, 180.0), _speech(0.01)]
    rows = encoder.embed(clips)
    assert rows.shape == (4, wespeaker.EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    # Batched (equal lengths together) and one-by-one give the same rows: batching is invisible.
    single = np.concatenate([encoder.embed([clip]) for clip in clips])
    assert np.allclose(rows, single, atol=1e-4)
    assert np.allclose(encoder.embed(clips), rows)  # deterministic


def _two_voices() -> DecodedAudio:
    from evaluation.librispeech import by_speaker

    speakers = by_speaker("test-other")
    samples = np.concatenate([speakers["1688"][0].samples()[:64_000], speakers["1998"][0].samples()[:64_000]])
    return DecodedAudio(samples=samples, duration=samples.size / 16_000, sha256="0", source_channels=1)


def test_diarizer_uses_wespeaker_when_the_deployment_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    _save_pyannote_checkpoint(tmp_path / wespeaker.NAME / wespeaker.WEIGHTS_FILE)
    found = Settings(model_dir=tmp_path, diarizer="segmentation")
    diarization = diarize.run(_two_voices(), settings=found)
    assert diarization.embedding_model == wespeaker.NAME and diarization.turns
    forced_off = Settings(model_dir=tmp_path, diarizer="segmentation", speaker_encoder="resemblyzer")
    assert load_encoder("cpu", forced_off).name == "resemblyzer-ge2e"
    assert load_encoder("cpu", Settings(model_dir=tmp_path / "none")).name == "resemblyzer-ge2e"


def test_asking_for_wespeaker_without_weights_names_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelNotAvailable, match=wespeaker.NAME):
        load_encoder("cpu", Settings(model_dir=tmp_path, speaker_encoder="wespeaker"))
