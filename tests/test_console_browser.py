"""The web console in a real browser (headless Debian Chromium via selenium) against the one-command
local run: upload, live stages, cancel and delete, a failed job's reason, the speaker-coloured
transcript synced to the player, renaming a speaker and finding the name in the downloaded SRT,
the API key form when auth is on, and the message when the API goes away.

Set CONSOLE_SCREENSHOTS_DIR to also save the README's screenshots there (`docs/` to refresh them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import srt

from tests import browser
from tests.fixtures_aws import REPO_ROOT, free_port, wait_for
from tests.test_e2e_service import LocalService, local_service  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing())),
]

STAGE_LABELS = {"transcribing", "aligning words", "finding speakers", "punctuating", "writing the result"}


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    with browser.chromium(tmp_path / "profile", tmp_path / "downloads") as chrome:
        chrome.set_script_timeout(30)
        yield chrome


def row(driver: Any, filename: str) -> dict[str, Any] | None:
    """The job row for `filename`, read in one go (the list re-renders rows as they change)."""
    return driver.execute_script(
        """
        const li = [...document.querySelectorAll('#job-list li')]
          .find((li) => li.querySelector('.job-name').firstChild.textContent === arguments[0]);
        return li && {id: li.dataset.jobId, status: li.dataset.status,
                      detail: li.querySelector('.job-detail').textContent,
                      history: li.querySelector('.job-history').textContent};
        """,
        filename,
    )


def click_in_row(driver: Any, filename: str, button_class: str) -> None:
    driver.execute_script(
        """
        const li = [...document.querySelectorAll('#job-list li')]
          .find((li) => li.querySelector('.job-name').firstChild.textContent === arguments[0]);
        li.querySelector('button.' + arguments[1]).click();
        """,
        filename,
        button_class,
    )


def upload(driver: Any, path: Path) -> None:
    driver.find_element("id", "file-input").send_keys(str(path.resolve()))
    wait_for(lambda: path.name in driver.find_element("id", "file-name").text, "the file to be chosen")
    driver.find_element("id", "submit").click()
    wait_for(lambda: row(driver, path.name), f"{path.name} in the jobs list")


def status_of(driver: Any, filename: str, *wanted: str) -> dict[str, Any]:
    return wait_for(
        lambda: (r := row(driver, filename)) and r["status"] in wanted and r, f"{filename}: {wanted}"
    )


def screenshot(driver: Any, element_id: str, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS_DIR")
    if folder:
        driver.execute_script("document.getElementById(arguments[0]).scrollIntoView()", element_id)
        driver.find_element("id", element_id).screenshot(str(Path(folder) / name))


def truncated_wav(path: Path) -> Path:
    """A WAV whose header promises 3 s but holds 0.02 s: it passes upload checks, the decoder fails it."""
    header = b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    body = header + b"data" + struct.pack("<I", 100_000) + bytes(range(256)) * 2
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 100_000) + body)
    return path


def test_console_end_to_end(local_service: LocalService, driver: Any, conversation, tmp_path: Path) -> None:  # noqa: F811
    url = local_service.url
    hold_me = tmp_path / "hold-me.wav"
    shutil.copyfile(conversation.path, hold_me)
    garden = tmp_path / "garden-conversation.wav"
    shutil.copyfile(conversation.path, garden)

    # The page loads without a key (auth is off here); the options come from GET /models.
    driver.get(f"{url}/?poll_ms=250")
    wait_for(lambda: "Connected" in driver.find_element("id", "api-state").text, "the API state")
    models = [o.get_attribute("value") for o in driver.find_elements("css selector", "#opt-model option")]
    assert set(requests.get(f"{url}/models").json()["models"]) <= set(models)

    # A first job (direct multipart POST /jobs) is parked by the worker's test hook at its first stage.
    upload(driver, hold_me)
    held = status_of(driver, hold_me.name, "processing")
    assert held["detail"] in STAGE_LABELS | {"separating vocals"}
    assert held["history"] == f"queued → {held['detail']}"

    # A file that passes the upload checks but not the decoder: its job fails with the reason.
    broken = truncated_wav(tmp_path / "broken.wav")
    upload(driver, broken)

    # The conversation goes through the presigned path (POST /uploads, PUT to S3, POST /jobs).
    driver.get(f"{url}/?poll_ms=250&direct_max_bytes=0")
    wait_for(lambda: row(driver, hold_me.name), "the stored jobs after a reload")
    driver.find_element("id", "opt-num").send_keys("2")
    upload(driver, garden)
    assert "presigned upload" in driver.find_element("id", "upload-text").text
    assert driver.find_element("id", "upload-progress").get_attribute("value") == "100"
    assert row(driver, garden.name)["status"] == "queued"
    screenshot(driver, "main", "console-upload.png")

    # Cancel the held job; the worker stops it, then fails the broken one and runs ours.
    click_in_row(driver, hold_me.name, "cancel")
    status_of(driver, hold_me.name, "cancelled")
    failed = status_of(driver, broken.name, "failed")
    assert "truncated" in failed["detail"] and "broken.wav" in failed["detail"]
    done = status_of(driver, garden.name, "completed")
    steps = done["history"].split(" → ")
    assert steps[0] == "queued" and steps[-1] == "completed"
    assert set(steps[1:-1]) and set(steps[1:-1]) <= STAGE_LABELS, steps  # the stages it was seen in

    # Delete the cancelled job: gone from the list and from the API.
    click_in_row(driver, hold_me.name, "delete")
    wait_for(lambda: row(driver, hold_me.name) is None, "the deleted job to leave the list")
    assert requests.get(f"{url}/jobs/{held['id']}").status_code == 404

    # The result: waveform from the local file, utterances coloured per speaker.
    click_in_row(driver, garden.name, "open")
    wait_for(lambda: driver.find_elements("css selector", "#transcript .word"), "the transcript")
    wait_for(
        lambda: driver.find_element("id", "waveform").get_attribute("data-drawn") == "true", "the waveform"
    )
    colours = driver.execute_script(
        "return [...document.querySelectorAll('.utterance')].map((u) => getComputedStyle(u).borderLeftColor)"
    )
    assert len(set(colours)) >= 2, colours

    # Clicking a word moves the player there, and highlights it; keys move between words.
    wait_for(
        lambda: driver.execute_script("return document.getElementById('audio').readyState >= 1"), "audio"
    )
    words = driver.find_elements("css selector", "#transcript .word")
    target = words[len(words) // 2]
    target.click()
    start = float(target.get_attribute("data-start"))
    assert start > 1.0
    now = driver.execute_script("return document.getElementById('audio').currentTime")
    assert abs(now - start) < 0.05, (now, start)
    assert "current" in target.get_attribute("class")
    target.send_keys("\ue014")  # ArrowRight
    following = driver.switch_to.active_element
    assert following.get_attribute("data-index") == str(int(target.get_attribute("data-index")) + 1)
    following.send_keys("\ue007")  # Enter
    now = driver.execute_script("return document.getElementById('audio').currentTime")
    assert abs(now - float(following.get_attribute("data-start"))) < 0.05

    # Rename the first utterance's speaker in place; the name is stored with the job.
    first = driver.find_element("css selector", ".utterance .speaker-name")
    speaker = first.get_attribute("data-speaker-label")
    first.click()
    field = driver.switch_to.active_element
    assert field.tag_name == "input"
    field.send_keys("Alice Example\ue007")
    wait_for(lambda: "Alice Example" in driver.find_element("id", "notice").text, "the rename")
    labels = driver.find_elements("css selector", f'[data-speaker-label="{speaker}"]')
    assert labels and all(label.text == "Alice Example" for label in labels)
    job_id = done["id"]
    assert requests.get(f"{url}/jobs/{job_id}/speakers").json()["names"] == {speaker: "Alice Example"}
    screenshot(driver, "result", "console-result.png")

    # The downloaded SRT carries the name.
    driver.find_element("css selector", '#downloads button[data-format="srt"]').click()
    saved = tmp_path / "downloads" / "garden-conversation.srt"
    wait_for(saved.exists, "the SRT download")
    cues = list(srt.parse(saved.read_text()))
    named = [c for c in cues if c.content.startswith("[Alice Example] ")]
    assert named and len(named) < len(cues)  # the other speaker keeps its label
    assert browser.console_errors(driver) == []

    # The API goes away: the page says so.
    local_service.process.send_signal(signal.SIGINT)
    local_service.process.wait(timeout=120)
    banner = wait_for(
        lambda: (text := driver.find_element("id", "banner").text) and "Can't reach the API" in text and text,
        "the unreachable-API message",
    )
    assert url in banner


@pytest.fixture
def auth_service(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The local run with AUTH_REQUIRED=true and no worker: its URL and the key it prints."""
    port = free_port()
    log_path = tmp_path / "auth.log"
    env = {**os.environ, "AUTH_REQUIRED": "true", "LOG_JSON": "false", "DATA_DIR": str(tmp_path / "data")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "onebox", "--port", str(port), "--no-worker"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        match = wait_for(
            lambda: (
                re.search(r"\(kept in DATA_DIR, shown only now\): (\S+)", log_path.read_text())
                or process.poll()
            ),
            "the key",
        )
        assert process.poll() is None, log_path.read_text()
        yield f"http://127.0.0.1:{port}", match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def test_console_asks_for_the_key_and_keeps_it_in_session_storage(
    auth_service: tuple[str, str], driver: Any
) -> None:
    url, key = auth_service
    assert requests.get(f"{url}/").status_code == 200  # the page itself needs no key
    driver.get(f"{url}/")
    form = driver.find_element("id", "key-form")
    wait_for(form.is_displayed, "the key form")
    assert "requires an API key" in driver.find_element("id", "key-why").text

    driver.find_element("id", "key-input").send_keys("not-a-key\ue007")
    wait_for(lambda: "refused" in driver.find_element("id", "key-why").text, "the refusal")

    driver.find_element("id", "key-input").send_keys(key + "\ue007")
    wait_for(lambda: "Connected" in driver.find_element("id", "api-state").text, "the connection")
    assert not form.is_displayed()
    stored = driver.execute_script(
        "return [sessionStorage.getItem('wd-console-api-key'), JSON.stringify(localStorage)]"
    )
    assert stored[0] == key and key not in stored[1]  # session storage only
