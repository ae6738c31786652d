"""Benchmark: peak memory (RSS) of the whole pipeline on a long real-voice conversation.

    .venv/bin/python -m bench.memory [--minutes 120] [--model tiny.en] [--diarizer auto] [--no-diarize]
                                     [--diarizing-only]

Builds a 3-speaker conversation of about `--minutes` from the corpus' real voices (`evaluation`,
utterances cycled as in the `long` condition; cached as WAV + RTTM + text under
.test-cache/memory/), then runs the default pipeline once (CPU, diarization on) in a fresh child
process and prints its peak RSS (`ru_maxrss`) and each stage's own peak. A stage's peak is the
kernel's high-water mark (VmHWM) between its boundaries, reset at each one through
/proc/self/clear_refs, so a short spike (a temporary array) counts; where the kernel refuses the
reset, the running peak is printed instead. Also printed, so a memory fix can't hide a quality
loss: WER against the reference text and word-speaker accuracy against the RTTM.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
import wave
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.conditions import LONG
from evaluation.conversations import build, with_changes
from shared.settings import DiarizerChoice, Settings
from shared.stages import Stage

CACHE = Path(__file__).resolve().parent.parent / ".test-cache" / "memory"
SPEECH_PER_MINUTE = LONG.specs[0].speech_seconds / (1977.9 / 60)
"""Turn time the `long` layout needs per minute of conversation (2000 s gave 1977.9 s)."""


def rss_mib(field_name: str) -> float | None:
    """VmRSS / VmHWM of this process in MiB, or None where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux ≥ 4.0); False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


@dataclass
class StagePeaks:
    """Peak RSS per stage, cut at the pipeline's progress reports (a new stage's first report)."""

    current: str = "loading models"
    resettable: bool = field(default_factory=reset_peak)
    peaks: dict[str, float] = field(default_factory=dict)

    def mark(self, next_stage: str) -> None:
        peak = rss_mib("VmHWM") or 0.0
        self.peaks[self.current] = max(self.peaks.get(self.current, 0.0), peak)
        self.current = next_stage
        if self.resettable:
            reset_peak()

    def progress(self, stage: Stage, fraction: float) -> None:
        if stage.value != self.current:
            self.mark(stage.value)


@dataclass
class Measurement:
    peak_rss_mib: float
    stage_peaks_mib: dict[str, float]
    per_stage: bool
    stage_seconds: dict[str, float]
    wall_seconds: float
    transcript: str
    words: list[tuple[float, float, int | None]]
    speakers: int | None


def measure(wav: str, model: str, diarizer: str, diarize: bool) -> Measurement:
    """Runs in a fresh process, so its peak is the pipeline's, not the corpus builder's."""
    from gpu_worker.pipeline.options import PipelineOptions
    from gpu_worker.pipeline.run import run_pipeline_detailed, warm_up

    settings = Settings(diarizer=DiarizerChoice(diarizer))
    peaks = StagePeaks()
    warm_up(model, settings)
    peaks.mark("decoding")  # the pipeline reports nothing before its first stage
    started = time.perf_counter()
    run = run_pipeline_detailed(
        Path(wav),
        PipelineOptions(whisper_model=model, diarize=diarize),
        settings=settings,
        progress=peaks.progress,
    )
    wall = time.perf_counter() - started
    peaks.mark("done")
    alternative = run.response.results.channels[0].alternatives[0]
    return Measurement(
        # With VmHWM reset at each stage the peak is the highest stage peak. ru_maxrss can't be used
        # then: it also keeps the forked image of the parent from before this process' exec (3.7 GB
        # after the parent had built the 2-hour conversation in memory).
        peak_rss_mib=max(peaks.peaks.values())
        if peaks.resettable
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        stage_peaks_mib=peaks.peaks,
        per_stage=peaks.resettable,
        stage_seconds=dict(run.stage_seconds),
        wall_seconds=wall,
        transcript=alternative.transcript,
        words=[(w.start, w.end, w.speaker) for w in alternative.words],
        speakers=run.response.metadata.model_info.get("num_speakers"),
    )


def measure_diarizing(wav: str, diarizer: str) -> tuple[float, float, float]:
    """The diarizer alone on the decoded file, models loaded first: (RSS before it, its own peak,
    seconds). In a fresh process too; answers in minutes where the whole run takes over an hour."""
    from gpu_worker.pipeline import audio, diarize

    settings = Settings(diarizer=DiarizerChoice(diarizer))
    decoded = audio.load_audio(wav)
    diarize.preload(settings)
    reset_peak()
    before, started = rss_mib("VmRSS") or 0.0, time.perf_counter()
    diarize.run(decoded, settings=settings)
    return before, rss_mib("VmHWM") or 0.0, time.perf_counter() - started


def conversation_files(minutes: float) -> tuple[Path, float]:
    """(WAV, seconds) of the cached `minutes`-long conversation, built and written when missing."""
    spec = with_changes(
        LONG.specs[0], name=f"long-{minutes:g}min-3spk", speech_seconds=minutes * SPEECH_PER_MINUTE
    )
    wav = CACHE / f"{spec.name}.wav"
    if not wav.exists():
        started = time.perf_counter()
        conversation = build(spec)
        conversation.export(CACHE)
        print(f"built {wav.name} in {time.perf_counter() - started:.0f} s", flush=True)
        del conversation
    with wave.open(str(wav), "rb") as handle:
        return wav, handle.getnframes() / handle.getframerate()


def reference_annotation(rttm: Path):  # -> pyannote.core.Annotation
    from evaluation.metrics import annotation_from_turns

    rows = [line.split() for line in rttm.read_text(encoding="utf-8").splitlines() if line.strip()]
    return annotation_from_turns((float(r[3]), float(r[3]) + float(r[4]), r[7]) for r in rows)


def report(result: Measurement, wav: Path, seconds: float) -> list[str]:
    from evaluation.metrics import wer, word_speaker_accuracy

    kind = "own peak" if result.per_stage else "running peak (VmHWM reset refused)"
    lines = [f"audio {wav.name}: {seconds / 60:.1f} min", f"per stage, {kind}:"]
    for stage, peak in result.stage_peaks_mib.items():
        took = result.stage_seconds.get(stage)
        lines.append(f"  {stage:<18}{peak:7.0f} MiB" + (f"   {took:7.1f} s" if took is not None else ""))
    reference = wav.with_suffix(".txt").read_text(encoding="utf-8")
    lines.append(f"WER {wer(reference, result.transcript):.3f} against the reference text")
    if result.speakers is not None and result.speakers > 1:
        accuracy = word_speaker_accuracy(reference_annotation(wav.with_suffix(".rttm")), result.words)
        lines.append(f"word-speaker accuracy {accuracy.accuracy:.3f} ({accuracy.scored} words)")
    lines.append(f"speakers found {result.speakers} of 3; pipeline wall time {result.wall_seconds:.0f} s")
    lines.append(f"peak RSS {result.peak_rss_mib:.0f} MiB")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="conversation length (default 2 h)")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument(
        "--diarizer", default=DiarizerChoice.AUTO.value, choices=[c.value for c in DiarizerChoice]
    )
    parser.add_argument("--no-diarize", action="store_true", help="transcription only")
    parser.add_argument("--diarizing-only", action="store_true", help="the diarizing stage alone")
    args = parser.parse_args(argv)

    wav, seconds = conversation_files(args.minutes)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        if args.diarizing_only:
            before, peak, took = pool.submit(measure_diarizing, str(wav), args.diarizer).result()
            print(f"audio {wav.name}: {seconds / 60:.1f} min, decoded and models loaded: {before:.0f} MiB")
            print(f"diarizing alone: own peak {peak:.0f} MiB in {took:.0f} s")
            return
        result = pool.submit(measure, str(wav), args.model, args.diarizer, not args.no_diarize).result()
    print("\n".join(report(result, wav, seconds)))


if __name__ == "__main__":
    main()
