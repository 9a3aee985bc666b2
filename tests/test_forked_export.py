"""Exports from the user's model in a forked child (steps/forked.py): a crash in one fails that path only,
what the exporters import stays out of the user's process, and isolation=False keeps them here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import model_navigator as nav
from model_navigator.core.enums import StepStatus


class CrashesWhenTraced(torch.nn.Module):
    """Computes like a Linear layer, but kills its process when traced (TorchScript trace, the
    TorchScript-based ONNX exporter): what a segfault in an exporter does."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(5, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            os.kill(os.getpid(), signal.SIGSEGV)
        return self.linear(x)


def test_a_crash_in_an_export_fails_that_path_and_the_users_process_goes_on(tmp_path: Path) -> None:
    torch.manual_seed(0)
    desc = nav.torch.export(
        CrashesWhenTraced().eval(),
        [torch.randn(2, 5) for _ in range(3)],
        workdir=tmp_path / "w",
        target_formats=("torchscript", "onnx", "torch-exportedprogram"),
        jit_options=("trace",),
        run_profiling=False,
        verbose=False,
    )
    paths = desc.status.paths
    for key in ("torchscript-trace", "onnx"):
        assert paths[key].status == StepStatus.FAILED
        assert "killed by SIGSEGV" in paths[key].reason
    # torch.export does not trace with torch.jit: it exports, and its artifact computes what the model does
    exported = paths["torch-exportedprogram"]
    assert exported.status == StepStatus.OK
    assert exported.runtimes[nav.RuntimeProvider.CPU].passed
    assert "export of torchscript-trace failed" in (tmp_path / "w" / "navigator.log").read_text()


def test_the_exporters_imports_stay_out_of_the_users_process(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has imported everything already.
    script = textwrap.dedent(
        """
        import sys, torch
        import model_navigator as nav
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU()).eval()
        desc = nav.torch.export(model, [torch.randn(2, 5) for _ in range(3)], workdir=sys.argv[1],
                                target_formats=("torchscript", "onnx"), run_profiling=False, verbose=False)
        print({key: path.status.value for key, path in desc.status.paths.items()})
        print(sorted(m for m in ("onnx", "torch.onnx", "torch._dynamo") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "w")], capture_output=True, text=True, timeout=300, check=True
    ).stdout.splitlines()
    assert out[-2] == "{'torch': 'ok', 'torchscript-script': 'ok', 'torchscript-trace': 'ok', 'onnx': 'ok'}"
    assert out[-1] == "[]"


def test_isolation_off_exports_in_the_users_process(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pids = set()

    class RecordsItsProcess(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 7)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if torch.jit.is_tracing():
                pids.add(os.getpid())
            return self.linear(x)

    desc = nav.torch.export(
        RecordsItsProcess().eval(),
        [torch.randn(2, 5) for _ in range(3)],
        workdir=tmp_path / "w",
        target_formats=("torchscript",),
        jit_options=("trace",),
        run_profiling=False,
        isolation=False,
        verbose=False,
    )
    assert desc.status.paths["torchscript-trace"].status == StepStatus.OK
    assert pids == {os.getpid()}


def _linear_export(workdir: Path) -> "nav.PackageDescriptor":
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU()).eval()
    return nav.torch.export(
        model,
        [torch.randn(2, 5) for _ in range(3)],
        workdir=workdir,
        target_formats=("torchscript", "onnx"),
        jit_options=("trace",),
        run_profiling=False,
        verbose=False,
    )


def test_exports_work_when_the_users_process_ignores_sigchld(tmp_path: Path) -> None:
    # With SIGCHLD ignored the kernel reaps children itself: waitpid finds none, the reply still counts.
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        desc = _linear_export(tmp_path / "w")
    finally:
        signal.signal(signal.SIGCHLD, previous)
    for key in ("torchscript-trace", "onnx"):
        assert desc.status.paths[key].runtimes[nav.RuntimeProvider.CPU].passed


def test_a_refused_fork_exports_in_the_users_process(tmp_path: Path, monkeypatch) -> None:
    # A machine out of memory or processes refuses fork (ENOMEM, EAGAIN): the export runs here instead.
    import errno

    def refuse() -> int:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", refuse)
    desc = _linear_export(tmp_path / "w")
    for key in ("torchscript-trace", "onnx"):
        assert desc.status.paths[key].runtimes[nav.RuntimeProvider.CPU].passed
    assert "could not fork for the export of onnx" in (tmp_path / "w" / "navigator.log").read_text()
