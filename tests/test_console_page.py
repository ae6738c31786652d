"""The console's page and files as the API serves them, and the result view of a job whose audio this
browser doesn't have, with overlapping speech (a real API process on the emulator, real Chromium)."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from api_lambda.routes.console import CONSOLE_DIR
from shared.deepgram import Utterance, Word
from shared.resources import result_key
from tests import browser
from tests.fixtures_aws import REPO_ROOT, AwsEnv, free_port, wait_for
from tests.test_api import WAV
from tests.test_speaker_names import two_speaker_result

CONSOLE_FILES = sorted(
    p.relative_to(CONSOLE_DIR.parent).as_posix() for p in CONSOLE_DIR.rglob("*") if p.is_file()
)


@pytest.mark.parametrize("aws_overrides", [{"AUTH_REQUIRED": "true"}])
def test_the_page_and_its_files_load_without_a_key(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for path in ("/console/console.css", "/console/js/main.js", "/console/js/result.js"):
        answer = api.get(path)
        assert answer.status_code == 200 and answer.text, path
        assert answer.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert api.get("/console/nope.js").status_code == 404
    assert api.get("/models").status_code == 401  # data still needs the key
    assert api.get("/health").json()["status"] == "healthy"
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/jobs/{job_id}/speakers" in paths


def test_the_lambda_serves_the_console(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_lambda_handler import FUNCTION_URL, Context, http_event

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "whisper-api")
    from api_lambda.handler import handler

    page = handler(http_event("GET", "/", domain=FUNCTION_URL), Context())
    assert page["statusCode"] == 200 and "<title>Whisper Diarization console</title>" in page["body"]
    script = handler(http_event("GET", "/console/js/main.js", domain=FUNCTION_URL), Context())
    assert script["statusCode"] == 200 and "import * as api" in script["body"]


def test_every_console_file_is_package_data() -> None:
    """The installed package (and so `make run` from a wheel) must carry the page's files."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["api_lambda"]
    assert CONSOLE_FILES
    for path in CONSOLE_FILES:
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path


@pytest.fixture
def api_process(aws: AwsEnv, tmp_path: Path) -> Iterator[str]:
    """The API alone (uvicorn) on this test's emulator resources."""
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api_lambda.app:app", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**os.environ, **aws.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            return requests.get(f"{url}/health", timeout=2).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, "the API")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))
def test_a_result_without_local_audio_shows_overlaps_and_takes_the_file_again(
    api_process: str, aws: AwsEnv, corpus, tmp_path: Path
) -> None:
    answer = requests.post(f"{api_process}/jobs", files={"file": ("call.wav", WAV, "audio/wav")})
    job_id = answer.json()["job_id"]
    result = two_speaker_result(job_id)
    # Speaker 1 starts before speaker 0 ends, and the result lists the overlap.
    late = Word(word="hi", start=0.7, end=1.3, confidence=0.9, speaker=1, punctuated_word="Hi!")
    first = result.results.utterances[0]
    utterances = [
        first,
        Utterance(**{**result.results.utterances[1].model_dump(), "start": 0.7, "words": [late]}),
    ]
    document = json.loads(result.model_dump_json(exclude_none=True))
    document["results"]["utterances"] = [u.model_dump(exclude_none=True) for u in utterances]
    document["results"]["overlaps"] = [{"start": 0.7, "end": 0.8, "speakers": [0, 1]}]
    aws.store.run(aws.store.ops.claim(job_id, "w1"))
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.settings.bucket_name, Key=result_key(job_id), Body=json.dumps(document))
    aws.store.run(aws.store.ops.complete(job_id, "w1"))

    with browser.chromium(tmp_path / "profile", tmp_path / "downloads") as driver:
        driver.get(f"{api_process}/")
        entry = {
            "id": job_id,
            "filename": "call.wav",
            "size": len(WAV),
            "submittedAt": "2026-01-01T00:00:00Z",
            "state": {"status": "queued"},
            "history": ["queued"],
        }
        driver.execute_script(
            "localStorage.setItem('wd-console-jobs', JSON.stringify([arguments[0]]))", entry
        )
        driver.refresh()
        wait_for(lambda: driver.find_elements("css selector", "#job-list button.open"), "the completed job")
        driver.find_element("css selector", "#job-list button.open").click()
        wait_for(lambda: driver.find_elements("css selector", ".utterance"), "the transcript")

        assert driver.find_element("id", "overlaps-box").is_displayed()
        assert driver.find_element("id", "overlaps").text == "0:00.7–0:00.8: Speaker 0 and Speaker 1"
        badges = driver.find_elements("css selector", ".utterance.overlapping .overlap-badge")
        assert len(badges) == 2
        overlapped = driver.find_elements("css selector", ".word.in-overlap")
        assert [w.text for w in overlapped] == ["Hello.", "Hi!"]

        # No audio here: the page says why and takes the file again.
        assert driver.find_element("id", "no-audio").is_displayed()
        assert not driver.find_element("id", "audio").is_displayed()
        driver.find_element("id", "reattach").send_keys(str(corpus["two_speakers"].path.resolve()))
        wait_for(lambda: driver.find_element("id", "audio").is_displayed(), "the player")
        wait_for(
            lambda: driver.find_element("id", "waveform").get_attribute("data-drawn") == "true",
            "the waveform",
        )
        assert not driver.find_element("id", "no-audio").is_displayed()
        assert browser.console_errors(driver) == []
