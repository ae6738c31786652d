"""Ingestion of S3 ObjectCreated events (`api_lambda/ingest.py`) on a real emulator: the events are
the ones the emulator's bucket notifications really sent to the ingest queue, or an event shaped
exactly as AWS hands it to the Lambda handler. The last test runs the whole local path: the
ingest consumer process and a worker running the real pipeline (tiny.en) on synthesized speech.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from fastapi.testclient import TestClient

from api_lambda.ingest import handler
from shared.ingestion import drop_job_id
from shared.jobs import JobStatus
from shared.resources import result_key
from tests.fixtures_aws import REPO_ROOT, AwsEnv, ingest_events, ingest_pending, run_ingest, wait_for

WAV = b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00" + bytes(2048)


def create_upload(api: TestClient, filename: str = "call.wav") -> dict[str, Any]:
    answer = api.post("/uploads", json={"filename": filename})
    assert answer.status_code == 201, answer.text
    return answer.json()


def put(upload: dict[str, Any], content: bytes) -> None:
    answer = requests.put(upload["put"]["url"], data=content, headers=upload["put"]["headers"], timeout=60)
    assert answer.status_code == 200, answer.text


def messages_for(aws: AwsEnv, job_id: str) -> int:
    sqs = aws.client("sqs")
    found = sqs.receive_message(QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return sum(json.loads(m["Body"])["job_id"] == job_id for m in found)


# --- idempotency ------------------------------------------------------------------------------------
def test_a_repeated_event_queues_once_and_test_events_are_skipped(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api)
    put(upload, WAV)
    events = ingest_events(aws)
    assert [e.get("Event") for e in events] == ["s3:TestEvent", None]  # the setup's, then the PUT's
    test_event, put_event = events
    assert run_ingest(aws, test_event) == []
    assert run_ingest(aws, put_event) == [(upload["key"], "queued")]
    assert run_ingest(aws, put_event, put_event) == [(upload["key"], "duplicate")] * 2
    assert aws.job(upload["job_id"]).status is JobStatus.QUEUED
    assert messages_for(aws, upload["job_id"]) == 1


def test_a_multipart_upload_emits_two_events_and_queues_once(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api)
    s3, bucket, key = aws.client("s3"), aws.settings.bucket_name, upload["key"]
    started = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="audio/wav")
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=started["UploadId"], PartNumber=1, Body=WAV)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=started["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert ingest_pending(aws) == [(key, "queued"), (key, "duplicate")]
    assert messages_for(aws, upload["job_id"]) == 1


def test_the_apis_own_uploads_are_skipped(api: TestClient, aws: AwsEnv) -> None:
    answer = api.post("/jobs", files={"file": ("direct.wav", WAV, "audio/wav")})
    job_id = answer.json()["job_id"]
    assert ingest_pending(aws) == [(f"uploads/{job_id}/audio.wav", "skipped")]
    assert aws.job(job_id).status is JobStatus.QUEUED and aws.object_keys("uploads/")
    assert messages_for(aws, job_id) == 1


# --- the Lambda handler ------------------------------------------------------------------------------
def aws_s3_event(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """An ObjectCreated notification exactly as S3 invokes a Lambda function with it."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-01-05T12:34:56.789Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.7"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "whisper-diarization-Uploads",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),  # AWS: spaces as +, the rest %-encoded
                        "size": size,
                        "eTag": etag,
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def test_the_lambda_handler_answers_an_s3_event_as_aws_sends_it(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api, filename="board call #2 (final).wav")
    assert upload["key"].endswith("/presigned/audio.wav")  # the user's name is kept for display only
    assert aws.job(upload["job_id"]).filename == "board call #2 (final).wav"
    put(upload, WAV)
    ingest_events(aws)  # the emulator's own events are not used here
    head = aws.client("s3").head_object(Bucket=aws.settings.bucket_name, Key=upload["key"])
    event = aws_s3_event(aws.settings.bucket_name, upload["key"], len(WAV), head["ETag"].strip('"'))

    assert handler(event, None) == {"outcomes": [{"key": upload["key"], "outcome": "queued"}]}
    assert handler(event, None) == {"outcomes": [{"key": upload["key"], "outcome": "duplicate"}]}
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": aws.settings.bucket_name}
    assert handler(test_event, None) == {"outcomes": []}
    other = aws_s3_event("someone-elses-bucket", "uploads/x/presigned/y.wav", 1, "0")
    assert handler(other, None) == {"outcomes": [{"key": "uploads/x/presigned/y.wav", "outcome": "skipped"}]}
    assert aws.job(upload["job_id"]).status is JobStatus.QUEUED
    assert messages_for(aws, upload["job_id"]) == 1


# --- the drop folder -----------------------------------------------------------------------------------
def drop(aws: AwsEnv, key: str, body: bytes = WAV, **metadata: str) -> str:
    """Put a file under incoming/ as `aws s3 cp` would; returns the job id it must get."""
    s3, bucket = aws.client("s3"), aws.settings.bucket_name
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="audio/wav", Metadata=metadata)
    head = s3.head_object(Bucket=bucket, Key=key)
    return drop_job_id(bucket, key, head["ETag"], head["Metadata"])


def test_a_dropped_file_becomes_a_job_with_its_metadata_parameters(api: TestClient, aws: AwsEnv) -> None:
    key = "incoming/team/weekly call.wav"
    job_id = drop(aws, key, **{"whisper-model": "tiny.en", "num-speakers": "2", "department": "sales"})
    assert ingest_pending(aws) == [(key, "queued")]
    job = aws.job(job_id)
    assert (job.status, job.upload_key, job.filename) == (JobStatus.QUEUED, key, "weekly call.wav")
    assert (job.options.whisper_model, job.options.num_speakers) == ("tiny.en", 2)
    assert job.result_copy_key == "results/team/weekly call.json"
    assert messages_for(aws, job_id) == 1
    lookup = api.get("/jobs", params={"source_key": key})
    assert lookup.json() == {
        "job_id": job_id,
        "status": "queued",
        "source_key": key,
        "result_key": "results/team/weekly call.json",
    }

    assert drop(aws, key, **{"whisper-model": "tiny.en", "num-speakers": "2"}) == job_id  # same file
    assert ingest_pending(aws) == [(key, "duplicate")]
    rerun = drop(aws, key, **{"num-speakers": "3"})  # other parameters: another job
    assert rerun != job_id and ingest_pending(aws) == [(key, "queued")]
    assert api.get("/jobs", params={"source_key": key}).json()["job_id"] == rerun
    assert api.get("/jobs", params={"source_key": "incoming/nothing-here.wav"}).status_code == 404


def test_a_refused_drop_fails_its_job_with_the_reason(api: TestClient, aws: AwsEnv) -> None:
    notes = drop(aws, "incoming/notes.wav", b"meeting notes, not a recording\n")
    typo = drop(aws, "incoming/typo.wav", **{"batch-size": "eight"})
    assert sorted(ingest_pending(aws)) == [
        ("incoming/notes.wav", "refused"),
        ("incoming/typo.wav", "refused"),
    ]
    assert aws.job(notes).error.startswith(
        "Uploaded file 'notes.wav' is not audio or video (it looks like text)"
    )
    found = api.get("/jobs", params={"source_key": "incoming/typo.wav"}).json()
    assert found == {
        "job_id": typo,
        "status": "failed",
        "source_key": "incoming/typo.wav",
        "error": "x-amz-meta-batch-size: 'eight' is not a whole number",
    }
    assert not aws.messages_in(aws.resources.queue_url)


# --- end to end: ingest consumer + worker, real pipeline -------------------------------------------------
@pytest.fixture(scope="module")
def speech(corpus, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One sentence of one voice (a few seconds): the cheapest real speech."""
    item = corpus["single_speaker"]
    target = tmp_path_factory.mktemp("clips") / "sentence.wav"
    end = f"{item.turns[0].end + 0.3:.2f}"
    subprocess.run(["sox", str(item.path), str(target), "trim", "0", end], check=True)
    return target.read_bytes()


@pytest.fixture
def ingest_consumer(aws: AwsEnv, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """`python -m onebox.ingest_consumer` on this test's resources; yields a log reader."""
    log_path = tmp_path / "ingest-consumer.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "onebox.ingest_consumer"],
            cwd=REPO_ROOT,
            env={**os.environ, **aws.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield lambda: log_path.read_text(errors="replace")
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_uploads_and_drops_complete_through_the_consumer_and_a_worker(
    api: TestClient, aws: AwsEnv, speech: bytes, ingest_consumer: Callable[[], str], spawn_worker
) -> None:
    worker = spawn_worker()
    upload = create_upload(api, filename="sentence.wav")
    put(upload, speech)
    dropped = drop(aws, "incoming/team/sentence.wav", speech)

    def finished(job_id: str) -> bool:
        state = api.get(f"/jobs/{job_id}").json()
        assert state["status"] != "failed", (state, worker.log(), ingest_consumer())
        return state["status"] == "completed"

    wait_for(lambda: finished(upload["job_id"]) and finished(dropped), "both jobs to complete")
    result = api.get(f"/jobs/{upload['job_id']}/result")
    assert result.status_code == 200
    transcript = result.json()["results"]["channels"][0]["alternatives"][0]["transcript"]
    assert len(transcript.split()) >= 3, transcript

    s3, bucket = aws.client("s3"), aws.settings.bucket_name
    copy = s3.get_object(Bucket=bucket, Key="results/team/sentence.json")["Body"].read()
    assert copy == s3.get_object(Bucket=bucket, Key=result_key(dropped))["Body"].read()
    assert api.get(f"/jobs/{dropped}/result").json() == json.loads(copy)
    assert (
        api.get("/jobs", params={"source_key": "incoming/team/sentence.wav"}).json()["status"] == "completed"
    )
