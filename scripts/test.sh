#!/usr/bin/env bash
# Install model-navigator with the PyTorch, TensorFlow, JAX and OpenVINO extras (torch pinned to the CPU build 2.13.0) and run the
# whole test suite. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e ".[torch,tensorflow,jax,openvino,huggingface,report,test]" "torch==2.13.0"
# Headless Chromium renders the HTML report in tests/test_report.py (skipped when there is none):
# Debian's package, installed only when missing, as root, where apt-get exists.
command -v chromium >/dev/null || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || true
python3 -m pytest -q "$@"
