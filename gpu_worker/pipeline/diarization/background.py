"""Background speech: what the segmentation model hears as voices but only sits at the recording's
noise floor (babble, a crowd, a distant room), told apart from the conversation by level.

The model was trained to find speech, not to ignore it: in babble (eight other voices 10 dB under
the conversation) it called 97% of the pauses between turns speech and put a second "speaker" under
a tenth of the real speech (DER 0.50 against 0.05 with white noise at the same SNR). What still
separates the two is that the background is always there, at about the same level: the
conversation rises above it, the background does not.

So the recording's background level is measured (`background_threshold`) and:
- a frame whose level, smoothed over half a second, stays under it is no one's speech;
- a chunk's local speaker whose lone frames (where no other local speaker talks) mostly stay under
  it is the background itself and is dropped from that chunk, overlap included.

The threshold follows the background's own fluctuation, so that it only bites where the background
is speech-like: over stationary noise (white, hum, a quiet room) it sits a fraction of a dB above
the floor and a quiet speaker 3 dB above white noise is kept (measured: 2 speakers 10 dB apart in
white noise at 10 dB SNR, count and DER unchanged); over babble it sits ~3 dB above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from gpu_worker.pipeline.diarization import segmentation_model as sm
from gpu_worker.pipeline.types import SAMPLE_RATE

_BLOCK = 16_384
"""Frames per block when measuring levels: the samples are squared block by block in float64, 35 MB
at a time (200,000 frames made a 432 MB temporary, measured on a 2-hour file's diarizing peak)."""


@dataclass(frozen=True)
class BackgroundParams:
    enabled: bool = True
    smoothing_s: float = 0.5
    """A frame's level is its power averaged over this much audio (a word's dips do not count)."""
    floor_percentile: float = 5.0
    """The background floor: this percentile of the smoothed levels."""
    spread_percentiles: tuple[float, float] = (2.0, 10.0)
    """The background's fluctuation: the gap between these percentiles of the unsmoothed (17 ms)
    frame levels. Measured: 0.4 dB over white noise, 2.8-3.7 dB over babble; the threshold is the
    floor plus this gap."""
    max_above_quietest_db: float = 6.0
    """... but never more than this above the `floor_percentile` of the unsmoothed frames. Where the
    recording has no pauses, the quietest half-seconds are speech, not background, while its
    quietest 17 ms frames (between words) still are: measured on the corpus' conversations with
    every pause cut out, the cap keeps the share of speech frames under the threshold at 0-1%
    (clean), where the floor plus spread alone took 7-24%."""
    min_alone_frames: int = 10
    """A local speaker needs this many lone frames (0.17 s) to be judged background."""


def frame_levels(samples: np.ndarray) -> np.ndarray:
    """(frames,) power in dB of the 270 samples around each model frame's centre, block by block
    (a whole-file float64 square would be 8 bytes a sample)."""
    step = sm.FRAME_STEP_SAMPLES
    first = max(0, round(sm.FRAME_START_S * SAMPLE_RATE) - step // 2)
    n = max(0, (samples.size - first) // step)
    power = np.empty(n)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        block = samples[first + start * step : first + stop * step].reshape(-1, step)
        power[start:stop] = np.mean(np.square(block, dtype=np.float64), axis=1)
    return power


def foreground_levels(power: np.ndarray, params: BackgroundParams) -> np.ndarray | None:
    """(frames,) smoothed level minus the background threshold, in dB: under 0 is background.
    None when there are too few frames to measure a background."""
    if power.size < 20:
        return None
    tiny = 1e-12
    raw = 10 * np.log10(power + tiny)
    width = max(1, round(params.smoothing_s / sm.FRAME_STEP_S))
    smoothed = 10 * np.log10(uniform_filter1d(power, width, mode="nearest") + tiny)
    low, high = np.percentile(raw, params.spread_percentiles)
    threshold = min(
        float(np.percentile(smoothed, params.floor_percentile)) + float(high - low),
        float(np.percentile(raw, params.floor_percentile)) + params.max_above_quietest_db,
    )
    return smoothed - threshold


def suppress(
    offsets: np.ndarray, activations: np.ndarray, relative: np.ndarray, params: BackgroundParams, onset: float
) -> np.ndarray:
    """The chunks' activations (chunks, frames, 3) with background removed: local speakers whose
    lone frames are mostly under the threshold are zeroed in their chunk, and every frame under it
    is zeroed for all. Frames past the measured ones (the last chunk's padding) are left alone."""
    out = activations.copy()
    for c, offset in enumerate(offsets):
        level = relative[int(offset) : int(offset) + sm.FRAMES_PER_CHUNK]
        act = out[c, : level.size] > onset
        alone = act & (act.sum(axis=1, keepdims=True) == 1)
        for local in range(sm.LOCAL_SPEAKERS):
            lone = level[alone[:, local]]
            if lone.size >= params.min_alone_frames and float(np.median(lone)) < 0:
                out[c, :, local] = 0.0
        out[c, : level.size] *= (level >= 0)[:, None]
    return out
