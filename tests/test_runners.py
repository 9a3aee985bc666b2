"""The runners on real artifacts: a tiny torch Linear 5 -> 7 exported in the test to ONNX and
TorchScript, run by OnnxRuntimeRunner and TorchScriptRunner (and the source module itself) against
what the module computes."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from polygraphy.datatype import DataType
from polygraphy.exception import PolygraphyException

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from model_navigator.core.enums import RuntimeProvider  # noqa: E402
from model_navigator.core.tensor import TensorMetadata  # noqa: E402
from model_navigator.runners.onnx import OnnxRuntimeRunner  # noqa: E402
from model_navigator.runners.torch import TorchScriptRunner, TorchSourceRunner  # noqa: E402

INPUTS = [TensorMetadata("x", (-1, 5), "float32")]
OUTPUTS = [TensorMetadata("y", (-1, 7), "float32")]


@pytest.fixture(scope="module")
def linear():
    torch.manual_seed(0)
    return torch.nn.Linear(5, 7).eval()


@pytest.fixture(scope="module")
def artifacts(linear, tmp_path_factory):
    """(model.onnx, model.pt) of `linear`, batch axis dynamic."""
    folder = tmp_path_factory.mktemp("runners")
    example = torch.randn(2, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            linear,
            (example,),
            str(folder / "model.onnx"),
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        torch.jit.trace(linear, example).save(str(folder / "model.pt"))
    return folder / "model.onnx", folder / "model.pt"


def _expected(linear, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return linear(torch.from_numpy(x)).numpy()


def _batch(size: int) -> np.ndarray:
    return np.random.default_rng(size).random((size, 5), dtype=np.float32)


def _runners(linear, artifacts):
    onnx_path, ts_path = artifacts
    return [
        OnnxRuntimeRunner(onnx_path, INPUTS, OUTPUTS, provider=RuntimeProvider.CPU),
        TorchScriptRunner(ts_path, INPUTS, OUTPUTS),
        TorchSourceRunner(linear, INPUTS, OUTPUTS),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["onnxruntime", "torchscript", "torch-source"])
def test_runner_infers_what_the_module_computes_at_any_batch(linear, artifacts, index):
    runner = _runners(linear, artifacts)[index]
    assert not runner.is_active
    with runner:
        assert runner.is_active
        for size in (1, 3):
            x = _batch(size)
            out = runner.infer({"x": x})
            assert isinstance(out, OrderedDict) and list(out) == ["y"]
            assert out["y"].shape == (size, 7) and out["y"].dtype == np.float32
            np.testing.assert_allclose(out["y"], _expected(linear, x), rtol=1e-5, atol=1e-6)
    assert not runner.is_active


def test_runner_metadata_and_names(artifacts):
    runner = OnnxRuntimeRunner(artifacts[0], INPUTS, OUTPUTS, provider=RuntimeProvider.CPU, name="onnx:cpu")
    assert runner.name == "onnx:cpu" and runner.device == "cpu"
    assert runner.input_names == ["x"] and runner.output_names == ["y"]
    with runner:  # Polygraphy answers metadata only while active
        meta = runner.get_input_metadata()
    assert list(meta) == ["x"]
    assert meta["x"].dtype == DataType.FLOAT32 and list(meta["x"].shape) == [None, 5]  # -1: a dynamic axis
    assert OnnxRuntimeRunner(artifacts[0], INPUTS, OUTPUTS).name == "onnxrt-CPUExecutionProvider"


def test_activate_infer_deactivate_without_the_context_manager(linear, artifacts):
    runner = TorchScriptRunner(artifacts[1], INPUTS, OUTPUTS)
    runner.activate()
    try:
        x = _batch(2)
        np.testing.assert_allclose(runner.infer({"x": x})["y"], _expected(linear, x), rtol=1e-5, atol=1e-6)
    finally:
        runner.deactivate()
    with pytest.raises(PolygraphyException, match="activated"):
        runner.infer({"x": _batch(2)})


@pytest.mark.parametrize("index", [0, 1], ids=["onnxruntime", "torchscript"])
def test_wrong_input_name_or_shape_is_refused(linear, artifacts, index):
    with _runners(linear, artifacts)[index] as runner:
        with pytest.raises(PolygraphyException, match="x"):
            runner.infer({"wrong": _batch(2)})
        with pytest.raises(PolygraphyException, match="shape"):
            runner.infer({"x": np.zeros((2, 4), dtype=np.float32)})


def test_output_count_other_than_declared_is_an_error(linear, artifacts):
    two_outputs = OUTPUTS + [TensorMetadata("z", (-1, 7), "float32")]
    with TorchScriptRunner(artifacts[1], INPUTS, two_outputs, name="ts") as runner:
        with pytest.raises(RuntimeError, match=r"ts: model returned 1 outputs, expected 2 \(y, z\)"):
            runner.infer({"x": _batch(2)})


def test_keyword_inputs_reach_forward_by_name():
    class TwoInputs(torch.nn.Module):
        def forward(self, a, b):
            return a - b

    inputs = [TensorMetadata("a", (-1, 3), "float32"), TensorMetadata("b", (-1, 3), "float32")]
    a, b = np.ones((2, 3), dtype=np.float32), np.full((2, 3), 3.0, dtype=np.float32)
    with TorchSourceRunner(TwoInputs(), inputs, [TensorMetadata("d", (-1, 3), "float32")], keyword=True) as runner:
        np.testing.assert_array_equal(runner.infer({"b": b, "a": a})["d"], a - b)  # by name, not dict order


def test_onnxruntime_runner_refuses_a_gpu_provider_it_cannot_load(artifacts):
    from model_navigator.runners.onnx import available_providers

    if RuntimeProvider.CUDA.value in available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    runner = OnnxRuntimeRunner(Path(artifacts[0]), INPUTS, OUTPUTS, provider=RuntimeProvider.CUDA)
    with pytest.raises(RuntimeError, match="did not load CUDAExecutionProvider"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ONNX Runtime's own warning about the missing provider
        runner.activate()
    assert not runner.is_active
