#!/usr/bin/env bash
# Installs the Debian packages embr needs to build, test and run its demo and benchmarks' own
# side. Run as root (or through sudo). Safe to re-run.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake pkg-config \
  libopenblas-dev liblapacke-dev libfftw3-dev libsqlite3-dev libcjson-dev \
  libpng-dev libjpeg-dev libcairo2-dev libmicrohttpd-dev zlib1g-dev \
  clang libclang-rt-14-dev
# Headless browser for the interactive HTML plot test (tests/test_plot_html.sh; skipped without it).
$SUDO apt-get install -y --no-install-recommends chromium
