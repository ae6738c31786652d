"""Internals of the diarizing stage (its entry point is `gpu_worker.pipeline.diarize`).

segmentation.py (default backend): segmentation_model.py (pyannote segmentation v2 in torch) →
encoders.py (speaker embeddings behind one interface) → clustering.py → frame activity → turns.
windows.py (the older backend): speech.py (Silero VAD regions) → embeddings.py (1.5 s windows,
resemblyzer) → clustering.py (NME-SC, pure numpy) → turns.py (frame votes → turns).
nemo.py is the optional NeMo backend; assign.py maps words to speakers.
"""
