"""Internals of the diarizing stage (its entry point is `gpu_worker.pipeline.diarize`).

speech.py (VAD regions) → embeddings.py (windows, resemblyzer) → clustering.py (NME-SC, pure numpy)
→ turns.py (frame votes → turns) make up embedded.py; nemo.py is the optional NeMo backend;
assign.py maps words to turns.
"""
