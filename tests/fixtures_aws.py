"""The AWS side of the tests: a real moto server on loopback (one per session), fresh resources
per test, the API app on top of them, and worker processes to run jobs.

Every test gets its own bucket, queues and table (unique names), so tests never see each
other's jobs and need no reset. Nothing here mocks AWS in-process: boto3 and aiobotocore talk
HTTP to the server through AWS_ENDPOINT_URL, exactly as the service does in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from shared.aws_bootstrap import Resources, ensure_resources
from shared.job_store import JobStore, decode_item
from shared.jobs import Job
from shared.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 180.0  # a safety net so a broken test fails instead of hanging; never a speed check


def wait_for(
    predicate: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS, every: float = 0.1
) -> Any:
    """Poll until `predicate()` is truthy and return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server process for the whole session (state is in memory; tests use unique names)."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    try:
        wait_for(lambda: _reachable(port) or process.poll() is not None, "the moto server to listen")
        assert process.poll() is None, "moto server exited at start"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@dataclass
class AwsEnv:
    """One test's AWS world: settings, resources, boto3 clients, and the environment for children."""

    endpoint: str
    env: dict[str, str]
    settings: Settings
    resources: Resources
    session: boto3.Session
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str) -> Any:
        if name not in self.clients:
            self.clients[name] = self.session.client(name)
        return self.clients[name]

    @property
    def store(self) -> JobStore:
        return JobStore(self.client("dynamodb"), self.settings)

    def job(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def raw_item(self, job_id: str) -> dict[str, Any] | None:
        item = self.client("dynamodb").get_item(
            TableName=self.settings.table_name, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        return decode_item(item["Item"]) if "Item" in item else None

    def table_items(self) -> list[dict[str, Any]]:
        """Every row (a scan is fine in a test's tiny table)."""
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=self.settings.table_name)
        return [decode_item(item) for page in pages for item in page["Items"]]

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.settings.bucket_name, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def messages_in(self, queue_url: str) -> int:
        """Messages in a queue, visible or in flight."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def _test_environment(endpoint: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "BUCKET_NAME": f"jobs-{suffix}",
        "QUEUE_NAME": f"jobs-{suffix}",
        "DLQ_NAME": f"jobs-{suffix}-dlq",
        "TABLE_NAME": f"jobs-{suffix}",
        "UPLOAD_DIR": str(tmp_path / "worker-uploads"),
        "VISIBILITY_TIMEOUT_SECONDS": "30",
        "POLL_WAIT_SECONDS": "1",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DEAD_LETTER_POLL_SECONDS": "1",
        "DEFAULT_WHISPER_MODEL": "tiny.en",
        "DEFAULT_STEMMING": "auto",
        "LOG_JSON": "false",
        **overrides,
    }


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    """Override in a test module (or with `@pytest.mark.parametrize`) to change the environment."""
    return {}


@pytest.fixture
def aws(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_overrides: dict[str, str]
) -> Iterator[AwsEnv]:
    """Fresh bucket, queue + DLQ and table on the moto server, and this process's env pointing at them."""
    env = _test_environment(moto_endpoint, tmp_path, **aws_overrides)
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = Settings()
    session = boto3.Session(region_name=settings.aws_region)
    resources = ensure_resources(settings, session)
    yield AwsEnv(moto_endpoint, env, settings, resources, session)
    get_settings.cache_clear()


@pytest.fixture
def api(aws: AwsEnv) -> Iterator[TestClient]:
    """The FastAPI app (lifespan included) on this test's resources."""
    from api_lambda.app import create_app

    with TestClient(create_app(aws.settings)) as client:
        yield client


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    worker_id: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9: no cleanup of any kind, as a crash."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def spawn_worker(aws: AwsEnv, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `python -m gpu_worker` processes against this test's resources; all stopped at teardown."""
    started: list[WorkerProcess] = []

    def spawn(*args: str, **env: str) -> WorkerProcess:
        worker_id = f"test-worker-{len(started) + 1}"
        log_path = tmp_path / f"{worker_id}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gpu_worker", *args],
                cwd=REPO_ROOT,
                env={**os.environ, **aws.env, "WORKER_ID": worker_id, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(WorkerProcess(process, log_path, worker_id))
        return started[-1]

    yield spawn
    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in started:
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
