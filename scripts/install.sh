#!/usr/bin/env bash
# Create .venv and install the project with its dev tools, from scratch and idempotently.
# torch is pinned to 2.13.0 and installed first so nothing drags a multi-GB CUDA build;
# set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu on a machine that reaches it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
python -m pip install --quiet -e ".[dev]"
# resemblyzer's declared dependency (webrtcvad) breaks on modern setuptools; its real needs
# (librosa, webrtcvad-wheels, torch) are already installed above.
python -m pip install --quiet --no-deps "resemblyzer==0.1.4"
# pyannote's segmentation model v2 (MIT) ships as an asset of the whisperx wheel; its declared
# dependencies (pyannote.audio, torch 2.8, ...) are not wanted: only the file is read, whisperx
# itself is never imported.
python -m pip install --quiet --no-deps "whisperx==3.8.6"
python -c "import torch, faster_whisper, resemblyzer; print('installed: torch', torch.__version__)"
