"""The speech pipeline: decode → separate vocals → transcribe → align → diarize → post-process → output.

The public entry point is `transcribe_file(path, options)`; the worker, the command line
(`python -m gpu_worker.pipeline`) and the benchmarks call the same code through
`gpu_worker.pipeline.run` (`run_pipeline_detailed` adds per-stage times). Heavy dependencies load
only when a file is transcribed, so importing this package stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpu_worker.pipeline.options import PipelineOptions
    from shared.deepgram import DeepgramResponse

__all__ = ["transcribe_file"]


def transcribe_file(path: str | Path, options: PipelineOptions, **keywords: Any) -> DeepgramResponse:
    """Transcribe and diarize one file into a Deepgram-shaped response (`run.run_pipeline`'s
    keywords: request_id, progress, should_stop, settings)."""
    from gpu_worker.pipeline.run import run_pipeline

    return run_pipeline(path, options, **keywords)
