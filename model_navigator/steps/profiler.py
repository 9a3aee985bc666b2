"""The measurement engine: latency and throughput of one active runner at one or more batch sizes.

Only the `runner.infer(feed, check_inputs=False)` call is timed. Batches are built once per batch
size, outside any timing. Measurement runs in windows (a fixed request count or a fixed time) until
the last 3 windows agree within `stability_percentage`, or `max_trials` windows were measured; the
reported figures are computed over the requests of the last 3 windows.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.batching import select_batch_sizes
from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import MeasurementMode
from model_navigator.core.samples import build_batch  # noqa: F401  (re-exported for callers)
from model_navigator.core.status import ProfilingResult

LOGGER = logging.getLogger(__name__)

STABILITY_WINDOWS = 3
"""How many of the most recent windows must agree for a measurement to count as stable."""

Clock = Callable[[], float]


def _relative_spread(values: Sequence[float]) -> float:
    """Largest deviation (%) of values from their average; inf when it cannot be computed."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        return math.inf
    average = float(array.mean())
    if average == 0.0:
        return 0.0 if np.all(array == 0.0) else math.inf
    return float(np.max(np.abs(array - average)) / abs(average) * 100.0)


def check_stability(
    latencies_ms: Sequence[float], throughputs: Sequence[float], stability_percentage: float
) -> Tuple[bool, float]:
    """(stable, spread %): the last 3 windows' latency and throughput each lie within the percentage of their mean."""
    if len(latencies_ms) < STABILITY_WINDOWS or len(throughputs) < STABILITY_WINDOWS:
        return False, math.inf
    spread = max(
        _relative_spread(list(latencies_ms)[-STABILITY_WINDOWS:]),
        _relative_spread(list(throughputs)[-STABILITY_WINDOWS:]),
    )
    return spread <= stability_percentage, spread


def _count_window(infer: Callable[..., Any], feed: Dict[str, np.ndarray], count: int, clock: Clock) -> List[float]:
    """Time `count` inferences; latencies in seconds."""
    timings: List[float] = []
    append = timings.append
    for _ in range(count):
        start = clock()
        infer(feed, check_inputs=False)
        end = clock()
        append(end - start)
    return timings


def _time_window(
    infer: Callable[..., Any], feed: Dict[str, np.ndarray], interval_s: float, clock: Clock
) -> List[float]:
    """Time inferences until interval_s elapsed since the first one started (at least one); seconds."""
    timings: List[float] = []
    append = timings.append
    window_start = None
    while True:
        start = clock()
        infer(feed, check_inputs=False)
        end = clock()
        append(end - start)
        if window_start is None:
            window_start = start
        if end - window_start >= interval_s:
            return timings


def _warmup(runner: Any, feed: Dict[str, np.ndarray], requests: int) -> None:
    """Run untimed inferences before measuring."""
    infer = runner.infer
    for _ in range(requests):
        infer(feed, check_inputs=False)


WindowRunner = Callable[[], Tuple[Sequence[float], Optional[float]]]
"""Runs one measurement window: (each request's latency in s, the window's wall time in s, or None
when requests ran one after another and the wall time is the sum of their latencies)."""


def run_windows(
    run_window: WindowRunner, batch_size: int, config: ProfilerConfig
) -> Tuple[List[np.ndarray], List[float], bool, float]:
    """Measure windows until the last 3 agree within stability_percentage, or max_trials:
    (per-window latencies in s, per-window wall times in s, stable, spread %). Shared by the
    in-process profiler and the served load test (model_navigator.serving.loadtest)."""
    windows: List[np.ndarray] = []
    walls: List[float] = []
    mean_latencies_ms: List[float] = []
    throughputs: List[float] = []
    stable, spread = False, math.inf
    for _ in range(config.max_trials):
        timings, wall_s = run_window()
        window = np.asarray(timings, dtype=np.float64)
        total_s = float(window.sum()) if wall_s is None else float(wall_s)
        windows.append(window)
        walls.append(total_s)
        mean_latencies_ms.append(float(window.sum()) / len(window) * 1000.0)
        throughputs.append(batch_size * len(window) / total_s if total_s > 0 else math.inf)
        stable, spread = check_stability(mean_latencies_ms, throughputs, config.stability_percentage)
        if stable:
            break
    return windows, walls, stable, spread


def _measure_windows(
    runner: Any, feed: Dict[str, np.ndarray], batch_size: int, config: ProfilerConfig, clock: Clock
) -> Tuple[List[np.ndarray], bool, float]:
    """Warm up, then measure windows until stable or max_trials: (per-window latencies in s, stable, spread %)."""
    _warmup(runner, feed, config.warmup_requests)
    infer = runner.infer
    time_mode = config.measurement_mode == MeasurementMode.TIME_WINDOWS
    interval_s = float(config.measurement_interval or 0.0) / 1000.0
    count = int(config.measurement_request_count or 0)

    def window() -> Tuple[List[float], None]:
        if time_mode:
            return _time_window(infer, feed, interval_s, clock), None
        return _count_window(infer, feed, count, clock), None

    windows, _, stable, spread = run_windows(window, batch_size, config)
    return windows, stable, spread


def _summarize(
    windows: List[np.ndarray], batch_size: int, stable: bool, spread: float, walls: Optional[Sequence[float]] = None
) -> ProfilingResult:
    """Figures over the last 3 windows' latencies. Throughput is batch_size / mean latency, or, with
    `walls` (concurrent requests), the requests of those windows over their wall time."""
    latencies_ms = np.concatenate(windows[-STABILITY_WINDOWS:]) * 1000.0
    p50, p90, p95, p99 = (float(v) for v in np.percentile(latencies_ms, [50, 90, 95, 99]))
    mean_ms = float(latencies_ms.mean())
    if walls is not None:
        wall_s = float(sum(walls[-STABILITY_WINDOWS:]))
        throughput = batch_size * latencies_ms.size / wall_s if wall_s > 0 else math.inf
    else:
        throughput = batch_size / (mean_ms / 1000.0) if mean_ms > 0 else math.inf
    return ProfilingResult(
        batch_size=batch_size,
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=mean_ms,
        std_ms=float(latencies_ms.std()),
        throughput=throughput,
        windows=len(windows),
        stable=stable,
        spread_percent=float(spread),
        request_count=int(latencies_ms.size),
    )


def measure(
    runner: Any,
    feed: Dict[str, np.ndarray],
    batch_size: int,
    config: ProfilerConfig,
    clock: Clock = time.perf_counter,
) -> ProfilingResult:
    """Warm up, then measure windows of `runner.infer` until stable (or max_trials); never raises on instability."""
    windows, stable, spread = _measure_windows(runner, feed, batch_size, config, clock)
    result = _summarize(windows, batch_size, stable, spread)
    if not stable:
        message = (
            f"{getattr(runner, 'name', 'runner')}: batch size {batch_size} did not stabilise within "
            f"{config.stability_percentage}% after {len(windows)} windows (last 3 windows spread "
            f"{spread:.1f}%); keeping the result marked unstable."
        )
        LOGGER.warning(message)
    return result


def measure_window_runner(
    run_window: WindowRunner, batch_size: int, config: ProfilerConfig, name: str = "runner"
) -> ProfilingResult:
    """The profiler's window and stability rules around any way of sending requests (the served load
    test's concurrent clients): throughput is the requests of the last 3 windows over their wall time."""
    windows, walls, stable, spread = run_windows(run_window, batch_size, config)
    result = _summarize(windows, batch_size, stable, spread, walls)
    if not stable:
        LOGGER.warning(
            "%s: did not stabilise within %s%% after %d windows (last 3 windows spread %.1f%%); keeping "
            "the result marked unstable.",
            name,
            config.stability_percentage,
            len(windows),
            spread,
        )
    return result


def should_stop_sweep(throughputs: Sequence[float], threshold: float, backoff_limit: int) -> bool:
    """True when each of the last backoff_limit steps gained less than threshold over the best throughput before it."""
    backoff_limit = max(1, int(backoff_limit))
    if len(throughputs) < backoff_limit + 1:
        return False
    for index in range(len(throughputs) - backoff_limit, len(throughputs)):
        best_before = max(throughputs[:index])
        if best_before <= 0:
            return False
        if throughputs[index] / best_before - 1.0 >= threshold:
            return False
    return True


def profile_runner(
    runner: Any,
    sample: Dict[str, np.ndarray],
    batch_dim: Optional[int],
    config: ProfilerConfig,
    dataloader_batch_size: int,
    on_result: Optional[Callable[[ProfilingResult], None]] = None,
) -> List[ProfilingResult]:
    """Measure an active runner at each selected batch size; a failing inference propagates."""
    sweeping = config.max_batch_size is not None and config.batch_sizes is None and batch_dim is not None
    results: List[ProfilingResult] = []
    throughputs: List[float] = []
    for batch_size in select_batch_sizes(config, dataloader_batch_size, batch_dim):
        feed = build_batch(sample, batch_size, batch_dim)
        result = measure(runner, feed, batch_size, config)
        LOGGER.info(
            "%s: batch %d: p50 %.3f ms, throughput %.1f/s (%d windows%s)",
            getattr(runner, "name", "runner"),
            batch_size,
            result.p50_ms,
            result.throughput,
            result.windows,
            "" if result.stable else ", unstable",
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
        throughputs.append(result.throughput)
        if sweeping and should_stop_sweep(
            throughputs, config.throughput_cutoff_threshold, config.throughput_backoff_limit
        ):
            LOGGER.info(
                "%s: throughput saturated at batch %d; stopping the sweep.",
                getattr(runner, "name", "runner"),
                batch_size,
            )
            break
    return results
