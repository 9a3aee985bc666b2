"""torch.compile (inductor) as an opt-in runtime of the source model: checked against the eager
outputs and profiled in the user's process; a failure to compile is a recorded result, never a crash."""

from __future__ import annotations

import pytest

import model_navigator as nav
import helpers
from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import Format, Framework, RuntimeProvider, StepStatus
from model_navigator.paths.torch import torch_paths
from model_navigator.steps.pipeline import selected_runtimes

torch = pytest.importorskip("torch")

TC = RuntimeProvider.TORCH_COMPILE


def _config(runtimes):
    return ExportConfig(framework=Framework.TORCH, model_name="m", target_formats=(Format.ONNX,), runtimes=runtimes)


def test_torch_compile_adds_to_the_default_runtimes_instead_of_restricting_them():
    onnx = next(s for s in torch_paths() if s.key == "onnx")
    everything = selected_runtimes(onnx, _config(None))
    assert selected_runtimes(onnx, _config((TC,))) == everything  # opt-in: adds, restricts nothing
    assert selected_runtimes(onnx, _config((TC, RuntimeProvider.CPU))) == [RuntimeProvider.CPU]
    assert TC not in everything  # artifacts never run on it


@pytest.mark.slow
def test_compile_failure_is_recorded_and_the_export_goes_on(tmp_path):
    """No working C++ compiler (the usual cause on a bare CPU machine): the runtime fails with
    inductor's own reason, profiling is skipped, every other path and runtime is unaffected."""
    import models
    import torch._dynamo
    import torch._inductor.config as inductor_config

    # torch's own config.patch restores the value (pytest's monkeypatch deletes it on torch's config proxy)
    torch._dynamo.reset()
    try:
        with inductor_config.patch({"cpp.cxx": ("no-such-cxx-compiler",)}):
            package = nav.torch.export(
                models.linear_model(),
                models.linear_dataloader(batches=2),
                workdir=tmp_path / "w",
                target_formats=("onnx",),
                runtimes=("TorchCompile",),
                profiler_config=helpers.light_profiler(),
                verbose=False,
            )
    finally:
        torch._dynamo.reset()
    source = package.status.paths["torch"]
    compiled = source.runtimes[TC]
    assert compiled.correctness.status == StepStatus.FAILED
    assert "InvalidCxxCompiler" in compiled.correctness.reason and "no-such-cxx-compiler" in compiled.correctness.reason
    assert "batch size" not in compiled.correctness.reason.split(":")[0]  # not mistaken for a batch-size issue
    assert compiled.performance.status == StepStatus.SKIPPED
    assert source.runtimes[RuntimeProvider.CPU].performance.status == StepStatus.OK
    assert package.status.paths["onnx"].runtimes[RuntimeProvider.CPU].correctness.status == StepStatus.OK
    # the failure is a failure for the CLI (exit 1) and is on disk
    from model_navigator.package.table import find_failures

    assert find_failures(package.status) == ["torch on TorchCompile: correctness failed"]


@pytest.mark.slow
def test_torch_compile_is_checked_and_profiled_against_eager(tmp_path):
    """The CNN compiled with inductor on the CPU (tens of seconds: one compile per new input shape)."""
    import models

    torch._dynamo.reset()
    model = models.cnn_model()
    package = nav.torch.export(
        model,
        models.cnn_dataloader(),
        workdir=tmp_path / "w",
        target_formats=("onnx",),
        runtimes=("TorchCompile",),
        profiler_config=helpers.light_profiler(),
        verbose=False,
    )
    source = package.status.paths["torch"]
    assert list(source.runtimes) == [RuntimeProvider.CPU, TC]
    compiled = source.runtimes[TC]
    assert compiled.correctness.status == StepStatus.OK, compiled.correctness.reason
    assert compiled.correctness.batch_sizes == [1, 4]
    assert compiled.correctness.per_output["output__0"].max_abs_error < 1e-4
    assert compiled.performance.status == StepStatus.OK
    assert [r.batch_size for r in compiled.performance.results] == [1, 4]
    # the runner the user gets is the compiled model; the source model is never a selection candidate
    with package.get_runner(format="torch", runtime="TorchCompile") as runner:
        x = torch.rand(4, 3, 32, 32)
        out = runner.infer({"input__0": x.numpy()})["output__0"]
    torch.testing.assert_close(torch.from_numpy(out), model(x).detach(), rtol=1e-4, atol=1e-5)
    best = package.get_best()
    assert best.path == "onnx"
    assert any(r.path == "torch" and r.runtime == TC and "not a deployable artifact" in r.reason for r in best.rejected)
    # nav.profile re-profiles it too (the descriptor from export holds the model)
    before = compiled.performance.results[0].p50_ms
    nav.profile(package, helpers.light_profiler(batch_sizes=(2,)), verbose=False)
    again = package.status.paths["torch"].runtimes[TC].performance
    assert again.status == StepStatus.OK and [r.batch_size for r in again.results] == [2]
    assert before > 0


def test_torch_compile_is_accepted_on_the_cpu():
    from model_navigator.api.common import check_runtimes

    assert check_runtimes((TC,), "cpu") == (TC,)
    assert nav.RuntimeProvider("TorchCompile") is TC
