#!/usr/bin/env bash
# Install model-navigator with the PyTorch extra (torch pinned to 2.13.0) into the project's virtual
# environment ./.venv (created on the first run, reused after: see scripts/venv.sh) and run the
# reference's PyTorch example in ./nav_example: export, correctness, profiling, status table, save to
# example_pyt.nav and load it back. Run it again and it replaces its own earlier ./nav_example.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv example -e ".[torch]" "torch==2.13.0"
"$VENV_PYTHON" -m model_navigator.examples.torch_linear "$@"
