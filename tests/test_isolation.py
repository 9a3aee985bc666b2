"""Crash isolation (worker process) and reproduce scripts that are the commands that ran."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import model_navigator as nav
import helpers
from model_navigator.core.enums import StepStatus
from model_navigator.core.status import NavigatorStatus
from model_navigator.steps.worker import FAULT_ENV, shutdown_workers


def _export(workdir: Path, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU()).eval()
    dataloader = [torch.randn(2, 5) for _ in range(3)]
    kwargs.setdefault("target_formats", ("onnx", "torchscript"))
    kwargs.setdefault("jit_options", ("trace",))
    return nav.torch.export(
        model, dataloader, workdir=workdir, verbose=False, profiler_config=helpers.light_profiler(), **kwargs
    )


@pytest.fixture
def fault(monkeypatch):
    """Set a worker fault for the next export (a fresh worker reads it at start)."""

    def set_fault(spec: str) -> None:
        shutdown_workers()
        monkeypatch.setenv(FAULT_ENV, spec)

    yield set_fault
    monkeypatch.delenv(FAULT_ENV, raising=False)
    shutdown_workers()


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("correctness:onnx:crash", "killed by SIGSEGV"),
        ("profiling:onnx:exit", "exit code 3"),
    ],
)
def test_worker_death_fails_only_that_step(tmp_path, fault, spec, expected):
    fault(spec)
    desc = _export(tmp_path / "w")
    step = spec.split(":")[0]
    onnx = desc.status.paths["onnx"].runtimes[nav.RuntimeProvider.CPU]
    result = onnx.correctness if step == "correctness" else onnx.performance
    assert result.status.value == "failed"
    assert expected in result.reason
    assert "test fault injection" in result.reason  # the tail of the worker's output
    trace = desc.status.paths["torchscript-trace"].runtimes[nav.RuntimeProvider.CPU]
    assert trace.correctness.status.value == "ok"
    assert trace.performance.status.value == "ok"
    # The user's process is alive and the status on disk says the same.
    on_disk = NavigatorStatus.load(tmp_path / "w")
    assert on_disk.paths["onnx"].runtimes[nav.RuntimeProvider.CPU] == onnx


@pytest.mark.slow
def test_hang_past_step_timeout_is_stopped(tmp_path, fault):
    fault("correctness:torchscript-trace:hang")
    start = time.monotonic()
    # isolation=True: every step, TorchScript ones included, runs in a worker that loads torch
    desc = _export(tmp_path / "w", step_timeout_s=5, isolation=True)
    assert time.monotonic() - start < 90
    trace = desc.status.paths["torchscript-trace"].runtimes[nav.RuntimeProvider.CPU]
    assert trace.correctness.status.value == "failed"
    assert "timed out after 5 s" in trace.correctness.reason
    assert trace.performance.status.value == "skipped"
    onnx = desc.status.paths["onnx"].runtimes[nav.RuntimeProvider.CPU]
    assert onnx.correctness.status.value == "ok"  # a fresh worker took over
    assert onnx.performance.status.value == "ok"


def test_auto_isolation_runs_foreign_runtimes_in_the_worker_only(tmp_path, fault):
    """isolation='auto' (default): ONNX Runtime steps in the worker, TorchScript checks here."""
    fault("correctness:torchscript-trace:crash")  # would kill a worker, never this process
    desc = _export(tmp_path / "w", run_profiling=False)
    trace = desc.status.paths["torchscript-trace"].runtimes[nav.RuntimeProvider.CPU]
    assert trace.correctness.status.value == "ok"  # ran in this process: no fault injected
    from model_navigator.steps import worker

    assert set(worker._WORKERS) == {"runtimes"}


def test_in_process_mode_gives_same_results(tmp_path):
    isolated = _export(tmp_path / "a", run_profiling=False)
    local = _export(tmp_path / "b", run_profiling=False, isolation="off")
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    for key in ("onnx", "torchscript-trace"):
        a = isolated.status.paths[key].runtimes[nav.RuntimeProvider.CPU].correctness
        b = local.status.paths[key].runtimes[nav.RuntimeProvider.CPU].correctness
        assert a.status == b.status == StepStatus.OK, (key, a.reason, b.reason)
        assert (a.batch_sizes, a.sample_count, a.tolerance) == (b.batch_sizes, b.sample_count, b.tolerance), key
        assert a.per_output.keys() == b.per_output.keys() == {"output__0"}
        for name, err in a.per_output.items():  # the same model, samples and runtime: the same measured errors
            assert err.max_abs_error == pytest.approx(b.per_output[name].max_abs_error, rel=1e-6, abs=1e-9), key
            assert err.max_rel_error == pytest.approx(b.per_output[name].max_rel_error, rel=1e-6, abs=1e-9), key
        fmt = dict(format="onnx") if key == "onnx" else dict(format="torchscript", jit_type="trace")
        with isolated.get_runner(**fmt) as runner_a, local.get_runner(**fmt) as runner_b:
            np.testing.assert_allclose(
                runner_a.infer({"input__0": x})["output__0"],
                runner_b.infer({"input__0": x})["output__0"],
                rtol=1e-6,
                atol=1e-7,
            )


def _run_sh(workdir: Path, sh: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(sh.relative_to(workdir)), *args], cwd=workdir, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_reproduce_scripts_reproduce_status(tmp_path):
    class BatchOne(torch.nn.Module):
        def forward(self, x):
            return x.reshape(1, -1) * 2  # specialised to batch size 1 when traced

    ok = _export(tmp_path / "ok")
    bad = nav.torch.export(
        BatchOne(),
        [torch.randn(1, 4) for _ in range(2)],
        workdir=tmp_path / "bad",
        target_formats=("onnx",),
        verbose=False,
        run_profiling=False,
    )
    bad_onnx = bad.status.paths["onnx"].runtimes[nav.RuntimeProvider.CPU].correctness
    assert bad_onnx.status.value == "failed"
    assert "batch size 2" in bad_onnx.reason
    assert "(reproduce: bash onnx/reproduce_correctness.sh CPUExecutionProvider)" in bad_onnx.reason

    checked = 0
    for desc in (ok, bad):
        workdir = desc.workdir
        for key, path in desc.status.paths.items():
            for runtime, result in path.runtimes.items():
                for step, outcome in (("correctness", result.correctness), ("profiling", result.performance)):
                    sh = workdir / key / f"reproduce_{step}.sh"
                    if outcome is None or not sh.exists():
                        continue
                    if outcome.status.value == "skipped":
                        continue
                    proc = _run_sh(workdir, sh, runtime.value)  # one script per step, the runtime its argument
                    assert (proc.returncode == 0) == (outcome.status.value == "ok"), (sh, proc.stdout, proc.stderr)
                    checked += 1
        # the .sh is the command line that ran: relative paths, this Python, run from the root
        sh_text = (workdir / "onnx" / "reproduce_correctness.sh").read_text()
        assert sys.executable in sh_text and "--workdir ." in sh_text and str(workdir) not in sh_text
    assert checked >= 5
    export_py = (tmp_path / "ok" / "onnx" / "reproduce_export.py").read_text()
    assert "def get_model()" in export_py and "NotImplementedError" in export_py


@pytest.mark.slow
def test_ctrl_c_stops_workers_and_leaves_a_readable_workspace(tmp_path):
    workdir = tmp_path / "w"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import torch, model_navigator as nav
        model = torch.nn.Linear(5, 7).eval()
        nav.torch.export(model, [torch.randn(2, 5) for _ in range(3)], workdir={str(workdir)!r},
                         target_formats=("torchscript", "onnx"), jit_options=("trace",), verbose=False)
    """)
    )
    env = dict(os.environ, **{FAULT_ENV: "correctness:onnx:hang"})
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    status_file = workdir / "status.yaml"
    while time.monotonic() < deadline:
        if status_file.exists():
            data = yaml.safe_load(status_file.read_text()) or {}
            trace = (data.get("paths") or {}).get("torchscript-trace", {})
            if trace.get("runtimes", {}).get("CPUExecutionProvider", {}).get("performance"):
                break
        time.sleep(0.2)
    time.sleep(1.0)  # the onnx correctness step now hangs in the worker
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"KeyboardInterrupt" in err
    status = NavigatorStatus.load(workdir)
    assert status.paths["torchscript-trace"].runtimes[nav.RuntimeProvider.CPU].performance.status.value == "ok"
    onnx = status.paths["onnx"]
    in_flight = onnx.runtimes[nav.RuntimeProvider.CPU].correctness
    assert in_flight.status.value == "not_run" and "interrupted" in in_flight.reason
    run = status.runs[-1]  # the run is on record as interrupted, not finished
    assert (run.operation, run.outcome, run.pid) == ("export", "interrupted", proc.pid) and run.finished_at

    # no worker left behind (the hanging one carries FAULT_ENV in its environment)
    def leftovers():
        found = subprocess.run(["pgrep", "-f", "model_navigator.steps.worker"], capture_output=True, text=True)
        alive = []
        for pid in found.stdout.split():
            try:
                if FAULT_ENV.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                    alive.append(pid)
            except OSError:
                continue
        return alive

    deadline = time.monotonic() + 10
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers() == []


@pytest.mark.slow
def test_long_step_reports_heartbeats(tmp_path, fault):
    """A step the worker is slow to answer is never a silent minute: heartbeats while waiting."""
    from model_navigator.core.logging import Progress
    from model_navigator.steps import worker as worker_module

    class Recording(Progress):
        def line(self, ok, path, step, detail, seconds=None):
            beats.append((path, step, detail))

    desc = _export(tmp_path / "w", run_profiling=False)
    fault("correctness:onnx:hang")
    executor = worker_module.WorkerExecutor("runtimes")
    beats = []
    try:
        with Recording(enabled=False).running("onnx", "correctness", every_s=0.5):
            result = executor.run(
                "correctness",
                ["--workdir", ".", "--path", "onnx", "--runtime", "CPUExecutionProvider"],
                desc.workdir,
                timeout_s=3,
            )
    finally:
        executor.shutdown()
    assert result.result.status == StepStatus.FAILED and "timed out after 3 s" in result.result.reason
    assert len(beats) >= 3 and all(b[:2] == ("onnx", "correctness") and "still running" in b[2] for b in beats)


@pytest.mark.slow
def test_reproduce_scripts_of_a_loaded_package_run_with_another_python(tmp_path):
    """A package loaded elsewhere carries .sh scripts naming the exporting machine's Python: where
    that interpreter does not exist, the script says so and uses python3 from PATH; PYTHON=... picks one."""
    d = nav.torch.export(
        torch.nn.Linear(3, 2),
        [torch.randn(2, 3)],
        workdir=tmp_path / "w",
        run_profiling=False,
        verbose=False,
        target_formats=("onnx",),
    )
    nav.save(d, tmp_path / "m.nav")
    loaded = nav.load(tmp_path / "m.nav", workdir=tmp_path / "elsewhere", retest_conversions=False, verbose=False)
    sh = loaded.workdir / "onnx" / "reproduce_correctness.sh"
    assert f"RECORDED_PYTHON={sys.executable}" in sh.read_text()
    env = {
        **os.environ,
        "PYTHON": str(tmp_path / "no" / "such" / "python"),
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }
    proc = subprocess.run(
        ["bash", "onnx/reproduce_correctness.sh"],
        cwd=loaded.workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no/such/python not found, using python3 from PATH" in proc.stderr
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", "onnx/reproduce_correctness.sh"],
        cwd=loaded.workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0 and "not found" not in proc.stderr, proc.stderr
