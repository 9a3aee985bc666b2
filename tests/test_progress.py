"""Progress for people: a line per profiled batch size (also from the worker process), a heartbeat
while a step runs long, GPU-only skips in one line, repeated warnings logged once with a count."""

from __future__ import annotations

import logging
import time
import warnings

import helpers
import models
import pytest

import model_navigator as nav
from model_navigator.core.logging import Progress, capture_warnings, report_progress


def test_a_long_step_prints_a_heartbeat(capsys):
    progress = Progress(enabled=True)
    with progress.running("onnx", "profiling", every_s=0.05):
        time.sleep(0.4)
    with progress.running("onnx", "profiling", every_s=30):
        report_progress("onnx", "profiling", "CPUExecutionProvider: bs4 p50 1.000 ms")
    err = capsys.readouterr().err
    assert "onnx" in err and "still running" in err
    assert "bs4 p50 1.000 ms" in err


def test_repeated_warnings_are_logged_once_with_a_count(caplog):
    logger = logging.getLogger("model_navigator.test_progress")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        with capture_warnings(logger) as graph:
            for _ in range(20):
                warnings.warn("this API is deprecated", DeprecationWarning, stacklevel=1)
            warnings.warn(
                "Converting a tensor to a Python boolean might cause the trace to be incorrect",
                UserWarning,
                stacklevel=1,
            )
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "deprecated" in m]) == 1
    assert any("[20 times]" in m for m in messages)
    assert len(graph) == 1 and "trace to be incorrect" in graph[0]


@pytest.mark.slow
def test_export_prints_a_line_per_profiled_batch_size_and_one_gpu_skip_line(workdir, capfd, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU for this run (and its worker), on any machine
    nav.torch.export(
        model=models.linear_model(),
        dataloader=models.linear_dataloader(batches=2, batch_size=4),
        workdir=workdir,
        verbose=True,
        target_formats=("onnx", "trt"),
        target_device="cpu",
        runtimes=("CPUExecutionProvider",),
        profiler_config=helpers.light_profiler(batch_sizes=(1, 4)),
    )
    err = capfd.readouterr().err
    lines = [" ".join(line.split()) for line in err.splitlines()]
    # from the worker process (ONNX Runtime runs there), one line per batch size, then the summary
    assert any(line.startswith("- onnx profiling CPUExecutionProvider: bs1 p50") for line in lines), err
    assert any(line.startswith("- onnx profiling CPUExecutionProvider: bs4 p50") for line in lines), err
    assert any(line.startswith("- torch profiling CPUExecutionProvider: bs4 p50") for line in lines), err
    gpu = [line for line in lines if "GPU paths skipped" in line]
    assert len(gpu) == 1 and "trt-fp32" in gpu[0] and "trt-fp16" in gpu[0], err
    assert not any(line.startswith("- trt-fp32 skipped") for line in lines)
