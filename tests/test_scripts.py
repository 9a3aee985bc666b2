"""scripts/venv.sh, which scripts/example.sh and scripts/test.sh source: one project venv (.venv),
created once, reused while pyproject.toml and the pip line are unchanged, never a folder of someone
else's. Run with real bash, a real `python -m venv` and a pip call that needs no network."""

from __future__ import annotations

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
    return subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(folder), "MODEL_NAVIGATOR_PYTHON": sys.executable})


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
