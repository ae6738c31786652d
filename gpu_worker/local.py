"""The whole service on one machine, with one command (`whisper-diarization-local`, or
`python -m gpu_worker.local`): an embedded AWS emulator (moto) on loopback, the API on :8001,
one worker, and the ingest consumer (the emulator's stand-in for the S3-triggered ingest Lambda).

The emulator's state (jobs, audio, results) lives in memory and is gone when this stops. The
API and worker are the production code, started as child processes with AWS_ENDPOINT_URL
pointing at the emulator and dummy credentials, exactly as they would run against AWS.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from shared.aws_bootstrap import ensure_resources
from shared.keys_cli import create as create_key
from shared.settings import Settings

GRACE_SECONDS = 15.0  # per shutdown step: finish, then give back, then kill
LOCAL_PROJECT = "local"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whisper-diarization-local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="API address (0.0.0.0 to serve the network)")
    parser.add_argument("--port", type=int, default=8001, help="API port (default 8001)")
    parser.add_argument("--moto-port", type=int, default=0, help="emulator port (default: any free one)")
    parser.add_argument("--concurrency", type=int, default=1, help="worker threads (default 1)")
    parser.add_argument("--no-worker", action="store_true", help="run only the emulator and the API")
    return parser.parse_args(argv)


def _child_environment(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
            "AWS_DEFAULT_REGION": env.get("AWS_REGION", "us-east-1"),
            "LOG_JSON": env.get("LOG_JSON", "false"),
            "POLL_WAIT_SECONDS": env.get("POLL_WAIT_SECONDS", "5"),  # quick Ctrl-C; the emulator is local
        }
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME"):
        env.pop(name, None)
    return env


def _access_line(settings: Settings) -> str:
    """With AUTH_REQUIRED=true, a key made for this run (the emulator forgets it at exit);
    otherwise a plain statement that the API is open, so nobody assumes it is protected."""
    if not settings.auth_required:
        return (
            "Authentication is OFF (AUTH_REQUIRED=false, the default): anyone who can reach the API "
            "can use it. Set AUTH_REQUIRED=true to require API keys."
        )
    secret = create_key(settings, project=LOCAL_PROJECT, comment="made by whisper-diarization-local")
    return (
        f"Authentication is ON: API key for project '{LOCAL_PROJECT}' (valid while this runs): {secret}\n"
        f"  send it as `Authorization: Token {secret}`; "
        "more keys: python -m shared.keys_cli create --project NAME"
    )


def _wait_healthy(url: str, api: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and api.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            time.sleep(0.2)
    return False


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (the worker finishes its job), again (it gives the job back), then SIGKILL."""
    for step in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        alive = [c for c in children if c.poll() is None]
        if not alive:
            return
        for child in alive:
            child.send_signal(step)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and any(c.poll() is None for c in alive):
            time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's per-request lines
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    env = _child_environment(f"http://{host}:{port}")
    os.environ.update(env)  # the bootstrap below uses the same endpoint and credentials
    settings = Settings()
    resources = ensure_resources(settings)
    access = _access_line(settings)

    # Own process groups: Ctrl-C reaches only this supervisor, which stops the children in order.
    spawn = {"env": env, "start_new_session": True}
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api_lambda.app:app",
            "--host",
            args.host,
            "--port",
            str(args.port),
        ],
        **spawn,  # type: ignore[call-overload]
    )
    # The ingest Lambda's stand-in: S3 events (presigned uploads, incoming/ drops) → jobs.
    ingest_cmd = [sys.executable, "-m", "gpu_worker.ingest_consumer"]
    ingest = subprocess.Popen(ingest_cmd, **spawn)  # type: ignore[call-overload]
    children = [api, ingest]
    if not args.no_worker:
        worker_cmd = [sys.executable, "-m", "gpu_worker", "--concurrency", str(args.concurrency)]
        children.append(subprocess.Popen(worker_cmd, **spawn))  # type: ignore[call-overload]

    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}"
    try:
        if _wait_healthy(url, api):
            print(
                f"\nWhisper diarization service at {url}  (API docs: {url}/docs)\n"
                f"AWS emulator (moto) at http://{host}:{port}: bucket {resources.bucket}, "
                f"table {resources.table}; state is in memory only. Ctrl-C stops.\n{access}\n",
                flush=True,
            )
        while not stop_requested and all(c.poll() is None for c in children):
            time.sleep(0.2)
        failed = [c.args for c in children if c.poll() not in (None, 0)]
        if failed and not stop_requested:
            print(f"stopping: a child process exited: {failed}", file=sys.stderr, flush=True)
    finally:
        _stop(children)
        moto.stop()
    return 0 if stop_requested else 1


if __name__ == "__main__":
    sys.exit(main())
