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
import botocore.loaders
import botocore.session
import pytest
from aiobotocore.session import AioSession
from fastapi.testclient import TestClient

from onebox.aws_bootstrap import Resources, ensure_resources
from shared.job_store import JobStore, decode_item
from shared.jobs import Job
from shared.settings import Settings, get_settings
from tests import forked_workers
from tests.faults import FAULT_ENV
from tests.forked_workers import ChildProcess

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
    yield from _moto_server(tmp_path_factory, [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p"])


# moto's server answers requests on parallel threads with no lock around a conditional write, so two
# racing conditional updates of one item can both succeed there (on main too, 3 runs in 4 under
# load), while DynamoDB applies them one at a time. Race tests run against this one-request-at-a-
# time server instead, which serialises requests as DynamoDB serialises writes to an item.
_SERIAL_MOTO = (
    "import sys; from werkzeug.serving import run_simple; "
    "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app; "
    "app = DomainDispatcherApplication(create_backend_app); "
    "run_simple('127.0.0.1', int(sys.argv[1]), app, threaded=False)"
)


@pytest.fixture(scope="session")
def serial_moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server that handles one request at a time (for tests of racing conditional writes)."""
    yield from _moto_server(tmp_path_factory, [sys.executable, "-c", _SERIAL_MOTO])


def _moto_server(tmp_path_factory: pytest.TempPathFactory, command: list[str]) -> Iterator[str]:
    """Run `command` with a free port appended; yield its URL once it listens."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    process = subprocess.Popen([*command, str(port)], stdout=log, stderr=log)
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
    aio: AioSession
    """For `create_app(..., session=)`: the API's clients share the session's parsed models."""
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
        "INGEST_QUEUE_NAME": f"jobs-{suffix}-ingest",
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


@pytest.fixture(scope="session")
def service_models() -> botocore.loaders.Loader:
    """One botocore loader for the whole session, shared by every test's boto3 and aiobotocore
    sessions: parsing S3's, SQS's and DynamoDB's service JSON afresh for each test's clients was
    about a third of an API test's CPU time (profiled)."""
    return botocore.loaders.create_loader()


def boto3_session(service_models: botocore.loaders.Loader, region: str) -> boto3.Session:
    """A new boto3 session (its own credentials and config, read from the environment as usual)
    whose service models come from the shared loader."""
    core = botocore.session.Session()
    core.register_component("data_loader", service_models)
    return boto3.Session(botocore_session=core, region_name=region)


def aio_session(service_models: botocore.loaders.Loader) -> AioSession:
    """`boto3_session`'s aiobotocore twin, for the API app."""
    session = AioSession()
    session.register_component("data_loader", service_models)
    return session


@pytest.fixture
def aws(
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_overrides: dict[str, str],
    service_models: botocore.loaders.Loader,
) -> Iterator[AwsEnv]:
    """Fresh bucket, queue + DLQ and table on the moto server, and this process's env pointing at them."""
    env = _test_environment(moto_endpoint, tmp_path, **aws_overrides)
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = Settings()
    session = boto3_session(service_models, settings.aws_region)
    resources = ensure_resources(settings, session)
    yield AwsEnv(moto_endpoint, env, settings, resources, session, aio=aio_session(service_models))
    get_settings.cache_clear()


@pytest.fixture
def api(aws: AwsEnv) -> Iterator[TestClient]:
    """The FastAPI app (lifespan included) on this test's resources."""
    from api_lambda.app import create_app

    with TestClient(create_app(aws.settings, session=aws.aio)) as client:
        yield client


@dataclass
class WorkerProcess:
    process: ChildProcess
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
    """Start `python -m gpu_worker` processes against this test's resources; all stopped at teardown.
    They are forked from a server that has already imported torch and the like (tests/forked_workers.py)."""
    started: list[WorkerProcess] = []

    def spawn(*args: str, **env: str) -> WorkerProcess:
        """`WORKER_FAULT_INJECTION` in `env`: run it through tests/faults.py's hooks."""
        worker_id = f"test-worker-{len(started) + 1}"
        log_path = tmp_path / f"{worker_id}.log"
        module = ["tests.faults", "gpu_worker"] if FAULT_ENV in env else ["gpu_worker"]
        process = forked_workers.start(
            [*module, *args],
            env={**os.environ, **aws.env, "WORKER_ID": worker_id, **env},
            cwd=REPO_ROOT,
            log_path=log_path,
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


# --- real HTTP on loopback: the API served by uvicorn, and a programmable receiver ---------------
@pytest.fixture
def live_api(aws: AwsEnv) -> Iterator[str]:
    """The app served over real HTTP on loopback (uvicorn in a thread), for clients that need a
    base URL (the Deepgram SDK, the client CLI). Yields the base URL."""
    import threading

    import uvicorn

    from api_lambda.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(aws.settings, session=aws.aio), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "the API to listen")
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """A loopback HTTP server that records every request. POST/PUT are answered with the next
    status from `answers` (`default` once they run out); GET serves `files` by path (or redirects,
    from `redirects`)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[Received] = []
        self.answers: list[int] = []
        self.default = 200
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.received.append(
                        Received(self.command, self.path, dict(self.headers.items()), body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _record

            def do_GET(self) -> None:
                with receiver.lock:
                    status = (
                        302
                        if self.path in receiver.redirects
                        else 200
                        if self.path in receiver.files
                        else 404
                    )
                    receiver.received.append(
                        Received("GET", self.path, dict(self.headers.items()), b"", status)
                    )
                if self.path in receiver.redirects:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = receiver.files.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def posts(self, path: str) -> list[Received]:
        """The POST/PUT requests to `path`."""
        with self.lock:
            return [r for r in self.received if r.path == path and r.method != "GET"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


# --- S3 event ingestion (api_lambda/ingest.py) ------------------------------------------------------
def ingest_events(aws: AwsEnv) -> list[dict[str, Any]]:
    """Take every notification waiting in this test's ingest queue: the events the emulator sent
    while objects were written under uploads/ and incoming/ (and the s3:TestEvent of the setup)."""
    import json

    sqs, url = aws.client("sqs"), aws.resources.ingest_queue_url
    events = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return events


def run_ingest(aws: AwsEnv, *events: dict[str, Any]) -> list[tuple[str, str]]:
    """`process_event` on each event, as the ingest consumer and the Lambda handler run it:
    `(key, outcome)` per object."""
    import asyncio

    from aiobotocore.session import get_session

    from api_lambda.aws import open_clients
    from api_lambda.ingest import process_event

    async def run() -> list[tuple[str, str]]:
        async with open_clients(get_session(), aws.settings) as clients:
            outcomes = []
            for event in events:
                outcomes += [(key, outcome.value) for key, outcome in await process_event(clients, event)]
            return outcomes

    loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the loop Mangum's tests rely on
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


def ingest_pending(aws: AwsEnv) -> list[tuple[str, str]]:
    return run_ingest(aws, *ingest_events(aws))
