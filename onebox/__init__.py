"""The whole service on one machine, with one command (`whisper-diarization-local`): a supervisor
that runs the API, the worker and the drop-folder watcher as child processes on the embedded
backend (SQLite + DATA_DIR), or, with `--emulate-aws`, on an embedded AWS emulator (moto)."""
