"""API keys with AUTH_REQUIRED=true, on a real emulator: `Token` and `Bearer` both work, missing,
wrong and revoked keys are 401, and a job is invisible (404) to another project's key. Keys are
made and revoked with the key CLI's own functions. The one-command local run prints a key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from fastapi.testclient import TestClient

from api_lambda import keys_cli
from shared.api_keys import hash_key
from tests.fixtures_aws import REPO_ROOT, AwsEnv, free_port, wait_for
from tests.test_api import WAV, complete_with_result


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"AUTH_REQUIRED": "true"}


def token(secret: str) -> dict[str, str]:
    return {"Authorization": f"Token {secret}"}


def submit(api: TestClient, secret: str) -> str:
    answer = api.post("/jobs", files={"file": ("call.wav", WAV, "audio/wav")}, headers=token(secret))
    assert answer.status_code == 201, answer.text
    return answer.json()["job_id"]


def test_requests_without_a_valid_key_are_401(api: TestClient, aws: AwsEnv) -> None:
    secret = keys_cli.create(aws.settings, "alpha")
    job_id = submit(api, secret)
    for headers in ({}, token("0" * 40), {"Authorization": secret}, {"Authorization": "Basic abc"}):
        for method, path in [
            ("GET", f"/jobs/{job_id}"),
            ("GET", f"/jobs/{job_id}/result"),
            ("POST", "/jobs"),
        ]:
            answer = api.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.headers["www-authenticate"] == "Token"
            assert set(answer.json()) == {"detail"}
    listen = api.post("/v1/listen", content=WAV, headers={"Content-Type": "audio/wav"})
    assert listen.status_code == 401
    assert listen.json()["err_code"] == "INVALID_AUTH" and set(listen.json()) == {
        "err_code",
        "err_msg",
        "request_id",
    }
    assert api.get("/health").status_code == 200 and api.get("/docs").status_code == 200  # open by design


def test_token_and_bearer_are_both_accepted(api: TestClient, aws: AwsEnv) -> None:
    secret = keys_cli.create(aws.settings, "alpha")
    job_id = submit(api, secret)
    for header in (f"Token {secret}", f"Bearer {secret}", f"bearer {secret}", f"token  {secret} "):
        assert api.get(f"/jobs/{job_id}", headers={"Authorization": header}).status_code == 200, header


def test_a_revoked_key_is_401_and_other_keys_keep_working(
    api: TestClient, aws: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    kept, revoked = keys_cli.create(aws.settings, "alpha"), keys_cli.create(aws.settings, "alpha", "laptop")
    job_id = submit(api, revoked)
    assert keys_cli.main(["revoke", hash_key(revoked)[:16]]) == 0
    assert api.get(f"/jobs/{job_id}", headers=token(revoked)).status_code == 401
    assert api.get(f"/jobs/{job_id}", headers=token(kept)).status_code == 200  # same project

    capsys.readouterr()
    assert keys_cli.main(["list", "--project", "alpha"]) == 0
    listing = capsys.readouterr().out
    assert revoked not in listing and kept not in listing  # secrets are never shown again
    assert revoked[:8] in listing and kept[:8] in listing and "revoked" in listing
    assert keys_cli.main(["revoke", "nosuchkey"]) == 1


def test_only_the_jobs_project_can_see_fetch_or_delete_it(api: TestClient, aws: AwsEnv) -> None:
    alpha, beta = keys_cli.create(aws.settings, "alpha"), keys_cli.create(aws.settings, "beta")
    job_id = submit(api, alpha)
    assert aws.job(job_id).project_id == "alpha"
    complete_with_result(aws, job_id)
    not_found = {"detail": f"Job {job_id} not found"}
    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/result"),
        ("GET", f"/jobs/{job_id}/result?format=srt"),
        ("DELETE", f"/jobs/{job_id}"),
    ]:
        answer = api.request(method, path, headers=token(beta))
        assert (answer.status_code, answer.json()) == (404, not_found), (method, path)
    assert api.get(f"/jobs/{job_id}", headers=token(alpha)).json()["status"] == "completed"
    assert api.get(f"/jobs/{job_id}/result", headers=token(alpha)).status_code == 200
    assert api.delete(f"/jobs/{job_id}", headers=token(alpha)).json() == {"message": "Job deleted"}


def test_listen_jobs_belong_to_the_keys_project(api: TestClient, aws: AwsEnv) -> None:
    alpha, beta = keys_cli.create(aws.settings, "alpha"), keys_cli.create(aws.settings, "beta")
    answer = api.post(
        "/v1/listen",
        content=WAV,
        params={"callback": "https://example.com/cb"},
        headers={"Content-Type": "audio/wav", **token(alpha)},
    )
    request_id = answer.json()["request_id"]
    assert aws.job(request_id).project_id == "alpha"
    assert api.get(f"/jobs/{request_id}", headers=token(beta)).status_code == 404
    assert api.get(f"/jobs/{request_id}", headers=token(alpha)).status_code == 200


def test_key_rows_are_not_jobs(api: TestClient, aws: AwsEnv) -> None:
    secret = keys_cli.create(aws.settings, "alpha")
    row_key = quote(f"apikey#{hash_key(secret)}", safe="")
    answer = api.get(f"/jobs/{row_key}", headers=token(secret))
    assert answer.status_code == 404 and answer.json()["detail"].startswith("Job apikey#")
    assert api.get("/health").json() == {"status": "healthy", "queued_jobs": 0, "processing_jobs": 0}


@pytest.mark.parametrize("auth", ["true", "false"])
def test_the_local_run_prints_a_key_or_says_it_is_open(tmp_path: Path, auth: str) -> None:
    port, log_path = free_port(), tmp_path / "local.log"
    env = {**os.environ, "AUTH_REQUIRED": auth, "LOG_JSON": "false", "DATA_DIR": str(tmp_path / "data")}
    for name in ("AWS_ENDPOINT_URL", "TABLE_NAME", "BUCKET_NAME", "QUEUE_NAME", "DLQ_NAME"):
        env.pop(name, None)
    command = [sys.executable, "-m", "onebox", "--no-worker", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "Authentication is" in log_path.read_text() or process.poll() is not None, "start")
        printed = log_path.read_text()
        url = f"http://127.0.0.1:{port}/jobs/nope"
        if auth == "false":
            assert "Authentication is OFF" in printed
            assert requests.get(url).status_code == 404
        else:
            secret = re.search(r"\(kept in DATA_DIR, shown only now\): (\w+)", printed)
            assert secret, printed
            assert requests.get(url).status_code == 401
            assert requests.get(url, headers=token(secret.group(1))).status_code == 404
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
