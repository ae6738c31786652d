"""The diarizing stage: who spoke when, and which speaker said each word.

Three backends behind one `run`:
- `segmentation` (default): pyannote's segmentation model v2 in plain torch + resemblyzer embeddings
  + clustering; overlap-aware, its own speech detection; weights ship in pip packages.
- `windows` (formerly `embedded`, still accepted): Silero VAD + 1.5 s resemblyzer windows + NME-SC;
  no overlap.
- `nemo` (NeMo MSDD, when a deployment installs NeMo and puts its checkpoints in MODEL_DIR/nemo/).
`settings.diarizer` picks: `auto` takes NeMo when it is there, else segmentation; `nemo` insists,
and fails with ModelNotAvailable rather than silently falling back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from gpu_worker.pipeline.diarization import nemo, segmentation, windows
from gpu_worker.pipeline.diarization.assign import assign_speakers
from gpu_worker.pipeline.diarization.encoders import load_encoder
from gpu_worker.pipeline.torch_device import torch_device
from gpu_worker.pipeline.types import (
    DecodedAudio,
    Diarization,
    DiarizationRequest,
    ProgressCallback,
    SpeakerCount,
    no_progress,
)
from shared.errors import InvalidParameter
from shared.settings import DiarizerChoice, Settings, get_settings

__all__ = ["assign_speakers", "backend_for", "preload", "run"]


def run(
    audio: DecodedAudio,
    *,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    progress: ProgressCallback = no_progress,
    settings: Settings | None = None,
) -> Diarization:
    """Speaker turns of `audio`; a fixed `num_speakers` or [min, max] bounds steer the count."""
    settings = settings or get_settings()
    try:
        speakers = SpeakerCount(num_speakers, min_speakers, max_speakers)
    except ValueError as error:
        raise InvalidParameter(str(error)) from error
    device = torch_device(settings)
    backend: Callable[..., Diarization]
    if backend_for(settings) == nemo.BACKEND:
        backend = partial(nemo.diarize, models=nemo.require_models(settings))
    elif backend_for(settings) == windows.BACKEND:
        backend = windows.diarize
    else:
        backend = partial(segmentation.diarize, encoder=load_encoder(device, settings))
    return backend(DiarizationRequest(audio, speakers, device, progress))


def preload(settings: Settings) -> None:
    """Run the embedded backends' models once on a second of noise, so a worker's first job doesn't
    pay for importing torch, reading the weights and the first inference's set-up."""
    backend = backend_for(settings)
    if backend == nemo.BACKEND:
        return
    import numpy as np

    if backend == segmentation.BACKEND:
        device = torch_device(settings)
        segmentation.preload(device, load_encoder(device, settings))
        return

    from gpu_worker.pipeline.diarization.embeddings import Window, embed_windows
    from gpu_worker.pipeline.diarization.speech import speech_regions

    noise = np.random.default_rng(0).normal(0.0, 0.01, 16_000).astype(np.float32)
    speech_regions(noise)
    embed_windows(noise, [Window(0, noise.size)], device=torch_device(settings))


def backend_for(settings: Settings) -> str:
    """`segmentation`, `windows` or `nemo`; raises ModelNotAvailable when NeMo is asked for and absent."""
    if settings.diarizer == DiarizerChoice.WINDOWS:
        return windows.BACKEND
    if settings.diarizer == DiarizerChoice.SEGMENTATION:
        return segmentation.BACKEND
    if settings.diarizer == DiarizerChoice.NEMO:
        nemo.require_models(settings)
        return nemo.BACKEND
    return nemo.BACKEND if nemo.find_models(settings) is not None else segmentation.BACKEND
