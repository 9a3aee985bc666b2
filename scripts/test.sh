#!/usr/bin/env bash
# Install model-navigator with the PyTorch, TensorFlow, JAX, OpenVINO, transformers and report extras
# (torch pinned to 2.13.0) into the project's virtual environment ./.venv (created on the first run,
# reused after: see scripts/venv.sh) and run the whole test suite from it. Extra arguments go to
# pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv test -e ".[torch,tensorflow,jax,openvino,huggingface,report,test]" "torch==2.13.0"
# Headless Chromium renders the HTML report in tests/test_report.py. A system package: installed only
# where this user can (root, with apt-get), tried once (.venv/.chromium-tried; delete it to try
# again); elsewhere that one test is skipped with the reason.
has_chromium() { "$VENV_PYTHON" -c 'import sys; from model_navigator.report.browser import find_chromium; sys.exit(find_chromium() is None)'; }
if ! has_chromium; then
    if [ -f "$VENV_DIR/.chromium-tried" ]; then
        echo "note: no Chromium (apt-get could not install it before): the report's browser test is skipped" >&2
    elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Chromium (apt-get) for the report's browser test" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
            || echo "warning: apt-get could not install chromium: the report's browser test is skipped" >&2
        has_chromium || touch "$VENV_DIR/.chromium-tried"
    else
        echo "note: no Chromium and not root with apt-get: the report's browser test is skipped" \
             "(install chromium, or set CHROMIUM=/path/to/chrome, to run it)" >&2
    fi
fi
"$VENV_PYTHON" -m pytest -q "$@"
