"""The drop folder on one machine: files written under DATA_DIR/incoming/ become jobs, as objects
written under the bucket's incoming/ do on AWS (same job ids, same results/<path>.json).

`python -m onebox.watcher` (the one-command run starts it). It polls: a file is taken once its
size and modification time have stayed the same for DROP_SETTLE_SECONDS (a copy in progress is
never read half-way), and hidden files (`.name`, editors' and downloaders' temporaries) never.
What was taken is remembered in SQLite by key and content hash, so a restart doesn't take a file
again, while other bytes under the same name make a new job, as a new S3 event would.
Every few minutes it also removes expired rows and their files (shared.embedded.housekeeping).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from api_lambda.aws import AwsClients, open_clients
from api_lambda.ingest import ingest_drop
from shared.embedded.blobs import FileBlobs
from shared.embedded.db import Database
from shared.embedded.housekeeping import purge_expired
from shared.logging import configure_logging, get_logger
from shared.resources import INCOMING_PREFIX
from shared.settings import Settings, get_settings

log = get_logger(__name__)
PURGE_EVERY_SECONDS = 300.0


@dataclass
class Seen:
    size: int
    mtime_ns: int
    since: float  # when it was first seen with this size and time
    taken: bool = False


class DropWatcher:
    def __init__(self, aws: AwsClients, settings: Settings, db: Database) -> None:
        self.aws = aws
        self.settings = settings
        self.db = db
        self.folder = settings.data_dir / INCOMING_PREFIX.rstrip("/")
        self.seen: dict[str, Seen] = {}

    def _files(self) -> dict[str, Path]:
        found = {}
        for path in self.folder.rglob("*"):
            relative = path.relative_to(self.folder)
            if any(part.startswith(".") for part in relative.parts) or not path.is_file():
                continue
            found[INCOMING_PREFIX + relative.as_posix()] = path
        return found

    def _stable(self, key: str, path: Path, now: float) -> bool:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        seen = self.seen.get(key)
        if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            self.seen[key] = Seen(stat.st_size, stat.st_mtime_ns, now)
            return self.settings.drop_settle_seconds == 0 and stat.st_mtime < now
        settled = now - seen.since >= self.settings.drop_settle_seconds
        return not seen.taken and settled and now - stat.st_mtime >= self.settings.drop_settle_seconds

    def _taken_before(self, key: str, etag: str) -> bool:
        found = self.db.read().execute("SELECT 1 FROM drops WHERE key = ? AND etag = ?", (key, etag))
        return found.fetchone() is not None

    def _remember(self, key: str, etag: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO drops (key, etag, seen_at) VALUES (?, ?, ?)", (key, etag, time.time())
            )

    async def scan(self) -> list[str]:
        """Take every file that has settled; the keys of the jobs queued (or refused) this time."""
        now, taken = time.time(), []
        files = await asyncio.to_thread(self._files)
        for gone in set(self.seen) - set(files):
            del self.seen[gone]
        for key, path in sorted(files.items()):
            if not await asyncio.to_thread(self._stable, key, path, now):
                continue
            stored = await self.aws.blobs.head(self.settings.bucket_name, key)
            if stored is None:
                continue
            if not await asyncio.to_thread(self._taken_before, key, stored.etag):
                job = await ingest_drop(self.aws, stored)  # None: it has a live job already
                log.info("drop_taken", key=key, job_id=job and job.job_id, status=job and job.status.value)
                await asyncio.to_thread(self._remember, key, stored.etag)
                taken.append(key)
            self.seen[key].taken = True
        return taken


async def watch(settings: Settings, stop: asyncio.Event) -> None:
    async with open_clients(None, settings) as aws:
        db = Database.in_dir(settings.data_dir)
        watcher = DropWatcher(aws, settings, db)
        blobs = FileBlobs(settings.data_dir, db, settings.bucket_name)
        watcher.folder.mkdir(parents=True, exist_ok=True)
        log.info("drop_watcher_started", folder=str(watcher.folder))
        purged_at = 0.0
        while not stop.is_set():
            try:
                await watcher.scan()
                if time.monotonic() - purged_at >= PURGE_EVERY_SECONDS:
                    purged_at = time.monotonic()
                    if gone := await asyncio.to_thread(purge_expired, db, blobs):
                        log.info("expired_rows_purged", rows=gone)
            except Exception:  # a transient failure: the next scan tries again
                log.exception("drop_scan_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.drop_poll_seconds)
    log.info("drop_watcher_stopped")


async def _main() -> None:
    settings = get_settings()
    configure_logging(settings)
    if not settings.local:
        raise SystemExit("the drop-folder watcher runs on the embedded backend (BACKEND=local)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await watch(settings, stop)


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
