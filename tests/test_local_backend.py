"""The API on the embedded backend (BACKEND=local: SQLite and a data directory, no emulator):
its own signed upload URLs, the drop folder DATA_DIR/incoming/, and what survives a restart."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import wave
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from shared.embedded.db import Database
from shared.embedded.signing import SECRET_FILENAME, UploadGrant, UploadSigner, load_or_create_secret
from shared.ingestion import drop_job_id
from shared.settings import Settings


def wav_bytes(seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16000)
        audio.writeframes(b"\0\0" * int(16000 * seconds))
    return out.getvalue()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Settings(backend="local", data_dir=tmp_path / "data", drop_settle_seconds=0, auth_required=False)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    from api_lambda.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


def new_upload(api: TestClient, **body: object) -> dict:
    answer = api.post("/uploads", json={"filename": "call.wav", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_the_backend_is_local_unless_aws_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BACKEND", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME", "ECS_CONTAINER_METADATA_URI_V4"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().backend == "local"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "api")
    assert Settings().backend == "aws"
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert Settings().backend == "aws"
    monkeypatch.setenv("BACKEND", "local")
    assert Settings().backend == "local"


def test_a_signed_put_stores_the_file_and_queues_its_job(api: TestClient, settings: Settings) -> None:
    upload = new_upload(api, content_type="audio/wav")
    assert upload["put"]["url"].startswith("http://testserver/uploads/")
    assert upload["put"]["headers"] == {"Content-Type": "audio/wav"}
    assert api.get(f"/jobs/{upload['job_id']}").json()["status"] == "awaiting_upload"
    body = wav_bytes()
    answer = api.put(upload["put"]["url"], content=body, headers=upload["put"]["headers"])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"job_id": upload["job_id"], "status": "queued"}
    assert (settings.data_dir / upload["key"]).read_bytes() == body
    assert api.get(f"/jobs/{upload['job_id']}").json() == {
        "job_id": upload["job_id"],
        "status": "queued",
        "position": 0,
    }
    # POST /jobs {"upload_id"} after the upload finds it started, as on AWS.
    assert api.post("/jobs", json={"upload_id": upload["job_id"]}).json()["status"] == "queued"
    # A second PUT to the same URL is refused: the job took its file.
    again = api.put(upload["put"]["url"], content=body, headers=upload["put"]["headers"])
    assert again.status_code == 409


def test_the_browser_form_works_too(api: TestClient, settings: Settings) -> None:
    upload = new_upload(api, content_type="audio/wav")
    fields = upload["post"]["fields"]
    answer = api.post(
        upload["post"]["url"], data=fields, files={"file": ("call.wav", wav_bytes(), "audio/wav")}
    )
    assert answer.status_code == 200, answer.text
    assert api.get(f"/jobs/{upload['job_id']}").json()["status"] == "queued"


def test_a_changed_wrongly_typed_or_oversized_upload_is_refused(api: TestClient) -> None:
    upload = new_upload(api, content_type="audio/wav", size_bytes=len(wav_bytes()))
    url, headers = upload["put"]["url"], upload["put"]["headers"]
    tampered = url.replace("max_bytes=", "max_bytes=9")
    answer = api.put(tampered, content=wav_bytes(), headers=headers)
    assert answer.status_code == 403 and "signature does not match" in answer.json()["detail"]
    answer = api.put(url, content=wav_bytes(), headers={"Content-Type": "audio/mpeg"})
    assert answer.status_code == 403 and "signed for Content-Type 'audio/wav'" in answer.json()["detail"]
    answer = api.put(url, content=wav_bytes(1.0), headers=headers)
    assert answer.status_code == 403 and "exactly" in answer.json()["detail"]
    assert api.get(f"/jobs/{upload['job_id']}").json()["status"] == "awaiting_upload"  # still waiting


def test_an_expired_url_is_refused(api: TestClient, settings: Settings) -> None:
    upload = new_upload(api)
    query = {
        k: v[0] for k, v in parse_qs(urlsplit(upload["put"]["url"]).query, keep_blank_values=True).items()
    }
    signer = UploadSigner(load_or_create_secret(settings.data_dir))
    grant = UploadGrant(upload["job_id"], int(query["max_bytes"]), False, "", 1)  # 1970
    expired = grant.query(signer.sign(grant))
    answer = api.put(f"/uploads/{upload['job_id']}", params=expired, content=wav_bytes())
    assert answer.status_code == 403 and "expired" in answer.json()["detail"]


def test_an_upload_that_is_not_audio_fails_its_job_with_the_reason(
    api: TestClient, settings: Settings
) -> None:
    upload = new_upload(api)
    answer = api.put(upload["put"]["url"], content=b"%PDF-1.7 not a recording" * 10)
    assert answer.status_code == 400 and "not audio or video" in answer.json()["detail"]
    job = api.get(f"/jobs/{upload['job_id']}").json()
    assert job["status"] == "failed" and "not audio or video" in job["error"]
    assert not (settings.data_dir / upload["key"]).exists()  # refused objects are deleted


def test_the_signing_secret_is_made_once_and_private(settings: Settings) -> None:
    first = load_or_create_secret(settings.data_dir)
    assert load_or_create_secret(settings.data_dir) == first and len(first) == 32
    mode = stat.S_IMODE(os.stat(settings.data_dir / SECRET_FILENAME).st_mode)
    assert mode == 0o600


def test_jobs_and_keys_survive_a_restart_of_the_api(settings: Settings) -> None:
    from api_lambda.app import create_app

    keyed = settings.model_copy(update={"auth_required": True})
    from api_lambda.keys_cli import create

    secret = create(keyed, "alpha")
    with TestClient(create_app(keyed)) as first:
        answer = first.post(
            "/uploads", json={"filename": "a.wav"}, headers={"Authorization": f"Token {secret}"}
        )
        job_id = answer.json()["job_id"]
    with TestClient(create_app(keyed)) as second:  # a new process's view of the same DATA_DIR
        seen = second.get(f"/jobs/{job_id}", headers={"Authorization": f"Token {secret}"})
        assert seen.status_code == 200 and seen.json()["status"] == "awaiting_upload"
        assert second.get(f"/jobs/{job_id}").status_code == 401


# --- the drop folder ------------------------------------------------------------------------------------
def scan(settings: Settings) -> list[str]:
    from api_lambda.aws import open_clients
    from onebox.watcher import DropWatcher

    async def run() -> list[str]:
        async with open_clients(None, settings) as aws:
            watcher = DropWatcher(aws, settings, Database.in_dir(settings.data_dir))
            return await watcher.scan() + await watcher.scan()  # never twice

    return asyncio.run(run())


def test_a_dropped_file_becomes_one_job_with_the_s3_drop_folder_id(
    api: TestClient, settings: Settings
) -> None:
    dropped = settings.data_dir / "incoming" / "team" / "call.wav"
    dropped.parent.mkdir(parents=True)
    dropped.write_bytes(wav_bytes())
    os.utime(dropped, (1, 1))  # settled long ago
    (dropped.parent / ".call.wav.partial").write_bytes(b"half")  # hidden: never taken
    assert scan(settings) == ["incoming/team/call.wav"]
    found = api.get("/jobs", params={"source_key": "incoming/team/call.wav"}).json()
    import hashlib

    etag = f'"{hashlib.md5(wav_bytes()).hexdigest()}"'
    assert found["job_id"] == drop_job_id(settings.bucket_name, "incoming/team/call.wav", etag, {})
    assert found["status"] == "queued" and found["result_key"] == "results/team/call.json"
    assert scan(settings) == []  # taken once, also by a new watcher (a restart)

    dropped.write_bytes(wav_bytes(0.7))  # other bytes under the same name: a new job
    os.utime(dropped, (2, 2))
    assert scan(settings) == ["incoming/team/call.wav"]
    assert (
        api.get("/jobs", params={"source_key": "incoming/team/call.wav"}).json()["job_id"] != found["job_id"]
    )


def test_a_file_still_being_written_is_not_taken(settings: Settings) -> None:
    waiting = settings.model_copy(update={"drop_settle_seconds": 3600.0})
    growing = settings.data_dir / "incoming" / "long.wav"
    growing.parent.mkdir(parents=True)
    growing.write_bytes(wav_bytes())
    assert scan(waiting) == []


def test_expired_jobs_and_their_files_are_purged_but_dropped_files_stay(settings: Settings) -> None:
    from shared.embedded.backend import local_parts
    from shared.embedded.housekeeping import purge_expired
    from shared.jobs import JobOptions, new_job_id

    parts = local_parts(settings)
    ops, job_id = parts.store.ops, new_job_id()
    job = ops.queued_job(
        job_id,
        JobOptions(whisper_model="tiny.en"),
        upload_key=f"uploads/{job_id}/a.wav",
        filename="a.wav",
        size_bytes=3,
        content_type=None,
    )
    parts.store.create(job)
    parts.blobs.put(job.upload_key, b"wav")
    parts.blobs.put(f"results/{job_id}.json", b"{}")
    parts.blobs.put("incoming/mine.wav", b"wav")
    assert purge_expired(parts.db, parts.blobs) == 0  # still live
    assert purge_expired(parts.db, parts.blobs, now=job.expires_at + 3600) == 1
    assert not (settings.data_dir / job.upload_key).exists()
    assert not (settings.data_dir / f"results/{job_id}.json").exists()
    assert (settings.data_dir / "incoming/mine.wav").exists()
