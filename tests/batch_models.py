"""Model and dataloader factories for the batch tests and bench/batch.py, named `batch_models:function`
in jobs files (the job workers import this module: tests/ is put on their PYTHONPATH).

Each model is tiny and deterministic; frameworks are imported inside the factories.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any, List

MARKER_ENV = "BATCH_TEST_MARKER_DIR"  # the slow factory announces itself there (tests watch for it)


def torch_model() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()


def torch_data() -> List[Any]:
    import torch

    generator = torch.Generator().manual_seed(0)
    return [torch.randn(2, 8, generator=generator) for _ in range(4)]


def torch_wide_model() -> Any:
    """A second, bigger torch model (the benchmark's zoo varies widths)."""
    import torch

    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(8, 128), torch.nn.Tanh(), torch.nn.Linear(128, 4)).eval()


def tf_model() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="x")
    out = keras.layers.Dense(4, activation="relu")(keras.layers.Dense(16)(inp))
    return keras.Model(inp, out)


def tf_data() -> List[Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    return [rng.standard_normal((2, 8)).astype("float32") for _ in range(4)]


def onnx_model() -> str:
    """An .onnx file (y = relu(x @ W + b)) written into the job's folder; nav.onnx.export takes its path."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((8, 4)).astype("float32"), "W")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype("float32"), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = Path.cwd() / "tiny.onnx"
    onnx.save(model, str(path))
    return str(path)


def onnx_data() -> List[Any]:
    return tf_data()


def branchy_model() -> Any:
    """Every export of it is wrong: tracing bakes in the branch its example takes (the first sample's)."""
    import torch

    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x * 2 if bool(x.sum() > 100) else x

    return Branchy().eval()


def branchy_data() -> List[Any]:
    import torch

    return [torch.zeros(2, 8), torch.full((2, 8), 1000.0)]


def broken_model() -> Any:
    raise RuntimeError("this factory fails on purpose")


def slow_torch_model() -> Any:
    """torch_model, after announcing itself in $BATCH_TEST_MARKER_DIR and sleeping (a job to kill mid-run)."""
    marker_dir = os.environ.get(MARKER_ENV)
    if marker_dir:
        Path(marker_dir, f"slow-{os.getpid()}").write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("BATCH_TEST_SLEEP_S", "30")))
    return torch_model()


def _mlp(width: int, depth: int) -> Any:
    import torch

    torch.manual_seed(width + depth)
    layers: List[Any] = [torch.nn.Linear(8, width), torch.nn.ReLU()]
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 4)).eval()


# bench/batch.py's zoo of 8 small models: batch_models:zoo_0 ... batch_models:zoo_7 (MLPs 8 -> width^depth -> 4).
ZOO = [(16, 1), (32, 1), (64, 1), (128, 1), (16, 2), (32, 2), (64, 2), (128, 2)]
for _i, (_w, _d) in enumerate(ZOO):
    globals()[f"zoo_{_i}"] = functools.partial(_mlp, _w, _d)
