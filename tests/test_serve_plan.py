"""Serving without a server: what nav.serve decides and refuses before anything starts, the load test's
concurrent windows under the profiler's rules, and that importing model_navigator imports no PyTriton.
These run in every environment (no PyTriton needed); tests/test_serve.py starts the real server."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import model_navigator as nav
from model_navigator.core.enums import Format, RuntimeProvider, StepStatus
from model_navigator.core.status import CorrectnessResult, NavigatorStatus
from model_navigator.core.tensor import TensorMetadata
from model_navigator.serving.env import check_port, choose_ports, libpython_dir, stub_library_path
from model_navigator.serving.loadtest import measure_concurrency
from model_navigator.serving.plan import plan_serving
from model_navigator.steps.profiler import measure_window_runner
from test_triton_repository import synthetic

REPO_ROOT = Path(__file__).resolve().parents[1]
HAS_PYTRITON = importlib.util.find_spec("pytriton") is not None

IMAGE = [TensorMetadata("image", (-1, 3, 8, 8), "float32")]
LOGITS = [TensorMetadata("logits", (-1, 10), "float32")]


def cnn_like(tmp_path: Path) -> Path:
    return synthetic(
        tmp_path,
        "onnx",
        Format.ONNX,
        "model.onnx",
        RuntimeProvider.CPU,
        IMAGE,
        LOGITS,
        batch_sizes=(1, 2, 4),
        throughputs=(100.0, 180.0, 150.0),
    )


def test_importing_model_navigator_imports_no_pytriton():
    code = (
        "import sys, model_navigator as nav; nav.serve; nav.loadtest; import model_navigator.serving; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pytriton', 'tritonclient', 'torch', 'tensorflow')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(HAS_PYTRITON, reason="PyTriton is installed here: the missing-PyTriton message cannot show")
def test_without_pytriton_serve_says_how_to_install(tmp_path):
    with pytest.raises(nav.UserInputError, match=r"pip install 'model-navigator\[serve\]'"):
        nav.serve(cnn_like(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "model_navigator", "loadtest", str(cnn_like(tmp_path / "b"))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "model-navigator[serve]" in done.stderr


def test_plan_takes_the_best_path_with_the_writers_tensors_and_batching(tmp_path):
    stack: list = []
    plan = plan_serving(cnn_like(tmp_path), stack)
    assert (plan.path.key, plan.runtime) == ("onnx", RuntimeProvider.CPU)
    assert plan.selection is not None and plan.model_name == "synthetic"
    assert [(t.name, t.data_type, t.dims) for t in plan.inputs] == [("image", "TYPE_FP32", (3, 8, 8))]
    assert [(t.name, t.dims) for t in plan.outputs] == [("logits", (10,))]
    assert plan.max_batch_size == 4 and plan.preferred_batch_sizes == [2]
    assert "largest batch size profiled" in plan.batching
    plan = plan_serving(cnn_like(tmp_path / "c"), stack, max_batch_size=0)
    assert plan.max_batch_size == 0 and [t.dims for t in plan.inputs] == [(-1, 3, 8, 8)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"path_key": "nope"}, "No path 'nope'"),
        ({"runtime": "NoSuchRuntime"}, "runtime"),
        ({"model_name": "a/b"}, "not a name Triton accepts"),
        ({"max_batch_size": -1}, "max_batch_size"),
    ],
)
def test_plan_refuses_bad_requests(tmp_path, kwargs, message):
    with pytest.raises(nav.UserInputError, match=message):
        plan_serving(cnn_like(tmp_path), [], **kwargs)


def test_plan_serves_only_what_passed_correctness(tmp_path):
    workdir = cnn_like(tmp_path)
    status = NavigatorStatus.load(workdir)
    status.paths["onnx"].runtimes[RuntimeProvider.CPU].correctness = CorrectnessResult(
        status=StepStatus.FAILED, reason="max abs error 3 > 1e-5"
    )
    status.save(workdir)
    with pytest.raises(nav.UserInputError, match="failed correctness"):
        plan_serving(workdir, [], path_key="onnx", runtime="CPUExecutionProvider")
    with pytest.raises(nav.NoRuntimeQualifiesError, match="correctness failed"):
        plan_serving(workdir, [])
    status.paths["onnx"].runtimes[RuntimeProvider.CPU].correctness = None
    status.save(workdir)
    with pytest.raises(nav.UserInputError, match="has not passed correctness"):
        plan_serving(workdir, [], path_key="onnx", runtime="CPUExecutionProvider")


def test_ports_in_use_are_refused_and_free_ones_differ():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(nav.UserInputError, match=f"http_port {port} on 127.0.0.1 is not free"):
            choose_ports("127.0.0.1", port, None, None)
    with pytest.raises(nav.UserInputError, match="given twice"):
        choose_ports("127.0.0.1", 40001, 40001, None)
    with pytest.raises(nav.UserInputError, match="1..65535"):
        check_port("127.0.0.1", 70000, "http_port")
    ports = choose_ports("127.0.0.1", None, None, None)
    assert len(set(ports.values())) == 3


def test_stub_library_path_puts_this_interpreters_libpython_first():
    first = libpython_dir()
    if first is None:
        pytest.skip("this Python has no shared libpython")
    assert stub_library_path("/opt/a:" + first + ":/opt/b") == f"{first}:/opt/a:/opt/b"
    assert stub_library_path(None) == first


def test_concurrent_windows_follow_the_profiler_rules_and_count_wall_time():
    """N threads each keep one 5 ms request in flight: latency stays ~5 ms, throughput grows ~N-fold."""
    config = nav.ProfilerConfig(measurement_request_count=24, max_trials=6, stability_percentage=50, warmup_requests=1)
    made = []

    def sender():
        made.append(threading.get_ident())
        return (lambda: time.sleep(0.005)), (lambda: None)

    one = measure_concurrency(sender, 1, 1, config, "sleep")
    four = measure_concurrency(sender, 4, 1, config, "sleep")
    main = threading.get_ident()
    assert len(made) == 5 and len(set(made[1:])) == 4 and main not in made  # a sender per thread, made there
    assert 4.5 < one.p50_ms < 30 and 4.5 < four.p50_ms < 30
    assert four.request_count == 3 * 24 and 3 <= four.windows <= 6
    assert four.throughput > 2.0 * one.throughput  # wall time, not the sum of latencies
    assert one.throughput < 1000.0 / 4.5


def test_measure_window_runner_is_the_profilers_stability_loop():
    windows = iter(
        [
            ([0.001] * 10, 0.005),
            ([0.002] * 10, 0.010),
            ([0.001] * 10, 0.005),
            ([0.001] * 10, 0.005),
            ([0.001] * 10, 0.005),
        ]
    )
    result = measure_window_runner(lambda: next(windows), 2, nav.ProfilerConfig(stability_percentage=5, max_trials=5))
    assert result.stable and result.windows == 5 and result.request_count == 30
    assert result.throughput == pytest.approx(2 * 30 / 0.015)  # samples over the last 3 windows' wall time
    assert result.p50_ms == pytest.approx(1.0)
