"""`POST /v1/listen` as a Deepgram user drives it, on a real emulator: parameters that warn or are
refused, retries that never duplicate a job (with the official SDK), raw and untyped bodies,
`dg-request-id` and `dg-token` headers, and Deepgram's error shape on every /v1 path.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.types.listen_v1accepted_response import ListenV1AcceptedResponse
from fastapi.testclient import TestClient

from gpu_worker.callbacks import CallbackPolicy, attempt
from gpu_worker.pipeline.audio import load_audio
from shared.jobs import CallbackTarget, JobStatus
from tests.fixtures_aws import AwsEnv, Receiver
from tests.test_api import WAV
from tests.test_listen import assert_deepgram_error, finish_in_background, listen

HOOK = "https://example.com/hook"


def jobs(aws: AwsEnv) -> list[dict[str, Any]]:
    return [i for i in aws.table_items() if i["status"] in {s.value for s in JobStatus}]


def tone(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)


# --- parameters: warnings and refusals -------------------------------------------------------------
WARNED = {  # parameter: (value sent, the type of the warning it gets)
    "summarize": ("v2", "unsupported_feature"),
    "topics": ("true", "unsupported_feature"),
    "intents": ("true", "unsupported_feature"),
    "sentiment": ("true", "unsupported_feature"),
    "detect_entities": ("true", "unsupported_feature"),
    "filler_words": ("true", "partial_support"),
    "language_hint": ("es", "unsupported_feature"),
    "diarize_model": ("v1", "partial_support"),
}


def test_features_it_cannot_run_are_answered_with_deepgram_warnings(api: TestClient, aws: AwsEnv) -> None:
    worker = finish_in_background(aws, "completed")
    sent = {parameter: value for parameter, (value, _) in WARNED.items()}
    answer = listen(api, **sent, extra=["team:support", "ticket:42"], sentiment_off_is_fine="false")
    worker.join()
    assert answer.status_code == 200, answer.text
    metadata = answer.json()["metadata"]
    assert all(set(w) == {"parameter", "type", "message"} for w in metadata["warnings"])
    assert {w["parameter"]: w["type"] for w in metadata["warnings"]} == {
        parameter: kind for parameter, (_, kind) in WARNED.items()
    }
    assert metadata["extra"] == {"team": "support", "ticket": "42"}
    assert answer.headers["dg-request-id"] == metadata["request_id"]


def test_features_turned_off_get_no_warning(api: TestClient, aws: AwsEnv) -> None:
    answer = listen(api, summarize="false", sentiment="false", callback=HOOK)
    job = aws.job(answer.json()["request_id"])
    assert job.listen is not None and job.listen.warnings == ()


def test_implemented_options_are_stored_with_the_job(api: TestClient, aws: AwsEnv) -> None:
    answer = listen(
        api,
        callback=HOOK,
        redact=["pci", "ssn", "numbers"],
        profanity_filter="true",
        replace=["acme:ACME Corp", "um:"],
        search=["refund", "card number"],
        dictation="true",
        measurements="true",
        smart_format="true",
        diarize_model="latest",
    )
    listen_options = aws.job(answer.json()["request_id"]).listen
    assert listen_options is not None
    assert listen_options.redact == ("pci", "ssn", "numbers") and listen_options.profanity_filter
    assert listen_options.replace == (("acme", "ACME Corp"), ("um", ""))
    assert listen_options.search == ("refund", "card number")
    assert listen_options.numerals and listen_options.dictation and listen_options.measurements
    assert listen_options.diarize and listen_options.warnings == ()


# --- retries never duplicate a job -----------------------------------------------------------------
def test_identical_requests_attach_to_one_job(api: TestClient, aws: AwsEnv) -> None:
    first = listen(api, callback=HOOK, diarize="true").json()["request_id"]
    again = listen(api, callback=HOOK, diarize="true").json()["request_id"]
    other = listen(api, callback=HOOK, diarize="false").json()["request_id"]
    assert first == again != other
    assert len(jobs(aws)) == 2 and aws.messages_in(aws.resources.queue_url) == 2
    assert len(aws.object_keys("uploads/")) == 2  # the attached request's copy was removed


def test_a_failed_job_does_not_hold_its_fingerprint(api: TestClient, aws: AwsEnv) -> None:
    first = listen(api, callback=HOOK).json()["request_id"]
    assert listen(api, callback=HOOK).json()["request_id"] == first  # still queued: attaches
    store = aws.store
    store.run(store.ops.claim(first, "w1"))
    store.run(store.ops.fail_owned(first, "w1", "broken"))
    rerun = listen(api, callback=HOOK).json()["request_id"]
    assert rerun != first and aws.job(rerun).status is JobStatus.QUEUED  # failed: runs anew
    assert listen(api, callback=HOOK).json()["request_id"] == rerun


@pytest.mark.parametrize("aws_overrides", [{"LISTEN_MAX_WAIT_SECONDS": "0.3"}])
def test_the_sdk_with_its_default_retries_creates_one_job_past_the_wait_limit(
    live_api: str, aws: AwsEnv
) -> None:
    environment = DeepgramClientEnvironment(
        base=live_api, production="ws://x", agent="ws://x", agent_rest=live_api
    )
    client = DeepgramClient(
        api_key="any-key", environment=environment, timeout=60
    )  # max_retries: default (2)
    response = client.listen.v1.media.transcribe_file(request=WAV, diarize=True)
    assert isinstance(response, ListenV1AcceptedResponse)
    (job,) = jobs(aws)
    assert job["job_id"] == response.request_id and job["status"] == "queued"
    again = client.listen.v1.media.transcribe_file(request=WAV, diarize=True)  # a retry by hand
    assert again.request_id == response.request_id and len(jobs(aws)) == 1


# --- bodies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "application/json", "text/plain", None]
)
def test_any_content_type_is_audio_when_the_bytes_are(
    api: TestClient, aws: AwsEnv, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = api.post("/v1/listen", content=WAV, headers=headers, params={"callback": HOOK})
    assert answer.status_code == 200, answer.text
    job = aws.job(answer.json()["request_id"])
    stored = aws.client("s3").get_object(
        Bucket=aws.settings.bucket_name, Key=job.upload_key, ChecksumMode="ENABLED"
    )
    assert stored["Body"].read() == WAV and job.content_type is None


def _pcm16(samples: np.ndarray) -> bytes:
    return (samples * 32767).astype("<i2").tobytes()


def _mulaw(samples: np.ndarray) -> bytes:
    mu = 255
    y = np.sign(samples) * np.log1p(mu * np.abs(samples)) / np.log1p(mu)
    return (~((y + 1) / 2 * 255).astype(np.uint8)).tobytes()


@pytest.mark.parametrize(
    ("encoding", "rate", "channels", "encode"),
    [
        ("linear16", 16000, 1, _pcm16),
        ("linear16", 8000, 2, lambda s: _pcm16(np.repeat(s, 2))),
        ("linear32", 16000, 1, lambda s: (s * 2**31 * 0.99).astype("<i4").tobytes()),
        ("mulaw", 8000, 1, _mulaw),
    ],
)
def test_headerless_audio_is_framed_so_the_decoder_reads_it(
    api: TestClient, aws: AwsEnv, tmp_path: Path, encoding: str, rate: int, channels: int, encode: Any
) -> None:
    body = encode(tone(1.0, rate))
    params = {"encoding": encoding, "sample_rate": str(rate), "channels": str(channels), "callback": HOOK}
    answer = api.post(
        "/v1/listen", content=body, headers={"Content-Type": "application/octet-stream"}, params=params
    )
    assert answer.status_code == 200, answer.text
    job = aws.job(answer.json()["request_id"])
    path = tmp_path / "stored.wav"
    path.write_bytes(
        aws.client("s3").get_object(Bucket=aws.settings.bucket_name, Key=job.upload_key)["Body"].read()
    )
    decoded = load_audio(path)
    assert decoded.duration == pytest.approx(1.0, abs=0.01)
    assert np.abs(decoded.samples).max() > 0.2  # the tone, not noise or silence


def test_headerless_audio_streamed_without_a_length_reads_to_the_end(tmp_path: Path) -> None:
    from api_lambda.raw_audio import framing, parse_raw_audio

    raw = parse_raw_audio("linear16", "16000", "1")
    assert raw is not None
    path = tmp_path / "chunked.wav"
    path.write_bytes(framing(raw, b"\x01\x02", None) + _pcm16(tone(2.0)))
    assert load_audio(path).duration == pytest.approx(2.0, abs=0.01)


def test_containerised_audio_passes_through_and_bare_packets_are_refused(
    api: TestClient, aws: AwsEnv, tmp_path: Path
) -> None:
    flac = tmp_path / "tone.flac"
    subprocess.run(["sox", "-n", "-r", "16000", str(flac), "synth", "0.5", "sine", "440"], check=True)
    body = flac.read_bytes()
    answer = listen(api, body, "application/octet-stream", encoding="flac", callback=HOOK)
    job = aws.job(answer.json()["request_id"])
    stored = aws.client("s3").get_object(Bucket=aws.settings.bucket_name, Key=job.upload_key)["Body"].read()
    assert stored == body  # nothing prepended
    assert_deepgram_error(
        listen(api, bytes(range(256)) * 4, "application/octet-stream", encoding="opus"),
        400,
        "Bad Request",
        "no opus container",
    )
    assert_deepgram_error(
        listen(api, bytes(512), "application/octet-stream", encoding="g729"), 400, "Bad Request", "g729"
    )


# --- headers and errors ----------------------------------------------------------------------------
def test_every_v1_answer_has_a_request_id_and_deepgram_errors(api: TestClient) -> None:
    missing, wrong, bad = api.get("/v1/nothing-here"), api.get("/v1/listen"), listen(api, diarize="maybe")
    assert_deepgram_error(missing, 404, "NOT_FOUND", "No such endpoint")
    assert_deepgram_error(wrong, 405, "METHOD_NOT_ALLOWED", "GET is not allowed")
    assert_deepgram_error(bad, 400, "Bad Request", "diarize")
    for answer in (missing, wrong, bad):
        assert answer.headers["dg-request-id"] == answer.json()["request_id"]
    assert wrong.headers["allow"] == "POST"
    assert set(api.get("/nothing-here").json()) == {"detail"}  # the seed's paths keep their shape
    assert "dg-request-id" not in api.get("/health").headers
    assert "dg-request-id" not in api.get("/v1/models").headers  # OpenAI's path keeps OpenAI's ways


def test_callbacks_carry_dg_token_with_the_key_identifier(receiver: Receiver) -> None:
    policy = CallbackPolicy(attempts=1, interval=0, timeout=5, allow_private=True)
    target = CallbackTarget(url=f"{receiver.url}/hook", token="0123456789abcdef")
    assert attempt(target, b"{}", policy).delivered
    (request,) = receiver.posts("/hook")
    assert {k.lower(): v for k, v in request.headers.items()}["dg-token"] == "0123456789abcdef"


def test_the_job_remembers_the_key_identifier_for_its_callback(api: TestClient, aws: AwsEnv) -> None:
    from shared.api_keys import hash_key

    answer = api.post(
        "/v1/listen",
        content=WAV,
        headers={"Content-Type": "audio/wav", "Authorization": "Token secret-key"},
        params={"callback": HOOK},
    )
    job = aws.job(answer.json()["request_id"])
    assert job.callback is not None and job.callback.token == hash_key("secret-key")[:16]
