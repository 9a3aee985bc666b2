"""`model-navigator export MODEL.onnx` without a dataloader, end to end as a subprocess: synthetic
samples from the graph's input shapes and dtypes (static axes, dynamic axes sized by options, an
int64 input in the range given), and a clear refusal where a shape cannot be guessed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "model_navigator", *args],
        capture_output=True,
        text=True,
        env=helpers.repo_env(),
        cwd=cwd,
        timeout=300,
    )


def _dynamic_model(path: Path) -> None:
    """y = x * 2 (x: [batch, seq, 4] float), z = float(ids) + 1 (ids: [batch, 3] int64)."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["y"]),
            helper.make_node("Cast", ["ids"], ["ids_f"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["ids_f", "one"], ["z"]),
        ],
        "dynamic",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 4]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 3]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 4]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[two, one],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _static_model(path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "static",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 5])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _ok(workdir: Path, key: str = "onnx") -> dict:
    status = yaml.safe_load((workdir / "status.yaml").read_text())
    path = status["paths"][key]
    assert path["status"] == "ok", path
    assert path["runtimes"]["CPUExecutionProvider"]["correctness"]["status"] == "ok"
    return status


@pytest.mark.slow
def test_export_an_onnx_file_with_dynamic_axes_and_an_int64_input(tmp_path):
    _dynamic_model(tmp_path / "model.onnx")
    out = _run("export", "model.onnx", "--dim", "seq=7", "--int-range", "5", "9", "--no-profiling", cwd=tmp_path)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    workdir = tmp_path / "model_workdir"
    status = _ok(workdir)
    assert status["config"]["batch_dim"] == 0
    assert [(i["name"], i["shape"], i["dtype"]) for i in status["inputs"]] == [
        ("x", [-1, -1, 4], "float32"),
        ("ids", [-1, 3], "int64"),
    ]
    sample = np.load(workdir / "model_input" / "correctness" / "0.npz", allow_pickle=False)
    assert sample["ids"].dtype == np.int64 and sample["ids"].min() >= 5 and sample["ids"].max() < 9
    assert sample["x"].shape == (1, 7, 4)
    # the same seed makes the same samples
    again = _run(
        "export",
        "model.onnx",
        "--dim",
        "seq=7",
        "--int-range",
        "5",
        "9",
        "--no-profiling",
        "--workdir",
        "again",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    second = np.load(tmp_path / "again" / "model_input" / "correctness" / "0.npz", allow_pickle=False)
    np.testing.assert_array_equal(second["x"], sample["x"])


@pytest.mark.slow
def test_export_an_onnx_file_with_static_axes(tmp_path):
    _static_model(tmp_path / "static.onnx")
    out = _run("export", "static.onnx", "--batches", "2", cwd=tmp_path)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    status = _ok(tmp_path / "static_workdir")
    assert status["config"]["batch_dim"] is None  # a fixed first axis is fed whole
    assert status["paths"]["onnx"]["runtimes"]["CPUExecutionProvider"]["performance"]["status"] == "ok"


def test_a_dynamic_axis_without_a_size_is_refused_with_the_option_to_give(tmp_path):
    _dynamic_model(tmp_path / "model.onnx")
    out = _run("export", "model.onnx", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert "nput 'x' has a dynamic axis 1 ('seq') whose size cannot be guessed" in out.stderr
    assert "--dim seq=SIZE" in out.stderr
    assert not (tmp_path / "model_workdir").exists()


def test_a_misspelt_dim_name_is_refused_naming_the_axes_there_are(tmp_path):
    _dynamic_model(tmp_path / "model.onnx")
    out = _run("export", "model.onnx", "--dim", "sequence=7", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert "--dim sequence: no input axis of the model has that name" in out.stderr
    assert "the named dynamic axes are: batch, seq" in out.stderr
    assert not (tmp_path / "model_workdir").exists()


def test_a_torchscript_file_is_refused_with_the_reason(tmp_path):
    torch = pytest.importorskip("torch")
    traced = torch.jit.trace(torch.nn.Linear(3, 2).eval(), torch.randn(2, 3))
    torch.jit.save(traced, str(tmp_path / "model.pt"))
    out = _run("export", "model.pt", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    # a loaded TorchScript graph types its inputs `Tensor`, without shape or dtype: nothing to make samples from
    assert "a TorchScript file does not: use nav.torch.export with a dataloader" in out.stderr
    assert not (tmp_path / "model_workdir").exists()


@pytest.mark.slow
def test_a_savedmodel_axis_without_a_size_is_refused_then_sized_by_dynamic_size(tmp_path):
    tf = pytest.importorskip("tensorflow")

    class Sum(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.reduce_sum(x, axis=1)}

    module = Sum()
    tf.saved_model.save(
        module,
        str(tmp_path / "sum.savedmodel"),
        signatures={"serving_default": module.__call__.get_concrete_function()},
    )
    out = _run("export", "sum.savedmodel", "--no-profiling", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert "input 'x' has a dynamic axis 1 (no name) whose size cannot be guessed" in out.stderr
    assert "--dynamic-size SIZE" in out.stderr
    assert not (tmp_path / "sum_workdir").exists()
    out = _run("export", "sum.savedmodel", "--no-profiling", "--dynamic-size", "6", cwd=tmp_path)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    _ok(tmp_path / "sum_workdir", "tf-savedmodel")
    sample = np.load(tmp_path / "sum_workdir" / "model_input" / "correctness" / "0.npz", allow_pickle=False)
    assert sample["x"].shape == (1, 6)


@pytest.mark.slow
def test_export_a_savedmodel_folder_on_its_signature(tmp_path):
    tf = pytest.importorskip("tensorflow")

    class Scale(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.constant([[1.0, -2.0], [0.5, 3.0], [2.0, 0.0]]))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 3], tf.float32, name="x"),
                tf.TensorSpec([None], tf.int64, name="ids"),
            ]
        )
        def __call__(self, x, ids):
            return {"y": tf.matmul(x, self.w) + tf.cast(ids, tf.float32)[:, None]}

    module = Scale()
    tf.saved_model.save(
        module,
        str(tmp_path / "model.savedmodel"),
        signatures={"serving_default": module.__call__.get_concrete_function()},
    )
    out = _run("export", "model.savedmodel", "--int-range", "0", "3", "--no-profiling", cwd=tmp_path)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    status = _ok(tmp_path / "model_workdir", "tf-savedmodel")
    assert [(i["name"], i["dtype"]) for i in status["inputs"]] == [("ids", "int64"), ("x", "float32")]
    assert status["config"]["batch_dim"] == 0
    assert status["paths"]["onnx"]["status"] == "ok"
