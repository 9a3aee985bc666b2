#!/usr/bin/env bash
# Install model-navigator with the PyTorch extra (torch pinned to the CPU build 2.13.0) and run the
# whole test suite. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e ".[torch,test]" "torch==2.13.0"
python3 -m pytest -q "$@"
