"""Presigned uploads (`POST /uploads`) and `POST /jobs` with a JSON body, on a real emulator.

Files go up with plain `requests` to the presigned URLs, as a client would. The emulator checks
neither signatures nor size or type conditions, so these tests show the APPLICATION refusing what
AWS itself would (and more): the ingest step (`api_lambda/ingest.py`, run here on the events the
emulator really sent) fails such a job with the reason and deletes the object.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from shared.jobs import JobStatus
from shared.queue import JobMessage
from tests.fixtures_aws import AwsEnv, ingest_pending

WAV = b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00" + bytes(2048)
PDF = b"%PDF-1.7\n" + bytes(200)


def create_upload(api: TestClient, **body: Any) -> dict[str, Any]:
    answer = api.post("/uploads", json={"filename": "call.wav", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def put(upload: dict[str, Any], content: bytes, content_type: str | None = None) -> None:
    headers = dict(upload["put"]["headers"])
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = requests.put(upload["put"]["url"], data=content, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text


def queued_messages(aws: AwsEnv) -> list[JobMessage]:
    sqs = aws.client("sqs")
    found = sqs.receive_message(QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [JobMessage.from_body(m["Body"]) for m in found]


def job_rows(aws: AwsEnv) -> list[dict[str, Any]]:
    return [item for item in aws.table_items() if item["status"] != "worker"]


# --- POST /uploads ------------------------------------------------------------------------------------
def test_an_upload_creates_a_waiting_job_and_its_put_starts_it(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api, content_type="audio/wav", num_speakers=2)
    job_id = upload["job_id"]
    assert upload["upload_id"] == job_id and upload["status"] == "awaiting_upload"
    assert upload["key"] == f"uploads/{job_id}/presigned/audio.wav"
    assert upload["max_bytes"] == aws.settings.max_upload_bytes
    assert upload["put"]["method"] == "PUT" and upload["put"]["headers"] == {"Content-Type": "audio/wav"}
    assert upload["post"]["fields"]["key"] == upload["key"]
    assert api.get(f"/jobs/{job_id}").json() == {"job_id": job_id, "status": "awaiting_upload"}
    assert api.get("/health").json()["queued_jobs"] == 0
    assert aws.job(job_id).options.num_speakers == 2
    assert not queued_messages(aws)

    put(upload, WAV)
    assert ingest_pending(aws) == [(upload["key"], "queued")]
    job = aws.job(job_id)
    assert (job.status, job.size_bytes, job.content_type) == (JobStatus.QUEUED, len(WAV), "audio/wav")
    assert api.get(f"/jobs/{job_id}").json() == {"job_id": job_id, "status": "queued", "position": 0}
    (message,) = queued_messages(aws)
    assert (message.job_id, message.upload_key) == (job_id, upload["key"])


def test_the_presigned_post_form_works_too(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api, content_type="audio/wav")
    form = upload["post"]
    answer = requests.post(
        form["url"], data=form["fields"], files={"file": ("call.wav", WAV, "audio/wav")}, timeout=30
    )
    assert answer.status_code == 204, answer.text
    assert upload["key"] in aws.object_keys("uploads/")
    assert ingest_pending(aws) == [(upload["key"], "queued")]
    assert aws.job(upload["job_id"]).status is JobStatus.QUEUED


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"whisper_model": "huge"}, 422, "Unknown whisper_model 'huge'. Choose one of:"),
        ({"batch_size": 0}, 422, "batch_size: Input should be greater than or equal to 1 (got 0)"),
        ({"language": "fr"}, 422, "whisper_model 'tiny.en' only transcribes English"),
        ({"content_type": "text/plain"}, 415, "content type 'text/plain' is not audio or video"),
        ({"size_bytes": 3 * 1024**3}, 413, "File too large: the limit is 2147483648 bytes"),
    ],
)
def test_uploads_are_validated_as_post_jobs_is(
    api: TestClient, aws: AwsEnv, body: dict[str, Any], status: int, detail: str
) -> None:
    answer = api.post("/uploads", json={"filename": "call.wav", **body})
    assert answer.status_code == status
    assert detail in answer.json()["detail"]
    assert not job_rows(aws)


# --- refused uploads: enforced by the application --------------------------------------------------
@pytest.mark.parametrize("aws_overrides", [{"MAX_UPLOAD_BYTES": "4000"}])
def test_an_oversized_upload_fails_its_job_and_is_deleted(api: TestClient, aws: AwsEnv) -> None:
    declared = create_upload(api, size_bytes=1000)  # S3 would refuse the PUT; the emulator doesn't
    assert declared["max_bytes"] == 1000
    unlimited = create_upload(api, filename="long.wav")  # only MAX_UPLOAD_BYTES applies
    put(declared, WAV)
    put(unlimited, WAV + bytes(4000))
    assert sorted(ingest_pending(aws)) == sorted(
        [(declared["key"], "refused"), (unlimited["key"], "refused")]
    )

    assert api.get(f"/jobs/{declared['job_id']}").json() == {
        "job_id": declared["job_id"],
        "status": "failed",
        "error": f"File too large: 'call.wav' is {len(WAV)} bytes, more than the size declared for "
        "this upload (1000 bytes)",
    }
    assert api.get(f"/jobs/{unlimited['job_id']}").json()["error"] == (
        f"File too large: 'long.wav' is {len(WAV) + 4000} bytes, more than the limit (4000 bytes)"
    )
    assert not aws.object_keys("uploads/") and not queued_messages(aws)


def test_a_wrong_content_type_fails_its_job_and_is_deleted(api: TestClient, aws: AwsEnv) -> None:
    declared = create_upload(api, content_type="audio/wav")
    undeclared = create_upload(api, filename="page.wav")
    put(declared, WAV, content_type="audio/mpeg")  # signed as audio/wav: S3 would refuse it
    put(undeclared, WAV, content_type="text/html")
    assert sorted(ingest_pending(aws)) == sorted(
        [(declared["key"], "refused"), (undeclared["key"], "refused")]
    )
    assert aws.job(declared["job_id"]).error == (
        "'call.wav' was uploaded as 'audio/mpeg', but the upload was created for 'audio/wav'"
    )
    assert aws.job(undeclared["job_id"]).error.startswith("content type 'text/html' is not audio or video")
    assert not aws.object_keys("uploads/") and not queued_messages(aws)


def test_an_upload_that_is_not_audio_fails_with_a_clear_error(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api, filename="paper.wav")
    put(upload, PDF, content_type="application/octet-stream")
    assert ingest_pending(aws) == [(upload["key"], "refused")]
    job = aws.job(upload["job_id"])
    assert job.status is JobStatus.FAILED
    assert job.error == (
        "Uploaded file 'paper.wav' is not audio or video (it looks like a PDF document); "
        "send a recording such as wav, mp3, m4a, webm, ogg or flac"
    )
    assert not aws.object_keys("uploads/")


def test_an_upload_after_its_job_expired_is_refused(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api)
    aws.client("dynamodb").update_item(  # as if UPLOAD_URL_EXPIRY_SECONDS + JOB_EXPIRY_SECONDS passed
        TableName=aws.settings.table_name,
        Key={"job_id": {"S": upload["job_id"]}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    assert api.get(f"/jobs/{upload['job_id']}").status_code == 404
    put(upload, WAV)
    assert ingest_pending(aws) == [(upload["key"], "too_late")]
    assert not aws.object_keys("uploads/") and not queued_messages(aws)


def test_a_waiting_job_can_be_cancelled_and_a_later_upload_is_refused(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api)
    assert api.delete(f"/jobs/{upload['job_id']}").json() == {"message": "Job deleted"}
    assert api.get(f"/jobs/{upload['job_id']}").json()["status"] == "cancelled"
    put(upload, WAV)
    assert ingest_pending(aws) == [(upload["key"], "too_late")]
    assert not aws.object_keys("uploads/") and not queued_messages(aws)


# --- POST /jobs with JSON -----------------------------------------------------------------------------
def test_post_jobs_with_an_upload_id_starts_the_upload(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api)
    answer = api.post("/jobs", json={"upload_id": upload["job_id"]})
    assert answer.status_code == 409
    assert answer.json()["detail"].startswith(f"Job {upload['job_id']} has no upload yet")
    answer = api.post("/jobs", json={"upload_id": upload["job_id"], "whisper_model": "base"})
    assert answer.status_code == 422 and "set by POST /uploads" in answer.json()["detail"]

    put(upload, WAV)
    answer = api.post("/jobs", json={"upload_id": upload["job_id"]})
    assert answer.status_code == 201
    assert answer.json() == {"job_id": upload["job_id"], "status": "queued", "position": 0}
    assert api.post("/jobs", json={"upload_id": upload["job_id"]}).status_code == 201  # idempotent
    assert ingest_pending(aws) == [(upload["key"], "duplicate")]  # its event came second
    assert [m.job_id for m in queued_messages(aws)] == [upload["job_id"]]


def test_post_jobs_with_an_upload_id_reports_a_refusal(api: TestClient, aws: AwsEnv) -> None:
    upload = create_upload(api, filename="paper.wav")
    put(upload, PDF)
    answer = api.post("/jobs", json={"upload_id": upload["job_id"]})
    assert answer.status_code == 400 and "(it looks like a PDF document)" in answer.json()["detail"]
    again = api.post("/jobs", json={"upload_id": upload["job_id"]})
    assert again.status_code == 409
    assert again.json()["detail"].startswith(f"Job {upload['job_id']} can't be started: it is failed: ")


@pytest.mark.parametrize("aws_overrides", [{"S3_URI_ALLOWED_BUCKETS": "archive-a, archive-b"}])
def test_post_jobs_with_an_s3_uri_copies_the_object_into_the_job(api: TestClient, aws: AwsEnv) -> None:
    s3, bucket = aws.client("s3"), aws.settings.bucket_name
    s3.create_bucket(Bucket="archive-b")
    s3.put_object(Bucket="archive-b", Key="2024/board meeting.wav", Body=WAV, ContentType="audio/wav")
    s3.put_object(Bucket=bucket, Key="incoming/mine.wav", Body=WAV)

    answer = api.post("/jobs", json={"s3_uri": "s3://archive-b/2024/board meeting.wav", "num_speakers": 3})
    assert answer.status_code == 201, answer.text
    job = aws.job(answer.json()["job_id"])
    assert (job.status, job.filename, job.options.num_speakers) == (JobStatus.QUEUED, "board meeting.wav", 3)
    assert job.upload_key == f"uploads/{job.job_id}/audio.wav" and job.filename == "board meeting.wav"
    assert s3.get_object(Bucket=bucket, Key=job.upload_key)["Body"].read() == WAV
    assert api.post("/jobs", json={"s3_uri": f"s3://{bucket}/incoming/mine.wav"}).status_code == 201
    assert len(queued_messages(aws)) == 2
    copies = [outcome for key, outcome in ingest_pending(aws) if key.startswith("uploads/")]
    assert copies == ["skipped", "skipped"]  # the copies are the API's own uploads


@pytest.mark.parametrize(
    ("uri", "status", "detail"),
    [
        (
            "s3://somebody-elses-bucket/call.wav",
            403,
            "s3_uri bucket 'somebody-elses-bucket' is not one this service may read; allowed: ",
        ),
        ("s3://{bucket}/results/x.json", 403, "under incoming/ only, not its job data"),
        ("s3://{bucket}/incoming/missing.wav", 404, "s3_uri: there is no object at s3://"),
        ("s3://{bucket}/incoming/paper.pdf", 400, "(it looks like a PDF document)"),
        ("https://example.com/a.wav", 422, "s3_uri must name one object as s3://bucket/key"),
    ],
)
def test_post_jobs_refuses_s3_uris_it_may_not_or_cannot_use(
    api: TestClient, aws: AwsEnv, uri: str, status: int, detail: str
) -> None:
    aws.client("s3").put_object(Bucket=aws.settings.bucket_name, Key="incoming/paper.pdf", Body=PDF)
    answer = api.post("/jobs", json={"s3_uri": uri.format(bucket=aws.settings.bucket_name)})
    assert answer.status_code == status
    assert detail in answer.json()["detail"]
    assert not job_rows(aws) and not queued_messages(aws)
    assert not aws.object_keys("uploads/")


def test_a_json_body_needs_exactly_one_source(api: TestClient) -> None:
    for body in ({}, {"upload_id": "a", "s3_uri": "s3://b/k"}):
        answer = api.post("/jobs", json=body)
        assert answer.status_code == 422
        assert "give exactly one of upload_id and s3_uri" in json.dumps(answer.json())
    for path, body in (("/jobs", {"upload_id": "a", "speakers": 2}), ("/uploads", {"speakers": 2})):
        answer = api.post(path, json=body)  # a field no endpoint knows is refused, not dropped
        assert answer.status_code == 422, answer.text
        assert [e["type"] for e in answer.json()["detail"]] == ["extra_forbidden"], answer.text


def test_openapi_documents_uploads_and_the_json_job_body(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert "post" in schema["paths"]["/uploads"]
    content = schema["paths"]["/jobs"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(content)
