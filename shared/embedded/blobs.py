"""The blob store on one machine: objects are files under DATA_DIR, at their S3 keys
(uploads/…, results/…, incoming/…). Every write goes to a temporary file in DATA_DIR/.tmp,
is fsynced, renamed into place and its directory fsynced: a crash leaves the old file or the
new one, never half of one. The content type and ETag (an MD5, as S3's single-part ETag) of
what the service writes are kept in SQLite; files people drop in get theirs computed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import os
import shutil
import time
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlencode

from shared.embedded.db import Database
from shared.embedded.signing import UploadGrant, UploadSigner
from shared.errors import InvalidParameter
from shared.ingestion import parse_upload_key
from shared.ports import PresignedUpload, StoredObject, UploadBody, UploadTerms
from shared.resources import UPLOADS_PREFIX, callback_body_key, result_key
from shared.storage import UploadMissing

CHUNK = 1024 * 1024
TMP_DIRNAME = ".tmp"
_RECORD = "INSERT OR REPLACE INTO objects (key, size, mtime_ns, etag, content_type) VALUES (?, ?, ?, ?, ?)"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobs:
    """Sync methods (the worker, and the async wrappers below)."""

    def __init__(self, data_dir: Path, db: Database, bucket: str) -> None:
        self.root = data_dir
        self.db = db
        self.bucket = bucket
        self.tmp = data_dir / TMP_DIRNAME
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if (
            not parts
            or key.startswith("/")
            or any(p in ("..", ".", "") for p in parts)
            or parts[0] == TMP_DIRNAME
        ):
            raise InvalidParameter(f"not an object key: {key!r}")
        return self.root.joinpath(*parts)

    # -- writing
    def _temp(self) -> Path:
        return self.tmp / uuid.uuid4().hex

    def _commit(self, temp: Path, key: str, etag: str, content_type: str | None) -> None:
        """Move a written, fsynced temporary file to `key` and record what S3 would know of it."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        _fsync_dir(target.parent)
        stat = target.stat()
        with self.db.write() as conn:
            conn.execute(
                _RECORD,
                (key, stat.st_size, stat.st_mtime_ns, etag, content_type),
            )

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        temp = self._temp()
        try:
            with temp.open("wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            self._commit(temp, key, f'"{hashlib.md5(body).hexdigest()}"', content_type)
        finally:
            temp.unlink(missing_ok=True)

    def download(self, key: str, destination: Path) -> Path:
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(self.path(key), destination)
        except FileNotFoundError as error:
            raise UploadMissing(f"the uploaded audio ({key}) is gone; submit the file again") from error
        return destination

    def copy(self, source: StoredObject, key: str) -> None:
        temp = self._temp()
        try:
            shutil.copyfile(self.path(source.key), temp)
            with temp.open("rb+") as out:
                os.fsync(out.fileno())
            self._commit(temp, key, source.etag, source.content_type)
        finally:
            temp.unlink(missing_ok=True)

    # -- reading
    def head(self, bucket: str, key: str) -> StoredObject | None:
        if bucket != self.bucket:
            return None
        try:
            path = self.path(key)
            stat = path.stat()
        except (InvalidParameter, FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        known = (
            self.db.read()
            .execute(
                "SELECT etag, content_type FROM objects WHERE key = ? AND size = ? AND mtime_ns = ?",
                (key, stat.st_size, stat.st_mtime_ns),
            )
            .fetchone()
        )
        if known is not None:
            etag, content_type = known["etag"], known["content_type"]
        else:  # a file put there by someone else (the drop folder): what `aws s3 cp` would send
            etag, content_type = self._etag(path), mimetypes.guess_type(path.name)[0]
            with self.db.write() as conn:
                conn.execute(
                    _RECORD,
                    (key, stat.st_size, stat.st_mtime_ns, etag, content_type),
                )
        return StoredObject(bucket, key, stat.st_size, etag, content_type)

    @staticmethod
    def _etag(path: Path) -> str:
        digest = hashlib.md5()
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
        return f'"{digest.hexdigest()}"'

    def read_head(self, stored: StoredObject, size: int) -> bytes:
        with self.path(stored.key).open("rb") as source:
            return source.read(size)

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    # -- removing
    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, InvalidParameter):
            self.path(key).unlink()
        with self.db.write() as conn:
            conn.execute("DELETE FROM objects WHERE key = ?", (key,))

    def delete_job_objects(self, job_id: str) -> None:
        for key in (result_key(job_id), callback_body_key(job_id)):
            self.delete(key)
        folder = f"{UPLOADS_PREFIX}{job_id}"
        shutil.rmtree(self.path(folder), ignore_errors=True)
        with self.db.write() as conn:
            conn.execute("DELETE FROM objects WHERE key LIKE ?", (f"{folder}/%",))


class AsyncFileBlobs:
    """The API's side: the file work runs in worker threads, off the event loop."""

    def __init__(self, blobs: FileBlobs, signer: UploadSigner) -> None:
        self.blobs = blobs
        self.signer = signer

    async def upload_stream(self, key: str, body: UploadBody) -> int:
        """Stream to a temporary file (never all in memory); nothing is left behind on error."""
        blobs, temp = self.blobs, self.blobs._temp()
        digest, size = hashlib.md5(), 0
        out = await asyncio.to_thread(temp.open, "wb")
        try:
            chunk = body.first_chunk
            while True:
                if chunk:
                    size += len(chunk)
                    body.check_size(size)
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                chunk = await body.read(CHUNK)
                if not chunk:
                    break
            await asyncio.to_thread(out.flush)
            await asyncio.to_thread(os.fsync, out.fileno())
            out.close()
            await asyncio.to_thread(blobs._commit, temp, key, f'"{digest.hexdigest()}"', body.content_type)
        finally:
            out.close()
            temp.unlink(missing_ok=True)
        return size

    async def head(self, bucket: str, key: str) -> StoredObject | None:
        return await asyncio.to_thread(self.blobs.head, bucket, key)

    async def read_head(self, stored: StoredObject, size: int) -> bytes:
        return await asyncio.to_thread(self.blobs.read_head, stored, size)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.blobs.get, key)

    async def get_optional(self, key: str) -> bytes | None:
        try:
            return await self.get(key)
        except (FileNotFoundError, InvalidParameter):
            return None

    async def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        await asyncio.to_thread(self.blobs.put, key, body, content_type=content_type)

    async def large_object_url(self, key: str, max_bytes: int) -> str | None:
        return None  # no Lambda payload cap on one machine: results are always served directly

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.blobs.delete, key)

    async def delete_job_objects(self, job_id: str) -> None:
        await asyncio.to_thread(self.blobs.delete_job_objects, job_id)

    async def copy(self, source: StoredObject, key: str) -> None:
        await asyncio.to_thread(self.blobs.copy, source, key)

    async def presign_upload(self, key: str, terms: UploadTerms) -> PresignedUpload:
        """URLs of this API's own upload route, signed with the data directory's secret."""
        parsed = parse_upload_key(key)
        assert parsed is not None and parsed.presigned, key
        content_type = terms.content_type
        grant = UploadGrant(
            job_id=parsed.job_id,
            max_bytes=terms.max_bytes,
            exact=bool(terms.size_bytes),
            content_type=content_type or "",
            expires=int(time.time()) + terms.lifetime,
        )
        query = grant.query(self.signer.sign(grant))
        url = f"{terms.base_url.rstrip('/')}/uploads/{parsed.job_id}"
        headers = {"Content-Type": content_type} if content_type else {}
        fields = {"key": key, **query}
        if content_type:
            fields["Content-Type"] = content_type
        return PresignedUpload(f"{url}?{urlencode(query)}", headers, url, fields)
