"""scripts/venv.sh, which scripts/example.sh and scripts/test.sh source: one project venv (.venv),
created once, reused while pyproject.toml and the pip line are unchanged, never a folder of someone
else's. Run with real bash, a real `python -m venv` and a pip call that needs no network."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def ensure(folder: Path, *pip_args: str) -> subprocess.CompletedProcess:
    """`ensure_venv t PIP_ARGS` in `folder`, with this interpreter as the venv's base Python."""
    script = f'source "{REPO_ROOT / "scripts" / "venv.sh"}"; ensure_venv t ' + " ".join(pip_args)
    return subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder), "MODEL_NAVIGATOR_PYTHON": sys.executable},
    )


@pytest.mark.slow
def test_venv_is_created_once_and_reused_until_the_requirements_change(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    first = ensure(tmp_path, "pip")  # pip is in every new venv: satisfied without a network
    assert first.returncode == 0, first.stderr
    assert "creating the virtual environment .venv" in first.stderr and "installing" in first.stderr
    venv_python = tmp_path / ".venv" / "bin" / "python"
    prefix = subprocess.run([str(venv_python), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert Path(prefix.stdout.strip()) == tmp_path / ".venv"  # a venv of its own, not the base Python
    stamp = (tmp_path / ".venv" / ".installed-t").read_text()

    again = ensure(tmp_path, "pip")
    assert again.returncode == 0 and "reusing .venv" in again.stderr and "installing" not in again.stderr

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    changed = ensure(tmp_path, "pip")
    assert changed.returncode == 0 and "installing" in changed.stderr
    assert (tmp_path / ".venv" / ".installed-t").read_text() != stamp


@pytest.mark.slow
def test_failed_pip_leaves_no_stamp(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    failed = ensure(tmp_path, "--no-such-pip-option")
    assert failed.returncode != 0
    assert not (tmp_path / ".venv" / ".installed-t").exists()  # the next run installs again


def test_a_dot_venv_that_is_no_venv_is_refused_untouched(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "notes.txt").write_text("mine")
    refused = ensure(tmp_path, "pip")
    assert refused.returncode == 2 and "has no bin/python" in refused.stderr
    assert [p.name for p in (tmp_path / ".venv").iterdir()] == ["notes.txt"]


def _project_with_stub_venvs(folder: Path) -> None:
    """scripts/test.sh, check.sh and venv.sh in `folder`, with .venv and .venv-serve whose python is this
    interpreter (stamped as installed, so no pip runs), a one-line package and two tiny test files."""
    (folder / "scripts").mkdir()
    for name in ("test.sh", "check.sh", "venv.sh"):
        shutil.copy(REPO_ROOT / "scripts" / name, folder / "scripts" / name)
    (folder / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.mypy]\nfiles = ['model_navigator']\n")
    (folder / "model_navigator").mkdir()
    (folder / "model_navigator" / "__init__.py").write_text('VERSION: str = "1"\n')
    (folder / "bench").mkdir()
    (folder / "tests").mkdir()
    (folder / "tests" / "test_a.py").write_text("def test_a():\n    assert 1 + 1 == 2\n")
    (folder / "tests" / "test_serve.py").write_text("def test_served():\n    assert True\n")
    for venv in (".venv", ".venv-serve"):
        (folder / venv / "bin").mkdir(parents=True)
        python = folder / venv / "bin" / "python"
        python.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO_ROOT}" exec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
    (folder / ".venv" / ".chromium-tried").touch()
    stamp = (
        'source scripts/venv.sh; h() { { cat pyproject.toml; printf "%s\\n" "$@"; '
        '"$VENV_PYTHON" -c "import sys; print(sys.version)"; } | sha256sum | cut -d" " -f1; }; '
        'h "${TEST_PIP_ARGS[@]}" > .venv/.installed-test; use_venv .venv-serve; '
        'h -e ".[torch,serve,test]" "torch==2.13.0" > .venv-serve/.installed-serve'
    )
    subprocess.run(["bash", "-c", stamp], cwd=folder, check=True, timeout=60)


def _test_sh(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "scripts/test.sh", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder)},
    )


@pytest.mark.slow
def test_test_sh_fails_a_stage_that_collected_nothing_and_a_serving_stage_without_pytriton(tmp_path):
    _project_with_stub_venvs(tmp_path)
    passed = _test_sh(tmp_path, "tests/test_a.py")
    assert passed.returncode == 0, passed.stderr + passed.stdout
    assert "reusing .venv" in passed.stderr and "serving tests" not in passed.stderr  # no pip, no serving stage

    nothing = _test_sh(tmp_path, "tests/test_a.py", "-k", "no_test_is_named_like_this")
    assert nothing.returncode == 5, nothing.stderr + nothing.stdout
    assert "error: the main stage collected no tests (pytest exit status 5)" in nothing.stderr

    if importlib.util.find_spec("pytriton") is None:  # this interpreter plays .venv-serve: PyTriton missing there
        serving = _test_sh(tmp_path, "tests/test_serve.py")
        assert serving.returncode != 0, serving.stderr + serving.stdout
        assert "error: PyTriton does not import in .venv-serve" in serving.stderr
        assert "main stage" not in serving.stderr  # given only serving tests, the main stage does not run


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad_file, bad_text, finding",
    [
        ("tests/test_a.py", "import os\n\n\ndef test_a():\n    assert 1 + 1 == 2\n", "F401"),  # ruff check
        ("tests/test_a.py", "def test_a():\n    assert 1+1 == 2\n", "--> tests/test_a.py:2"),  # ruff format
        ("model_navigator/__init__.py", 'VERSION: int = "1"\n', "Incompatible types in assignment"),  # mypy
    ],
    ids=["lint", "layout", "types"],
)
def test_test_sh_fails_on_a_check_finding_and_still_runs_the_tests(tmp_path, bad_file, bad_text, finding):
    """The README's test command (CI's) runs scripts/check.sh: one bad line fails it, the tests run all the same."""
    _project_with_stub_venvs(tmp_path)
    (tmp_path / bad_file).write_text(bad_text)
    result = _test_sh(tmp_path, "tests/test_a.py")
    assert result.returncode == 1, result.stderr + result.stdout
    assert finding in result.stdout + result.stderr
    assert "1 passed" in result.stdout
