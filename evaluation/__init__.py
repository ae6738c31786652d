"""Evaluation corpus and metrics: conversations built from real read speech (LibriSpeech excerpt in
tests/data/librispeech) with exact reference turns, and the diarization/WER metrics that score them.

Used by the tests and by `bench/diarization.py`; importable from an install (`import evaluation`).
"""
