"""`whisper-diarization-local` (also `python -m onebox`, `python -m onebox`): the API on
:8001, one worker and the drop-folder watcher, supervised, on the embedded backend in DATA_DIR.
Jobs, results and API keys survive restarts. `--emulate-aws` runs them against an embedded AWS
emulator (moto, state in memory) with the ingest consumer instead, as the tests and LocalStack do.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from onebox.supervisor import Child, Supervisor, clear_stale_run
from shared.settings import BackendChoice, Settings

LOCAL_PROJECT = "local"
LOCK_FILENAME = "onebox.lock"
RUN_FILENAME = "onebox.run.json"
# The worker's command after the interpreter (tests/faults.py puts its own here).
WORKER_COMMAND: tuple[str, ...] = ("-m", "gpu_worker")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whisper-diarization-local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="API address (0.0.0.0 to serve the network)")
    parser.add_argument("--port", type=int, default=8001, help="API port (default 8001)")
    parser.add_argument("--concurrency", type=int, default=1, help="worker threads (default 1)")
    parser.add_argument("--no-worker", action="store_true", help="run only the API (and the watcher)")
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request (off by default)")
    parser.add_argument(
        "--emulate-aws", action="store_true", help="use an embedded AWS emulator (moto) instead of DATA_DIR"
    )
    parser.add_argument("--moto-port", type=int, default=0, help="with --emulate-aws: the emulator's port")
    return parser.parse_args(argv)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _base_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["LOG_JSON"] = env.get("LOG_JSON", "false")
    env["POLL_WAIT_SECONDS"] = env.get("POLL_WAIT_SECONDS", "5")  # a quick Ctrl-C; polls are local
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME"):
        env.pop(name, None)
    return env


def _local_environment(data_dir: Path) -> dict[str, str]:
    env = _base_environment()
    for name in list(env):
        if name.startswith("AWS_ENDPOINT_URL"):
            env.pop(name)
    env.update({"BACKEND": BackendChoice.LOCAL.value, "DATA_DIR": str(data_dir)})
    return env


def _emulator_environment(endpoint: str) -> dict[str, str]:
    env = _base_environment()
    env.update(
        {
            "BACKEND": BackendChoice.AWS.value,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
            "AWS_DEFAULT_REGION": env.get("AWS_REGION", "us-east-1"),
        }
    )
    return env


@contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """One run per data directory. The lock dies with its holder, even by kill -9."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK_FILENAME).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"another whisper-diarization-local is running on {data_dir}; stop it first "
                "(or give this one another DATA_DIR)"
            ) from None
        yield


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _access_line(settings: Settings, *, persistent: bool) -> str:
    """With AUTH_REQUIRED=true, a key for the `local` project (made once on the embedded backend,
    kept across runs; made per run on the emulator, which forgets it); otherwise a plain
    statement that the API is open, so nobody assumes it is protected."""
    if not settings.auth_required:
        return (
            "Authentication is OFF (AUTH_REQUIRED=false, the default): anyone who can reach the API "
            "can use it. Set AUTH_REQUIRED=true to require API keys."
        )
    from api_lambda.keys_cli import create as create_key
    from shared.backends import sync_store

    if persistent:
        store = sync_store(settings)
        kept = [k for _, k in store.run(store.keys.list_keys()) if k.project_id == LOCAL_PROJECT and k.active]
        if kept:
            return (
                f"Authentication is ON: the API keys made earlier still work ({len(kept)} for project "
                f"'{LOCAL_PROJECT}', prefix {kept[0].prefix}…); new ones: "
                "python -m api_lambda.keys_cli create --project NAME"
            )
    secret = create_key(settings, project=LOCAL_PROJECT, comment="made by whisper-diarization-local")
    lifetime = "kept in DATA_DIR, shown only now" if persistent else "valid while this runs"
    return (
        f"Authentication is ON: API key for project '{LOCAL_PROJECT}' ({lifetime}): {secret}\n"
        f"  send it as `Authorization: Token {secret}`; "
        "more keys: python -m api_lambda.keys_cli create --project NAME"
    )


def _wait_healthy(url: str, supervisor: Supervisor, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check()
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            time.sleep(0.2)
    return False


def _children(args: argparse.Namespace, env: dict[str, str], *, emulator: bool) -> list[Child]:
    python = sys.executable
    api = [python, "-m", "uvicorn", "api_lambda.app:app", "--host", args.host, "--port", str(args.port)]
    if not args.access_log:  # a line per request costs more than a status poll does
        api.append("--no-access-log")
    children = [Child("api", api, env)]
    if not args.no_worker:
        worker = [python, *WORKER_COMMAND, "--concurrency", str(args.concurrency)]
        # SIGTERM: finish the job in hand; a second: give it back; then SIGKILL.
        children.append(Child("worker", worker, env, stop_signals=(signal.SIGTERM, signal.SIGTERM)))
    # The stand-in for S3 events: the drop folder (embedded), or the emulator's ingest queue.
    feeder = "onebox.ingest_consumer" if emulator else "onebox.watcher"
    children.append(Child(feeder.rpartition(".")[2], [python, "-m", feeder], env))
    return children


def _serve(supervisor: Supervisor, url: str, banner: str) -> int:
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        supervisor.start_all()
        if _wait_healthy(url, supervisor):
            print(banner, flush=True)
        else:
            _say(f"the API did not answer at {url}/health; see its output above")
        while not stop_requested:
            supervisor.check()
            time.sleep(0.2)
    finally:
        supervisor.stop()
    return 0


def _run_local(args: argparse.Namespace) -> int:
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ["BACKEND"] = BackendChoice.LOCAL.value
    settings = Settings()
    data_dir = settings.data_dir.expanduser().resolve()
    with _exclusive(data_dir):
        clear_stale_run(data_dir / RUN_FILENAME, _say)
        if not _port_free(args.host, args.port):
            _say(f"port {args.port} is in use by another program; pass --port N to use another")
            return 1
        os.environ["DATA_DIR"] = str(data_dir)
        settings = Settings()
        from shared.embedded.backend import local_parts

        local_parts(settings)  # the schema, the folders
        (data_dir / "incoming").mkdir(exist_ok=True)
        access = _access_line(settings, persistent=True)
        env = _local_environment(data_dir)
        supervisor = Supervisor(_children(args, env, emulator=False), run_file=data_dir / RUN_FILENAME)
        url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}"
        banner = (
            f"\nWhisper diarization service at {url}  (API docs: {url}/docs)\n"
            f"Data (jobs, results, API keys) in {data_dir}; drop audio into {data_dir / 'incoming'} "
            f"for results in {data_dir / 'results'}. Ctrl-C stops.\n{access}\n"
        )
        return _serve(supervisor, url, banner)


def _run_emulated(args: argparse.Namespace) -> int:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from onebox.aws_bootstrap import ensure_resources

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's per-request lines
    moto: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        env = _emulator_environment(f"http://{host}:{port}")
        os.environ.update(env)  # the bootstrap below uses the same endpoint and credentials
        settings = Settings()
        resources = ensure_resources(settings)
        access = _access_line(settings, persistent=False)
        supervisor = Supervisor(_children(args, env, emulator=True))
        url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}"
        banner = (
            f"\nWhisper diarization service at {url}  (API docs: {url}/docs)\n"
            f"AWS emulator (moto) at http://{host}:{port}: bucket {resources.bucket}, "
            f"table {resources.table}; state is in memory only. Ctrl-C stops.\n{access}\n"
        )
        return _serve(supervisor, url, banner)
    finally:
        moto.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    return _run_emulated(args) if args.emulate_aws else _run_local(args)


if __name__ == "__main__":
    sys.exit(main())
