"""The `windows` diarizer (called `embedded` before the segmentation backend existed): runs
anywhere, offline, with weights that ship in pip packages; no overlap.

speech regions (Silero VAD) → 1.5 s windows at a 0.5 s hop → resemblyzer embeddings → NME-SC
clustering → per-frame vote → turns. Each step's tunables live in one frozen params object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gpu_worker.pipeline.cpu_threads import limited_cpu_threads
from gpu_worker.pipeline.diarization.clustering import ClusteringParams, cluster
from gpu_worker.pipeline.diarization.embeddings import Window, WindowParams, embed_windows, make_windows
from gpu_worker.pipeline.diarization.encoders import SpeakerEncoder
from gpu_worker.pipeline.diarization.speech import Region, VadParams, speech_regions
from gpu_worker.pipeline.diarization.turns import TurnParams, windows_to_turns
from gpu_worker.pipeline.types import (
    SAMPLE_RATE,
    DecodedAudio,
    Diarization,
    DiarizationRequest,
    SpeakerCount,
    SpeakerTurn,
)
from shared.stages import Stage

BACKEND = "windows"
EMBEDDING_MODEL = "resemblyzer-ge2e"


@dataclass(frozen=True)
class EmbeddedParams:
    vad: VadParams = field(default_factory=VadParams)
    windows: WindowParams = field(default_factory=WindowParams)
    clustering: ClusteringParams = field(default_factory=ClusteringParams)
    turns: TurnParams = field(default_factory=TurnParams)
    min_cluster_window_s: float = 0.5
    """Shorter windows (a lone word) embed poorly; they are labelled by nearest centroid instead of
    taking part in clustering, where an outlier could pass for a speaker of its own."""
    margin_scale: float = 0.1
    """Confidence = 1 − exp(−margin / scale), margin = cosine to own centroid − to the nearest other."""
    distinct_voice_cosine: float = 0.62
    """With one speaker there is no other centroid; measured cosine of a window to a different
    voice's centroid stands in for it."""


def diarize(request: DiarizationRequest, *, params: EmbeddedParams = EmbeddedParams()) -> Diarization:
    audio, device, progress = request.audio, request.device, request.progress
    progress(Stage.DIARIZING, 0.0)
    with limited_cpu_threads(1 if device == "cpu" else None):  # cpu_threads.py says why
        regions = speech_regions(audio.samples, params.vad)
        progress(Stage.DIARIZING, 0.1)
        turns = label_regions(
            audio.samples,
            regions,
            audio.duration,
            speakers=request.speakers,
            device=device,
            progress=lambda fraction: progress(Stage.DIARIZING, 0.1 + 0.9 * fraction),
            params=params,
        )
    progress(Stage.DIARIZING, 1.0)
    return Diarization.without_overlap(turns, BACKEND, EMBEDDING_MODEL)


def label_regions(
    samples: np.ndarray,
    regions: Sequence[Region],
    duration: float,
    *,
    speakers: SpeakerCount = SpeakerCount(),
    device: str = "cpu",
    progress: Callable[[float], None] = lambda fraction: None,
    params: EmbeddedParams = EmbeddedParams(),
    encoder: SpeakerEncoder | None = None,
    mixed: Callable[[Sequence[Window]], np.ndarray] | None = None,
) -> list[SpeakerTurn]:
    """Non-overlapping turns of the speech `regions`: windows, embeddings, NME-SC, frame votes.
    `mixed` marks windows (bool per window) kept out of the clustering, such as those that hold
    two voices at once; they still take their nearest speaker afterwards."""
    if not regions:
        return []
    windows, embeddings = embed_regions(
        samples, regions, device=device, progress=progress, params=params, encoder=encoder
    )
    return label_windows(
        windows,
        embeddings,
        regions,
        duration,
        speakers=speakers,
        params=params,
        exclude=mixed(windows) if mixed is not None and windows else None,
    )


def embed_regions(
    samples: np.ndarray,
    regions: Sequence[Region],
    *,
    device: str = "cpu",
    progress: Callable[[float], None] = lambda fraction: None,
    params: EmbeddedParams = EmbeddedParams(),
    encoder: SpeakerEncoder | None = None,
) -> tuple[list[Window], np.ndarray]:
    """The windows of `regions` and one embedding each (the expensive part, done once).

    Resemblyzer windows go through `embed_windows` (resemblyzer's own preprocessing, measured
    here); another encoder (WeSpeaker, where a deployment has it) embeds the windows' samples."""
    windows = make_windows(regions, params.windows)
    if encoder is not None and encoder.name != EMBEDDING_MODEL:
        embeddings = encoder.embed([samples[w.start : w.end] for w in windows])
        progress(1.0)
    else:
        embeddings = embed_windows(samples, windows, device=device, params=params.windows, progress=progress)
    return windows, embeddings


def label_windows(
    windows: Sequence[Window],
    embeddings: np.ndarray,
    regions: Sequence[Region],
    duration: float,
    *,
    speakers: SpeakerCount = SpeakerCount(),
    params: EmbeddedParams = EmbeddedParams(),
    exclude: np.ndarray | None = None,
) -> list[SpeakerTurn]:
    """Turns from embedded windows: NME-SC (or the count given), then per-frame votes. Windows
    too short to trust, and those `exclude` marks, are labelled by their nearest centroid."""
    if not windows:
        return []
    min_length = params.min_cluster_window_s * SAMPLE_RATE
    core = np.array([w.length >= min_length for w in windows])
    if exclude is not None and (core & ~exclude).sum() >= min(len(windows), 4):
        core &= ~exclude
    if not core.any():
        core[:] = True
    clustering = cluster(embeddings[core], speakers, params=params.clustering)
    similarity = embeddings @ clustering.centroids.T
    labels = similarity.argmax(axis=1)
    labels[core] = clustering.labels
    confidences = window_confidence(similarity, labels, params)
    return windows_to_turns(windows, labels, confidences, regions, duration, params.turns)


def window_confidence(similarity: np.ndarray, labels: np.ndarray, params: EmbeddedParams) -> np.ndarray:
    """How much closer each window is to its own speaker than to any other, mapped to [0, 1]."""
    rows = np.arange(len(labels))
    own = similarity[rows, labels]
    if similarity.shape[1] > 1:
        others = similarity.copy()
        others[rows, labels] = -np.inf
        nearest_other = others.max(axis=1)
    else:
        nearest_other = np.full(len(labels), params.distinct_voice_cosine)
    margin = np.maximum(own - nearest_other, 0.0)
    return 1.0 - np.exp(-margin / params.margin_scale)


def score_turns(
    audio: DecodedAudio,
    turns: Sequence[SpeakerTurn],
    *,
    device: str = "cpu",
    params: EmbeddedParams = EmbeddedParams(),
) -> list[SpeakerTurn]:
    """Confidence for turns another diarizer produced (speakers 0..k-1): the same window margin as
    the windows diarizer's, with each speaker's centroid taken from its own turns."""
    if not turns:
        return []
    regions = [Region(round(t.start * SAMPLE_RATE), round(t.end * SAMPLE_RATE)) for t in turns]
    windows, owner = [], []
    for index, region in enumerate(regions):
        mine = make_windows([region], params.windows)
        windows += mine
        owner += [index] * len(mine)
    embeddings = embed_windows(audio.samples, windows, device=device, params=params.windows)
    labels = np.array([turns[i].speaker for i in owner])
    k = int(labels.max()) + 1
    centroids = np.stack([embeddings[labels == c].mean(axis=0) for c in range(k)])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    confidences = window_confidence(embeddings @ centroids.T, labels, params)
    owner_array = np.array(owner)
    return [
        replace(turn, confidence=round(float(confidences[owner_array == i].mean()), 4))
        if np.any(owner_array == i)
        else turn
        for i, turn in enumerate(turns)
    ]
