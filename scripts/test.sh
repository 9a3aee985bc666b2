#!/usr/bin/env bash
# Install model-navigator with the PyTorch, TensorFlow, JAX, OpenVINO, transformers, report and ray extras
# (torch pinned to 2.13.0) into the project's virtual environment ./.venv (created on the first run,
# reused after: see scripts/venv.sh) and run the whole test suite from it. Then the serving tests
# (real Triton server through PyTriton) run in a second environment, ./.venv-serve (torch, ONNX and
# the [serve] extra): nvidia-pytriton 0.7.0 needs numpy<2 (JAX 0.10 needs numpy>=2) and its
# tritonclient pins protobuf<7 and ml-dtypes<=0.5.4. Extra arguments go to pytest in both, e.g.
# `bash scripts/test.sh -m "not slow"`; given test paths, the serving stage runs only for serving tests.
# A stage that collects no tests fails, and so does the serving stage when PyTriton does not import in
# .venv-serve (an error there, not a skip). First scripts/check.sh (ruff lint and layout, mypy: seconds) runs: a
# finding fails the run too, after the tests have run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv test "${TEST_PIP_ARGS[@]}"
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
# A stage that collected nothing tested nothing: pytest's exit status 5 fails it, said in words.
run_stage() {
    local name="$1"; shift
    local rc=0
    "$VENV_PYTHON" -m pytest -q "$@" || rc=$?
    [ "$rc" = 5 ] && echo "error: the $name stage collected no tests (pytest exit status 5): it would pass testing" \
                          "nothing; check the paths and -m/-k given" >&2
    return "$rc"
}
serve_tests=(tests/test_serve.py tests/test_serve_plan.py)
paths=0; serve_paths=0; other_paths=0
for arg in "$@"; do
    case "$arg" in
        tests/test_serve*) paths=1; serve_paths=1 ;;
        tests/*|*.py|*::*) paths=1; other_paths=1 ;;
    esac
done
status=0
# Lint, layout and types (what CI runs, since .ci/run is this script): a finding makes the exit status 1.
bash scripts/check.sh || status=1
# Given only serving tests, the main stage (no PyTriton in .venv: they would all skip there) does not run.
if [ "$paths" = 0 ] || [ "$other_paths" = 1 ]; then
    run_stage main "$@" || status=$?
fi
if [ "$paths" = 0 ] || [ "$serve_paths" = 1 ]; then
    [ "$paths" = 1 ] && serve_tests=()
    echo "serving tests (PyTriton, a real Triton server) in .venv-serve" >&2
    use_venv .venv-serve
    ensure_venv serve -e ".[torch,serve,test]" "torch==2.13.0"
    # The environment built for serving must serve: a PyTriton that does not import is an error here, and
    # MODEL_NAVIGATOR_SERVE_STAGE=1 makes tests/test_serve.py fail on it instead of skipping.
    rc=0
    if ! "$VENV_PYTHON" -c "import pytriton" 2>/dev/null; then
        echo "error: PyTriton does not import in .venv-serve ($("$VENV_PYTHON" -c 'import pytriton' 2>&1 | tail -1));" \
             "the serving tests cannot run: rm -rf .venv-serve and run this script again" >&2
        rc=1
    fi
    MODEL_NAVIGATOR_SERVE_STAGE=1 run_stage serving ${serve_tests[@]+"${serve_tests[@]}"} "$@" || rc=$?
    [ "$rc" != 0 ] && status=$rc
fi
exit "$status"
