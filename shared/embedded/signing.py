"""Signed upload URLs for the embedded backend: the API hands them out (`POST /uploads`) and checks
them when the file arrives (`PUT/POST /uploads/{job_id}`), as S3 checks its presigned URLs.

The signature is an HMAC-SHA256 over the job id, the byte limit (and whether it is exact), the
content type and the expiry, with a secret made once per data directory (a 0600 file there), so
URLs stay valid across restarts and nobody without the secret can forge one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

SECRET_FILENAME = "upload-signing.key"


def load_or_create_secret(data_dir: Path) -> bytes:
    """The data directory's signing secret, created (0600, atomically) on first use."""
    path = data_dir / SECRET_FILENAME
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    secret = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex())
        out.flush()
        os.fsync(out.fileno())
    return secret


@dataclass(frozen=True)
class UploadGrant:
    """What a signed URL allows: one job's upload, up to `max_bytes` (exactly, when `exact`), of
    `content_type` (any when empty), until `expires` (epoch seconds)."""

    job_id: str
    max_bytes: int
    exact: bool
    content_type: str
    expires: int

    def message(self) -> bytes:
        return "\n".join(
            [
                "v1",
                self.job_id,
                str(self.max_bytes),
                "1" if self.exact else "0",
                self.content_type,
                str(self.expires),
            ]
        ).encode()

    def query(self, signature: str) -> dict[str, str]:
        return {
            "max_bytes": str(self.max_bytes),
            "exact": "1" if self.exact else "0",
            "content_type": self.content_type,
            "expires": str(self.expires),
            "signature": signature,
        }


class UploadSigner:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def sign(self, grant: UploadGrant) -> str:
        return hmac.new(self.secret, grant.message(), hashlib.sha256).hexdigest()

    def problem(self, grant: UploadGrant, signature: str, *, now: float | None = None) -> str | None:
        """Why the signature does not allow this upload, or None when it does."""
        if not hmac.compare_digest(self.sign(grant), signature):
            return "the upload URL's signature does not match (was the URL changed?)"
        if (time.time() if now is None else now) > grant.expires:
            return "the upload URL has expired; ask POST /uploads for a new one"
        return None
