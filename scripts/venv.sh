# Sourced by scripts/example.sh and scripts/test.sh: one virtual environment of the project in
# ./.venv (git-ignored), created on the first run and reused after. pip runs only when
# pyproject.toml or the requested pip line changed since the last install (a stamp per pip line
# in .venv holds their sha256), so a second run starts at once. Never installs into the Python
# that created the venv. MODEL_NAVIGATOR_PYTHON picks that Python (default: python3, >= 3.10).
# The venv's own Python version is hashed too: a venv re-created by another Python installs again.

VENV_DIR=".venv"
VENV_PYTHON="$VENV_DIR/bin/python"
# What scripts/test.sh and scripts/check.sh install into .venv (one stamp, "test", for both).
TEST_PIP_ARGS=(-e ".[torch,tensorflow,jax,openvino,huggingface,report,ray,test]" "torch==2.13.0")

# use_venv DIR: make DIR the environment the next ensure_venv creates/reuses (default .venv). The
# serving tests use .venv-serve: nvidia-pytriton's tritonclient pins protobuf/ml-dtypes/numpy below
# what TensorFlow and JAX in .venv need.
use_venv() {
    VENV_DIR="$1"
    VENV_PYTHON="$VENV_DIR/bin/python"
}

# ensure_venv NAME PIP_ARGS...: create .venv if needed, then `pip install PIP_ARGS` into it unless
# the stamp .venv/.installed-NAME holds the same hash of pyproject.toml, PIP_ARGS and its Python.
ensure_venv() {
    local name="$1"; shift
    local base="${MODEL_NAVIGATOR_PYTHON:-python3}"
    if [ ! -x "$VENV_PYTHON" ]; then
        command -v "$base" >/dev/null || { echo "error: $base not found; install Python >= 3.10 or set MODEL_NAVIGATOR_PYTHON" >&2; return 2; }
        "$base" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
            || { echo "error: $base is Python $("$base" -c 'import platform; print(platform.python_version())'); model-navigator needs >= 3.10 (set MODEL_NAVIGATOR_PYTHON)" >&2; return 2; }
        if [ -e "$VENV_DIR" ]; then
            echo "error: $VENV_DIR exists but has no bin/python: not a virtual environment these scripts made;" \
                 "remove it (rm -rf $VENV_DIR) to let them create one" >&2
            return 2
        fi
        echo "creating the virtual environment $VENV_DIR with $("$base" -c 'import sys; print(sys.executable)')" >&2
        "$base" -m venv "$VENV_DIR" \
            || { echo "error: '$base -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)" >&2; rm -rf "$VENV_DIR"; return 2; }
    fi
    local stamp="$VENV_DIR/.installed-$name"
    local want
    want="$( { cat pyproject.toml; printf '%s\n' "$@"; "$VENV_PYTHON" -c 'import sys; print(sys.version)'; } \
             | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        echo "reusing $VENV_DIR ($name requirements unchanged since the last install)" >&2
        return 0
    fi
    echo "installing model-navigator ($name) into $VENV_DIR" >&2
    rm -f "$stamp"
    "$VENV_PYTHON" -m pip install -q --disable-pip-version-check "$@" || return $?  # no stamp unless pip succeeded
    echo "$want" > "$stamp"
}
