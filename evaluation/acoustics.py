"""The acoustic side of a conversation: speech levels and speaker gains, babble noise, telephone band.

Kept apart from the layout (`evaluation.conversations`), which only decides who speaks when.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from evaluation.librispeech import SAMPLE_RATE, by_speaker, speech_regions

TELEPHONE_BAND = (300.0, 3400.0)


def speech_level_db(samples: np.ndarray) -> float:
    """Active speech level: mean power (dBFS) over the voiced frames."""
    voiced = [samples[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in speech_regions(samples)]
    power = np.mean(np.concatenate(voiced).astype(np.float64) ** 2)
    return float(10 * np.log10(power + 1e-20))


def babble(length: int, num_talkers: int, rng: np.random.Generator) -> np.ndarray:
    """Several train-clean voices (never conversation voices), each a looped stream, summed."""
    pool = [u for items in by_speaker("train-clean-100").values() for u in items]
    talkers = rng.choice(len(pool), size=num_talkers, replace=False)
    babble = np.zeros(length)
    for index in talkers:
        first = pool[int(index)]
        stream: list[np.ndarray] = []
        total = 0
        while total < length:
            utterance = first if not stream else pool[int(rng.integers(len(pool)))]
            audio = utterance.samples().astype(np.float64)
            stream.append(audio / np.sqrt(np.mean(audio**2)))  # equal loudness per talker
            total += audio.size
        joined = np.concatenate(stream)
        offset = int(rng.integers(0, max(1, joined.size - length)))
        babble += np.roll(joined, -offset)[:length]
    return babble


def telephone(samples: np.ndarray) -> np.ndarray:
    """300–3400 Hz, then through 8 kHz and back: what a narrow-band call decodes to."""
    sos = butter(8, TELEPHONE_BAND, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = resample_poly(sosfiltfilt(sos, samples), 1, 2)
    return resample_poly(narrow, 2, 1)[: samples.size]


def speaker_gains(speakers: Sequence[str], spread_db: float, rng: np.random.Generator) -> dict[str, float]:
    if len(speakers) == 1 or spread_db == 0:
        return dict.fromkeys(speakers, 1.0)
    levels = np.linspace(-spread_db / 2, spread_db / 2, len(speakers))[rng.permutation(len(speakers))]
    return {speaker: float(10 ** (level / 20)) for speaker, level in zip(speakers, levels, strict=True)}


def active_power(samples: np.ndarray, regions: Sequence[tuple[float, float]]) -> float:
    """Mean power over the reference speech regions (the SNR's 'signal')."""
    mask = np.zeros(samples.size, dtype=bool)
    for start, end in regions:
        mask[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)] = True
    return float(np.mean(samples[mask] ** 2))
