"""Kaldi-compatible log mel filterbanks, the input WeSpeaker's speaker encoders were trained on.

WeSpeaker (and pyannote's copy of it) computes features with `torchaudio.compliance.kaldi.fbank`,
but torchaudio does not install beside this torch; `kaldi-native-fbank` (k2-fsa, the feature code of
sherpa-onnx) implements the same Kaldi recipe without it. The options are WeSpeaker's: 80 bins,
25 ms frames every 10 ms, Hamming window, no dither, no energy, samples scaled to 16-bit range, then
the mean over time subtracted (cepstral mean normalisation).
"""

from __future__ import annotations

import numpy as np

from gpu_worker.pipeline.types import SAMPLE_RATE

NUM_MEL_BINS = 80
MIN_FRAMES = 16
"""ResNet encoders halve time three times; fewer frames leave nothing to pool a deviation over."""
MIN_SAMPLES = 400 + 160 * (MIN_FRAMES - 1)


def _options():  # the library has no type stubs
    import kaldi_native_fbank as knf

    options = knf.FbankOptions()
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.frame_opts.frame_length_ms = 25.0
    options.frame_opts.frame_shift_ms = 10.0
    options.frame_opts.dither = 0.0
    options.frame_opts.window_type = "hamming"
    options.frame_opts.snip_edges = True
    options.mel_opts.num_bins = NUM_MEL_BINS
    options.use_energy = False
    return options


def kaldi_fbank(samples: np.ndarray) -> np.ndarray:
    """(frames, 80) float32 features of 16 kHz float samples in [-1, 1], mean-normalised over time."""
    import kaldi_native_fbank as knf

    clip = np.asarray(samples, dtype=np.float32)
    if clip.size < MIN_SAMPLES:  # repeat a very short clip rather than pad it with silence
        clip = np.resize(clip, MIN_SAMPLES) if clip.size else np.zeros(MIN_SAMPLES, np.float32)
    extractor = knf.OnlineFbank(_options())
    extractor.accept_waveform(SAMPLE_RATE, (clip * 32768.0).tolist())
    extractor.input_finished()
    frames = np.stack([extractor.get_frame(i) for i in range(extractor.num_frames_ready)]).astype(np.float32)
    return frames - frames.mean(axis=0, keepdims=True)
