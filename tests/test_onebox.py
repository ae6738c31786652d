"""The one-command run (`python -m onebox`) on the embedded backend, with real processes
and real signals: a worker killed mid-job is restarted and its job completes while the API keeps
answering; a supervisor killed with -9 leaves no child behind, and the next run on the same port
and DATA_DIR serves at once with the old API keys, jobs and results, and finishes the job that
was in progress when everything died."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.fixtures_aws import REPO_ROOT, free_port, wait_for
from tests.fixtures_corpus import first_turns

pytestmark = pytest.mark.slow


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def groups(self) -> dict[str, int]:
        """The children's pids by what they run, from the supervisor's run file."""
        recorded = json.loads((self.data_dir / "onebox.run.json").read_text())
        return {" ".join(g["argv"][1:4]): g["pid"] for g in recorded["groups"]}

    def pid_of(self, module: str) -> int:
        return next(pid for argv, pid in self.groups().items() if module in argv)


def start(data_dir: Path, port: int, log_path: Path) -> Run:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "AUTH_REQUIRED": "true",
        "VISIBILITY_TIMEOUT_SECONDS": "6",  # a dead worker's job is claimed again soon
        "POLL_WAIT_SECONDS": "1",
        "WORKER_HEARTBEAT_SECONDS": "2",
        "DEFAULT_WHISPER_MODEL": "tiny.en",
        "LOG_JSON": "false",
        "UPLOAD_DIR": str(data_dir.parent / "work"),
    }
    for name in ("AWS_ENDPOINT_URL", "BACKEND", "TABLE_NAME", "BUCKET_NAME", "QUEUE_NAME", "DLQ_NAME"):
        env.pop(name, None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "onebox", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    run = Run(process, log_path, data_dir, f"http://127.0.0.1:{port}")
    marker = log_path.read_text(errors="replace").count("Whisper diarization service at")
    wait_for(
        lambda: run.log().count("Whisper diarization service at") > marker or process.poll() is not None,
        "the run to serve",
    )
    assert process.poll() is None, run.log()
    return run


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a zombie is dead: it holds no port or file)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGINT)
            try:
                run.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                run.process.kill()


def test_crashes_lose_nothing_and_leave_nothing_behind(runs: list[Run], corpus, tmp_path: Path) -> None:
    clip = first_turns(corpus["two_speakers"], 1, tmp_path).path
    data_dir, port, log_path = tmp_path / "data", free_port(), tmp_path / "run.log"
    first = start(data_dir, port, log_path)
    runs.append(first)
    found = re.search(r"kept in DATA_DIR, shown only now\): (\w+)", first.log())
    assert found, first.log()
    auth = {"Authorization": f"Token {found.group(1)}"}

    def submit(name: str) -> str:
        with clip.open("rb") as audio:
            answer = requests.post(
                f"{first.url}/jobs", files={"file": (name, audio, "audio/wav")}, headers=auth
            )
        assert answer.status_code == 201, answer.text
        return answer.json()["job_id"]

    def status(job_id: str) -> dict:
        return requests.get(f"{first.url}/jobs/{job_id}", headers=auth, timeout=10).json()

    def completed(job_id: str) -> bool:
        state = status(job_id)
        assert state["status"] != "failed", state
        return state["status"] == "completed"

    # A finished job, to find unchanged after the crashes.
    done = submit("done.wav")
    wait_for(lambda: completed(done), "the first job")
    result = requests.get(f"{first.url}/jobs/{done}/result", headers=auth).content

    # kill -9 of the worker mid-job: the API keeps answering, the worker comes back, the job completes.
    crashed = submit("worker-crash.wav")
    wait_for(lambda: status(crashed)["status"] == "processing", "the job to start")
    worker = first.pid_of("gpu_worker")
    os.kill(worker, signal.SIGKILL)
    assert requests.get(f"{first.url}/health", timeout=10).status_code == 200
    assert status(crashed)["status"] in ("processing", "queued")
    wait_for(lambda: first.pid_of("gpu_worker") != worker, "the worker to be restarted")
    assert "worker exited (killed by SIGKILL); restarting" in first.log()
    wait_for(lambda: completed(crashed), "the job of the killed worker")

    # kill -9 of the whole run mid-job: no child survives it.
    orphaned = submit("run-crash.wav")
    wait_for(lambda: status(orphaned)["status"] == "processing", "the job to start")
    children = list(first.groups().values())
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in children), "every child to die with the supervisor")

    # The next run serves on the same port, with the same keys, jobs and results.
    second = start(data_dir, port, log_path)
    runs.append(second)
    assert "the API keys made earlier still work" in second.log()
    assert requests.get(f"{second.url}/jobs/{done}/result", headers=auth).content == result
    assert status(done)["status"] == "completed"
    wait_for(lambda: completed(orphaned), "the job in progress at the crash")
    assert requests.get(f"{second.url}/jobs/{done}").status_code == 401  # still protected

    last_children = list(second.groups().values())
    second.process.send_signal(signal.SIGINT)
    assert second.process.wait(timeout=90) == 0, second.log()
    assert not any(alive(pid) for pid in last_children)
    assert not (data_dir / "onebox.run.json").exists()
