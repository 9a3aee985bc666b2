"""Verdicts a user can trust: wrong exports fail by default, NaN references export nothing (and say why),
checks that prove nothing say so, exporter warnings are recorded, get_status means what the
reference means, and nothing unchecked is profiled or recommended."""

from __future__ import annotations

import helpers
import models
import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

import model_navigator as nav  # noqa: E402
from model_navigator.core.enums import RuntimeProvider, StepStatus  # noqa: E402
from model_navigator.core.serialization import to_plain  # noqa: E402

CPU = RuntimeProvider.CPU


class Branchy(torch.nn.Module):
    """A data-dependent branch: tracing bakes in the branch of the example it ran."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(models.SEED)
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.linear(x) * 2.0
        return self.linear(x) - 3.0


def _branchy_dataloader():
    # every single sample is clearly positive or clearly negative; both kinds are in every set
    return [torch.full((2, 4), float(v)) for v in (1.0, -1.0, 2.0, -2.0, 0.5, -0.5)]


@pytest.fixture(scope="module")
def branchy(tmp_path_factory):
    return nav.torch.export(
        model=Branchy(),
        dataloader=_branchy_dataloader(),
        isolation=False,
        verbose=False,
        workdir=tmp_path_factory.mktemp("branchy") / "wd",
        target_formats=("torchscript", "onnx"),
        profiler_config=helpers.light_profiler(batch_sizes=(1,)),
    )


def test_a_baked_in_branch_fails_trace_and_onnx_by_default(branchy):
    for key in ("torchscript-trace", "onnx"):
        path = branchy.status.paths[key]
        assert path.status == StepStatus.OK, key  # the export itself works
        result = path.runtimes[CPU].correctness
        assert result.status == StepStatus.FAILED, (key, result.reason)
        assert result.tolerance == "default fp32"
        assert "exceed atol=0.0001, rtol=0.001" in result.reason
        assert path.runtimes[CPU].performance.status == StepStatus.SKIPPED
    script = branchy.status.paths["torchscript-script"].runtimes[CPU].correctness
    assert script.status == StepStatus.OK, script.reason
    assert branchy.get_formats_status() == {"torchscript-script": True, "torchscript-trace": False, "onnx": False}
    assert branchy.get_status(format=nav.Format.ONNX) is False
    # the reference's idiom picks the one TorchScript path that is right
    assert branchy.get_status(format=nav.Format.TORCHSCRIPT) is True
    assert branchy.status.paths["torchscript-script"] is branchy.get_path(format=nav.Format.TORCHSCRIPT)


def test_get_best_recommends_only_a_correct_path(branchy):
    best = branchy.get_best()
    assert best.path == "torchscript-script"
    losers = {(r.path, r.runtime): r.reason for r in best.rejected}
    assert losers[("onnx", CPU)].startswith("correctness failed")


def test_the_tracer_warning_is_recorded_beside_the_result(branchy, tmp_path):
    trace = branchy.status.paths["torchscript-trace"]
    assert any("TracerWarning" in w and "trace to be incorrect" in w for w in trace.warnings), trace.warnings
    assert not branchy.status.paths["torchscript-script"].warnings
    data = yaml.safe_load((branchy.workdir / "status.yaml").read_text())
    assert any("TracerWarning" in w for w in data["paths"]["torchscript-trace"]["warnings"])
    from rich.console import Console

    from model_navigator.package.table import print_status_table

    console = Console(record=True, width=200)
    print_status_table(branchy.status, console=console)
    text = console.export_text()
    assert "⚠ TracerWarning" in text and "default fp32" in text


@pytest.mark.slow
def test_a_specialised_sequence_axis_fails_the_exported_program(workdir):
    class Lstm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(models.SEED)
            self.lstm = torch.nn.LSTM(8, 16, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]

    dataloader = [torch.randn(2, seq, 8) for seq in (5, 9, 16)]
    package = nav.torch.export(
        model=Lstm(),
        dataloader=dataloader,
        workdir=workdir,
        isolation=False,
        verbose=False,
        target_formats=("torch-exportedprogram",),
        run_profiling=False,
    )
    path = package.status.paths["torch-exportedprogram"]
    assert list(to_plain(package.status.config.dynamic_axes).values())[0] == [0, 1]
    assert path.status == StepStatus.FAILED
    assert "specialized it to be a constant" in path.reason, path.reason


def _nan_model():
    class Nan(torch.nn.Module):
        def forward(self, x):
            return torch.log(x)  # NaN for the negative inputs

    return Nan()


def test_nan_in_the_source_outputs_exports_nothing_and_says_why(workdir):
    dataloader = [torch.full((2, 3), 1.0), torch.tensor([[1.0, 2.0, 3.0], [-1.0, 1.0, 1.0]])]
    # the sample as the user finds it: the second dataloader item, the second row of its batch
    said = (
        r"output 'output__0' holds NaN \(1 of 3 elements\) on dataloader item 1, position 1 in its batch: "
        r".*allow_nonfinite_outputs"
    )
    with pytest.warns(UserWarning, match=said):
        package = nav.torch.export(model=_nan_model(), dataloader=dataloader, workdir=workdir, verbose=False)
    assert not any(package.get_formats_status().values())
    assert {p.status for p in package.status.paths.values()} == {StepStatus.FAILED}
    assert not [p for p in (workdir / "model_output").rglob("*.npz")]


def test_accepted_nan_outputs_are_compared_by_value(workdir):
    dataloader = [torch.full((2, 3), -1.0), torch.full((2, 3), 2.0)]
    package = nav.torch.export(
        model=_nan_model(),
        dataloader=dataloader,
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_formats=("torchscript", "onnx"),
        allow_nonfinite_outputs=True,
    )
    for key in ("torchscript-script", "torchscript-trace", "onnx"):
        result = package.status.paths[key].runtimes[CPU].correctness
        assert result.status == StepStatus.OK, (key, result.reason)


def test_constant_outputs_warn_that_the_check_proves_nothing(workdir):
    class ZeroHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(models.SEED)
            self.body = torch.nn.Linear(4, 4)
            self.head = torch.nn.Linear(4, 3)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

        def forward(self, x):
            hidden = self.body(x)
            return {"hidden": hidden, "logits": self.head(hidden), "prob": torch.softmax(self.head(hidden), -1)}

    dataloader = [torch.randn(2, 4) for _ in range(3)]
    package = nav.torch.export(
        model=ZeroHead(),
        dataloader=dataloader,
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_formats=("onnx",),
    )
    result = package.status.paths["onnx"].runtimes[CPU].correctness
    assert result.status == StepStatus.OK
    text = " | ".join(result.warnings)
    assert "'logits'" in text and "all zero" in text
    assert "'prob'" in text and "same for all 6 correctness samples" in text
    assert "'hidden'" not in text


def test_a_warning_every_checked_path_carries_is_printed_once_under_the_table(workdir):
    # The reference's own example: the same input in every sample, so every path gets the warning.
    from rich.console import Console

    from model_navigator.package.table import print_status_table

    torch.manual_seed(models.SEED)
    package = nav.torch.export(
        model=torch.nn.Linear(5, 7).eval(),
        dataloader=[torch.full((3, 5), 1.0)] * 4,
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_formats=("torchscript",),
    )
    checked = [r for p in package.status.paths.values() for r in p.runtimes.values() if r.correctness]
    assert len(checked) == 2 and all(any("same for all" in w for w in r.correctness.warnings) for r in checked)
    console = Console(record=True, width=400)
    print_status_table(package.status, console=console)
    text = console.export_text()
    assert text.count("same for all 12 correctness samples") == 1, text
    line = next(line for line in text.splitlines() if "same for all" in line)
    assert line.startswith("⚠ output 'output__0'") and line.endswith("(every checked path)")


@pytest.mark.slow
def test_get_status_is_false_when_the_default_runtimes_check_failed(workdir):
    torch.manual_seed(models.SEED)
    layer = torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0)
    model = torch.nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False).eval()
    # batch_first=False: the batch is axis 1, but the user left batch_dim at 0
    dataloader = [torch.randn(2, 5, 8) for _ in range(3)]
    package = nav.torch.export(
        model=model,
        dataloader=dataloader,
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_formats=("onnx",),
    )
    onnx = package.status.paths["onnx"]
    assert onnx.status == StepStatus.OK
    assert onnx.runtimes[CPU].correctness.status == StepStatus.FAILED
    assert package.get_status(format=nav.Format.ONNX) is False
    assert package.get_formats_status()["onnx"] is False


@pytest.mark.slow
def test_a_runtime_added_after_the_package_was_made_is_checked_before_it_is_profiled(workdir, light_profiler):
    pytest.importorskip("openvino")
    package = nav.torch.export(
        model=models.linear_model(),
        dataloader=models.linear_dataloader(batches=2, random=True),
        workdir=workdir,
        isolation=False,
        verbose=False,
        target_formats=("onnx",),
        profiler_config=light_profiler,
    )
    onnx = package.status.paths["onnx"]
    # as made on a machine without OpenVINO: the runtime never ran
    del onnx.runtimes[RuntimeProvider.OPENVINO]
    package.save_status()
    returned = nav.profile(package, helpers.light_profiler(batch_sizes=(1, 4)), verbose=False)
    assert returned is package
    openvino = onnx.runtimes[RuntimeProvider.OPENVINO]
    assert openvino.correctness is not None and openvino.correctness.status == StepStatus.OK
    assert [r.batch_size for r in openvino.performance.results] == [1, 4]
    # the source model is re-profiled at the same batch sizes, so comparisons are like for like
    source = package.status.paths["torch"].runtimes[CPU].performance
    assert [r.batch_size for r in source.results] == [1, 4]


@pytest.mark.slow
def test_a_loaded_package_drops_source_figures_it_cannot_reprofile(workdir, tmp_path, light_profiler):
    package = nav.torch.export(
        model=models.linear_model(),
        dataloader=models.linear_dataloader(batches=2, random=True),
        workdir=workdir,
        isolation=False,
        verbose=False,
        target_formats=("onnx",),
        runtimes=("CPUExecutionProvider",),
        profiler_config=light_profiler,
    )
    package.save(tmp_path / "linear.nav")
    loaded = nav.load(tmp_path / "linear.nav", retest_conversions=False, verbose=False)
    nav.profile(loaded, helpers.light_profiler(batch_sizes=(8,)), verbose=False)
    source = loaded.status.paths["torch"].runtimes[CPU].performance
    assert source.status == StepStatus.SKIPPED and "not re-profiled" in source.reason
    assert [r.batch_size for r in loaded.status.paths["onnx"].runtimes[CPU].performance.results] == [8]
    assert np.isfinite(loaded.get_best().p50_ms)


@pytest.mark.parametrize("first_passes", [True, False])
def test_get_status_judges_by_the_default_runtime_when_runtimes_disagree(tmp_path, first_passes):
    """One ONNX path checked on two runtimes, one passed and one failed (status.yaml as written and read
    back): without runtime_provider get_status is the first runtime's verdict, neither 'any passed' nor
    'all passed'; naming a runtime gives that runtime's own verdict."""
    from model_navigator.core.status import CorrectnessResult, NavigatorStatus, PathStatus, RuntimeResult
    from model_navigator.package.descriptor import PackageDescriptor

    ok = RuntimeResult(correctness=CorrectnessResult(status=StepStatus.OK), verified=True)
    failed = RuntimeResult(correctness=CorrectnessResult(status=StepStatus.FAILED, reason="exceeds atol"))
    first, second = (ok, failed) if first_passes else (failed, ok)
    status = NavigatorStatus(model_name="m", framework="torch", config={"target_device": "cpu"})
    status.paths = {
        "onnx": PathStatus(
            key="onnx",
            format=nav.Format.ONNX,
            status=StepStatus.OK,
            model_path="onnx/model.onnx",
            runtimes={CPU: first, RuntimeProvider.OPENVINO: second},
        )
    }
    status.save(tmp_path)
    package = PackageDescriptor.from_workdir(tmp_path)
    assert list(package.status.paths["onnx"].runtimes) == [CPU, RuntimeProvider.OPENVINO]  # order kept
    assert package.get_status(format=nav.Format.ONNX) is first_passes
    assert package.get_formats_status() == {"onnx": first_passes}
    assert package.get_status(format=nav.Format.ONNX, runtime_provider=CPU) is first_passes
    assert package.get_status(format=nav.Format.ONNX, runtime_provider="OpenVINO") is (not first_passes)
    assert package.get_status(format=nav.Format.ONNX, runtime_provider=RuntimeProvider.CUDA) is False  # not checked
