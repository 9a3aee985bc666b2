#!/usr/bin/env bash
# Quick checks for development (seconds, no tests): ruff's lint rules and layout (`ruff format --check`) on
# the package, tests, benchmarks and scripts, then mypy on the package, all configured in pyproject.toml.
# Runs from the project's virtual environment ./.venv (the test extras, as scripts/test.sh installs them;
# see scripts/venv.sh). Every check runs and says its findings; the exit status is 1 when any found something.
# Extra arguments go to `ruff check` (e.g. `bash scripts/check.sh --statistics`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv test "${TEST_PIP_ARGS[@]}"
targets=(model_navigator tests bench scripts)
status=0
echo "ruff check (lint: E, F, W, B at 120 columns)" >&2
"$VENV_PYTHON" -m ruff check "${targets[@]}" "$@" || status=1
echo "ruff format --check (layout)" >&2
"$VENV_PYTHON" -m ruff format --check "${targets[@]}" || status=1
echo "mypy (the package; check_untyped_defs on core, steps and package)" >&2
"$VENV_PYTHON" -m mypy || status=1
exit "$status"
