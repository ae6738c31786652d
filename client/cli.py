"""A client for the job API: `python -m client.cli transcribe FILE --url URL --wait`.

Submits the file with `POST /jobs`, and with `--wait` follows the job with a progress bar of its
stages, then saves the result as JSON (Deepgram's) and as SRT, WebVTT and plain text (what
`GET /jobs/{id}/result?format=` serves). Needs only httpx and tqdm, no AWS credentials: the API
key goes in `Authorization: Token <key>` (`--api-key`, or WHISPER_DIARIZATION_API_KEY).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import httpx
from tqdm import tqdm

from shared.exporters import ExportFormat
from shared.options import JobParameters
from shared.stages import PIPELINE_STAGES

DEFAULT_URL = "http://localhost:8001"
DEFAULT_FORMATS = "json,srt,vtt,txt"
SUFFIXES = {fmt: fmt.value for fmt in ExportFormat}  # result.json, result.srt, ...


class ClientError(Exception):
    """What went wrong, for the user (exit status 1)."""


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m client.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("transcribe", help="submit an audio file (and wait for its result)")
    run.add_argument("file", type=Path)
    run.add_argument("--url", default=os.environ.get("WHISPER_DIARIZATION_URL", DEFAULT_URL))
    run.add_argument("--api-key", default=os.environ.get("WHISPER_DIARIZATION_API_KEY"))
    run.add_argument("--wait", action="store_true", help="follow the job and save its result")
    run.add_argument("--formats", default=DEFAULT_FORMATS, help=f"what to save (default {DEFAULT_FORMATS})")
    run.add_argument("--output-dir", type=Path, default=Path("."), help="where to save (default: here)")
    run.add_argument("--poll-seconds", type=float, default=1.0)
    _add_job_parameters(run)
    return parser.parse_args(argv)


def _add_job_parameters(parser: argparse.ArgumentParser) -> None:
    """A flag for each `POST /jobs` form field (shared.options.JobParameters); sent only when given,
    so the server's defaults apply to the rest."""
    for name, field in JobParameters.model_fields.items():
        flag = f"--{name.replace('_', '-')}"
        kind = next(arg for arg in (*get_args(field.annotation), field.annotation) if arg is not type(None))
        if kind is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=field.description
            )
        else:
            parser.add_argument(flag, dest=name, type=kind, default=None, help=field.description)


def _formats(text: str) -> list[ExportFormat]:
    try:
        return [ExportFormat(name.strip().lower()) for name in text.split(",") if name.strip()]
    except ValueError as error:
        raise ClientError(f"unknown format in {text!r}; choose from {', '.join(SUFFIXES)}") from error


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    raise ClientError(
        f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}: {detail}"
    )


def submit(client: httpx.Client, path: Path, options: dict[str, Any]) -> str:
    form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items() if v is not None}
    with path.open("rb") as audio:
        answer = _checked(client.post("/jobs", files={"file": (path.name, audio)}, data=form))
    return answer.json()["job_id"]


def follow(client: httpx.Client, job_id: str, poll_seconds: float) -> dict[str, Any]:
    """Poll the job until it finishes, drawing its stage on a progress bar; its last status."""
    stages = [stage.value for stage in PIPELINE_STAGES]
    with tqdm(total=len(stages), desc="queued", unit="stage", file=sys.stderr) as bar:
        while True:
            status = _checked(client.get(f"/jobs/{job_id}")).json()
            state = status["status"]
            if state == "processing" and status.get("progress") in stages:
                bar.n = stages.index(status["progress"])
                bar.set_description(status["progress"])
            elif state == "queued":
                bar.set_description(f"queued (position {status.get('position', '?')})")
            if state in ("completed", "failed", "cancelled"):
                if state == "completed":
                    bar.n = len(stages)
                bar.set_description(state)
                return status
            bar.refresh()
            time.sleep(poll_seconds)


def save(
    client: httpx.Client, job_id: str, stem: str, formats: list[ExportFormat], folder: Path
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for fmt in formats:
        answer = _checked(client.get(f"/jobs/{job_id}/result", params={"format": fmt.value}))
        path = folder / f"{stem}.{SUFFIXES[fmt]}"
        path.write_bytes(answer.content)
        saved.append(path)
    return saved


def transcribe(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise ClientError(f"no such file: {args.file}")
    formats = _formats(args.formats)
    headers = {"Authorization": f"Token {args.api_key}"} if args.api_key else {}
    with httpx.Client(
        base_url=args.url, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0)
    ) as client:
        job_id = submit(client, args.file, {name: getattr(args, name) for name in JobParameters.model_fields})
        print(f"job {job_id}", file=sys.stderr)
        if not args.wait:
            print(job_id)
            return 0
        status = follow(client, job_id, args.poll_seconds)
        if status["status"] != "completed":
            raise ClientError(f"job {job_id} {status['status']}: {status.get('error', '')}".rstrip(": "))
        for path in save(client, job_id, args.file.stem, formats, args.output_dir):
            print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return transcribe(args)
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except httpx.HTTPError as error:
        print(f"error: can't reach {args.url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
