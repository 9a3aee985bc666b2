"""Profiling step: latency and throughput of one path and runtime per batch size, measured with the
same runner get_runner returns, on the saved profiling sample."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable, List

from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import RuntimeProvider, StepStatus
from model_navigator.core.samples import load_sample_dir
from model_navigator.core.logging import report_progress
from model_navigator.core.status import NavigatorStatus, PerformanceResult, ProfilingResult
from model_navigator.core.workspace import Workspace
from model_navigator.runners.registry import make_runner
from model_navigator.steps.base import base_parser


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(__doc__)
    parser.add_argument("--runtime", required=True, choices=[r.value for r in RuntimeProvider])
    parser.add_argument("--profiler-config", default="{}", help="ProfilerConfig as JSON")
    return parser


def profile_summary(results: List[ProfilingResult]) -> str:
    """One line of figures: "bs1 p50 0.012 ms 80000/s, bs8 ..." (throughput = batch / mean latency)."""
    return ", ".join(
        f"bs{r.batch_size} p50 {r.p50_ms:.3f} ms {r.throughput:.0f}/s{'' if r.stable else ' (unstable)'}"
        for r in results
    )


def report_batch(path: str, runtime: str) -> Callable[[ProfilingResult], None]:
    """An on_result callback printing a progress line per profiled batch size."""
    return lambda result: report_progress(path, "profiling", f"{runtime}: {profile_summary([result])}")


def profile_with_runner(
    runner: Any, status: NavigatorStatus, workspace: Workspace, config: ProfilerConfig, on_result: Any = None
) -> PerformanceResult:
    """Profile an inactive runner on the workspace's profiling sample."""
    from model_navigator.steps.profiler import profile_runner

    start = time.perf_counter()
    samples = load_sample_dir(workspace.input_dir("profiling"))
    if not samples:
        raise FileNotFoundError(f"no profiling sample in {workspace.input_dir('profiling')} (saved without data?)")
    with runner:
        results = profile_runner(
            runner,
            samples[0],
            status.config.batch_dim,
            config,
            int(status.dataloader.get("batch_size", 1)),
            on_result=on_result,
        )
    return PerformanceResult(status=StepStatus.OK, results=results, duration_s=time.perf_counter() - start)


def run(args: argparse.Namespace, base_dir: Path) -> PerformanceResult:
    workspace = Workspace(base_dir / args.workdir)
    status = NavigatorStatus.load(workspace.root)
    config = ProfilerConfig.from_dict(json.loads(args.profiler_config))
    runner = make_runner(workspace.root, status, status.paths[args.path], RuntimeProvider(args.runtime))
    return profile_with_runner(runner, status, workspace, config, on_result=report_batch(args.path, args.runtime))
