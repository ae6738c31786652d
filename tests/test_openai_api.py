"""The OpenAI-compatible API on a real emulator, without a worker, through the official `openai`
SDK (only `base_url` changed): the error shapes and codes, that no error makes the SDK resubmit,
the wait limit, `/v1/models`, API keys and their project, and the answer shapes built from a
finished job's stored objects. Where a test needs a finished job it finishes it through the job
store as a worker would; the real pipeline behind these routes is in test_openai_sdk.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import openai
import pytest
from openai.types.audio import Transcription, TranscriptionDiarized, TranscriptionVerbose

from api_lambda import keys_cli
from api_lambda.openai_params import _temperatures
from shared.jobs import OpenAIOptions
from shared.openai_format import SegmentRecord, TranscriptRecord, WordRecord, speaker_label, srt, vtt
from shared.resources import result_key, segments_key
from tests.fixtures_aws import AwsEnv, wait_for
from tests.test_api import WAV


def client(base_url: str, api_key: str = "unused", **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, **options)


def jobs(aws: AwsEnv) -> list[dict[str, Any]]:
    return [item for item in aws.table_items() if item["status"] not in ("worker", "apikey")]


def assert_openai_error(
    error: openai.APIStatusError, status: int, param: str | None, code: str | None
) -> None:
    assert error.status_code == status, error.response.text
    body = error.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == param and body["error"]["code"] == code, body
    assert body["error"]["message"] and error.response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"model": "whisper-9000"}, "model", "model_not_found"),
        ({"response_format": "docx"}, "response_format", "invalid_value"),
        ({"temperature": 1.5}, "temperature", "invalid_value"),
        ({"timestamp_granularities": ["word"]}, "timestamp_granularities", "invalid_value"),
        ({"include": ["logprobs"], "response_format": "text"}, "include", "invalid_value"),
        ({"stream": True, "response_format": "srt"}, "stream", "invalid_value"),
        ({"language": "xx"}, "language", "invalid_value"),
        ({"chunking_strategy": {"type": "semantic"}}, "chunking_strategy.type", "invalid_value"),
        ({"known_speaker_names": ["ann"], "known_speaker_references": ["https://x/a.wav"]},
         "known_speaker_references[0]", "invalid_value"),
        ({"known_speaker_names": ["ann"], "known_speaker_references": []}, "known_speaker_references",
         "invalid_value"),
        ({"extra_body": {"beam_size": "3"}}, "beam_size", "unknown_parameter"),
    ],
)  # fmt: skip
def test_refusals_are_400s_in_openai_shape_and_store_nothing(
    live_api: str, aws: AwsEnv, extra: dict[str, Any], param: str, code: str
) -> None:
    arguments = {"model": "whisper-1", "file": ("call.wav", WAV, "audio/wav"), **extra}
    if param == "known_speaker_references" and not extra["known_speaker_references"]:
        arguments.pop("known_speaker_references")
        arguments["response_format"] = "diarized_json"
    with pytest.raises(openai.BadRequestError) as raised:
        client(live_api).audio.transcriptions.create(**arguments)
    assert_openai_error(raised.value, 400, param, code)
    assert not jobs(aws) and not aws.object_keys()


def test_a_file_that_is_not_audio_and_an_english_only_translation_are_400s(
    live_api: str, aws: AwsEnv
) -> None:
    sdk = client(live_api)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.audio.transcriptions.create(
            model="whisper-1", file=("notes.txt", b"hello there " * 50, "text/plain")
        )
    assert_openai_error(raised.value, 400, None, "not_audio")
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.audio.translations.create(model="tiny.en", file=("call.wav", WAV, "audio/wav"))
    assert_openai_error(raised.value, 400, "model", "model_not_supported")
    assert "English-only" in raised.value.message
    with pytest.raises(openai.BadRequestError) as raised:  # whisper-1 is served by DEFAULT_WHISPER_MODEL
        sdk.audio.translations.create(model="whisper-1", file=("call.wav", WAV, "audio/wav"))
    assert "tiny.en" in raised.value.message
    assert not jobs(aws)


@pytest.mark.parametrize("aws_overrides", [{"OPENAI_MAX_WAIT_SECONDS": "0.5"}])
def test_the_wait_limit_answers_504_once_and_the_sdk_does_not_resubmit(live_api: str, aws: AwsEnv) -> None:
    sdk = client(live_api, max_retries=2)  # the SDK's default: it would retry a plain 504
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.audio.transcriptions.create(model="gpt-4o-transcribe", file=("call.wav", WAV, "audio/wav"))
    assert_openai_error(raised.value, 504, None, "still_running")
    (job,) = jobs(aws)  # one job: no retry made a second
    assert raised.value.request_id == job["job_id"] and job["job_id"] in raised.value.message
    assert job["openai"]["requested_model"] == "gpt-4o-transcribe" and job["status"] == "queued"


def test_models_are_listed_in_openai_shape(live_api: str) -> None:
    sdk = client(live_api)
    models = sdk.models.list().data
    ids = [model.id for model in models]
    assert ids[:1] == ["whisper-1"] and "gpt-4o-transcribe-diarize" in ids and "tiny.en" in ids
    assert all(model.object == "model" and model.owned_by and model.created > 0 for model in models)
    assert sdk.models.retrieve("tiny.en").id == "tiny.en"
    with pytest.raises(openai.NotFoundError) as raised:
        sdk.models.retrieve("gpt-5")
    assert_openai_error(raised.value, 404, "model", "model_not_found")


@pytest.mark.parametrize("aws_overrides", [{"AUTH_REQUIRED": "true", "OPENAI_MAX_WAIT_SECONDS": "0.5"}])
def test_a_bearer_key_is_required_and_scopes_the_job_to_its_project(live_api: str, aws: AwsEnv) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        client(live_api, api_key="0" * 40).models.list()
    assert_openai_error(raised.value, 401, None, "invalid_api_key")
    secret = keys_cli.create(aws.settings, "alpha")
    assert client(live_api, api_key=secret).models.list().data
    with pytest.raises(openai.APIStatusError) as raised:
        client(live_api, api_key=secret).audio.transcriptions.create(
            model="whisper-1", file=("call.wav", WAV, "audio/wav")
        )
    assert raised.value.status_code == 504
    assert aws.job(raised.value.request_id).project_id == "alpha"


def record() -> TranscriptRecord:
    words = [WordRecord(word="Hello.", start=0.5, end=0.8, probability=0.9)]
    second = [WordRecord(word="Hi!", start=1.0, end=1.2, probability=0.5)]
    common = {"tokens": [1, 2], "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.1}
    return TranscriptRecord(
        language="en",
        duration=2.0,
        segments=[
            SegmentRecord(
                id=0, seek=0, start=0.5, end=0.8, text="Hello.", words=words, no_speech_prob=0.1, **common
            ),
            SegmentRecord(
                id=1, seek=0, start=1.0, end=1.2, text="Hi!", words=second, no_speech_prob=0.2, **common
            ),
        ],
        speakers={"1": "Bob"},
    )


def stored_result(job_id: str) -> dict[str, Any]:
    """The Deepgram result of record: "Hello." by speaker 0, "Hi!" by speaker 1."""
    words = [
        {
            "word": "hello",
            "start": 0.5,
            "end": 0.8,
            "confidence": 0.9,
            "speaker": 0,
            "punctuated_word": "Hello.",
        },
        {"word": "hi", "start": 1.0, "end": 1.2, "confidence": 0.5, "speaker": 1, "punctuated_word": "Hi!"},
    ]
    utterances = [
        {"start": w["start"], "end": w["end"], "confidence": 0.9, "channel": 0, "id": str(n),
         "transcript": w["punctuated_word"], "words": [w], "speaker": w["speaker"]}
        for n, w in enumerate(words)
    ]  # fmt: skip
    return {
        "metadata": {"request_id": job_id, "sha256": "0" * 64, "created": "2025-01-01T00:00:00Z",
                     "duration": 2.0, "channels": 1, "models": ["x"], "model_info": {"name": "tiny.en"}},
        "results": {"channels": [{"alternatives": [{"transcript": "Hello. Hi!", "confidence": 0.7,
                                                    "words": words}]}], "utterances": utterances},
    }  # fmt: skip


def finish(aws: AwsEnv, job_id: str) -> None:
    """What a worker does for a /v1/audio job: both objects, then completed."""
    s3, bucket = aws.client("s3"), aws.settings.bucket_name
    aws.store.run(aws.store.ops.claim(job_id, "w1"))
    s3.put_object(Bucket=bucket, Key=segments_key(job_id), Body=record().model_dump_json())
    s3.put_object(Bucket=bucket, Key=result_key(job_id), Body=json.dumps(stored_result(job_id)))
    aws.store.run(aws.store.ops.complete(job_id, "w1"))


def finish_when_queued(aws: AwsEnv, count: int) -> threading.Thread:
    """Play the worker for the next `count` jobs, in the background while the SDK waits."""

    def run() -> None:
        done: set[str] = set()
        while len(done) < count:
            queued = wait_for(lambda: [j for j in jobs(aws) if j["status"] == "queued"], "a queued job")
            for job in queued:
                finish(aws, job["job_id"])
                done.add(job["job_id"])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_every_response_format_has_the_sdks_shape(live_api: str, aws: AwsEnv) -> None:
    sdk = client(live_api)
    file = ("call.wav", WAV, "audio/wav")
    helper = finish_when_queued(aws, 7)

    plain = sdk.audio.transcriptions.create(model="whisper-1", file=file, include=["logprobs"])
    assert isinstance(plain, Transcription) and plain.text == "Hello. Hi!"
    assert [p.token for p in plain.logprobs] == ["Hello.", " Hi!"] and plain.usage.seconds == 2.0
    assert plain.logprobs[1].logprob == pytest.approx(np.log(0.5))

    verbose = sdk.audio.transcriptions.create(
        model="whisper-1",
        file=file,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert isinstance(verbose, TranscriptionVerbose) and verbose.language == "english"
    assert [(w.word, w.start, w.end) for w in verbose.words] == [("Hello.", 0.5, 0.8), ("Hi!", 1.0, 1.2)]
    assert [s.text for s in verbose.segments] == ["Hello.", "Hi!"] and verbose.segments[
        1
    ].no_speech_prob == 0.2
    words_only = sdk.audio.transcriptions.create(
        model="whisper-1", file=file, response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert words_only.words and words_only.segments is None

    diarized = sdk.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize", file=file, response_format="diarized_json"
    )
    assert isinstance(diarized, TranscriptionDiarized) and diarized.task == "transcribe"
    assert [(s.speaker, s.text, s.type) for s in diarized.segments] == [
        ("A", "Hello.", "transcript.text.segment"),
        ("Bob", "Hi!", "transcript.text.segment"),  # the known name the worker matched to speaker 1
    ]
    assert diarized.usage.type == "duration" and diarized.usage.seconds == 2.0

    assert (
        sdk.audio.transcriptions.create(model="whisper-1", file=file, response_format="text")
        == "Hello. Hi!\n"
    )
    srt_text = sdk.audio.transcriptions.create(model="whisper-1", file=file, response_format="srt")
    assert srt_text.startswith(
        "1\n00:00:00,500 --> 00:00:00,800\nHello.\n\n2\n00:00:01,000 --> 00:00:01,200\nHi!"
    )
    vtt_text = sdk.audio.transcriptions.create(model="whisper-1", file=file, response_format="vtt")
    assert vtt_text.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:00.800\nHello.\n")
    helper.join(timeout=60)
    options = [OpenAIOptions.model_validate(job["openai"]) for job in jobs(aws)]
    assert sum(o.diarize for o in options) == 1 and len(options) == 7


def test_a_stream_ends_with_done_and_a_failed_job_with_an_error_event(live_api: str, aws: AwsEnv) -> None:
    sdk = client(live_api)
    helper = finish_when_queued(aws, 1)
    events = list(
        sdk.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=("call.wav", WAV, "audio/wav"),
            response_format="diarized_json",
            stream=True,
        )
    )
    helper.join(timeout=60)
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.segment"] * 2 + [
        "transcript.text.done"
    ]
    assert [e.speaker for e in events if e.type == "transcript.text.segment"] == ["A", "Bob"]
    assert events[0].segment_id == events[1].id and events[-1].text == "Hello. Hi!"

    stream = sdk.audio.transcriptions.create(
        model="whisper-1", file=("call.wav", WAV, "audio/wav"), stream=True
    )
    (job,) = [j for j in jobs(aws) if j["status"] == "queued"]
    aws.store.run(aws.store.ops.claim(job["job_id"], "w1"))
    aws.store.run(aws.store.ops.fail_owned(job["job_id"], "w1", "the audio could not be decoded"))
    with pytest.raises(openai.APIError, match="could not be decoded"):
        list(stream)


def test_formats_and_mappings_without_a_service() -> None:
    assert _temperatures(None) == () and _temperatures("0") == ()
    assert _temperatures("0.5") == (0.5, 0.7, 0.9) and _temperatures("1") == (1.0,)
    assert (
        speaker_label(0, {}) == "A"
        and speaker_label(2, {"2": "Eve"}) == "Eve"
        and speaker_label(27, {}) == "S27"
    )
    long = record().model_copy(
        update={"segments": [record().segments[0].model_copy(update={"start": 3725.25, "end": 3726.5})]}
    )
    assert "01:02:05,250 --> 01:02:06,500" in srt(long) and "01:02:05.250 --> 01:02:06.500" in vtt(long)
