"""`python -m gpu_worker.local` and `whisper-diarization-local`: kept as entry points; the
one-machine run lives in `onebox` (supervisor, drop-folder watcher, bootstrap)."""

from __future__ import annotations

import sys

from onebox.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
