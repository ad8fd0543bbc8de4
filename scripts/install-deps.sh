#!/usr/bin/env bash
# Installs the Debian packages embr needs to build, test and run its demo and benchmarks' own
# side. Run it as root (a container, a minimal Debian without sudo) or as a user who may sudo: it
# calls apt-get directly as root and through sudo otherwise. Safe to re-run.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "$0: not root and no sudo: run it as root (su -c $0)" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake pkg-config \
  libopenblas-dev liblapacke-dev libfftw3-dev libsqlite3-dev libcjson-dev \
  libpng-dev libjpeg-dev libcairo2-dev libmicrohttpd-dev zlib1g-dev libutf8proc-dev libdnnl-dev \
  clang libclang-rt-14-dev libomp-dev python3
# The Python package (python/, make python-test): headers and build tools, NumPy, pytest, and the
# peers its drop-in tests and bench/python_overhead.py compare with (faiss, hnswlib, gensim).
$SUDO apt-get install -y --no-install-recommends \
  python3-dev python3-numpy python3-setuptools python3-wheel python3-pip python3-venv python3-pytest \
  python3-faiss python3-hnswlib python3-gensim
# Headless browser for the interactive HTML plot test (tests/test_plot_html.sh; skipped without it).
$SUDO apt-get install -y --no-install-recommends chromium
