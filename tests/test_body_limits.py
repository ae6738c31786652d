"""Nothing is read before the key is checked, and no body is read past its limits: raw sockets
against the app served by a real uvicorn on loopback, on the real emulator.

Bodies here are chunked and never finished unless a test says so: an answer that arrives at all
proves the server did not wait for (or read) the rest. Socket timeouts are only safety nets.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from api_lambda import keys_cli
from api_lambda.app import create_app
from api_lambda.early_auth import route_asks_for_key
from shared.settings import Settings
from tests.fixtures_aws import AwsEnv, free_port, wait_for
from tests.test_api import WAV, nothing_stored

SAFETY_NET_SECONDS = 20.0
FORM_HEAD = (
    b'--z\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
)


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"AUTH_REQUIRED": "true"}


@dataclass
class Served:
    app: FastAPI
    port: int


@contextmanager
def serve(settings: Settings) -> Iterator[Served]:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="body-limits-api", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "the API to listen")
    assert server.started
    try:
        yield Served(app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def served(aws: AwsEnv) -> Iterator[Served]:
    with serve(aws.settings) as s:
        yield s


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class RawRequest:
    """One HTTP/1.1 request written by hand on its own socket: headers first, then body chunks."""

    def __init__(self, port: int, method: str, path: str, headers: dict[str, str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SAFETY_NET_SECONDS)
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> http.client.HTTPResponse:
        answer = http.client.HTTPResponse(self.sock, method="POST")
        answer.begin()
        return answer

    def close(self) -> None:
        self.sock.close()


def open_chunked(
    port: int, method: str, path: str, content_type: str, first: bytes = b"x" * 1024, **headers: str
) -> RawRequest:
    request = RawRequest(
        port, method, path, {"Content-Type": content_type, "Transfer-Encoding": "chunked", **headers}
    )
    request.send(chunk(first))  # the body has begun, and never ends
    return request


def concrete_paths(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) for every route of the app, path parameters filled in."""
    found = []
    for context in iter_route_contexts(app.routes):  # included routers' routes, with their prefixes
        route = context.original_route
        if isinstance(route, APIRoute):
            path = re.sub(r"\{[^}]+\}", "x", context.path_format)
            found += [(method, path, route) for method in sorted(route.methods - {"HEAD"})]
    return found


def test_a_keyless_endless_body_is_answered_401_at_once_on_every_route(served: Served) -> None:
    routes = concrete_paths(served.app)
    asking = [(m, p) for m, p, r in routes if route_asks_for_key(r)]
    assert ("POST", "/jobs") in asking and ("POST", "/v1/listen") in asking and ("POST", "/uploads") in asking
    for method, path, route in routes:
        for content_type in ("multipart/form-data; boundary=zzz", "application/json", "audio/wav"):
            request = open_chunked(served.port, method, path, content_type)
            try:
                answer = request.response()
                if route_asks_for_key(route):
                    assert answer.status == 401, (method, path, content_type)
                    assert answer.getheader("connection") == "close"
                else:  # open routes (health, docs) don't read bodies either
                    assert answer.status < 500, (method, path, content_type)
            finally:
                request.close()


def _temporary_files() -> set[str]:
    folder = tempfile.gettempdir()
    opened = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(folder):
            opened.add(target)
    return opened | {str(p) for p in Path(folder).iterdir()}


def test_a_keyless_60_mb_chunked_upload_is_refused_before_it_is_read(served: Served, aws: AwsEnv) -> None:
    before = _temporary_files()
    request = open_chunked(served.port, "POST", "/jobs", "multipart/form-data; boundary=zzz")
    try:
        answer = request.response()  # answered after 1 KiB of the 60 MB
        assert answer.status == 401 and answer.getheader("connection") == "close"
        with pytest.raises(OSError):  # the server hung up: the rest can't even be sent
            for _ in range(60):
                request.send(chunk(b"x" * (1 << 20)))
    finally:
        request.close()
    assert _temporary_files() <= before
    assert nothing_stored(aws)


def test_a_json_body_over_the_limit_is_413_before_it_ends(served: Served, aws: AwsEnv) -> None:
    secret = keys_cli.create(aws.settings, "alpha")
    request = open_chunked(
        served.port, "POST", "/uploads", "application/json", Authorization=f"Token {secret}"
    )
    try:
        for _ in range(aws.settings.max_json_body_bytes // 1024 + 1):
            request.send(chunk(b"x" * 1024))
        answer = request.response()  # the body never ended: it was not read to its end
        assert answer.status == 413 and answer.getheader("connection") == "close"
        assert "MAX_JSON_BODY_BYTES" in answer.read().decode()
    finally:
        request.close()
    declared = RawRequest(
        served.port,
        "POST",
        "/uploads",
        {
            "Authorization": f"Token {secret}",
            "Content-Type": "application/json",
            "Content-Length": "10000000",
        },
    )
    try:
        assert declared.response().status == 413  # from Content-Length, before any byte of it
    finally:
        declared.close()
    assert nothing_stored(aws)


def test_an_upload_over_the_limit_is_413_on_listen_and_jobs_chunked(aws: AwsEnv) -> None:
    secret = keys_cli.create(aws.settings, "alpha")
    settings = aws.settings.model_copy(update={"max_upload_bytes": 256 * 1024})
    with serve(settings) as s:
        for path, content_type, first in (
            ("/v1/listen", "audio/wav", WAV),
            ("/jobs", "multipart/form-data; boundary=z", FORM_HEAD + WAV),
        ):
            request = open_chunked(s.port, "POST", path, content_type, first, Authorization=f"Token {secret}")
            try:
                for _ in range(400):  # 400 KiB: past the limit and the form's framing allowance
                    # Stop writing once the server has answered: writing on after its 413 and close
                    # would make the kernel reset the connection and lose the answer unread.
                    if select.select([request.sock], [], [], 0)[0]:
                        break
                    try:
                        request.send(chunk(b"x" * 1024))
                    except (BrokenPipeError, ConnectionResetError):
                        break  # it answered and closed between the check and this write
                answer = request.response()
                assert answer.status == 413, path
            finally:
                request.close()
    assert nothing_stored(aws)


def test_a_body_that_drips_is_cut_off_with_408(aws: AwsEnv) -> None:
    secret = keys_cli.create(aws.settings, "alpha")
    settings = aws.settings.model_copy(update={"body_read_timeout_seconds": 0.5})
    with serve(settings) as s:
        for path, content_type in (("/v1/listen", "audio/wav"), ("/uploads", "application/json")):
            request = open_chunked(s.port, "POST", path, content_type, Authorization=f"Token {secret}")
            try:
                answer = request.response()  # nothing more is sent: the read times out
                assert answer.status == 408, path
                assert answer.getheader("connection") == "close"
            finally:
                request.close()


def test_a_keyed_upload_within_the_limits_still_works(served: Served, aws: AwsEnv) -> None:
    secret = keys_cli.create(aws.settings, "alpha")
    request = RawRequest(
        served.port,
        "POST",
        "/v1/listen?callback=https://example.com/cb",
        {"Authorization": f"Token {secret}", "Content-Type": "audio/wav", "Transfer-Encoding": "chunked"},
    )
    try:
        request.send(chunk(WAV[:100]) + chunk(WAV[100:]) + b"0\r\n\r\n")
        answer = request.response()
        assert answer.status == 200 and "request_id" in answer.read().decode()
    finally:
        request.close()
