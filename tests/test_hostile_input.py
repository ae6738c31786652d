"""Hostile names, numbers and files on a real emulator: each ends as a 4xx or a `failed` job with a
reason, never a 5xx, a hang, a retry of a permanent error, or a user's name used as a path."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gpu_worker.worker import Worker
from shared.jobs import JobOptions, JobStatus
from tests.fixtures_aws import AwsEnv
from tests.test_api import WAV, nothing_stored
from tests.test_body_limits import RawRequest, serve
from tests.test_worker import queue_drained, result_of, wait_status

HOSTILE_NAMES = [
    "..",
    "../../etc/passwd",
    "a" * 1000 + ".wav",
    "nul\x00byte.wav",
    "new\nline.wav",
    "tab\there\r.wav",
    "ünïcødé 名前 \u202etxt.wav",
    "C:\\Users\\x\\call.WAV",
]


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    """A form with a `file` part whose filename is written raw (clients differ in escaping it)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode("utf-8", "surrogateescape")
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_file_name_is_kept_for_display_and_never_used_as_a_key(
    api: TestClient, aws: AwsEnv, name: str
) -> None:
    body, content_type = multipart(name, WAV)
    answer = api.post("/jobs", content=body, headers={"Content-Type": content_type})
    assert answer.status_code in (201, 400, 422), answer.text
    if answer.status_code != 201:
        assert nothing_stored(aws)
        return
    job = aws.job(answer.json()["job_id"])
    assert job.upload_key in (f"uploads/{job.job_id}/audio", f"uploads/{job.job_id}/audio.wav")
    assert len(job.filename) <= 255 and job.filename.isprintable() and "\n" not in job.filename


def test_a_header_value_with_cr_lf_is_never_signed(api: TestClient, aws: AwsEnv) -> None:
    answer = api.post("/uploads", json={"filename": "a.wav", "content_type": "audio/wav\r\nX: y"})
    assert answer.status_code == 415 and "well-formed" in answer.json()["detail"]
    assert nothing_stored(aws)
    body, content_type = multipart("a.wav", WAV)
    odd = body.replace(b"Content-Type: audio/wav", b"Content-Type: audio/w\xc3\xa4v")
    answer = api.post("/jobs", content=odd, headers={"Content-Type": content_type})
    assert answer.status_code == 201  # an odd part type is dropped, not passed on to S3
    assert aws.job(answer.json()["job_id"]).content_type is None


@pytest.mark.parametrize("value", ["inf", "1e308", "nan", "-inf", "0", "1e400"])
def test_an_out_of_range_number_is_400_and_the_connection_stays_usable(aws: AwsEnv, value: str) -> None:
    with serve(aws.settings) as served:
        request = RawRequest(
            served.port,
            "POST",
            f"/v1/listen?utt_split={value}&callback=https://example.com/cb",
            {"Content-Type": "audio/wav", "Content-Length": str(len(WAV))},
        )
        try:
            request.send(WAV)
            answer = request.response()
            assert answer.status == 400 and b"utt_split" in answer.read()
            request.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection
            assert request.response().status == 200
        finally:
            request.close()
    assert nothing_stored(aws)


def test_stale_job_folders_are_removed_at_worker_start(aws: AwsEnv) -> None:
    ops, upload_dir = aws.store.ops, aws.settings.upload_dir
    busy = ops.queued_job(str(uuid.uuid4()), JobOptions(whisper_model="tiny.en"), upload_key="k",
                          filename="a.wav", size_bytes=1, content_type=None)  # fmt: skip
    aws.store.create(busy)
    assert aws.store.run(ops.claim(busy.job_id, "someone-else")).won  # a live lease: still in use
    stale, finished_id, other = str(uuid.uuid4()), str(uuid.uuid4()), "not-a-job-folder"
    for folder in (stale, busy.job_id, other):
        (upload_dir / folder).mkdir(parents=True)
        (upload_dir / folder / "audio.wav").write_bytes(b"x")
    (upload_dir / finished_id).mkdir()
    removed = Worker(aws.settings, session=aws.session).clean_stale_workdirs()
    assert removed == 2
    assert sorted(p.name for p in upload_dir.iterdir()) == sorted([busy.job_id, other])


# --- the hostile-upload corpus, through a real worker ------------------------------------------------
def wav_header(*, data_bytes: int, rate: int = 16000, channels: int = 1) -> bytes:
    byte_rate = rate * channels * 2
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, byte_rate, channels * 2, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )  # fmt: skip


CORPUS: dict[str, bytes] = {
    "empty.wav": b"",
    "truncated.wav": wav_header(data_bytes=16000 * 2 * 60) + bytes(3000),  # says 60 s, holds 0.1 s
    "wrong-type.wav": b"%PDF-1.7\n" + bytes(5000),
    "huge-header.wav": b"RIFF\xff\xff\xff\xffWAVE" + b"LIST" + struct.pack("<I", 2**31) + bytes(4096),
    # a few KB whose header claims 500 hours: never expanded to what it claims (see below)
    "bomb.wav": wav_header(data_bytes=0xF0000000, rate=1000) + bytes(4096),
    "../../../../tmp/evil.wav": b"not audio at all" * 300,
    "nul\x00name.wav": b"not audio at all" * 300,
    "new\nline.wav": b"not audio at all" * 300,
    "x" * 1000 + ".wav": b"not audio at all" * 300,
}


@pytest.mark.slow
def test_the_hostile_upload_corpus_ends_in_4xx_or_failed_jobs_with_reasons(
    api: TestClient, aws: AwsEnv, spawn_worker, tmp_path: Path
) -> None:
    job_ids = {}
    for name, content in CORPUS.items():
        body, content_type = multipart(name, content)
        answer = api.post("/jobs", content=body, headers={"Content-Type": content_type})
        assert answer.status_code < 500, (name, answer.text)
        if answer.status_code == 201:
            job_ids[name] = answer.json()["job_id"]
        else:
            assert answer.status_code in (400, 413, 415, 422) and answer.json()["detail"], name
    assert job_ids, "every file was refused at the door; the worker saw none"
    spawn_worker()
    home = str(Path.home())
    for name, job_id in job_ids.items():
        job = wait_status(aws, job_id, JobStatus.FAILED, JobStatus.COMPLETED)
        if name == "bomb.wav" and job.status is JobStatus.COMPLETED:  # the decoder trusts the bytes,
            assert result_of(aws, job_id)["metadata"]["duration"] < 5  # not the header's 500 hours
            continue
        assert job.status is JobStatus.FAILED and job.error, (name, job)
        assert job.attempts == 1, (name, job.attempts, job.error)  # permanent: never retried
        for internal in (home, str(aws.settings.upload_dir), "Traceback"):
            assert internal not in job.error, (name, job.error)
    assert not any(aws.settings.upload_dir.glob("*/*")) if aws.settings.upload_dir.exists() else True
    assert queue_drained(aws)


def test_ids_and_keys_the_stores_refuse_are_404_or_422_not_500(api: TestClient, aws: AwsEnv) -> None:
    """Found by the fuzz test: DynamoDB and S3 refuse empty or oversized keys with errors that were
    answered 500."""
    assert api.get(f"/jobs/{'x' * 3000}").status_code == 404
    assert api.post("/jobs", json={"upload_id": ""}).status_code == 404
    assert api.get("/jobs", params={"source_key": "incoming/" + "k" * 2000}).status_code == 404
    long_key = api.post("/jobs", json={"s3_uri": f"s3://{aws.settings.bucket_name}/incoming/{'k' * 2000}"})
    bad_bucket = api.post("/jobs", json={"s3_uri": "s3://Not_A_Bucket/incoming/a.wav"})
    assert long_key.status_code == 422 and bad_bucket.status_code in (403, 422)
