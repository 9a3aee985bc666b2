"""The example of `bash scripts/example.sh` (model_navigator.examples.torch_linear): it runs again and
again in its own folder, never in someone else's, and `convert --model` re-exports its model as the
README shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

import helpers
from model_navigator.examples.torch_linear import MARKER, OUTPUTS, prepare_outdir


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=helpers.repo_env(), cwd=cwd, timeout=600
    )


def test_a_new_folder_is_created_and_marked(tmp_path):
    outdir = tmp_path / "nav_example"
    assert prepare_outdir(outdir) is None
    assert sorted(p.name for p in outdir.iterdir()) == [MARKER]


def test_a_marked_folder_loses_only_the_examples_outputs(tmp_path):
    outdir = tmp_path / "nav_example"
    prepare_outdir(outdir)
    (outdir / "navigator_workdir" / "onnx").mkdir(parents=True)
    (outdir / "navigator_workdir" / "status.yaml").write_text("old")
    (outdir / "example_pyt.nav").write_bytes(b"old package")
    (outdir / "my_notes.txt").write_text("mine")  # something of the user's beside the outputs
    assert prepare_outdir(outdir) is None
    assert sorted(p.name for p in outdir.iterdir()) == sorted([MARKER, "my_notes.txt"])
    assert (outdir / "my_notes.txt").read_text() == "mine"
    assert set(OUTPUTS) == {"navigator_workdir", "example_pyt.nav", "example_pyt_workdir"}


def test_a_folder_not_made_by_the_example_is_refused_and_untouched(tmp_path):
    outdir = tmp_path / "nav_example"
    (outdir / "navigator_workdir").mkdir(parents=True)
    (outdir / "navigator_workdir" / "status.yaml").write_text("someone else's")
    problem = prepare_outdir(outdir)
    assert problem is not None and "was not made by this example" in problem and "--outdir" in problem
    assert (outdir / "navigator_workdir" / "status.yaml").read_text() == "someone else's"
    assert not (outdir / MARKER).exists()
    (tmp_path / "a_file").write_text("x")
    assert "is not a folder" in prepare_outdir(tmp_path / "a_file")


@pytest.mark.slow
def test_example_runs_twice_in_the_same_folder(tmp_path):
    """The example twice in a row in the same folder (the second replaces the first's outputs), then
    the README's convert command on it."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    for _ in range(2):
        done = run("-m", "model_navigator.examples.torch_linear", "--outdir", "nav_example", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Done in" in done.stdout
        assert (tmp_path / "nav_example" / "example_pyt.nav").is_file()
    assert "replacing the example's earlier outputs" in done.stderr
    # get_model() is the model the example exported: the TorchScript artifact computes the same
    import torch

    from model_navigator.examples.torch_linear import get_model

    exported = torch.jit.load(str(tmp_path / "nav_example" / "navigator_workdir" / "torchscript-script" / "model.pt"))
    x = torch.randn(4, 5)
    with torch.no_grad():
        assert torch.equal(exported(x), get_model()(x))

    # the README's convert command, from nav_example
    artifact = tmp_path / "nav_example" / "navigator_workdir" / "onnx" / "model.onnx"
    artifact.unlink()
    convert = run(
        "-m",
        "model_navigator",
        "convert",
        "--config",
        "navigator_workdir/onnx/config.yaml",
        "--model",
        "model_navigator.examples.torch_linear:get_model",
        cwd=tmp_path / "nav_example",
    )
    assert convert.returncode == 0, convert.stderr
    assert artifact.is_file() and "onnx" in convert.stdout

    # the README's command-line examples, each line as written (bash, the venv's model-navigator on PATH)
    lines = readme_command_lines()
    assert len(lines) >= 7 and all(line.startswith("model-navigator ") for line in lines), lines
    env = helpers.repo_env(PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    for line in lines:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path / "nav_example",
            timeout=600,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    outdir = tmp_path / "nav_example"
    assert (outdir / "reprofiled" / "status.yaml").is_file() and (outdir / "example_report").is_dir()
    assert (outdir / "model_repository").is_dir()


def readme_command_lines() -> List[str]:
    """The lines of the first ```bash block under the README's "Command line" heading."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("\n## Command line\n", 1)[1]
    block = section.split("```bash\n", 1)[1].split("\n```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]
