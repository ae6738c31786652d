"""The client CLI (`python -m client.cli transcribe FILE --url ... --wait`) as a user runs it:
a subprocess against the API over real HTTP, with an API key, a worker running the real pipeline,
and the result saved in every format the API exports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from api_lambda import keys_cli
from tests.fixtures_aws import REPO_ROOT, AwsEnv, WorkerProcess
from tests.fixtures_corpus import trimmed

pytestmark = pytest.mark.slow


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"AUTH_REQUIRED": "true"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "client.cli", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_transcribe_waits_with_progress_and_saves_every_format(
    live_api: str, spawn_worker: Callable[..., WorkerProcess], aws: AwsEnv, corpus, tmp_path: Path
) -> None:
    item = corpus["two_speakers"]
    audio = trimmed(item.path, item.turns[0].end + 0.3, tmp_path / "morning.wav")
    secret = keys_cli.create(aws.settings, "cli")
    worker = spawn_worker()
    out = tmp_path / "out"

    refused = cli("transcribe", str(audio), "--url", live_api, "--api-key", "wrong")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr

    done = cli(
        "transcribe", str(audio), "--url", live_api, "--api-key", secret, "--wait",
        "--formats", "json,srt,vtt,txt,rttm", "--output-dir", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + worker.log()
    assert "completed" in done.stderr and "stage" in done.stderr  # the progress bar
    saved = {Path(line).name for line in done.stdout.split()}
    assert saved == {f"morning.{ext}" for ext in ("json", "srt", "vtt", "txt", "rttm")}

    result = json.loads((out / "morning.json").read_text())
    job_id = result["metadata"]["request_id"]
    assert aws.job(job_id).project_id == "cli"
    assert "garden" in result["results"]["channels"][0]["alternatives"][0]["transcript"].lower()
    assert " --> " in (out / "morning.srt").read_text()
    assert (out / "morning.vtt").read_text().startswith("WEBVTT")
    assert "garden" in (out / "morning.txt").read_text().lower()
    assert (out / "morning.rttm").read_text().startswith("SPEAKER ")

    queued = cli("transcribe", str(audio), "--url", live_api, "--api-key", secret)
    assert queued.returncode == 0 and aws.job(queued.stdout.strip()).project_id == "cli"
