"""The official JavaScript SDKs from npm (`openai`, `@deepgram/sdk`, pinned in tests/js/package.json),
unmodified with only the base URL changed, against this service: the API over real HTTP on
loopback and a worker process running the real pipeline (tiny.en) on synthesized speech.
tests/js/sdk.mjs makes each call and prints the SDK's result as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_aws import WorkerProcess
from tests.fixtures_corpus import trimmed
from tests.speech_metrics import MAX_WER, word_error_rate

pytestmark = pytest.mark.slow

JS_DIR = Path(__file__).parent / "js"


def installed_from_the_lockfile() -> bool:
    """Whether node_modules is what `npm ci` made from the current package-lock.json (npm writes its
    own copy, node_modules/.package-lock.json, when it installs). `make test` installs it first."""
    installed, lock = JS_DIR / "node_modules" / ".package-lock.json", JS_DIR / "package-lock.json"
    return installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime


@pytest.fixture(scope="session")
def node() -> str:
    """`node`, with the SDKs installed from package-lock.json (`npm ci`, unless `make test` did)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the JavaScript SDK tests (apt-get install nodejs npm)")
    if installed_from_the_lockfile():
        return node
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"npm ci failed in {JS_DIR}:\n{done.stdout}\n{done.stderr}"
    return node


def run_sdk(node: str, mode: str, base_url: str, wav: Path, worker: WorkerProcess) -> dict[str, Any]:
    done = subprocess.run(
        [node, "sdk.mjs", mode, base_url, str(wav)],
        cwd=JS_DIR,
        env={**os.environ, "SPEECH_API_KEY": "any-key-auth-is-off"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, f"{mode}: {done.stderr}\n{worker.log()}"
    return json.loads(done.stdout)


def test_openai_npm_json(
    node: str, live_api: str, spawn_worker: Callable[..., WorkerProcess], corpus, tmp_path: Path
) -> None:
    item = corpus["two_speakers"]
    wav = trimmed(item.path, item.turns[1].end + 0.3, tmp_path / "two_turns.wav")
    result = run_sdk(node, "openai-json", live_api, wav, spawn_worker())
    script = " ".join(turn.text for turn in item.turns[:2])
    assert set(result) >= {"text"} and "segments" not in result, result
    assert word_error_rate(script, result["text"]) <= MAX_WER, result["text"]


def test_openai_npm_diarized_json(
    node: str, live_api: str, spawn_worker: Callable[..., WorkerProcess], conversation
) -> None:
    item = conversation
    result = run_sdk(node, "openai-diarized", live_api, item.path, spawn_worker())
    segments = result["segments"]
    assert result["task"] == "transcribe" and segments, result
    assert len({s["speaker"] for s in segments}) >= 2, segments
    assert all(s["start"] <= s["end"] and s["text"].strip() for s in segments), segments
    assert segments[0]["speaker"] == "A" and "garden" in result["text"].lower()
    assert word_error_rate(item.script, result["text"]) <= MAX_WER, result["text"]


def test_deepgram_npm_transcribe_file(
    node: str, live_api: str, spawn_worker: Callable[..., WorkerProcess], conversation
) -> None:
    item = conversation
    result = run_sdk(node, "deepgram-file", live_api, item.path, spawn_worker())
    (channel,) = result["results"]["channels"]
    alternative = channel["alternatives"][0]
    words = alternative["words"]
    assert words and all(isinstance(w["speaker"], int) for w in words), words
    assert len({w["speaker"] for w in words}) >= 2, words
    assert word_error_rate(item.script, alternative["transcript"]) <= MAX_WER, alternative["transcript"]
    assert result["results"]["utterances"] and result["metadata"]["request_id"]
