"""OpenVINO as a CPU runtime of the ONNX path: runner, correctness, profiling, packages, selection."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import model_navigator as nav
import helpers
from model_navigator.core.enums import RuntimeProvider, StepStatus
from model_navigator.core.formats import RUNTIME_MODULES

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

OV = RuntimeProvider.OPENVINO


@pytest.fixture(scope="module")
def cnn_package(tmp_path_factory):
    """The CNN exported to ONNX (and TorchScript trace), checked and profiled on every CPU runtime."""
    import models

    workdir = tmp_path_factory.mktemp("ov") / "navigator_workdir"
    return nav.torch.export(
        models.cnn_model(),
        models.cnn_dataloader(),
        workdir=workdir,
        target_formats=("onnx", "torchscript"),
        jit_options=("trace",),
        profiler_config=helpers.light_profiler(),
        verbose=False,
    )


def test_onnx_path_runs_on_onnxruntime_and_openvino(cnn_package):
    onnx = cnn_package.status.paths["onnx"]
    assert list(onnx.runtimes) == [RuntimeProvider.CPU, OV]
    result = onnx.runtimes[OV]
    assert result.correctness.status == StepStatus.OK, result.correctness.reason
    # fp32 pinned: bf16 (OpenVINO's default on CPUs with native bf16) would be ~1e-2 off
    assert result.correctness.per_output["output__0"].max_abs_error < 1e-5
    assert result.correctness.batch_sizes == [1, 4]
    assert result.performance.status == StepStatus.OK
    assert [r.batch_size for r in result.performance.results] == [1, 4]
    assert all(r.p50_ms > 0 and r.throughput > 0 for r in result.performance.results)
    # only the ONNX path gets OpenVINO
    assert list(cnn_package.status.paths["torchscript-trace"].runtimes) == [RuntimeProvider.CPU]


def test_openvino_runner_matches_onnxruntime_at_any_batch_size(cnn_package):
    from polygraphy.backend.base import BaseRunner

    ov_runner = cnn_package.get_runner(format=nav.Format.ONNX, runtime="OpenVINO")
    ort_runner = cnn_package.get_runner(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU)
    assert isinstance(ov_runner, BaseRunner)
    rng = np.random.default_rng(0)
    with ov_runner, ort_runner:
        for batch in (1, 3, 7):  # the batch axis stays dynamic in OpenVINO
            feed = {"input__0": rng.random((batch, 3, 32, 32), dtype=np.float32)}
            got, want = ov_runner.infer(feed), ort_runner.infer(feed)
            assert list(got) == ["output__0"] and got["output__0"].shape == (batch, 4)
            np.testing.assert_allclose(got["output__0"], want["output__0"], rtol=1e-4, atol=1e-5)
        precision = ov_runner._compiled.get_property("INFERENCE_PRECISION_HINT")
        assert "f32" in str(precision).lower() or "float32" in str(precision).lower()
        meta = ov_runner.get_input_metadata()
        assert list(meta["input__0"].shape) == [None, 3, 32, 32]


def test_reproduce_script_reruns_the_runtime_it_is_given(cnn_package):
    """One correctness script for every runtime of the path: the runtime is its argument (default the
    path's first), so the last runtime checked (OpenVINO) no longer overwrites the CPU provider's."""
    script = cnn_package.workdir / "onnx" / "reproduce_correctness.sh"
    assert '--runtime "$RUNTIME"' in script.read_text()
    assert 'RUNTIME="${1:-CPUExecutionProvider}"' in script.read_text()
    for runtime in ("OpenVINO", "CPUExecutionProvider"):
        done = subprocess.run(
            ["bash", str(script.relative_to(cnn_package.workdir)), runtime],
            cwd=cnn_package.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert '"status": "ok"' in done.stdout
    # the argument is what the step runs on: a runtime it does not know is refused by name
    done = subprocess.run(
        ["bash", str(script.relative_to(cnn_package.workdir)), "NoSuchRuntime"],
        cwd=cnn_package.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "'NoSuchRuntime'" in done.stderr, done.stderr[-2000:]


def test_best_runtime_and_package_round_trip(cnn_package, tmp_path):
    best = cnn_package.get_best("min-latency")
    candidates = {(r.path, r.runtime) for r in best.rejected} | {(best.path, best.runtime)}
    assert {("onnx", OV), ("onnx", RuntimeProvider.CPU), ("torchscript-trace", RuntimeProvider.CPU)} <= candidates
    package = tmp_path / "cnn.nav"
    cnn_package.save(package)
    loaded = nav.load(package, verbose=False)  # re-tests every runtime, OpenVINO included
    result = loaded.status.paths["onnx"].runtimes[OV]
    assert result.correctness.status == StepStatus.OK
    with loaded.get_runner(format="onnx", runtime="OpenVINO") as runner:
        out = runner.infer({"input__0": np.zeros((2, 3, 32, 32), dtype=np.float32)})
    assert out["output__0"].shape == (2, 4)


def test_runtimes_argument_restricts_and_missing_openvino_is_reported(tmp_path, monkeypatch):
    import models

    package = nav.torch.export(
        models.cnn_model(),
        models.cnn_dataloader(batches=1),
        workdir=tmp_path / "a",
        target_formats=("onnx",),
        runtimes=("OpenVINO",),
        run_profiling=False,
        verbose=False,
    )
    assert list(package.status.paths["onnx"].runtimes) == [OV]
    assert package.status.paths["onnx"].runtimes[OV].correctness.status == StepStatus.OK

    # without the openvino module: the default runtimes leave it out, asking for it is an error
    monkeypatch.setitem(RUNTIME_MODULES, OV, ("openvino_not_installed_here", "openvino"))
    package = nav.torch.export(
        models.cnn_model(),
        models.cnn_dataloader(batches=1),
        workdir=tmp_path / "b",
        target_formats=("onnx",),
        run_profiling=False,
        verbose=False,
        isolation=False,
    )
    assert list(package.status.paths["onnx"].runtimes) == [RuntimeProvider.CPU]
    with pytest.raises(nav.UserInputError, match=r"need the `openvino_not_installed_here` module.*\[openvino\]"):
        nav.torch.export(
            models.cnn_model(),
            models.cnn_dataloader(batches=1),
            workdir=tmp_path / "c",
            target_formats=("onnx",),
            runtimes=("CPUExecutionProvider", "OpenVINO"),
            verbose=False,
        )
    assert not (tmp_path / "c").exists()


def test_openvino_runner_reports_a_model_it_cannot_read(tmp_path):
    from model_navigator.core.tensor import TensorMetadata
    from model_navigator.runners.openvino import OpenVINORunner

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    runner = OpenVINORunner(bad, [TensorMetadata("x", (-1, 3), "float32")], [TensorMetadata("y", (-1, 3), "float32")])
    with pytest.raises(RuntimeError, match="Unable to read the model") as e:  # OpenVINO's own error, not a crash
        runner.activate()
    assert str(bad) in str(e.value), e.value


def test_importing_openvino_through_navigator_forks_nothing():
    """OpenVINO's usage telemetry forks from a thread at import; model-navigator turns it off, so a
    worker's crash is seen (no forked child keeps its pipes open) and nothing is sent."""
    import sys

    code = (
        "import sys\n"
        "forks = []\n"
        "sys.addaudithook(lambda event, args: forks.append(event) if event == 'os.fork' else None)\n"
        "from model_navigator.runners.openvino import import_openvino\n"
        "import_openvino().Core()\n"
        "import time; time.sleep(0.5)\n"
        "print(len(forks), 'openvino_telemetry' in sys.modules and sys.modules['openvino_telemetry'] is None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "True"]


def test_openvino_is_a_cpu_runtime():
    from model_navigator.api.common import check_runtimes

    assert check_runtimes((OV, RuntimeProvider.CPU), "cpu") == (OV, RuntimeProvider.CPU)
    with pytest.raises(nav.UserInputError, match="runs on the CPU only but target_device is 'cuda'"):
        check_runtimes((RuntimeProvider.CUDA, OV), "cuda")
