# The two set-up commands README gives: `make run` and `make test`.
.PHONY: install run test lint bench bench-diarization

install:
	./scripts/install.sh

run: install
	.venv/bin/python -m onebox

test: install
	@# The JavaScript SDK tests' packages, from tests/js/package-lock.json (skipped without npm).
	@if command -v npm >/dev/null && [ ! tests/js/node_modules/.package-lock.json -nt tests/js/package-lock.json ]; then \
		cd tests/js && npm ci --no-audit --no-fund --loglevel=error; fi
	@# numba compiles librosa's kernels into its cache once per install (35 s on a clean machine); the
	@# tests compare the speaker encoder's features with resemblyzer's, which librosa computes.
	.venv/bin/python -c "import librosa, numpy; librosa.feature.melspectrogram(y=numpy.zeros(4096, 'float32'), sr=16000)"
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	.venv/bin/python -m bench.pipeline

bench-diarization:
	.venv/bin/python -m bench.diarization
