"""Tenants with AUTH_REQUIRED=true on a real emulator: drop-folder files belong to a project, and
another project can neither transcribe them through `s3_uri` nor learn whether they exist; queue
positions count only the caller's project."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api_lambda import keys_cli
from tests.fixtures_aws import AwsEnv, ingest_pending
from tests.test_api import WAV
from tests.test_auth import token
from tests.test_ingest import drop


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"AUTH_REQUIRED": "true"}


def test_a_dropped_file_belongs_to_the_project_of_its_folder(api: TestClient, aws: AwsEnv) -> None:
    alpha, beta = keys_cli.create(aws.settings, "teamA"), keys_cli.create(aws.settings, "teamB")
    key = "incoming/teamA/call.wav"
    job_id = drop(aws, key)
    assert ingest_pending(aws) == [(key, "queued")]
    assert aws.job(job_id).project_id == "teamA"

    assert api.get("/jobs", params={"source_key": key}, headers=token(alpha)).json()["job_id"] == job_id
    assert api.get(f"/jobs/{job_id}", headers=token(alpha)).status_code == 200
    foreign = api.get("/jobs", params={"source_key": key}, headers=token(beta))
    missing = api.get("/jobs", params={"source_key": "incoming/teamA/none.wav"}, headers=token(beta))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == {"detail": f"Job for {key} not found"}  # same words as a missing file
    assert api.get(f"/jobs/{job_id}", headers=token(beta)).status_code == 404


def test_s3_uri_of_another_projects_drop_reads_as_missing(api: TestClient, aws: AwsEnv) -> None:
    alpha, beta = keys_cli.create(aws.settings, "teamA"), keys_cli.create(aws.settings, "teamB")
    bucket = aws.settings.bucket_name
    drop(aws, "incoming/teamA/call.wav")
    ingest_pending(aws)

    def submit(uri: str, secret: str):
        return api.post("/jobs", json={"s3_uri": uri}, headers=token(secret))

    stolen = submit(f"s3://{bucket}/incoming/teamA/call.wav", beta)
    absent = submit(f"s3://{bucket}/incoming/teamB/none.wav", beta)
    assert stolen.status_code == absent.status_code == 404
    assert stolen.json()["detail"].replace("teamA/call", "X") == absent.json()["detail"].replace(
        "teamB/none", "X"
    )
    own = submit(f"s3://{bucket}/incoming/teamA/call.wav", alpha)
    assert own.status_code == 201 and aws.job(own.json()["job_id"]).project_id == "teamA"


def test_drop_folder_projects_can_be_configured(aws: AwsEnv) -> None:
    from shared.ingestion import drop_project

    settings = aws.settings.model_copy(update={"drop_folder_projects": "incoming/a/=p1, incoming/a/b/=p2"})
    prefixes = settings.drop_folder_prefixes
    assert drop_project("incoming/a/x.wav", prefixes) == "p1"
    assert drop_project("incoming/a/b/x.wav", prefixes) == "p2"  # the longest prefix wins
    assert drop_project("incoming/c/x.wav", prefixes) is None
    assert drop_project("incoming/c/x.wav", ()) == "c" and drop_project("incoming/x.wav", ()) is None


def test_position_counts_only_the_callers_project(api: TestClient, aws: AwsEnv) -> None:
    alpha, beta = keys_cli.create(aws.settings, "alpha"), keys_cli.create(aws.settings, "beta")

    def submit(secret: str):
        answer = api.post("/jobs", files={"file": ("a.wav", WAV, "audio/wav")}, headers=token(secret))
        assert answer.status_code == 201, answer.text
        return answer.json()

    assert [submit(alpha)["position"] for _ in range(3)] == [0, 1, 2]
    first_beta = submit(beta)
    assert first_beta["position"] == 0  # alpha's three jobs are not beta's queue
    assert api.get(f"/jobs/{first_beta['job_id']}", headers=token(beta)).json()["position"] == 0
