"""The speech pipeline: decode → separate vocals → transcribe → align → diarize → post-process → output.

Import the entry points from `gpu_worker.pipeline.run` (heavy dependencies load lazily there).
"""
