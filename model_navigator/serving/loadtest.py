"""Load test: latency percentiles and throughput of the served model through the real Triton client
at concurrency 1, 2, 4 ..., beside the same runner called in process at the same concurrency, so the
cost of serving shows. Measurement follows the profiler's rules (steps/profiler.py: warm-up, windows
of measurement_request_count requests or measurement_interval ms, until the last 3 windows agree
within stability_percentage or max_trials); at concurrency N, N threads each keep one request in
flight, a count window holds measurement_request_count requests in all, and throughput is the
requests of the last 3 windows over their wall time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import MeasurementMode
from model_navigator.core.errors import UserInputError
from model_navigator.core.status import ProfilingResult

Clock = Callable[[], float]


Sender = Tuple[Callable[[], Any], Callable[[], Any]]  # (send one request, close)


class _Workers:
    """`level` threads, each with its own sender made in that thread (Triton's HTTP client must stay
    on the thread that made it), kept for every window: at concurrency N, N requests in flight."""

    def __init__(self, make_sender: Callable[[], Sender], level: int, config: ProfilerConfig, clock: Clock):
        self._make_sender, self._config, self._clock = make_sender, config, clock
        self._time_mode = config.measurement_mode == MeasurementMode.TIME_WINDOWS
        self._interval_s = float(config.measurement_interval or 0.0) / 1000.0
        self._go = threading.Barrier(level + 1)
        self._done = threading.Barrier(level + 1)
        self._lock = threading.Lock()
        self._stop = False
        self._left = 0
        self._began = 0.0
        self._latencies: List[float] = []
        self._errors: List[BaseException] = []
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"loadtest-{i}") for i in range(level)]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        close: Optional[Callable[[], Any]] = None
        try:
            send, close = self._make_sender()
            for _ in range(self._config.warmup_requests):
                send()
            while True:
                self._go.wait()
                if self._stop:
                    return
                mine: List[float] = []
                while True:
                    if self._time_mode:
                        if mine and self._clock() - self._began >= self._interval_s:
                            break
                    else:
                        with self._lock:
                            if self._left <= 0:
                                break
                            self._left -= 1
                    t0 = self._clock()
                    send()
                    mine.append(self._clock() - t0)
                with self._lock:
                    self._latencies.extend(mine)
                self._done.wait()
        except threading.BrokenBarrierError:
            return
        except BaseException as e:  # noqa: BLE001 - raised again in the measuring thread
            self._errors.append(e)
            self._go.abort()
            self._done.abort()
        finally:
            if close is not None:
                close()

    def window(self) -> Tuple[List[float], float]:
        """One window (profiler.WindowRunner): every request's latency (s) and the window's wall time (s)."""
        self._latencies, self._left = [], int(self._config.measurement_request_count or 0)
        try:
            self._began = self._clock()
            self._go.wait()
            self._done.wait()
        except threading.BrokenBarrierError:
            raise self._errors[0] if self._errors else RuntimeError("a load-test worker stopped") from None
        return list(self._latencies), self._clock() - self._began

    def close(self) -> None:
        self._stop = True
        try:
            self._go.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        for t in self._threads:
            t.join(timeout=60)


def measure_concurrency(
    make_sender: Callable[[], Sender],
    level: int,
    batch_size: int,
    config: ProfilerConfig,
    name: str,
    clock: Clock = time.perf_counter,
) -> ProfilingResult:
    """`level` threads with a sender each (warmup_requests each first), measured by the profiler's
    window and stability rules (profiler.measure_window_runner)."""
    from model_navigator.steps.profiler import measure_window_runner

    workers = _Workers(make_sender, level, config, clock)
    try:
        return measure_window_runner(workers.window, batch_size, config, name=f"{name} at concurrency {level}")
    finally:
        workers.close()


@dataclass
class LoadtestRow:
    """One concurrency: the served figures and the in-process ones (None when not measured)."""

    concurrency: int
    served: ProfilingResult
    inprocess: Optional[ProfilingResult] = None


@dataclass
class LoadtestReport:
    """Served against in-process latency and throughput at each concurrency, for one request size."""

    model_name: str
    path: str
    runtime: str
    url: str
    batch_size: int
    max_batch_size: int
    batching: str
    rows: List[LoadtestRow] = field(default_factory=list)
    profiled: Optional[ProfilingResult] = None  # the package's own profiling at this batch size

    def to_dict(self) -> Dict[str, Any]:
        def figures(r: Optional[ProfilingResult]) -> Optional[Dict[str, Any]]:
            if r is None:
                return None
            return {
                "p50_ms": r.p50_ms,
                "p90_ms": r.p90_ms,
                "p95_ms": r.p95_ms,
                "p99_ms": r.p99_ms,
                "mean_ms": r.mean_ms,
                "throughput": r.throughput,
                "stable": r.stable,
                "windows": r.windows,
                "request_count": r.request_count,
            }

        return {
            "model_name": self.model_name,
            "path": self.path,
            "runtime": self.runtime,
            "url": self.url,
            "batch_size": self.batch_size,
            "max_batch_size": self.max_batch_size,
            "batching": self.batching,
            "profiled": figures(self.profiled),
            "rows": [
                {"concurrency": r.concurrency, "served": figures(r.served), "inprocess": figures(r.inprocess)}
                for r in self.rows
            ],
        }

    def to_markdown(self) -> str:
        """The table a user reads: served p50/p90/p99 and throughput against in-process p50 and throughput."""
        lines = [
            f"Served {self.model_name!r} ({self.path} on {self.runtime}) at {self.url}, requests of batch size "
            f"{self.batch_size}; {self.batching}.",
            "",
            "| concurrency | served p50 ms | served p90 ms | served p99 ms | served samples/s "
            "| in-process p50 ms | in-process samples/s | p50 served / in-process |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.rows:
            s, i = r.served, r.inprocess
            mark = "" if s.stable else " (unstable)"
            ratio = f"{s.p50_ms / i.p50_ms:.1f}x" if i is not None and i.p50_ms > 0 else "-"
            lines.append(
                f"| {r.concurrency} | {s.p50_ms:.3f}{mark} | {s.p90_ms:.3f} | {s.p99_ms:.3f} | "
                f"{s.throughput:.1f} | {f'{i.p50_ms:.3f}' if i else '-'}"
                f"{'' if i is None or i.stable else ' (unstable)'} | "
                f"{f'{i.throughput:.1f}' if i else '-'} | {ratio} |"
            )
        if self.profiled is not None:
            lines += [
                "",
                f"The package's own profiling of this path at batch size {self.batch_size}: p50 "
                f"{self.profiled.p50_ms:.3f} ms, {self.profiled.throughput:.1f} samples/s.",
            ]
        lines += ["", "Throughput is samples/s (batch size x requests / wall time of the last 3 windows)."]
        return "\n".join(lines)


def _sample(workdir: Path) -> Dict[str, np.ndarray]:
    """The profiling sample the package was profiled on (else its first correctness sample)."""
    from model_navigator.core.samples import load_sample_dir
    from model_navigator.core.workspace import Workspace

    workspace = Workspace(workdir)
    for folder in (workspace.input_dir("profiling"), workspace.input_dir("correctness")):
        samples = load_sample_dir(folder)
        if samples:
            return samples[0]
    raise UserInputError(
        f"The package has no saved samples in {workspace.input_dir('profiling')} (saved without "
        f"data?); a load test needs one."
    )


def _check_concurrency(concurrency: Sequence[int]) -> List[int]:
    levels: List[int] = sorted(set(concurrency)) if not isinstance(concurrency, int) else [concurrency]
    if not levels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in levels):
        raise UserInputError(f"`concurrency` must be positive integers, got {concurrency!r}.")
    return levels


def loadtest_served(
    served: Any,
    concurrency: Sequence[int] = (1, 2, 4),
    batch_size: int = 1,
    profiler_config: Optional[ProfilerConfig] = None,
    inprocess: bool = True,
) -> LoadtestReport:
    """Load-test a running ServedModel (see loadtest)."""
    from model_navigator.core.samples import build_batch

    levels = _check_concurrency(concurrency)
    config = profiler_config or ProfilerConfig()
    plan = served.plan
    mbs = plan.max_batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserInputError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if (mbs == 0 and batch_size != 1) or (mbs > 0 and batch_size > mbs):
        raise UserInputError(f"batch_size {batch_size} is more than the served model takes (max_batch_size {mbs}).")
    batch_dim = plan.status.config.batch_dim if mbs > 0 else None
    feed = build_batch(_sample(plan.workdir), batch_size, batch_dim)
    result = plan.path.runtimes.get(plan.runtime)
    profiled = None
    if result is not None and result.performance is not None:
        profiled = next((r for r in result.performance.results if r.batch_size == batch_size), None)
    report = LoadtestReport(
        model_name=plan.model_name,
        path=plan.path.key,
        runtime=plan.runtime.value,
        url=served.url,
        batch_size=batch_size,
        max_batch_size=mbs,
        batching=plan.batching,
        profiled=profiled,
    )
    runner = served.runner
    infer = (lambda c: c.infer_batch(**feed)) if mbs > 0 else (lambda c: c.infer_sample(**feed))

    def local_sender() -> Sender:
        return (lambda: runner.infer(feed, check_inputs=False)), (lambda: None)

    def served_sender() -> Sender:
        client = served.client()
        return (lambda: infer(client)), client.close

    for level in levels:
        local = (
            measure_concurrency(local_sender, level, batch_size, config, f"{plan.path.key} in process")
            if inprocess
            else None
        )
        remote = measure_concurrency(served_sender, level, batch_size, config, f"{plan.model_name} served")
        report.rows.append(LoadtestRow(level, remote, local))
    return report


def loadtest(
    package: Union[Any, str, Path],
    concurrency: Sequence[int] = (1, 2, 4),
    batch_size: int = 1,
    profiler_config: Optional[ProfilerConfig] = None,
    inprocess: bool = True,
    **serve_options: Any,
) -> LoadtestReport:
    """Serve `package` (nav.serve's options), measure it through the Triton client at each concurrency
    (and the same runner in process unless `inprocess=False`), stop the server, return the report."""
    from model_navigator.serving.server import serve

    levels = _check_concurrency(concurrency)  # bad input is refused before a server starts
    with serve(package, **serve_options) as served:
        return loadtest_served(served, levels, batch_size, profiler_config, inprocess)
