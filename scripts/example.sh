#!/usr/bin/env bash
# Install model-navigator with the PyTorch extra (torch pinned to the CPU build 2.13.0) and run the
# reference's PyTorch example in ./nav_example: export, correctness, profiling, status table,
# save to example_pyt.nav and load it back.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e ".[torch]" "torch==2.13.0"
python3 -m model_navigator.examples.torch_linear "$@"
