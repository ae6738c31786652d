"""`api_lambda.handler.handler` (Mangum) answers the events Lambda really receives: API Gateway
HTTP API (payload 2.0) and Function URL events, with base64 multipart bodies."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import pytest

from tests.fixtures_aws import AwsEnv
from tests.test_api import WAV

BOUNDARY = "----lambda-test-boundary"


def multipart(fields: dict[str, str], file_name: str, content: bytes) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: audio/wav\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def http_event(
    method: str, path: str, *, domain: str, body: bytes | None = None, **extra: Any
) -> dict[str, Any]:
    """A payload-2.0 event; API Gateway HTTP APIs and Function URLs both send this shape."""
    headers = {"host": domain, "user-agent": "pytest"}
    if body is not None:
        headers |= {
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            "content-length": str(len(body)),
        }
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
            "requestId": "request-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:03:00:00 +0000",
            "timeEpoch": 1795575600000,
            **extra,
        },
        "body": base64.b64encode(body).decode() if body is not None else None,
        "isBase64Encoded": body is not None,
    }


API_GATEWAY = "abc123.execute-api.us-east-1.amazonaws.com"
FUNCTION_URL = "xyz789.lambda-url.us-east-1.on.aws"


class Context:
    function_name = "whisper-api"
    aws_request_id = "request-1"


@pytest.fixture
def handler(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The module-level handler; the app reads this test's settings at each invocation's start."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "whisper-api")
    from api_lambda.handler import handler

    return handler


@pytest.mark.parametrize("domain", [API_GATEWAY, FUNCTION_URL])
def test_submit_poll_and_health_through_lambda_events(handler: Any, aws: AwsEnv, domain: str) -> None:
    body = multipart({"whisper_model": "tiny.en", "batch_size": "4"}, "call.wav", WAV)
    answer = handler(http_event("POST", "/jobs", domain=domain, body=body), Context())
    assert answer["statusCode"] == 201, answer
    created = json.loads(answer["body"])
    assert created["status"] == "queued" and created["position"] == 0

    job = aws.job(created["job_id"])
    assert job.filename == "call.wav" and job.options.batch_size == 4
    stored = aws.client("s3").get_object(Bucket=aws.settings.bucket_name, Key=job.upload_key)["Body"].read()
    assert stored == WAV  # binary bytes intact through base64 + multipart

    status = handler(http_event("GET", f"/jobs/{job.job_id}", domain=domain), Context())
    assert json.loads(status["body"]) == {"job_id": job.job_id, "status": "queued", "position": 0}
    health = handler(http_event("GET", "/health", domain=domain), Context())
    assert json.loads(health["body"]) == {"status": "healthy", "queued_jobs": 1, "processing_jobs": 0}


@pytest.mark.parametrize("aws_overrides", [{"MAX_LAMBDA_UPLOAD_BYTES": "1000"}])
def test_lambda_upload_cap(handler: Any, aws: AwsEnv) -> None:
    body = multipart({}, "big.wav", WAV + bytes(200_000))
    answer = handler(http_event("POST", "/jobs", domain=FUNCTION_URL, body=body), Context())
    assert answer["statusCode"] == 413 and "presigned" in json.loads(answer["body"])["detail"]
    assert not aws.object_keys()


def test_api_stays_light() -> None:
    """The Lambda package must never import the worker, torch or the Whisper runtime."""
    import subprocess

    heavy = ("gpu_worker", "torch", "ctranslate2", "faster_whisper", "av", "numpy")
    code = f"import sys, api_lambda.handler; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
