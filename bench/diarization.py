"""Benchmark: diarization quality on the real-voice corpus, diarizer backends side by side.

    .venv/bin/python -m bench.diarization [--quick] [--long] [--model tiny.en]
        [--diarizers windows,segmentation] [--conditions clean,white-10db] [--markdown]

Per condition and backend: DER at collar 0 and 0.25 (pyannote.metrics, overlap scored), JER,
speaker count (exact / found vs true), and through the full pipeline (default PipelineOptions, run
once on the condition's first conversation): word-speaker accuracy, WER against bare faster-whisper
at batch 1 with the same model, and seconds per stage. DER, JER and the count come from the
diarizing stage run directly on the decoded WAV (no Whisper), for every conversation of the
condition. A summary gives the share of clean 1-6-speaker conversations with the exact count and
the mean DER per condition group. The corpus is `evaluation.conditions`; each conversation is also
written as WAV + RTTM under .test-cache/diarization/ to listen to.

`--long` adds a 33-minute conversation, run in a child process whose peak RSS is printed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.bare import library_features
from evaluation.conditions import CONDITIONS, LONG, Condition, conversations
from evaluation.conversations import Conversation
from evaluation.metrics import (
    DiarizationScores,
    annotation_from_turns,
    corpus_wer,
    diarization_scores,
    wer,
    word_speaker_accuracy,
)
from shared.settings import DiarizerChoice, Settings

CACHE = Path(__file__).resolve().parent.parent / ".test-cache" / "diarization"
NAME_ALIASES = {"windows": ("windows", "embedded"), "embedded": ("embedded", "windows")}
"""Names that mean the same backend before and after the VAD-windows diarizer was renamed."""


def resolve_diarizers(names: Sequence[str]) -> list[tuple[str, DiarizerChoice]]:
    """(label, choice) for each name this install knows; unknown names are skipped with a note."""
    known = {choice.value: choice for choice in DiarizerChoice}
    resolved: list[tuple[str, DiarizerChoice]] = []
    for name in names:
        choice = next((known[n] for n in NAME_ALIASES.get(name, (name,)) if n in known), None)
        if choice is None:
            print(f"note: diarizer {name!r} is not in this install ({', '.join(known)}); skipped")
        elif choice in {c for _, c in resolved}:
            print(f"note: diarizer {name!r} is the same backend as an earlier one; skipped")
        else:
            if choice.value != name:
                print(f"note: diarizer {name!r} is called {choice.value!r} in this install")
            resolved.append((name, choice))
    return resolved


@dataclass
class PipelineScores:
    word_speaker_accuracy: float
    words_scored: int
    wer: float
    wer_bare: float
    stage_seconds: dict[str, float]
    peak_rss_mib: float | None = None
    texts: tuple[str, str, str] = ("", "", "")
    """(reference, pipeline, bare) transcripts, for the WER pooled over conditions."""


@dataclass
class Row:
    condition: Condition
    backend: str
    diarization: list[DiarizationScores] = field(default_factory=list)
    diarize_seconds: list[float] = field(default_factory=list)
    audio_seconds: list[float] = field(default_factory=list)
    pipeline: PipelineScores | None = None


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def diarize_only(wav: Path, choice: DiarizerChoice) -> tuple[list[tuple[float, float, int]], int, float]:
    """The diarizing stage alone on the decoded WAV: (turns, speakers found, seconds)."""
    from gpu_worker.pipeline import audio, diarize

    decoded = audio.load_audio(wav)
    started = time.perf_counter()
    result = diarize.run(decoded, settings=Settings(diarizer=choice))
    seconds = time.perf_counter() - started
    # each speaker's own turns (overlapping where they talk at once) when the backend gives them
    turns = getattr(result, "overlapping_turns", ()) or result.turns
    return [(t.start, t.end, t.speaker) for t in turns], result.num_speakers, seconds


def bare_text(wav: Path, model: str) -> str:
    """What faster-whisper alone gives at batch 1 with the same model (beam 5, VAD filter)."""
    from gpu_worker.pipeline.models import get_whisper

    whisper = get_whisper(model, Settings())
    with library_features(whisper.model):
        segments, _ = whisper.model.transcribe(str(wav), beam_size=5, vad_filter=True, language="en")
        return " ".join(segment.text.strip() for segment in segments)


def full_pipeline(
    wav: Path, choice: DiarizerChoice, model: str
) -> tuple[list[tuple[float, float, int | None]], str, dict[str, float]]:
    """(words as (start, end, speaker), transcript, stage seconds) with default options."""
    from gpu_worker.pipeline.options import PipelineOptions
    from gpu_worker.pipeline.run import run_pipeline_detailed

    run = run_pipeline_detailed(wav, PipelineOptions(whisper_model=model), settings=Settings(diarizer=choice))
    alternative = run.response.results.channels[0].alternatives[0]
    words = [(w.start, w.end, w.speaker) for w in alternative.words]
    return words, alternative.transcript, dict(run.stage_seconds)


def _long_child(wav: str, choice: str, model: str):
    """Runs in a fresh process so its peak RSS is the pipeline's, not the corpus builder's."""
    words, transcript, stages = full_pipeline(Path(wav), DiarizerChoice(choice), model)
    rss = peak_rss_mib()
    turns, found, seconds = diarize_only(Path(wav), DiarizerChoice(choice))
    return words, transcript, stages, rss, turns, found, seconds


def _score_pipeline(conversation: Conversation, words, transcript, stages, bare: str, rss=None):
    reference = conversation.annotation()
    accuracy = word_speaker_accuracy(reference, words)
    text = conversation.reference_text()
    return PipelineScores(
        accuracy.accuracy,
        accuracy.scored,
        wer(text, transcript),
        wer(text, bare),
        stages,
        rss,
        texts=(text, transcript, bare),
    )


def pooled_wer(rows: list[Row], backends: list[str]) -> list[str]:
    """Corpus-level WER (all errors over all reference words) of the pipeline and of bare
    faster-whisper, over every condition's transcribed conversation: one conversation per
    condition is a small sample, where a rounding-level change flips a few words either way."""
    lines = []
    for backend in backends:
        scored = [row.pipeline for row in rows if row.backend == backend and row.pipeline is not None]
        if scored:
            references = [p.texts[0] for p in scored]
            pipe = corpus_wer(references, [p.texts[1] for p in scored])
            bare = corpus_wer(references, [p.texts[2] for p in scored])
            lines.append(
                f"WER pooled over {len(scored)} conditions ({backend}): pipeline {pipe:.3f}, bare {bare:.3f}"
            )
    return lines


def run_condition_items(
    items: list[tuple[Condition, Conversation]],
    backends: list[tuple[str, DiarizerChoice]],
    model: str,
    rows: dict[tuple[str, str], Row],
) -> None:
    pipelined: set[str] = set()
    for condition, conversation in items:
        wav = conversation.export(CACHE)
        reference = conversation.annotation()
        first = condition.name not in pipelined
        pipelined.add(condition.name)
        bare = bare_text(wav, model) if first and condition.name != LONG.name else None
        for label, choice in backends:
            row = rows.setdefault((condition.name, label), Row(condition, label))
            if condition.name == LONG.name:
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    words, transcript, stages, rss, turns, found, seconds = pool.submit(
                        _long_child, str(wav), choice.value, model
                    ).result()
                    bare = bare if bare is not None else pool.submit(bare_text, wav, model).result()
                row.pipeline = _score_pipeline(conversation, words, transcript, stages, bare, rss)
            else:
                turns, found, seconds = diarize_only(wav, choice)
                if first:
                    assert bare is not None  # transcribed above for a condition's first item
                    row.pipeline = _score_pipeline(conversation, *full_pipeline(wav, choice, model), bare)
            scores = diarization_scores(reference, annotation_from_turns(turns), conversation.duration)
            scores = DiarizationScores(
                scores.der, scores.der_collar, scores.jer, found, conversation.num_speakers
            )
            row.diarization.append(scores)
            row.diarize_seconds.append(seconds)
            row.audio_seconds.append(conversation.duration)
            print(
                f"  {conversation.name:<28} {label:<13} DER {scores.der:.3f} / {scores.der_collar:.3f}  "
                f"JER {scores.jer:.3f}  speakers {found}/{conversation.num_speakers}  "
                f"({seconds:.1f} s for {conversation.duration:.0f} s)",
                flush=True,
            )


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


STAGE_KEYS = ("decoding", "transcribing", "aligning", "diarizing", "post_processing")


def table(rows: list[Row], markdown: bool) -> list[str]:
    header = [
        "condition", "diarizer", "n", "DER c0", "DER c.25", "JER", "count exact", "found/true",
        "word-spk acc", "WER pipe", "WER bare", "diar RTF", "stages s (dec/tr/al/dia/post)", "peak RSS",
    ]  # fmt: skip
    lines = []
    body = []
    for row in rows:
        d = row.diarization
        exact = sum(s.count_exact for s in d)
        found = ",".join(f"{s.speakers_found}/{s.speakers_true}" for s in d)
        p = row.pipeline
        rtf = sum(row.diarize_seconds) / sum(row.audio_seconds)
        body.append(
            [
                row.condition.name, row.backend, str(len(d)),
                f"{_mean([s.der for s in d]):.3f}", f"{_mean([s.der_collar for s in d]):.3f}",
                f"{_mean([s.jer for s in d]):.3f}", f"{exact}/{len(d)}", found,
                f"{p.word_speaker_accuracy:.3f}" if p else "-", f"{p.wer:.3f}" if p else "-",
                f"{p.wer_bare:.3f}" if p else "-", f"{rtf:.3f}",
                "/".join(f"{p.stage_seconds.get(k, 0.0):.1f}" for k in STAGE_KEYS) if p else "-",
                f"{p.peak_rss_mib:.0f} MiB" if p and p.peak_rss_mib else "-",
            ]
        )  # fmt: skip
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines.extend("| " + " | ".join(cells) + " |" for cells in body)
    else:
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body)
    return lines


def summary(rows: list[Row], backends: list[str], markdown: bool) -> list[str]:
    groups = list(dict.fromkeys(row.condition.group for row in rows))
    header = ["diarizer", "clean count exact", *(f"DER c.25 {g}" for g in groups)]
    body = []
    for backend in backends:
        mine = [row for row in rows if row.backend == backend]
        clean = [s for row in mine if row.condition.group == "clean" for s in row.diarization]
        cells = [backend, f"{sum(s.count_exact for s in clean)}/{len(clean)}" if clean else "-"]
        for group in groups:
            scores = [s.der_collar for row in mine if row.condition.group == group for s in row.diarization]
            cells.append(f"{_mean(scores):.3f}" if scores else "-")
        body.append(cells)
    if markdown:
        return [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cells) + " |" for cells in body),
        ]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    return [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--diarizers", default="windows,segmentation")
    parser.add_argument("--conditions", help="comma-separated condition names (default: all but long)")
    parser.add_argument("--quick", action="store_true", help="a few clean, one noisy, the quiet one")
    parser.add_argument("--long", action="store_true", help="add the 33-minute conversation")
    parser.add_argument("--markdown", action="store_true", help="print README-ready tables")
    args = parser.parse_args(argv)

    backends = resolve_diarizers([n.strip() for n in args.diarizers.split(",") if n.strip()])
    if not backends:
        raise SystemExit("no known diarizer to run")
    names = [n.strip() for n in args.conditions.split(",")] if args.conditions else None
    if names is None and args.quick:
        chosen = conversations(quick=True)
    else:
        chosen = conversations(names or [c.name for c in CONDITIONS], quick=args.quick)
    by_condition: dict[str, list[tuple[Condition, Conversation]]] = {}
    for condition, conversation in chosen:
        by_condition.setdefault(condition.name, []).append((condition, conversation))
    if args.long and (names is None or LONG.name not in names):
        by_condition[LONG.name] = list(conversations([LONG.name]))

    from gpu_worker.pipeline.run import warm_up

    for _, choice in backends:  # model loading and first-call costs stay out of the timings
        warm_up(args.model, Settings(diarizer=choice))
    print(f"model {args.model}; diarizers {', '.join(f'{a}={c.value}' for a, c in backends)}; cache {CACHE}")
    started = time.perf_counter()
    rows: dict[tuple[str, str], Row] = {}
    for name, items in by_condition.items():
        print(f"{name}: {items[0][0].description}", flush=True)
        run_condition_items(items, backends, args.model, rows)
    print()
    print("\n".join(table(list(rows.values()), args.markdown)))
    print()
    print("\n".join(summary(list(rows.values()), [label for label, _ in backends], args.markdown)))
    print("\n".join(pooled_wer(list(rows.values()), [label for label, _ in backends])))
    print(f"\nwall time {time.perf_counter() - started:.0f} s; peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
