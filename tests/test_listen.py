"""`POST /v1/listen` on a real emulator, without a worker: Deepgram's parameters and error shape,
the callback answer, the wait with its 504, and the response shape built from a stored result.

Where a test needs a finished job, it finishes it through the job store as a worker would
(claim, result in S3, complete); the real pipeline behind this endpoint is in test_deepgram_sdk.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.deepgram_shape import listen_response
from shared.jobs import CallbackTarget, JobStatus, ListenOptions
from shared.resources import result_key
from tests.fixtures_aws import AwsEnv, wait_for
from tests.test_api import WAV, nothing_stored

DEEPGRAM_ERROR_KEYS = {"err_code", "err_msg", "request_id"}


def listen(api: TestClient, body: bytes = WAV, content_type: str = "audio/wav", **params: Any):
    return api.post("/v1/listen", content=body, headers={"Content-Type": content_type}, params=params)


def assert_deepgram_error(answer: Any, status: int, err_code: str, text: str = "") -> dict[str, str]:
    body = answer.json()
    assert answer.status_code == status, answer.text
    assert set(body) == DEEPGRAM_ERROR_KEYS and body["err_code"] == err_code and body["request_id"]
    assert text.lower() in body["err_msg"].lower(), body["err_msg"]
    return body


def stored_result(job_id: str) -> dict[str, Any]:
    """A result of record as the worker stores it: punctuated, diarized, with paragraphs and utterances."""
    words = [
        {"word": "hello", "start": 0.5, "end": 0.8, "confidence": 0.9, "speaker": 0,
         "speaker_confidence": 0.8, "punctuated_word": "Hello."},
        {"word": "hi", "start": 1.0, "end": 1.2, "confidence": 0.7, "speaker": 1,
         "speaker_confidence": 0.6, "punctuated_word": "Hi!"},
    ]  # fmt: skip
    paragraphs = {
        "transcript": "\n\nSpeaker 0: Hello.\n\nSpeaker 1: Hi!\n",
        "paragraphs": [
            {"sentences": [{"text": "Hello.", "start": 0.5, "end": 0.8}], "speaker": 0, "num_words": 1,
             "start": 0.5, "end": 0.8},
            {"sentences": [{"text": "Hi!", "start": 1.0, "end": 1.2}], "speaker": 1, "num_words": 1,
             "start": 1.0, "end": 1.2},
        ],
    }  # fmt: skip
    alternative = {"transcript": "Hello. Hi!", "confidence": 0.8, "words": words, "paragraphs": paragraphs}
    return {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": job_id,
            "sha256": "ab" * 32,
            "created": "2025-01-01T00:00:00.000Z",
            "duration": 1.5,
            "channels": 1,
            "models": ["model-uuid"],
            "model_info": {"name": "tiny.en", "arch": "whisper", "diarizer": "embedded", "device": "cpu"},
        },
        "results": {
            "channels": [
                {
                    "alternatives": [alternative],
                    "detected_language": "en",
                    "language_confidence": 0.99,
                }
            ],
            "utterances": [
                {"start": 0.5, "end": 0.8, "confidence": 0.9, "channel": 0, "transcript": "Hello.",
                 "words": words[:1], "speaker": 0, "id": "u1"},
                {"start": 1.0, "end": 1.2, "confidence": 0.7, "channel": 0, "transcript": "Hi!",
                 "words": words[1:], "speaker": 1, "id": "u2"},
            ],
        },
    }  # fmt: skip


def finish_in_background(aws: AwsEnv, outcome: str) -> threading.Thread:
    """Act as a worker for the next job that appears: complete it with `stored_result` or fail it."""

    def run() -> None:
        job_id = wait_for(
            lambda: next((i["job_id"] for i in aws.table_items() if i["status"] == "queued"), None),
            "a queued job",
        )
        store = aws.store
        store.run(store.ops.claim(job_id, "w1"))
        if outcome == "completed":
            body = json.dumps(stored_result(job_id))
            aws.client("s3").put_object(Bucket=aws.settings.bucket_name, Key=result_key(job_id), Body=body)
            store.run(store.ops.complete(job_id, "w1"))
        else:
            store.run(store.ops.fail_owned(job_id, "w1", "'audio' is not audio or video"))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- parameters and errors -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"diarize": "maybe"}, "'diarize'"),
        ({"punctuate": "yes"}, "'punctuate'"),
        ({"utt_split": "-1"}, "'utt_split'"),
        ({"utt_split": "soon"}, "'utt_split'"),
        ({"callback_method": "get", "callback": "https://example.com/cb"}, "callback_method"),
        ({"callback": "ftp://example.com/cb"}, "only http and https"),
        ({"callback": "http://127.0.0.1:9/cb"}, "not public"),
        ({"callback": "http://localhost/cb"}, "this machine"),
        ({"model": "nonexistent-model"}, "Unknown model 'nonexistent-model'. This deployment accepts"),
        ({"language": "xx"}, "Unknown language"),
        ({"language": "de"}, "only transcribes English"),
        # what it cannot honour safely (the Deepgram features test_listen_fidelity.py covers)
        ({"redact": "pii"}, "redact=pii needs a named-entity model"),
        ({"redact": ["numbers", "phi"]}, "redact=phi"),
        ({"redact": "name"}, "redact=name"),
        ({"diarize_model": "v9"}, "'diarize_model'"),
        ({"extra": "novalue"}, "'extra'"),
        ({"encoding": "mp5"}, "Unsupported encoding"),
        ({"encoding": "linear16"}, "needs sample_rate"),
        ({"encoding": "linear16", "sample_rate": "fast"}, "'sample_rate'"),
        ({"model": "whisper-huge"}, "Unknown model 'whisper-huge'"),
    ],
)
def test_invalid_values_of_known_parameters_are_400_in_deepgram_shape(
    api: TestClient, aws: AwsEnv, params: dict[str, str | list[str]], text: str
) -> None:
    assert_deepgram_error(listen(api, **params), 400, "Bad Request", text)
    assert nothing_stored(aws)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "err_code", "text"),
    [
        (b"", "audio/wav", 400, "Bad Request", "empty"),
        (b"just some words, no audio at all", "application/octet-stream", 400, "Bad Request", "not audio"),
        (b"%PDF-1.7 ...", "audio/wav", 400, "Bad Request", "PDF"),
        (b"{not json", "application/json", 400, "Bad Request", "JSON payload"),
        (b'{"uri": "https://example.com/a.wav"}', "application/json", 400, "Bad Request", "JSON payload"),
        (b'{"url": "file:///etc/passwd"}', "application/json", 400, "Bad Request", "only http and https"),
        (b'{"url": "http://169.254.169.254/latest"}', "application/json", 400, "Bad Request", "not public"),
        (b'{"url": "http://[::1]:8001/a.wav"}', "application/json", 400, "Bad Request", "not public"),
    ],
)
def test_unusable_bodies_are_refused_in_deepgram_shape(
    api: TestClient, aws: AwsEnv, body: bytes, content_type: str, status: int, err_code: str, text: str
) -> None:
    assert_deepgram_error(listen(api, body, content_type), status, err_code, text)
    assert nothing_stored(aws)


@pytest.mark.parametrize("aws_overrides", [{"MAX_UPLOAD_BYTES": "1000"}])
def test_a_body_over_the_limit_is_413_in_deepgram_shape(api: TestClient, aws: AwsEnv) -> None:
    assert_deepgram_error(listen(api, WAV + bytes(4096)), 413, "PAYLOAD_TOO_LARGE", "1000 bytes")
    assert nothing_stored(aws)


def test_with_a_callback_the_answer_is_the_request_id_and_options_are_kept(
    api: TestClient, aws: AwsEnv
) -> None:
    answer = listen(
        api,
        model="nova-3",
        diarize="true",
        utterances="true",
        utt_split="1.5",
        callback="https://example.com/hook?x=1",
        callback_method="put",
        tag=["a", "b"],
        keywords=["Kubernetes:2"],
        keyterm=["Deepgram", "Kubernetes"],
        numerals="false",
        some_future_parameter="whatever",  # unknown parameters are ignored, as Deepgram does
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"request_id"}
    job = aws.job(answer.json()["request_id"])
    assert job.status is JobStatus.QUEUED and job.source_url is None and job.size_bytes == len(WAV)
    assert job.options.whisper_model == "tiny.en" and job.options.language == "en"
    assert job.options.suppress_numerals is False  # numbers are spelled out from Whisper's digits
    assert job.callback == CallbackTarget(url="https://example.com/hook?x=1", method="PUT")
    assert job.listen == ListenOptions(
        requested_model="nova-3",
        diarize=True,
        utterances=True,
        utt_split=1.5,
        keyterms=("Deepgram", "Kubernetes"),
        tags=("a", "b"),
        numerals=False,
    )
    assert aws.messages_in(aws.resources.queue_url) == 1


def test_a_url_body_is_queued_for_the_worker_to_fetch(api: TestClient, aws: AwsEnv) -> None:
    body = json.dumps({"url": "https://example.com/audio/call.mp3"}).encode()
    answer = listen(api, body, "application/json", callback="https://example.com/cb", detect_language="true")
    assert answer.status_code == 200, answer.text
    job = aws.job(answer.json()["request_id"])
    assert (job.source_url, job.upload_key, job.filename) == (
        "https://example.com/audio/call.mp3",
        "",
        "call.mp3",
    )
    assert job.options.language is None and job.listen is not None and job.listen.detect_language
    assert aws.object_keys() == []


@pytest.mark.parametrize("aws_overrides", [{"LISTEN_MAX_WAIT_SECONDS": "0.5"}])
def test_a_job_still_running_after_the_wait_is_202_with_its_request_id(api: TestClient, aws: AwsEnv) -> None:
    answer = listen(api)
    assert answer.status_code == 202, answer.text  # not a 5xx: SDKs would resubmit
    request_id = answer.json()["request_id"]
    assert answer.json() == {"request_id": request_id} and answer.headers["dg-request-id"] == request_id
    assert answer.headers["location"] == f"/jobs/{request_id}"
    assert api.get(f"/jobs/{request_id}").json()["status"] == "queued"


def test_a_failed_job_answers_its_error_in_deepgram_shape(api: TestClient, aws: AwsEnv) -> None:
    worker = finish_in_background(aws, "failed")
    body = assert_deepgram_error(listen(api), 400, "Bad Request", "not audio or video")
    worker.join()
    assert aws.job(body["request_id"]).status is JobStatus.FAILED


def test_a_completed_job_answers_deepgrams_shape_with_what_was_asked(api: TestClient, aws: AwsEnv) -> None:
    worker = finish_in_background(aws, "completed")
    answer = listen(api, model="nova-2", diarize="true", smart_format="true", utterances="true", tag="t1")
    worker.join()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    job_id = body["metadata"]["request_id"]
    assert body == listen_response(
        stored_result(job_id),
        ListenOptions(
            requested_model="nova-2", diarize=True, smart_format=True, utterances=True, tags=("t1",)
        ),
    )
    # The result of record keeps everything, in the seed's shape.
    assert api.get(f"/jobs/{job_id}/result").json() == stored_result(job_id)


# --- the response shape ----------------------------------------------------------------------------
def test_deepgram_defaults_leave_out_what_was_not_asked_for() -> None:
    shaped = listen_response(stored_result("r1"), ListenOptions())
    model_id = shaped["metadata"]["models"][0]
    assert shaped["metadata"]["model_info"] == {
        model_id: {"name": "tiny.en", "version": "faster-whisper", "arch": "whisper"}
    }
    assert set(shaped["metadata"]) == {
        "transaction_key", "request_id", "sha256", "created", "duration", "channels", "models", "model_info",
    }  # fmt: skip
    assert set(shaped["results"]) == {"channels"}  # no utterances
    (channel,) = shaped["results"]["channels"]
    assert set(channel) == {"alternatives"}  # no detected_language
    (alternative,) = channel["alternatives"]
    assert set(alternative) == {"transcript", "confidence", "words"}  # no paragraphs
    assert alternative["transcript"] == "hello hi"  # punctuate=false
    assert alternative["words"][0] == {"word": "hello", "start": 0.5, "end": 0.8, "confidence": 0.9}


def test_each_option_adds_its_part() -> None:
    options = ListenOptions(
        requested_model="nova-3",
        diarize=True,
        punctuate=True,
        paragraphs=True,
        utterances=True,
        detect_language=True,
        tags=("x",),
    )
    shaped = listen_response(stored_result("r1"), options)
    metadata = shaped["metadata"]
    (info,) = metadata["model_info"].values()
    assert info["requested_model"] == "nova-3" and "served by Whisper tiny.en" in info["note"]
    assert metadata["tags"] == ["x"] and metadata["diarize_info"]["arch"] == "embedded"
    (channel,) = shaped["results"]["channels"]
    assert (channel["detected_language"], channel["language_confidence"]) == ("en", 0.99)
    alternative = channel["alternatives"][0]
    assert alternative["transcript"] == "Hello. Hi!"
    assert [w["speaker"] for w in alternative["words"]] == [0, 1]
    assert alternative["words"][1]["punctuated_word"] == "Hi!"
    assert [p["speaker"] for p in alternative["paragraphs"]["paragraphs"]] == [0, 1]
    assert [(u["speaker"], u["transcript"], u["channel"]) for u in shaped["results"]["utterances"]] == [
        (0, "Hello.", 0),
        (1, "Hi!", 0),
    ]
