"""Rebuild tests/data/librispeech/ from a checkout of resemble-ai/Resemblyzer's `audio_data/`.

Kept so the committed selection is reproducible; CI never runs it (it has no network and the
audio is committed). Usage:

    python scripts/librispeech_subset.py /path/to/Resemblyzer/audio_data tests/data/librispeech

Selection (deterministic): every test-other speaker (5 F, 5 M) with utterances of 2-12 s taken in
id order until ~26 s per speaker, copied bit-exact; and 15 F + 15 M train-clean-100 speakers (lowest
ids with an utterance >= 4 s), each cut at the quietest 20 ms frame between 3.5 and 5 s so no word is
cut in half, re-encoded as 16 kHz 16-bit FLAC. Then writes manifest.json, whose `text` is the
Whisper-base transcript of each isolated utterance (LibriSpeech's own transcripts are not in that
repository): run it with the project on PYTHONPATH so the model resolves through its registry.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
TEST_OTHER_SECONDS = 26.0
TRAIN_PER_SEX = 15


def speakers_sex(speakers_txt: Path) -> dict[str, str]:
    sex = {}
    for line in speakers_txt.read_text(encoding="utf-8").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        fields = [f.strip() for f in line.split("|")]
        sex[fields[0]] = fields[1]
    return sex


def quiet_cut(audio: np.ndarray, lo: float = 3.5, hi: float = 5.0) -> np.ndarray:
    frame = SR // 50
    start, stop = int(lo * SR), min(int(hi * SR), len(audio) - frame)
    energies = [float(np.mean(audio[i : i + frame] ** 2)) for i in range(start, stop, frame)]
    cut = start + int(np.argmin(energies)) * frame + frame // 2
    return audio[:cut]


def main(src: Path, dst: Path) -> None:
    sex = speakers_sex(src / "librispeech_test-other" / "SPEAKERS.TXT")
    dst.mkdir(parents=True, exist_ok=True)
    for speaker_dir in sorted((src / "librispeech_test-other").iterdir(), key=lambda p: p.name):
        if not speaker_dir.is_dir():
            continue
        total = 0.0
        for flac in sorted(speaker_dir.glob("*.flac")):
            duration = sf.info(flac).duration
            if not 2.0 <= duration <= 12.0:
                continue
            out = dst / "test-other" / speaker_dir.name / flac.name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(flac, out)
            total += duration
            if total >= TEST_OTHER_SECONDS:
                break
    taken = {"F": 0, "M": 0}
    train = sorted(
        (src / "librispeech_train-clean-100").glob("*.flac"), key=lambda p: int(p.name.split("-")[0])
    )
    for flac in train:
        speaker = flac.name.split("-")[0]
        if taken[sex[speaker]] >= TRAIN_PER_SEX or sf.info(flac).duration < 4.0:
            continue
        audio, sr = sf.read(flac, dtype="float32")
        assert sr == SR
        out = dst / "train-clean-100" / flac.name
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, quiet_cut(audio), SR, subtype="PCM_16", format="FLAC")
        taken[sex[speaker]] += 1
    for name in ("LICENSE.TXT",):
        shutil.copyfile(src / "librispeech_test-other" / name, dst / name)
    write_manifest(dst, sex)


def write_manifest(dst: Path, sex: dict[str, str]) -> None:
    from gpu_worker.pipeline.models import get_whisper
    from shared.settings import Settings

    whisper = get_whisper("base", Settings())
    rows = []
    for flac in sorted(dst.rglob("*.flac")):
        rel = flac.relative_to(dst).as_posix()
        speaker = flac.name.split("-")[0]
        audio, sr = sf.read(flac, dtype="float32")
        segments, _ = whisper.model.transcribe(audio, language="en", beam_size=5, vad_filter=True)
        rows.append(
            {
                "file": rel,
                "utterance": flac.stem,
                "speaker": speaker,
                "sex": sex[speaker],
                "duration": round(len(audio) / sr, 3),
                "subset": rel.split("/")[0],
                "trimmed": rel.startswith("train-clean-100"),
                "text": " ".join(s.text.strip() for s in segments).strip(),
            }
        )
    manifest = {
        "reference_text": "whisper-base pseudo-reference: faster-whisper 'base' (int8 CPU), beam_size=5, "
        "vad_filter=True, language=en, on each isolated clean utterance as stored here; "
        "not a human reference",
        "sample_rate": SR,
        "utterances": rows,
    }
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
