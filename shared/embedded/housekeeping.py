"""What DynamoDB's TTL and the bucket's lifecycle rule do on AWS: rows past `expires_at` (jobs,
worker registrations) are deleted, with the audio and result each expired job owned. Files under
incoming/ and drop-folder result copies are the user's and stay. The watcher runs this now and then."""

from __future__ import annotations

import json
import time

from shared.embedded.blobs import FileBlobs
from shared.embedded.db import Database
from shared.fleet import WORKER_KEY_PREFIX

GRACE_SECONDS = 60.0  # a row just past its expiry already reads as gone; delete it a little later


def purge_expired(db: Database, blobs: FileBlobs, *, now: float | None = None) -> int:
    """Delete expired rows and their jobs' files; returns how many rows went."""
    cutoff = (time.time() if now is None else now) - GRACE_SECONDS
    with db.write() as conn:
        rows = conn.execute(
            "SELECT key, data FROM items WHERE expires_at IS NOT NULL AND expires_at < ?", (cutoff,)
        ).fetchall()
        conn.execute("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at < ?", (cutoff,))
    for row in rows:
        if not row["key"].startswith(WORKER_KEY_PREFIX) and "options" in json.loads(row["data"]):
            blobs.delete_job_objects(row["key"])
    return len(rows)
