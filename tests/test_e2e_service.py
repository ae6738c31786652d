"""The seed's whole flow against the one-command local run on the AWS route
(`python -m onebox --emulate-aws`): embedded emulator, API over real HTTP on its own
port, one worker running the real pipeline (tiny.en). tests/test_onebox.py runs the default
(embedded) backend through crashes.

The seed's own client code is used as written: `requests` for the Python example, `curl` for the
shell one. A job whose file name contains "hold-me" is parked at its first stage by the worker's
test hook, so the test can see `processing` and a queued job's position without racing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests

from shared.resources import result_key, upload_key
from shared.stages import Stage
from tests.fixtures_aws import REPO_ROOT, free_port, wait_for

pytestmark = pytest.mark.slow


@dataclass
class LocalService:
    url: str
    moto_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def local_service(tmp_path: Path) -> Iterator[LocalService]:
    port, moto_port = free_port(), free_port()
    env = {
        **os.environ,
        "WORKER_FAULT_INJECTION": "hold@hold-me",
        "POLL_WAIT_SECONDS": "1",
        "WORKER_HEARTBEAT_SECONDS": "2",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
    }
    for name in (
        "AWS_ENDPOINT_URL",
        "BUCKET_NAME",
        "QUEUE_NAME",
        "DLQ_NAME",
        "TABLE_NAME",
        "DEFAULT_WHISPER_MODEL",
    ):
        env.pop(name, None)  # the local run's own defaults, as a user would get them
    log_path = tmp_path / "local.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.faults",  # the one-machine run, its worker with tests/faults.py's hooks
                "onebox",
                "--emulate-aws",
                "--port",
                str(port),
                "--moto-port",
                str(moto_port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = LocalService(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", process, log_path)
    try:
        wait_for(
            lambda: "Whisper diarization service at" in service.log() or process.poll() is not None, "start"
        )
        assert process.poll() is None, service.log()
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def s3_keys(service: LocalService) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=service.moto_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return [o["Key"] for o in s3.list_objects_v2(Bucket="whisper-diarization-jobs").get("Contents", [])]


def test_seed_flow_end_to_end(local_service: LocalService, conversation, tmp_path: Path) -> None:
    API_URL = local_service.url
    hold_me = tmp_path / "hold-me.wav"
    shutil.copyfile(conversation.path, hold_me)

    # A first job keeps the single worker busy (parked at its first stage).
    with open(hold_me, "rb") as f:
        busy = requests.post(f"{API_URL}/jobs", files={"file": f}).json()
    assert busy == {"job_id": busy["job_id"], "status": "queued", "position": 0}
    busy_status = wait_for(
        lambda: (
            (s := requests.get(f"{API_URL}/jobs/{busy['job_id']}").json())["status"] == "processing" and s
        ),
        "the first job to start",
    )
    assert busy_status["progress"] in {stage.value for stage in Stage}

    # The seed's cURL example, verbatim but for the file.
    submitted = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{API_URL}/jobs", "-F", f"file=@{conversation.path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    job_id = json.loads(submitted.stdout)["job_id"]
    assert requests.get(f"{API_URL}/jobs/{job_id}").json() == {
        "job_id": job_id,
        "status": "queued",
        "position": 0,
    }
    assert requests.get(f"{API_URL}/health").json() == {
        "status": "healthy",
        "queued_jobs": 1,
        "processing_jobs": 1,
    }

    # The seed's Python example asks for medium.en, which this machine lacks: a clear 422.
    with open(conversation.path, "rb") as f:
        response = requests.post(f"{API_URL}/jobs", files={"file": f}, data={"whisper_model": "medium.en"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("model 'medium.en' is not available on this deployment")

    # Cancel the running job; the worker stops it at the next stage boundary and takes ours.
    assert requests.delete(f"{API_URL}/jobs/{busy['job_id']}").json() == {"message": "Job deleted"}
    seen: list[dict] = []

    def finished() -> bool:
        status = requests.get(f"{API_URL}/jobs/{job_id}").json()
        if not seen or seen[-1] != status:
            seen.append(status)
        if status["status"] == "failed":
            raise AssertionError(status["error"])
        return status["status"] == "completed"

    wait_for(finished, "the job to complete", every=0.05)
    assert [s["status"] for s in seen][-1] == "completed"
    assert {s["status"] for s in seen} <= {"queued", "processing", "completed"}
    assert all(s["progress"] in {stage.value for stage in Stage} for s in seen if s["status"] == "processing")
    assert requests.get(f"{API_URL}/jobs/{busy['job_id']}").json()["status"] == "cancelled"

    # The result, read as the seed's Python example reads it.
    result = requests.get(f"{API_URL}/jobs/{job_id}/result").json()
    assert result["metadata"]["request_id"] == job_id
    transcript = result["results"]["channels"][0]["alternatives"][0]["transcript"]
    assert "garden" in transcript.lower()
    words = result["results"]["channels"][0]["alternatives"][0]["words"]
    assert words and all(isinstance(w["speaker"], int) for w in words)
    utterances = result["results"]["utterances"]
    assert len({u["speaker"] for u in utterances}) == conversation.num_speakers

    # Delete: gone from the API and from S3.
    ours = {upload_key(job_id, conversation.path.name), result_key(job_id)}
    assert ours <= set(s3_keys(local_service))
    assert requests.delete(f"{API_URL}/jobs/{job_id}").json() == {"message": "Job deleted"}
    assert requests.get(f"{API_URL}/jobs/{job_id}").status_code == 404
    assert requests.get(f"{API_URL}/jobs/{job_id}/result").json() == {"detail": f"Job {job_id} not found"}
    assert not ours & set(s3_keys(local_service))

    # Ctrl-C stops everything cleanly.
    local_service.process.send_signal(signal.SIGINT)
    assert local_service.process.wait(timeout=120) == 0, local_service.log()
