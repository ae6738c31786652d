"""`python -m gpu_worker.pipeline FILE …`: transcribe and diarize one file on this machine.

Runs exactly the code the worker runs (`run_pipeline_detailed`), drawing one progress bar per
stage on stderr and writing JSON, SRT, WebVTT, text or RTTM to stdout or `-o`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from shared.errors import ServiceError
from shared.exporters import ExportFormat, export
from shared.options import DEFAULT_UTT_SPLIT
from shared.settings import get_settings
from shared.stages import Stage

from .options import PipelineOptions


class StageProgressBars:
    """A tqdm bar per stage, 0–100 %, closed when the next stage starts."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.stage: Stage | None = None

    def __call__(self, stage: Stage, fraction: float) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=100, desc=f"{stage.value:<18}", unit="%", file=sys.stderr, leave=True)
        assert self.bar is not None
        self.bar.update(max(0, round(fraction * 100) - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m gpu_worker.pipeline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("file", type=Path, help="audio or video file (wav, mp3, m4a, webm, ogg, flac, mp4 …)")
    parser.add_argument("--model", default=settings.default_whisper_model, help="Whisper model name")
    parser.add_argument("--language", default=None, help="language code; detected when omitted")
    parser.add_argument("--num-speakers", type=int, default=None)
    parser.add_argument("--min-speakers", type=int, default=None)
    parser.add_argument("--max-speakers", type=int, default=None)
    parser.add_argument("--no-diarize", action="store_true", help="skip speaker diarization")
    parser.add_argument(
        "--stemming", action="store_true", help="separate vocals first (needs demucs weights)"
    )
    parser.add_argument("--suppress-numerals", action="store_true", help="write numbers as words")
    parser.add_argument(
        "--batch-size", type=int, default=settings.default_batch_size, help="1: sequential (default)"
    )
    parser.add_argument(
        "--utt-split", type=float, default=DEFAULT_UTT_SPLIT, help="pause (s) that starts a new utterance"
    )
    parser.add_argument("--format", choices=[f.value for f in ExportFormat], default="json")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.file.is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    bars = StageProgressBars(enabled=not args.quiet)
    try:
        from .run import run_pipeline_detailed  # heavy imports only once arguments are valid

        options = PipelineOptions(
            whisper_model=args.model,
            language=args.language,
            stemming=args.stemming,
            suppress_numerals=args.suppress_numerals,
            batch_size=args.batch_size,
            diarize=not args.no_diarize,
            num_speakers=args.num_speakers,
            min_speakers=args.min_speakers,
            max_speakers=args.max_speakers,
            utt_split=args.utt_split,
        )
        run = run_pipeline_detailed(args.file, options, progress=bars)
    except ServiceError as error:
        bars.close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    bars.close()
    text = export(run.response, args.format)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
