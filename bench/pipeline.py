"""Benchmark: the full pipeline against bare faster-whisper, side by side on the same audio.

    python -m bench.pipeline [--model tiny.en] [--minutes 3] [--batch-size 1] [--repeats 2]

Prints bare faster-whisper transcription time (decode + transcribe, same model, beam, VAD and word
timestamps as the pipeline), full pipeline time, their ratio, real-time factors, per-stage time
and peak RSS. Models are loaded and warmed before timing, as in a warm worker. Each figure is
the median over `--repeats` runs, bare and pipeline interleaved so machine noise hits both.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

from bench.bare import library_features
from evaluation.synthetic import build_conversation
from gpu_worker.pipeline.models import get_whisper
from gpu_worker.pipeline.options import PipelineOptions
from gpu_worker.pipeline.run import run_pipeline_detailed
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


def bare_faster_whisper(path: Path, model_name: str, batch_size: int) -> float:
    """What a user of faster-whisper alone would run: decode the file, transcribe, consume words."""
    whisper = get_whisper(model_name, get_settings())
    started = time.perf_counter()
    options = {"beam_size": 5, "word_timestamps": True, "vad_filter": True, "language": "en"}
    with library_features(whisper.model):
        if batch_size > 1:
            from faster_whisper import BatchedInferencePipeline

            segments, _ = BatchedInferencePipeline(whisper.model).transcribe(
                str(path), batch_size=batch_size, **options
            )
        else:
            segments, _ = whisper.model.transcribe(str(path), **options)
        words = sum(len(segment.words or ()) for segment in segments)
    assert words > 0
    return time.perf_counter() - started


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--speakers", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    voices = ("en-us+m3", "en-us+f3", "en-gb+m1")[: args.speakers]  # voices the encoder tells apart
    item = build_conversation(
        ROOT / ".test-cache" / "bench", f"bench-{args.minutes:g}min", args.minutes, voices
    )
    options = PipelineOptions(whisper_model=args.model, language="en", batch_size=args.batch_size)
    print(
        f"audio: {item.path.name}, {item.duration:.1f} s, {item.num_speakers} speakers; model {args.model}, "
        f"batch_size {args.batch_size}",
        flush=True,
    )

    rss_before = peak_rss_mib()
    run_pipeline_detailed(item.path, options)  # warm-up: loads Whisper, VAD and the speaker encoder
    bare_times, pipeline_times, stage_runs = [], [], []
    for _ in range(args.repeats):
        bare_times.append(bare_faster_whisper(item.path, args.model, args.batch_size))
        started = time.perf_counter()
        run = run_pipeline_detailed(item.path, options)
        pipeline_times.append(time.perf_counter() - started)
        stage_runs.append(run.stage_seconds)

    bare, full = statistics.median(bare_times), statistics.median(pipeline_times)
    print(f"\n{'bare faster-whisper':<28}{bare:8.2f} s   RTF {bare / item.duration:.3f}")
    print(f"{'full pipeline':<28}{full:8.2f} s   RTF {full / item.duration:.3f}")
    print(f"{'pipeline / bare':<28}{full / bare:8.2f} x")
    print("\nper stage (median s):")
    for stage in stage_runs[0]:
        seconds = statistics.median(run[stage] for run in stage_runs)
        print(f"  {stage:<26}{seconds:8.2f} s  ({seconds / full:5.1%})")
    speakers = run.response.metadata.model_info.get("num_speakers")
    print(f"\nspeakers found: {speakers} (script has {item.num_speakers})")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (before models: {rss_before:.0f} MiB)")


if __name__ == "__main__":
    main()
