"""The pipeline orchestrator: runs the seed's stages in order and reports each one.

This is the one code path the CLI, the worker and the benchmark share.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.deepgram import DeepgramResponse
from shared.errors import JobCancelled
from shared.settings import Settings, get_settings
from shared.stages import Stage

from . import align, audio, diarize, output, postprocess, punctuate, separate, transcribe
from .diarization.known_speakers import name_speakers
from .heap import release_freed_memory
from .models import get_whisper, preload
from .options import PipelineOptions
from .torch_device import torch_device
from .types import (
    DecodedAudio,
    Diarization,
    ProgressCallback,
    SegmentCallback,
    SpeakerTurn,
    Transcript,
    no_progress,
)


@dataclass
class PipelineRun:
    """A finished run: the response plus how long each stage took (seconds), for logs and benchmarks."""

    response: DeepgramResponse
    stage_seconds: dict[str, float] = field(default_factory=dict)
    transcript: Transcript | None = None  # Whisper's segments, as decoded
    speaker_names: dict[int, str] = field(default_factory=dict)  # from `options.known_speakers`


class _Stages:
    """Times stages, reports their boundaries, and stops between them when cancellation is asked."""

    def __init__(self, progress: ProgressCallback, should_stop: Callable[[], bool] | None) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, stage: Stage) -> Iterator[None]:
        if self.should_stop is not None and self.should_stop():
            raise JobCancelled(f"job cancelled before stage '{stage}'")
        self.progress(stage, 0.0)
        started = time.perf_counter()
        yield
        release_freed_memory()  # what the stage freed, before the next one allocates (heap.py)
        self.seconds[stage.value] = self.seconds.get(stage.value, 0.0) + time.perf_counter() - started
        self.progress(stage, 1.0)


def _single_speaker(audio_in: DecodedAudio) -> Diarization:
    return Diarization((SpeakerTurn(0.0, audio_in.duration, 0, 1.0),), 1, "none")


def warm_up(whisper_model: str, settings: Settings) -> None:
    """Load what every job needs (Whisper, the diarizer's models) before the first job arrives."""
    preload(whisper_model, settings)
    diarize.preload(settings)


def run_pipeline_detailed(
    source: str | Path,
    options: PipelineOptions,
    *,
    request_id: str | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: Callable[[], bool] | None = None,
    settings: Settings | None = None,
    on_segment: SegmentCallback | None = None,
) -> PipelineRun:
    settings = settings or get_settings()
    stages = _Stages(progress, should_stop)
    # Refuse what can't run before any heavy work: unknown language, missing model.
    transcribe.check_language(options.whisper_model, options.language)
    whisper = get_whisper(options.whisper_model, settings)
    started = time.perf_counter()
    decoded = audio.load_audio(source, max_duration_seconds=settings.max_audio_duration_seconds)
    stages.seconds["decoding"] = time.perf_counter() - started

    speech = decoded
    if options.stemming:
        with stages.stage(Stage.SEPARATING_VOCALS):
            speech = separate.run(decoded, settings=settings, progress=progress)
    with stages.stage(Stage.TRANSCRIBING):
        transcript = transcribe.run(speech, whisper, options, progress=progress, on_segment=on_segment)
    # A translation's words are English, whatever language was spoken.
    text_language = "en" if options.task == "translate" else transcript.language
    with stages.stage(Stage.ALIGNING):
        aligned = align.run(speech, transcript, language=text_language, settings=settings, progress=progress)
    with stages.stage(Stage.DIARIZING):
        diarization = (
            diarize.run(
                speech,
                num_speakers=options.num_speakers,
                min_speakers=options.min_speakers,
                max_speakers=options.max_speakers,
                progress=progress,
                settings=settings,
            )
            if options.diarize
            else _single_speaker(speech)
        )
        speaker_words = diarize.assign_speakers(aligned.words, diarization)
        speaker_names = (
            name_speakers(
                speech,
                diarization,
                options.known_speakers,
                min_similarity=settings.known_speaker_min_similarity,
                device=torch_device(settings),
            )
            if options.known_speakers and options.diarize
            else {}
        )
    with stages.stage(Stage.POST_PROCESSING):
        punctuation = punctuate.method(settings, text_language)
        speaker_words = punctuate.run(speaker_words, language=text_language, settings=settings)
        post = postprocess.run(speaker_words, utt_split=options.utt_split)
    with stages.stage(Stage.GENERATING_OUTPUT):
        response = output.build_response(
            request_id=request_id or str(uuid.uuid4()),
            audio=decoded,
            transcript=transcript,
            post=post,
            diarized=options.diarize,
            diarization=diarization,
            pipeline_info={
                "device": whisper.device,
                "compute_type": whisper.compute_type,
                "model_source": whisper.location.source.value,
                "vocal_separation": separate.MODEL_NAME if options.stemming else None,
                "alignment": aligned.method,
                "diarizer": diarization.backend,
                "speaker_embedding": diarization.embedding_model,
                "num_speakers": diarization.num_speakers,
                "punctuation": punctuation,
                "batch_size": options.batch_size,
            },
        )
    return PipelineRun(response, stages.seconds, transcript, speaker_names)


def run_pipeline(source: str | Path, options: PipelineOptions, **keywords: Any) -> DeepgramResponse:
    """Transcribe and diarize one file (`run_pipeline_detailed`'s keywords); raises ServiceError
    subclasses for what a user must fix."""
    return run_pipeline_detailed(source, options, **keywords).response
