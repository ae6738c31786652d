"""The NeMo backend: MarbleNet VAD → TitaNet multi-scale embeddings → NME-SC → MSDD (overlap-aware).

Used when a deployment has NeMo and its three checkpoints; nothing is ever downloaded. Layout:

    $MODEL_DIR/nemo/
        vad_multilingual_marblenet.nemo   (any *marblenet*.nemo)
        titanet_large.nemo                (any *titanet*.nemo)
        diar_msdd_telephonic.nemo         (any *msdd*.nemo)

The configuration is NeMo's `diar_infer_telephonic.yaml`, built here in code with local paths.
NeMo reports turns without a score, so each turn's confidence is computed the windows way
(resemblyzer windows against the speakers' centroids); MSDD may also report overlapping speech,
which is flattened, since a Diarization's turns do not overlap. NeMo has no lower bound on the
count: `min_speakers` is not passed on.
"""

from __future__ import annotations

import json
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpu_worker.pipeline.diarization.turns import tidy_turns
from gpu_worker.pipeline.types import SAMPLE_RATE, Diarization, DiarizationRequest, SpeakerTurn
from shared import model_locator
from shared.errors import ModelNotAvailable
from shared.model_locator import ModelSpec, Need
from shared.settings import Settings
from shared.stages import Stage

BACKEND = "nemo"
MODEL_NAME = "nemo-msdd"
PATTERNS = {"vad": "*marblenet*.nemo", "speaker": "*titanet*.nemo", "msdd": "*msdd*.nemo"}
SPEC = ModelSpec(
    name=MODEL_NAME,
    model_dir="nemo",
    files=tuple(PATTERNS.values()),
    needs=(Need("nemo", "'nemo_toolkit[asr]'"),),
    downloadable=False,
)


@dataclass(frozen=True)
class NemoModels:
    """The three local checkpoints the configuration points at (`PATTERNS` says how each is found)."""

    vad: Path
    """MarbleNet voice activity detection: where the speech is."""
    speaker: Path
    """TitaNet: the multi-scale speaker embeddings that NME-SC clusters."""
    msdd: Path
    """The multi-scale diarization decoder: refines the clustering and may mark overlapped speech."""


def find_models(settings: Settings) -> NemoModels | None:
    """The three checkpoints under MODEL_DIR/nemo/ (NeMo installed), or None if any is missing."""
    location = model_locator.locate(SPEC, settings)
    if location is None or location.path is None:
        return None
    folder = location.path
    return NemoModels(**{role: sorted(folder.glob(pattern))[0] for role, pattern in PATTERNS.items()})


def require_models(settings: Settings) -> NemoModels:
    """The checkpoints, or ModelNotAvailable saying exactly where we looked."""
    models = find_models(settings)
    if models is None:
        raise ModelNotAvailable(MODEL_NAME, where_looked=model_locator.where_looked(SPEC, settings))
    return models


def diarize(request: DiarizationRequest, *, models: NemoModels) -> Diarization:
    """Who spoke when by MSDD; of the speaker count it honours a fixed one and the upper bound."""
    from nemo.collections.asr.models.msdd_models import NeuralDiarizer

    audio, device, progress, speakers = request.audio, request.device, request.progress, request.speakers

    progress(Stage.DIARIZING, 0.0)
    with tempfile.TemporaryDirectory(prefix="nemo-diar-") as scratch:
        folder = Path(scratch)
        wav = folder / "audio.wav"
        _write_wav(wav, audio.samples)
        manifest = folder / "manifest.json"
        manifest.write_text(
            json.dumps(
                {
                    "audio_filepath": str(wav),
                    "offset": 0,
                    "duration": None,
                    "label": "infer",
                    "text": "-",
                    "num_speakers": speakers.num_speakers,
                    "rttm_filepath": None,
                    "uem_filepath": None,
                }
            )
            + "\n"
        )
        config = build_config(
            models, manifest, folder / "out", device, speakers.num_speakers, speakers.max_speakers
        )
        NeuralDiarizer(cfg=config).to(device).diarize()
        progress(Stage.DIARIZING, 0.8)
        turns = read_rttm((folder / "out" / "pred_rttms" / "audio.rttm").read_text())

    turns = tidy_turns(turns, audio.duration)
    from gpu_worker.pipeline.diarization.windows import score_turns  # resemblyzer: only now

    turns = score_turns(audio, turns, device=device)
    progress(Stage.DIARIZING, 1.0)
    return Diarization.without_overlap(turns, BACKEND, "titanet")


def build_config(
    models: NemoModels,
    manifest: Path,
    out_dir: Path,
    device: str,
    num_speakers: int | None,
    max_speakers: int | None,
):
    """NeMo's telephonic inference config with local checkpoints (an OmegaConf DictConfig)."""
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "name": "ClusterDiarizer",
            "num_workers": 0,
            "sample_rate": SAMPLE_RATE,
            "batch_size": 64,
            "device": device,
            "verbose": False,
            "diarizer": {
                "manifest_filepath": str(manifest),
                "out_dir": str(out_dir),
                "oracle_vad": False,
                "collar": 0.25,
                "ignore_overlap": True,
                "vad": {
                    "model_path": str(models.vad),
                    "external_vad_manifest": None,
                    "parameters": {
                        "window_length_in_sec": 0.15,
                        "shift_length_in_sec": 0.01,
                        "smoothing": "median",
                        "overlap": 0.5,
                        "onset": 0.1,
                        "offset": 0.1,
                        "pad_onset": 0.1,
                        "pad_offset": 0,
                        "min_duration_on": 0,
                        "min_duration_off": 0.2,
                        "filter_speech_first": True,
                    },
                },
                "speaker_embeddings": {
                    "model_path": str(models.speaker),
                    "parameters": {
                        "window_length_in_sec": [1.5, 1.25, 1.0, 0.75, 0.5],
                        "shift_length_in_sec": [0.75, 0.625, 0.5, 0.375, 0.25],
                        "multiscale_weights": [1, 1, 1, 1, 1],
                        "save_embeddings": True,
                    },
                },
                "clustering": {
                    "parameters": {
                        "oracle_num_speakers": num_speakers is not None,
                        "max_num_speakers": max_speakers or 8,
                        "enhanced_count_thres": 80,
                        "max_rp_threshold": 0.25,
                        "sparse_search_volume": 30,
                        "maj_vote_spk_count": False,
                    }
                },
                "msdd_model": {
                    "model_path": str(models.msdd),
                    "parameters": {
                        "use_speaker_model_from_ckpt": True,
                        "infer_batch_size": 25,
                        "sigmoid_threshold": [0.7],
                        "seq_eval_mode": False,
                        "split_infer": True,
                        "diar_window_length": 50,
                        "overlap_infer_spk_limit": 5,
                    },
                },
            },
        }
    )


def read_rttm(text: str) -> list[SpeakerTurn]:
    """SPEAKER lines of an RTTM file as turns, speakers numbered by first appearance."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            rows.append((start, start + duration, fields[7]))
    rows.sort()
    names: dict[str, int] = {}
    return [SpeakerTurn(s, e, names.setdefault(label, len(names)), 1.0) for s, e, label in rows]


def _write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.tobytes())
