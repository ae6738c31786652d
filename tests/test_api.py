"""The HTTP API on a real emulator (no worker): status codes, messages and response shapes as the
seed documents them, and nothing half-written left behind by a refused request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.deepgram import Alternative, Channel, DeepgramResponse, Metadata, Results, Utterance, Word
from shared.fleet import WorkerRecord
from shared.jobs import JobStatus, utc_now_iso
from shared.model_catalog import KNOWN_MODELS
from shared.queue import JobMessage
from shared.resources import result_key
from shared.stages import Stage
from tests.fixtures_aws import AwsEnv

# Enough of a WAV header for the API's sniffing; the worker would decode it for real.
WAV = b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00" + bytes(2048)


def submit(api: TestClient, content: bytes = WAV, name: str = "call.wav", **form: str):
    return api.post("/jobs", files={"file": (name, content, "audio/wav")}, data=form)


def nothing_stored(aws: AwsEnv) -> bool:
    return (
        not aws.object_keys()
        and not [i for i in aws.table_items() if i["status"] not in ("worker", "apikey")]
        and not aws.messages_in(aws.resources.queue_url)
    )


def register_worker(aws: AwsEnv, worker_id: str, models: tuple[str, ...], separation: bool = False) -> None:
    now = utc_now_iso()
    record = WorkerRecord(
        worker_id=worker_id,
        hostname="gpu-host",
        models=models,
        separation=separation,
        model_search=("MODEL_DIR (/models)",),
        separation_search=("MODEL_DIR (/models/demucs)",),
        started_at=now,
        heartbeat_at=now,
        expires_at=int(time.time()) + 600,
    )
    aws.store.run(aws.store.ops.register_worker(record))


def deepgram_result(
    job_id: str,
    words: list[Word] | None = None,
    *,
    duration: float = 1.0,
    utterances: list[Utterance] | None = None,
) -> DeepgramResponse:
    """A tiny.en result of `words` (by default one "Hello."), its transcript their text."""
    words = words or [
        Word(word="hello", start=0.5, end=0.8, confidence=0.9, speaker=0, punctuated_word="Hello.")
    ]
    transcript = " ".join(w.punctuated_word or w.word for w in words)
    alternative = Alternative(transcript=transcript, confidence=0.9, words=words)
    return DeepgramResponse(
        metadata=Metadata(
            request_id=job_id,
            sha256="0" * 64,
            created=utc_now_iso(),
            duration=duration,
            channels=1,
            models=["tiny.en"],
            model_info={"name": "tiny.en"},
        ),
        results=Results(
            channels=[Channel(alternatives=[alternative])],
            utterances=utterances,
        ),
    )


# --- submit ----------------------------------------------------------------------------------------
def test_submit_queues_the_job_and_stores_audio_row_and_message(api: TestClient, aws: AwsEnv) -> None:
    first, second = submit(api), submit(api, name="second.wav")
    assert first.status_code == second.status_code == 201
    assert first.json() == {"job_id": first.json()["job_id"], "status": "queued", "position": 0}
    assert second.json()["position"] == 1

    job = aws.job(first.json()["job_id"])
    assert job.status is JobStatus.QUEUED and job.filename == "call.wav" and job.size_bytes == len(WAV)
    assert job.options.model_dump() == {
        "whisper_model": "tiny.en",  # DEFAULT_WHISPER_MODEL
        "language": None,
        "stemming": False,  # DEFAULT_STEMMING=auto and no separation model in the fleet
        "suppress_numerals": False,
        "diarize": True,  # the seed's jobs are diarized
        "batch_size": 1,  # DEFAULT_BATCH_SIZE: sequential decoding
        "num_speakers": None,
        "min_speakers": None,
        "max_speakers": None,
    }
    body = aws.client("s3").get_object(Bucket=aws.settings.bucket_name, Key=job.upload_key)["Body"].read()
    assert job.upload_key == f"uploads/{job.job_id}/audio.wav" and body == WAV  # the name is metadata
    received = aws.client("sqs").receive_message(QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10)
    messages = [json.loads(m["Body"]) for m in received["Messages"]]
    assert {m["job_id"] for m in messages} == {first.json()["job_id"], second.json()["job_id"]}
    assert all(m["version"] == 1 and JobMessage.model_validate(m) for m in messages)


EXPLICIT_OPTIONS = {  # form field: (as sent, as the job's options keep it)
    "whisper_model": ("base", "base"),
    "language": ("de-DE", "de"),
    "stemming": ("false", False),
    "suppress_numerals": ("true", True),
    "diarize": ("true", True),  # false, with no speaker count: test_worker's exactly-once jobs
    "batch_size": ("16", 16),
    "min_speakers": ("2", 2),
    "max_speakers": ("3", 3),
}


def test_submit_takes_explicit_options(api: TestClient, aws: AwsEnv) -> None:
    answer = submit(api, **{field: sent for field, (sent, _) in EXPLICIT_OPTIONS.items()})
    assert answer.status_code == 201, answer.text
    options = aws.job(answer.json()["job_id"]).options
    assert {field: getattr(options, field) for field in EXPLICIT_OPTIONS} == {
        field: kept for field, (_, kept) in EXPLICIT_OPTIONS.items()
    }


def test_large_uploads_stream_to_s3_in_parts(api: TestClient, aws: AwsEnv) -> None:
    content = WAV + bytes(9 * 1024 * 1024)  # more than one 8 MiB part
    answer = submit(api, content)
    assert answer.status_code == 201
    key = aws.job(answer.json()["job_id"]).upload_key
    head = aws.client("s3").head_object(Bucket=aws.settings.bucket_name, Key=key)
    assert head["ContentLength"] == len(content) and head["ETag"].strip('"').endswith("-2")


@pytest.mark.parametrize(
    ("content", "name", "form", "status", "detail"),
    [
        (b"", "empty.wav", {}, 400, "Uploaded file 'empty.wav' is empty"),
        (
            b"just some notes, not a recording\n",
            "notes.txt",
            {},
            400,
            "Uploaded file 'notes.txt' is not audio or video (it looks like text); "
            "send a recording such as wav, mp3, m4a, webm, ogg or flac",
        ),
        (b"%PDF-1.7\n" + bytes(100), "paper.pdf", {}, 400, "(it looks like a PDF document)"),
        (
            WAV,
            "a.wav",
            {"whisper_model": "huge"},
            422,
            f"Unknown whisper_model 'huge'. Choose one of: {', '.join(KNOWN_MODELS)}",
        ),
        (
            WAV,
            "a.wav",
            {"whisper_model": "medium.en"},
            422,
            "model 'medium.en' is not available on this deployment",
        ),
        (
            WAV,
            "a.wav",
            {"batch_size": "0"},
            422,
            "batch_size: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            WAV,
            "a.wav",
            {"batch_size": "65"},
            422,
            "batch_size: Input should be less than or equal to 64 (got 65)",
        ),
        (
            WAV,
            "a.wav",
            {"language": "xx"},
            422,
            "Unknown language 'xx'. Use a Whisper language code (af, am,",
        ),
        (
            WAV,
            "a.wav",
            {"language": "fr"},
            422,
            "whisper_model 'tiny.en' only transcribes English, but language 'fr' was requested; "
            "use a multilingual model such as 'tiny'",
        ),
        (WAV, "a.wav", {"stemming": "true"}, 422, "model 'htdemucs' is not available on this deployment"),
        (WAV, "a.wav", {"num_speakers": "40"}, 422, "num_speakers: Input should be less than or equal to 32"),
        (
            WAV,
            "a.wav",
            {"min_speakers": "4", "max_speakers": "2"},
            422,
            "min_speakers (4) is greater than max_speakers (2)",
        ),
        (
            WAV,
            "a.wav",
            {"diarize": "false", "max_speakers": "2"},
            422,
            "max_speakers needs diarize=true: a transcript alone has no speakers",
        ),
    ],
)
def test_bad_submissions_are_refused_and_leave_nothing(
    api: TestClient, aws: AwsEnv, content: bytes, name: str, form: dict[str, str], status: int, detail: str
) -> None:
    answer = submit(api, content, name, **form)
    assert answer.status_code == status
    assert detail in answer.json()["detail"]
    assert nothing_stored(aws)


def test_an_unavailable_model_is_named_without_server_paths(api: TestClient, aws: AwsEnv) -> None:
    answer = submit(api, whisper_model="medium.en")
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("model 'medium.en' is not available on this deployment; GET /models lists")
    assert "looked in" not in detail and str(Path.home()) not in detail and "MODEL_DIR" not in detail


def test_malformed_fields_get_fastapis_validation_error(api: TestClient, aws: AwsEnv) -> None:
    answer = submit(api, batch_size="eight")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "batch_size"]
    assert api.post("/jobs", data={"whisper_model": "tiny.en"}).status_code == 422  # no file
    # A field the form lacks is refused, not dropped: `num_speaker` would run an unasked-for job.
    answer = submit(api, num_speaker="2")
    assert answer.status_code == 422
    assert [(e["type"], e["loc"]) for e in answer.json()["detail"]] == [
        ("extra_forbidden", ["body", "num_speaker"])
    ]
    assert nothing_stored(aws)


@pytest.mark.parametrize("aws_overrides", [{"MAX_UPLOAD_BYTES": "100000"}])
def test_oversized_uploads_get_413_and_leave_nothing(api: TestClient, aws: AwsEnv) -> None:
    # Declared far over the limit: refused from Content-Length, before the body is read.
    answer = submit(api, WAV + bytes(300_000))
    assert answer.status_code == 413
    assert answer.json() == {"detail": "File too large: the limit is 100000 bytes"}
    # Just over the limit (within the form overhead allowance): refused while streaming.
    answer = submit(api, WAV + bytes(100_000))
    assert (
        answer.status_code == 413 and answer.json()["detail"] == "File too large: the limit is 100000 bytes"
    )
    assert submit(api, WAV + bytes(90_000)).status_code == 201


@pytest.mark.parametrize("aws_overrides", [{"MAX_LAMBDA_UPLOAD_BYTES": "50000"}])
def test_lambda_mode_caps_uploads_and_points_to_presigned_uploads(
    api: TestClient, aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert submit(api, WAV + bytes(60_000)).status_code == 201  # not in Lambda: the general limit
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "whisper-api")
    answer = submit(api, WAV + bytes(60_000))
    assert answer.status_code == 413
    assert "presigned S3 upload" in answer.json()["detail"] and "50000 bytes" in answer.json()["detail"]


def test_a_failed_enqueue_rolls_back_the_upload_and_the_row(aws: AwsEnv) -> None:
    from api_lambda.app import create_app

    aws.client("sqs").delete_queue(QueueUrl=aws.resources.queue_url)
    with TestClient(create_app(aws.settings, session=aws.aio), raise_server_exceptions=False) as api:
        assert submit(api).status_code == 500
    assert not aws.object_keys() and not aws.table_items()


# --- status, result, delete -----------------------------------------------------------------------
def test_status_shapes_follow_the_seed(api: TestClient, aws: AwsEnv) -> None:
    ids = [submit(api).json()["job_id"] for _ in range(3)]
    ops = aws.store.ops
    assert api.get(f"/jobs/{ids[2]}").json() == {"job_id": ids[2], "status": "queued", "position": 2}

    aws.store.run(ops.claim(ids[0], "w1"))
    assert api.get(f"/jobs/{ids[0]}").json() == {
        "job_id": ids[0],
        "status": "processing",
        "progress": "transcribing",
    }
    aws.store.run(ops.set_progress(ids[0], "w1", Stage.DIARIZING))
    assert api.get(f"/jobs/{ids[0]}").json()["progress"] == "diarizing"
    assert api.get(f"/jobs/{ids[2]}").json()["position"] == 1
    assert api.get("/health").json() == {"status": "healthy", "queued_jobs": 2, "processing_jobs": 1}

    aws.store.run(ops.claim(ids[1], "w2"))
    aws.store.run(ops.fail_owned(ids[1], "w2", "Could not decode the audio"))
    assert api.get(f"/jobs/{ids[1]}").json() == {
        "job_id": ids[1],
        "status": "failed",
        "error": "Could not decode the audio",
    }
    aws.store.run(ops.complete(ids[0], "w1"))
    assert api.get(f"/jobs/{ids[0]}").json() == {"job_id": ids[0], "status": "completed"}
    assert api.get("/health").json() == {"status": "healthy", "queued_jobs": 1, "processing_jobs": 0}


def test_unknown_ids_are_404_everywhere(api: TestClient) -> None:
    for method, path in [("GET", "/jobs/nope"), ("GET", "/jobs/nope/result"), ("DELETE", "/jobs/nope")]:
        answer = api.request(method, path)
        assert (answer.status_code, answer.json()) == (404, {"detail": "Job nope not found"})


def test_result_of_an_unfinished_job_is_409_with_its_status(api: TestClient, aws: AwsEnv) -> None:
    job_id = submit(api).json()["job_id"]
    answer = api.get(f"/jobs/{job_id}/result")
    assert (answer.status_code, answer.json()) == (
        409,
        {"detail": f"Job {job_id} has no result: it is queued"},
    )
    aws.store.run(aws.store.ops.claim(job_id, "w1"))
    assert api.get(f"/jobs/{job_id}/result").json()["detail"].endswith("it is processing")


def complete_with_result(aws: AwsEnv, job_id: str) -> DeepgramResponse:
    result = deepgram_result(job_id)
    aws.store.run(aws.store.ops.claim(job_id, "w1"))
    aws.client("s3").put_object(
        Bucket=aws.settings.bucket_name,
        Key=result_key(job_id),
        Body=result.model_dump_json(exclude_none=True),
    )
    aws.store.run(aws.store.ops.complete(job_id, "w1"))
    return result


def test_result_is_the_stored_deepgram_json_or_an_export(api: TestClient, aws: AwsEnv) -> None:
    job_id = submit(api).json()["job_id"]
    result = complete_with_result(aws, job_id)
    answer = api.get(f"/jobs/{job_id}/result")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == result.to_json_dict()
    srt = api.get(f"/jobs/{job_id}/result", params={"format": "srt"})
    assert srt.status_code == 200 and "Hello." in srt.text
    assert api.get(f"/jobs/{job_id}/result", params={"format": "docx"}).status_code == 422


@pytest.mark.parametrize("aws_overrides", [{"MAX_LAMBDA_RESPONSE_BYTES": "10"}])
def test_large_results_redirect_to_s3_in_lambda_mode(
    api: TestClient, aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(api).json()["job_id"]
    complete_with_result(aws, job_id)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "whisper-api")
    answer = api.get(f"/jobs/{job_id}/result", follow_redirects=False)
    assert answer.status_code == 307 and result_key(job_id) in answer.headers["location"]


def test_delete_cancels_a_queued_job_then_removes_it(api: TestClient, aws: AwsEnv) -> None:
    job_id = submit(api).json()["job_id"]
    assert api.delete(f"/jobs/{job_id}").json() == {"message": "Job deleted"}
    assert api.get(f"/jobs/{job_id}").json() == {"job_id": job_id, "status": "cancelled"}
    assert not aws.object_keys()  # its audio is no longer needed
    assert api.delete(f"/jobs/{job_id}").json() == {"message": "Job deleted"}
    assert api.get(f"/jobs/{job_id}").status_code == 404


def test_delete_asks_a_processing_job_to_stop(api: TestClient, aws: AwsEnv) -> None:
    job_id = submit(api).json()["job_id"]
    aws.store.run(aws.store.ops.claim(job_id, "w1"))
    assert api.delete(f"/jobs/{job_id}").json() == {"message": "Job deleted"}
    job = aws.job(job_id)
    assert job.status is JobStatus.PROCESSING and job.cancel_requested


def test_delete_removes_a_finished_jobs_audio_result_and_row(api: TestClient, aws: AwsEnv) -> None:
    job_id = submit(api).json()["job_id"]
    complete_with_result(aws, job_id)
    assert len(aws.object_keys()) == 2
    assert api.delete(f"/jobs/{job_id}").json() == {"message": "Job deleted"}
    assert not aws.object_keys() and aws.raw_item(job_id) is None
    assert api.get(f"/jobs/{job_id}/result").status_code == 404


# --- fleet ----------------------------------------------------------------------------------------
def test_models_fall_back_to_this_host_without_workers(api: TestClient) -> None:
    models = api.get("/models").json()
    assert models["source"] == "api_host" and models["workers"] == 0
    assert "tiny.en" in models["models"] and "medium.en" not in models["models"]
    assert models["default_whisper_model"] == "tiny.en" and models["stemming_available"] is False
    assert models["known_models"] == list(KNOWN_MODELS)


@pytest.fixture
def gpu_fleet(aws: AwsEnv) -> Iterator[None]:
    register_worker(aws, "gpu-1", ("large-v3", "medium.en"), separation=True)
    register_worker(aws, "gpu-2", ("tiny.en",))
    yield


def test_models_are_the_union_of_live_workers(api: TestClient, gpu_fleet: None) -> None:
    models = api.get("/models").json()
    assert models["models"] == ["large-v3", "medium.en", "tiny.en"]
    assert (models["source"], models["workers"]) == ("workers", 2)
    assert models["stemming_available"] is True and models["default_stemming"] is True  # auto


def test_submissions_are_checked_against_the_fleet(api: TestClient, aws: AwsEnv, gpu_fleet: None) -> None:
    answer = submit(api, whisper_model="medium.en")
    assert answer.status_code == 201
    assert aws.job(answer.json()["job_id"]).options.stemming is True  # DEFAULT_STEMMING=auto, fleet has it
    missing = submit(api, whisper_model="base")
    assert missing.status_code == 422
    detail = missing.json()["detail"]  # which workers looked where is for the logs, not for callers
    assert detail.startswith("model 'base' is not available on this deployment")
    assert "gpu-1" not in detail and "/models)" not in detail
    assert api.get("/health").json()["queued_jobs"] == 1  # workers are not jobs


def test_openapi_docs_are_served(api: TestClient) -> None:
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result", "/health", "/models"} <= set(paths)
