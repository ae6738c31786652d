"""The `segmentation` diarizer: overlap-aware, pyannote-style, offline.

loudness normalisation → 5 s chunks every 2.5 s of pyannote's segmentation model (local speakers,
their overlap, and speech activity: it is the VAD too, Silero missed ~40% of meeting speech) →
what never rises above the recording's background level removed (babble; background.py) →
speaker identities from the windows diarizer's clustering over that speech (speaker_identity.py says
why: one GE2E embedding per chunk and local speaker, as pyannote does, under-counted on real voices)
→ each chunk's local speakers mapped to those identities by their frames' votes → activations
aggregated over overlapping chunks into frame-level activity per speaker, keeping the top-N where
the model hears N speakers at once → turns.

Each step's tunables live in `SegmentationParams`; chunks are processed batch by batch, and what is
kept per chunk is small (3 × 293 activations), so a 2-hour file stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from gpu_worker.pipeline.cpu_threads import limited_cpu_threads
from gpu_worker.pipeline.diarization import background as bg
from gpu_worker.pipeline.diarization import segmentation_model as sm
from gpu_worker.pipeline.diarization import speaker_identity as identity
from gpu_worker.pipeline.diarization import windows
from gpu_worker.pipeline.diarization.encoders import SpeakerEncoder, load_encoder
from gpu_worker.pipeline.diarization.turns import label_runs
from gpu_worker.pipeline.types import (
    SAMPLE_RATE,
    Diarization,
    DiarizationRequest,
    SpeakerActivity,
    SpeakerTurn,
)
from shared.stages import Stage

BACKEND = "segmentation"
_BLOCK_FRAMES = 12_000
"""Loudness normalisation works on 10 minutes (12 000 frames of 50 ms) at a time."""


@dataclass(frozen=True)
class SegmentationParams:
    step_frames: int = 148
    """Chunk hop in model frames (148 × 270 samples ≈ 2.5 s: every instant is seen by two chunks)."""
    batch_size: int = 16
    """Chunks per forward pass of the segmentation model: it bounds one pass's memory (this many 5 s
    chunks of 16 kHz audio in, this many × 293 × 3 activations out); each chunk is scored alone."""
    onset: float = 0.5
    """A local speaker is active in a frame when its activation exceeds this."""
    max_window_overlap: float = 0.3
    """A window with overlapping speech (two local speakers at once) on more than this share of its
    frames is kept out of the clustering: its embedding mixes two voices, and such windows made
    clusters of their own (measured: a 3-speaker conversation with 15% overlap counted 5)."""
    speech_onset: float = 0.5
    """A frame is speech when the aggregated speech activity exceeds this."""
    fill_from_windows: bool = True
    """A speech frame no mapped local speaker covers takes the windows diarizer's speaker (the
    model's local speaker there had no labelled frames to vote with)."""
    min_on_s: float = 0.1
    """Shorter bursts of one speaker are dropped ..."""
    min_off_s: float = 0.3
    """... and shorter pauses inside one speaker's speech are bridged."""
    cpu_threads: int | None = 1
    """torch and BLAS threads while diarizing on CPU (cpu_threads.py says why); None keeps the
    process setting."""
    target_rms: float = 0.1
    """Loudness normalisation: the loud (95th percentile) 50 ms frames are brought to this RMS."""
    silence_rms: float = 1e-5
    """Below this (before normalisation) a file is digital silence."""
    dither_rms: float = 1e-3
    """White noise added after normalisation (40 dB below speech, fixed seed). The model never heard
    digital silence in training and calls it speech (activations 0.6–0.8 measured on zero padding
    and on the near-silent pauses of read speech); a microphone's noise floor fixes that."""
    background: bg.BackgroundParams = field(default_factory=bg.BackgroundParams)
    """Speech that never rises above the recording's background (babble) is no one's (background.py).
    Measured (bench.diarization, DER c.25): babble-10db 0.504 → 0.127, babble-20db 0.129 → 0.059."""


@dataclass
class _Chunks:
    """What the segmentation pass leaves behind, per chunk c (start frame offsets[c])."""

    offsets: np.ndarray  # (C,) int, first global frame of each chunk
    activations: np.ndarray  # (C, 293, 3) float32


def diarize(
    request: DiarizationRequest,
    *,
    params: SegmentationParams = SegmentationParams(),
    encoder: SpeakerEncoder | None = None,
) -> Diarization:
    """Who spoke when, overlap kept; `encoder` defaults to resemblyzer (the diarizing stage passes
    the one SPEAKER_ENCODER chooses)."""
    audio, device, progress = request.audio, request.device, request.progress
    progress(Stage.DIARIZING, 0.0)
    encoder = encoder or load_encoder(device)
    samples = normalize_loudness(audio.samples, params)
    empty = Diarization(turns=(), num_speakers=0, backend=BACKEND, embedding_model=encoder.name)
    if samples is None:
        progress(Stage.DIARIZING, 1.0)
        return empty
    # Segmentation, the speaker encoder and the clustering's eigendecompositions: one thread each.
    with limited_cpu_threads(params.cpu_threads if device == "cpu" else None):
        chunks = segment(samples, params, device, lambda f: progress(Stage.DIARIZING, 0.4 * f))
        chunks = without_background(chunks, samples, params)
        speech = identity.speech_activity(chunks.offsets, chunks.activations)
        regions = identity.speech_regions(speech, params.speech_onset, samples.size)
        overlap = identity.simultaneous_speakers(chunks.offsets, chunks.activations, params.onset) >= 1.5
        flat = windows.label_regions(
            samples, regions, audio.duration, speakers=request.speakers, device=device, encoder=encoder,
            progress=lambda f: progress(Stage.DIARIZING, 0.4 + 0.5 * f),
            mixed=lambda ws: identity.overlapped_windows(ws, overlap, params.max_window_overlap),
        )  # fmt: skip
    num_clusters = len({t.speaker for t in flat})
    if num_clusters == 0:
        progress(Stage.DIARIZING, 1.0)
        return empty
    labels = identity.frame_labels(flat, speech.size)
    mapping = identity.map_by_votes(chunks.offsets, chunks.activations, labels, num_clusters, params.onset)
    activity, count = reconstruct(chunks, mapping, num_clusters, params)
    # Where anyone speaks, at least one speaker: averaging over chunks must not round speech away.
    count = np.maximum(count, (speech[: count.size] > params.speech_onset).astype(int))
    binary = top_speakers(activity, count)
    if params.fill_from_windows:
        binary, activity = fill_gaps(binary, activity, labels[: binary.shape[0]])
    n_frames = int(np.ceil(audio.duration / sm.FRAME_STEP_S))
    activity, binary = activity[:n_frames], binary[:n_frames]
    result = build_diarization(activity, binary, audio.duration, params, encoder.name)
    progress(Stage.DIARIZING, 1.0)
    return result


# --- steps ---------------------------------------------------------------------------------------
def normalize_loudness(samples: np.ndarray, params: SegmentationParams) -> np.ndarray | None:
    """The samples scaled so their loud frames sit at `target_rms` (a file at −30 dBFS peak is
    diarized like any other); None for digital silence. One new float32 array: the frame RMS and
    the dither are computed block by block (a whole-file float64 square was 8 bytes a sample)."""
    frame = SAMPLE_RATE // 20
    n = samples.size // frame
    if n == 0:
        return None
    rms = np.empty(n)
    for first in range(0, n, _BLOCK_FRAMES):
        block = samples[first * frame : min(first + _BLOCK_FRAMES, n) * frame].reshape(-1, frame)
        rms[first : first + block.shape[0]] = np.sqrt(np.mean(np.square(block, dtype=np.float64), axis=1))
    loud = float(np.percentile(rms, 95))
    if loud <= params.silence_rms:
        return None
    scaled = np.multiply(samples, np.float32(params.target_rms / loud), dtype=np.float32)
    noise = np.random.default_rng(0)
    for start in range(0, samples.size, _BLOCK_FRAMES * frame):
        block = scaled[start : start + _BLOCK_FRAMES * frame]
        block += np.float32(params.dither_rms) * noise.standard_normal(block.size, dtype=np.float32)
    return scaled


def chunk_starts(n_samples: int, params: SegmentationParams) -> list[int]:
    """Start sample of each chunk: every `step_frames` frames, the last one flush with the end."""
    step = params.step_frames * sm.FRAME_STEP_SAMPLES
    if n_samples <= sm.CHUNK_SAMPLES:
        return [0]
    last = int(np.ceil((n_samples - sm.CHUNK_SAMPLES) / sm.FRAME_STEP_SAMPLES)) * sm.FRAME_STEP_SAMPLES
    starts = list(range(0, last, step))
    return [*starts, last]


def segment(
    samples: np.ndarray, params: SegmentationParams, device: str, progress=lambda fraction: None
) -> _Chunks:
    """Run the model chunk by chunk (batched); keep each chunk's activations."""
    import torch

    model = sm.load_model(device)
    starts = chunk_starts(samples.size, params)
    activations = np.zeros((len(starts), sm.FRAMES_PER_CHUNK, sm.LOCAL_SPEAKERS), np.float32)
    for first in range(0, len(starts), params.batch_size):
        batch = range(first, min(first + params.batch_size, len(starts)))
        waves = np.stack([_chunk(samples, starts[c]) for c in batch])
        with torch.inference_mode():
            activations[batch.start : batch.stop] = (
                model(torch.from_numpy(waves[:, None]).to(device)).cpu().numpy()
            )
        progress(batch.stop / len(starts))
    return _Chunks(offsets=np.array(starts) // sm.FRAME_STEP_SAMPLES, activations=activations)


def without_background(chunks: _Chunks, samples: np.ndarray, params: SegmentationParams) -> _Chunks:
    """The chunks with what sits at the background level removed (background.py says why)."""
    if not params.background.enabled:
        return chunks
    relative = bg.foreground_levels(bg.frame_levels(samples), params.background)
    if relative is None:
        return chunks
    activations = bg.suppress(chunks.offsets, chunks.activations, relative, params.background, params.onset)
    return _Chunks(offsets=chunks.offsets, activations=activations)


def reconstruct(
    chunks: _Chunks, mapping: np.ndarray, num_speakers: int, params: SegmentationParams
) -> tuple[np.ndarray, np.ndarray]:
    """(activity (frames, speakers) float32, estimated count of simultaneous speakers per frame).

    Activity is each global speaker's activation averaged over the chunks that see the frame,
    weighted by a Hann window (a chunk's edges have the least context); the count is the rounded
    weighted mean of the number of local speakers above `onset`."""
    n_frames = int(chunks.offsets[-1]) + sm.FRAMES_PER_CHUNK
    total = np.zeros((n_frames, num_speakers), np.float32)
    count = np.zeros(n_frames, np.float32)
    weight = np.zeros(n_frames, np.float32)
    window = (np.hanning(sm.FRAMES_PER_CHUNK + 2)[1:-1]).astype(np.float32)
    for c, offset in enumerate(chunks.offsets):
        span = slice(int(offset), int(offset) + sm.FRAMES_PER_CHUNK)
        act = chunks.activations[c]
        weight[span] += window
        count[span] += window * (act > params.onset).sum(axis=1)
        for local in range(sm.LOCAL_SPEAKERS):
            g = mapping[c, local]
            if g >= 0:
                total[span, g] = total[span, g] + window * act[:, local]
    weight = np.maximum(weight, 1e-6)
    return total / weight[:, None], np.rint(count / weight).astype(int)


def fill_gaps(binary: np.ndarray, activity: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames with no active speaker but a windows label (≥ 0) get that speaker, at half activity."""
    frames = np.flatnonzero(~binary.any(axis=1) & (labels >= 0) & (labels < binary.shape[1]))
    binary, activity = binary.copy(), activity.copy()
    binary[frames, labels[frames]] = True
    activity[frames, labels[frames]] = np.maximum(activity[frames, labels[frames]], 0.5)
    return binary, activity


def top_speakers(activity: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(frames, speakers) bool: in each frame, the `count` most active speakers."""
    k = activity.shape[1]
    order = np.argsort(-activity, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(k)[None, :].repeat(activity.shape[0], 0), axis=1)
    return (ranks < np.minimum(count, k)[:, None]) & (activity > 0)


def build_diarization(
    activity: np.ndarray, binary: np.ndarray, duration: float, params: SegmentationParams, encoder_name: str
) -> Diarization:
    """Turns per speaker (smoothed) and the dominant-speaker turns; speakers renumbered by first speech."""
    step = sm.FRAME_STEP_S
    min_on, min_off = round(params.min_on_s / step), round(params.min_off_s / step)
    smoothed = np.stack([_smooth(binary[:, g], min_on, min_off) for g in range(binary.shape[1])], axis=1)
    firsts = [np.flatnonzero(smoothed[:, g]) for g in range(smoothed.shape[1])]
    present = [g for g in range(smoothed.shape[1]) if firsts[g].size]
    present.sort(key=lambda g: firsts[g][0])
    smoothed, activity = smoothed[:, present], activity[:, present]

    def seconds(frame: int) -> float:
        return round(min(duration, max(0.0, sm.FRAME_START_S + (frame - 0.5) * step)), 3)

    overlapping = []
    for g in range(smoothed.shape[1]):
        for a, b in _runs(smoothed[:, g]):
            confidence = float(activity[a:b, g].mean())
            overlapping.append(SpeakerTurn(seconds(a), seconds(b), g, round(min(1.0, confidence), 4)))
    overlapping = [t for t in overlapping if t.end > t.start]
    overlapping.sort(key=lambda t: (t.start, t.speaker))

    dominant = np.where(smoothed.any(axis=1), np.where(smoothed, activity, -1.0).argmax(axis=1), -1)
    dominant = _absorb_short(dominant, activity, min_off)
    turns = []
    for a, b, g in label_runs(dominant):
        if g < 0:
            continue
        mine = activity[a:b, g]
        others = np.delete(activity[a:b], g, axis=1)
        margin = mine - (others.max(axis=1) if others.shape[1] else 0.0)
        confidence = float(np.clip(mine * (0.5 + 0.5 * np.clip(margin / 0.5, 0, 1)), 0, 1).mean())
        turns.append(SpeakerTurn(seconds(a), seconds(b), int(g), round(confidence, 4)))
    turns = [t for t in turns if t.end > t.start]
    return Diarization(
        turns=tuple(turns),
        num_speakers=smoothed.shape[1],
        backend=BACKEND,
        overlapping_turns=tuple(overlapping),
        activity=SpeakerActivity(step_s=step, start_s=sm.FRAME_START_S, values=activity.astype(np.float32)),
        embedding_model=encoder_name,
    )


# --- helpers -------------------------------------------------------------------------------------
def _chunk(samples: np.ndarray, start: int) -> np.ndarray:
    """A chunk's samples, zero-padded past the end (no padded copy of the whole file)."""
    piece = samples[start : start + sm.CHUNK_SAMPLES]
    return np.pad(piece, (0, sm.CHUNK_SAMPLES - piece.size)) if piece.size < sm.CHUNK_SAMPLES else piece


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _smooth(mask: np.ndarray, min_on: int, min_off: int) -> np.ndarray:
    """Bridge pauses shorter than `min_off` frames, then drop bursts shorter than `min_on`."""
    out = mask.copy()
    runs = _runs(mask)
    for (_, b), (a, _) in pairwise(runs):
        if a - b < min_off:
            out[b:a] = True
    for a, b in _runs(out):
        if b - a < min_on:
            out[a:b] = False
    return out


def _absorb_short(labels: np.ndarray, activity: np.ndarray, min_frames: int) -> np.ndarray:
    """Dominant-speaker flickers shorter than `min_frames` between speech go to the neighbour the
    activity favours; silence between two runs of one speaker shorter than that is bridged."""
    labels = labels.copy()
    changed = True
    while changed:
        changed = False
        runs = label_runs(labels)
        for i, (a, b, g) in enumerate(runs):
            if b - a >= min_frames or i == 0 or i == len(runs) - 1:
                continue
            left, right = runs[i - 1][2], runs[i + 1][2]
            if g < 0 and left == right and left >= 0:
                labels[a:b] = left
                changed = True
            elif g >= 0 and left >= 0 and right >= 0 and g not in (left, right):
                pick = left if activity[a:b, left].sum() >= activity[a:b, right].sum() else right
                labels[a:b] = pick
                changed = True
        if changed:
            continue
    return labels


def preload(device: str = "cpu", encoder: SpeakerEncoder | None = None) -> None:
    """Load both models and run them once on a second of noise (a worker's warm-up)."""
    noise = np.random.default_rng(0).normal(0.0, 0.01, SAMPLE_RATE).astype(np.float32)
    encoder = encoder or load_encoder(device)
    with limited_cpu_threads(SegmentationParams().cpu_threads if device == "cpu" else None):
        segment(noise, SegmentationParams(), device)
        encoder.embed([noise])
