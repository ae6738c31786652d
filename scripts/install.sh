#!/usr/bin/env bash
# Create .venv and install the project with its dev tools, from scratch and idempotently.
# torch is pinned to 2.13.0 and installed first so nothing drags a multi-GB CUDA build;
# set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu on a machine that reaches it.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the service and its tests use: ffmpeg (decoding), espeak-ng and sox (the test
# corpus is synthesized speech), libsndfile1 (librosa's reader). Installed with apt-get when
# missing (as root, or through sudo); elsewhere, or when that is not possible, we stop with the
# exact command to run. SKIP_SYSTEM_PACKAGES=1 skips this step.
APT_PACKAGES=(ffmpeg espeak-ng sox libsndfile1)

missing_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if command -v dpkg-query >/dev/null 2>&1; then
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    else
      case "$pkg" in
        libsndfile1) ;;  # a library: no command to look for
        *) command -v "$pkg" >/dev/null 2>&1 || echo "$pkg" ;;
      esac
    fi
  done
}

install_system_packages() {
  local missing
  missing=$(missing_packages | tr '\n' ' ')
  [ -z "${missing// /}" ] && return 0
  local how="sudo apt-get install -y $missing"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: these system packages are missing: $missing" >&2
    echo "       install them with your system's package manager, then run this again" >&2
    exit 1
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "error: missing system packages ($missing) and no sudo; as root run:" >&2
      echo "       apt-get update && apt-get install -y $missing" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  echo "installing system packages: $missing"
  if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends $missing; }; then
    echo "error: could not install $missing; run this yourself, then run this again:" >&2
    echo "       sudo apt-get update && $how" >&2
    exit 1
  fi
}

if [ "${SKIP_SYSTEM_PACKAGES:-0}" != "1" ]; then
  install_system_packages
fi

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
