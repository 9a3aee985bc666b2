"""Where steps run (steps/executor.py and the worker of steps/worker.py): the isolation modes, which
steps go to the worker, and that a step run by the worker returns what it returns in process.

The worker's test fault (FAULT_ENV, "exit" in one step of one path) tells where a step ran: in the
worker the step ends with the worker's exit code 3, in this process it runs and fails normally."""

from __future__ import annotations

import pytest

from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import Format, Framework, StepStatus
from model_navigator.core.errors import UserInputError
from model_navigator.steps import worker
from model_navigator.steps.executor import InProcessExecutor, RoutingExecutor, make_executor, normalize_isolation

ARGV = ["--workdir", ".", "--path", "p", "--runtime", "CPUExecutionProvider"]
FAULT = "correctness:p:exit"  # the worker exits (code 3) when it is asked for correctness of path p


@pytest.fixture
def own_workers(monkeypatch):
    """Shared workers of this test only, started with the test fault set; stopped afterwards."""
    monkeypatch.setattr(worker, "_WORKERS", {})
    monkeypatch.setenv(worker.FAULT_ENV, FAULT)
    yield
    worker.shutdown_workers()


@pytest.mark.parametrize(
    "value, mode", [(True, "full"), (False, "off"), ("auto", "auto"), ("full", "full"), ("off", "off")]
)
def test_normalize_isolation(value, mode):
    assert normalize_isolation(value) == mode


@pytest.mark.parametrize("value", ["on", None, 1, "Full"])
def test_normalize_isolation_refuses_anything_else(value):
    with pytest.raises(UserInputError, match=r"`isolation` must be True, False or one of \('auto', 'full', 'off'\)"):
        normalize_isolation(value)


def test_make_executor_follows_the_configs_isolation(tmp_path):
    config = ExportConfig(framework=Framework.TORCH, model_name="m", target_formats=(Format.ONNX,), isolation="off")
    executor = make_executor(config, tmp_path)
    assert isinstance(executor, RoutingExecutor) and executor.mode == "off" and executor.framework == "torch"
    executor.close()


def test_in_process_executor_returns_the_steps_result(tmp_path):
    reply = InProcessExecutor().run("correctness", ARGV, tmp_path)
    assert reply.result.status == StepStatus.FAILED and "status.yaml" in reply.result.reason  # no workspace there


def test_worker_returns_what_the_step_returns_in_process(tmp_path, own_workers):
    local = InProcessExecutor().run("conversion", ["--workdir", ".", "--path", "p"], tmp_path)
    executor = RoutingExecutor("full", "test-executor", set())  # a worker that preloads numpy only
    try:
        remote = executor.run("conversion", ["--workdir", ".", "--path", "p"], tmp_path, format="onnx")
        assert (remote.result.status, remote.result.reason) == (local.result.status, local.result.reason)
        bad = executor.run("conversion", ["--no-such-option"], tmp_path)
        assert bad.result.status == StepStatus.FAILED
        assert bad.result.reason.startswith("bad step arguments ['--no-such-option']")
        crashed = executor.run("correctness", ARGV, tmp_path, format="onnx")  # the test fault: exit code 3
        assert crashed.result.status == StepStatus.FAILED and crashed.traceback is None
        assert crashed.result.reason.startswith("worker process exited with exit code 3 during correctness")
        again = executor.run("conversion", ["--workdir", ".", "--path", "p"], tmp_path)  # a fresh worker
        assert again.result.reason == local.result.reason
    finally:
        executor.shutdown()


def test_auto_runs_the_users_framework_formats_here_and_the_rest_in_the_worker(tmp_path, own_workers):
    executor = RoutingExecutor("auto", "torch", {"torchscript"})
    try:
        here = executor.run("correctness", ARGV, tmp_path, format="torchscript")
        assert here.result.status == StepStatus.FAILED and "status.yaml" in here.result.reason  # ran: no workspace here
        there = executor.run("correctness", ARGV, tmp_path, format="onnx")
        assert "exit code 3" in there.result.reason
    finally:
        executor.shutdown()


def test_off_runs_everything_here(tmp_path, own_workers):
    executor = RoutingExecutor("off", "torch", set())
    result = executor.run("correctness", ARGV, tmp_path, format="onnx")
    assert "status.yaml" in result.result.reason and "exit code" not in result.result.reason
    assert worker._WORKERS == {}  # no worker was started
    executor.close()
