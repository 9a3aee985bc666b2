"""The GPU paths' own tests: on a machine with a CUDA GPU, a torch export on target_device="cuda"
checks TorchScript and ONNX on the GPU runtimes, skips nothing for want of a GPU, and every path
and runtime it reports correct gives the model's outputs through get_runner. Without a GPU the
module is skipped with the reason (the CPU side of these paths is tested in test_tensorrt_paths.py
and the CPU test modules, which run on a GPU machine too)."""

from __future__ import annotations

import models
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import model_navigator as nav  # noqa: E402
from model_navigator.core.enums import RuntimeProvider, StepStatus, TensorRTPrecision  # noqa: E402
from model_navigator.core.serialization import to_plain  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def on_cuda(tmp_path_factory):
    torch.manual_seed(models.SEED)
    model = models.linear_model()
    package = nav.torch.export(
        model=model,
        dataloader=models.linear_dataloader(batches=3, random=True),
        workdir=tmp_path_factory.mktemp("gpu") / "navigator_workdir",
        target_device="cuda",
        run_profiling=False,
        verbose=False,
    )
    return package, model


def test_torchscript_is_checked_on_the_gpu(on_cuda):
    package, _ = on_cuda
    assert to_plain(package.status.config.target_device).startswith("cuda")
    for key in ("torchscript-script", "torchscript-trace"):
        path = package.status.paths[key]
        assert path.status == StepStatus.OK, (key, path.reason)
        correctness = path.runtimes[RuntimeProvider.CUDA].correctness
        assert correctness.status == StepStatus.OK, (key, correctness.reason)


def test_no_path_is_skipped_for_want_of_a_gpu(on_cuda):
    package, _ = on_cuda
    for key, path in package.status.paths.items():
        if path.status == StepStatus.SKIPPED:  # a library this machine lacks, said with the fix
            assert "none found" not in path.reason and "target_device" not in path.reason, (key, path.reason)
        for runtime, result in path.runtimes.items():
            if result.correctness is not None and result.correctness.status == StepStatus.SKIPPED:
                assert "none found" not in (result.correctness.reason or ""), (key, runtime, result.correctness)


def test_every_path_reported_correct_computes_the_model(on_cuda):
    package, model = on_cuda
    x = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
    with torch.inference_mode():
        expected = model.cpu()(torch.from_numpy(x)).numpy()
    checked = 0
    for key, path in package.status.paths.items():
        if path.status != StepStatus.OK or path.format in (nav.Format.TORCH,):
            continue
        for runtime, result in path.runtimes.items():
            if result.correctness is None or result.correctness.status != StepStatus.OK:
                continue
            fp16 = path.precision == TensorRTPrecision.FP16
            with package.get_runner(
                format=path.format, jit_type=path.jit_type, precision=path.precision, runtime=runtime
            ) as runner:
                got = runner.infer({"input__0": x})["output__0"]
            np.testing.assert_allclose(
                got,
                expected,
                atol=1e-2 if fp16 else 1e-4,
                rtol=1e-2 if fp16 else 1e-3,
                err_msg=f"{key} on {runtime.value}",
            )
            checked += 1
    assert checked >= 2  # at least the two TorchScript paths on the GPU
