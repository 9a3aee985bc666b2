"""Tests of the measurement engine (model_navigator.steps.profiler)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest

from model_navigator.core.batching import select_batch_sizes
from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import MeasurementMode
from model_navigator.core.status import ProfilingResult
from model_navigator.core.tensor import TensorMetadata
from model_navigator.runners.base import NavigatorRunner
from model_navigator.steps import profiler
from model_navigator.steps.profiler import (
    build_batch,
    check_stability,
    measure,
    profile_runner,
    should_stop_sweep,
)

# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


class FakeClock:
    """A deterministic clock for measure(): calls come in (start, end) pairs around each inference.

    Each pair spans the next latency (seconds) from `latencies`; the last one repeats. A fixed gap
    separates inferences so that the untimed time never leaks into the measured latencies.
    """

    def __init__(self, latencies: Sequence[float], gap: float = 0.5):
        self.latencies = list(latencies)
        self.gap = gap
        self.now = 100.0
        self.calls = 0
        self.index = 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 1:  # start of an inference
            return self.now
        latency = self.latencies[min(self.index, len(self.latencies) - 1)]
        self.index += 1
        self.now += latency
        end = self.now
        self.now += self.gap
        return end


class FakeRunner:
    """Records infer() calls; fails at a given batch size when asked to."""

    name = "fake-runner"

    def __init__(self, fail_at_batch: int = 0):
        self.calls = 0
        self.check_inputs_seen = set()
        self.fail_at_batch = fail_at_batch

    def infer(self, feed_dict: Dict[str, np.ndarray], check_inputs: bool = True):
        self.calls += 1
        self.check_inputs_seen.add(check_inputs)
        if self.fail_at_batch and feed_dict["x"].shape[0] == self.fail_at_batch:
            raise RuntimeError(f"out of memory at batch {self.fail_at_batch}")
        return OrderedDict(y=feed_dict["x"])


def _config(**kwargs) -> ProfilerConfig:
    defaults = dict(measurement_request_count=20, warmup_requests=2, max_trials=6, stability_percentage=10.0)
    defaults.update(kwargs)
    return ProfilerConfig(**defaults)


def _assert_result_sane(result: ProfilingResult, batch_size: int) -> None:
    assert isinstance(result, ProfilingResult)
    assert result.batch_size == batch_size
    for name in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "throughput"):
        value = getattr(result, name)
        assert math.isfinite(value) and value > 0, (name, value)
    assert result.std_ms >= 0
    assert result.p50_ms <= result.p90_ms <= result.p95_ms <= result.p99_ms
    assert result.throughput == pytest.approx(batch_size / (result.mean_ms / 1000.0), rel=1e-9)
    assert result.windows >= 3
    assert result.request_count > 0
    assert isinstance(result.stable, bool)
    assert result.spread_percent >= 0
    if result.stable:
        assert result.spread_percent <= 100.0


# ------------------------------------------------------------------------------------------------
# check_stability
# ------------------------------------------------------------------------------------------------


def test_check_stability_needs_three_windows():
    assert check_stability([], [], 10.0) == (False, math.inf)
    assert check_stability([1.0, 1.0], [100.0, 100.0], 10.0) == (False, math.inf)


def test_check_stability_constant_windows_are_stable():
    stable, spread = check_stability([2.0, 2.0, 2.0], [500.0, 500.0, 500.0], 10.0)
    assert stable is True
    assert spread == pytest.approx(0.0)


def test_check_stability_small_jitter_is_stable_and_spread_is_max_deviation():
    latencies = [1.0, 1.02, 0.98]  # average 1.0, max deviation 2 %
    throughputs = [1000.0, 1000 / 1.02, 1000 / 0.98]
    stable, spread = check_stability(latencies, throughputs, 5.0)
    assert stable is True
    expected_tp = max(abs(t - np.mean(throughputs)) / np.mean(throughputs) * 100 for t in throughputs)
    assert spread == pytest.approx(max(2.0, expected_tp))


def test_check_stability_drifting_is_not_stable():
    latencies = [10.0, 12.0, 14.0]  # average 12, deviation 2/12 = 16.7 %
    throughputs = [1000 / x for x in latencies]
    stable, spread = check_stability(latencies, throughputs, 10.0)
    assert stable is False
    assert spread == pytest.approx(max(200 / 12, _max_dev(throughputs)))
    assert spread > 10.0


def test_check_stability_bound_is_inclusive():
    stable, spread = check_stability([9.0, 10.0, 11.0], [1.0, 1.0, 1.0], 10.0)
    assert spread == pytest.approx(10.0)
    assert stable is True
    assert check_stability([9.0, 10.0, 11.0], [1.0, 1.0, 1.0], 9.9)[0] is False


def test_check_stability_only_last_three_windows_count():
    latencies = [50.0, 3.0, 20.0, 1.0, 1.01, 0.99]  # noisy start, stable end
    throughputs = [1 / x for x in latencies]
    stable, spread = check_stability(latencies, throughputs, 5.0)
    assert stable is True
    assert spread < 2.0
    # ... and a stable start does not rescue a noisy end.
    stable, _ = check_stability(list(reversed(latencies)), list(reversed(throughputs)), 5.0)
    assert stable is False


def test_check_stability_noisy_throughput_alone_breaks_stability():
    stable, spread = check_stability([1.0, 1.0, 1.0], [100.0, 150.0, 100.0], 10.0)
    assert stable is False
    assert spread == pytest.approx(_max_dev([100.0, 150.0, 100.0]))


def test_check_stability_never_stable_sequence():
    latencies = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    throughputs = [1 / x for x in latencies]
    for end in range(3, len(latencies) + 1):
        stable, spread = check_stability(latencies[:end], throughputs[:end], 10.0)
        assert stable is False
        assert spread > 10.0


def _max_dev(values: Sequence[float]) -> float:
    avg = float(np.mean(values))
    return max(abs(v - avg) / avg * 100 for v in values)


# ------------------------------------------------------------------------------------------------
# should_stop_sweep
# ------------------------------------------------------------------------------------------------


def test_sweep_continues_while_throughput_grows():
    assert should_stop_sweep([100.0], 0.05, 2) is False
    assert should_stop_sweep([100.0, 190.0], 0.05, 2) is False
    assert should_stop_sweep([100.0, 190.0, 350.0, 600.0], 0.05, 2) is False


def test_sweep_stops_on_plateau():
    assert should_stop_sweep([100.0, 190.0, 195.0, 197.0], 0.05, 2) is True
    assert should_stop_sweep([100.0, 101.0, 102.0], 0.05, 2) is True


def test_sweep_needs_backoff_limit_plus_one_results():
    assert should_stop_sweep([100.0, 100.0], 0.05, 2) is False
    assert should_stop_sweep([100.0, 100.0], 0.05, 1) is True


def test_sweep_single_local_dip_does_not_stop_with_backoff_two():
    throughputs = [100.0, 200.0, 180.0]  # one dip
    assert should_stop_sweep(throughputs, 0.05, 2) is False
    # recovers well above the best before the dip: keep going
    assert should_stop_sweep(throughputs + [400.0], 0.05, 2) is False
    # with backoff 1 a single dip is enough
    assert should_stop_sweep(throughputs, 0.05, 1) is True


def test_sweep_compares_against_best_before_not_previous_step():
    # 180 -> 195 is +8 % over the previous step, but only -2.5 % against the best (200).
    assert should_stop_sweep([100.0, 200.0, 180.0, 195.0], 0.05, 2) is True


def test_sweep_threshold_is_honoured():
    throughputs = [100.0, 200.0, 214.0, 228.0]  # +7 %, +6.5 %
    assert should_stop_sweep(throughputs, 0.05, 2) is False
    assert should_stop_sweep(throughputs, 0.10, 2) is True


# ------------------------------------------------------------------------------------------------
# select_batch_sizes
# ------------------------------------------------------------------------------------------------


def test_select_batch_sizes_without_batch_dim_is_one():
    assert select_batch_sizes(ProfilerConfig(batch_sizes=(2, 8), max_batch_size=64), 16, None) == [1]


def test_select_batch_sizes_default_is_one_and_dataloader_batch():
    assert select_batch_sizes(ProfilerConfig(), 16, 0) == [1, 16]
    assert select_batch_sizes(ProfilerConfig(), 1, 0) == [1]


def test_select_batch_sizes_explicit_list_wins():
    assert select_batch_sizes(ProfilerConfig(batch_sizes=(8, 2, 2), max_batch_size=64), 16, 0) == [2, 8]


def test_select_batch_sizes_power_of_two_sweep():
    assert select_batch_sizes(ProfilerConfig(max_batch_size=8), 4, 0) == [1, 2, 4, 8]
    assert select_batch_sizes(ProfilerConfig(max_batch_size=12), 4, 0) == [1, 2, 4, 8, 12]
    assert select_batch_sizes(ProfilerConfig(max_batch_size=1), 4, 0) == [1]
    assert select_batch_sizes(ProfilerConfig(max_batch_size=3), 4, 0) == [1, 2, 3]


# ------------------------------------------------------------------------------------------------
# build_batch
# ------------------------------------------------------------------------------------------------


def test_build_batch_repeats_along_batch_dim():
    sample = {"x": np.arange(6, dtype=np.float32).reshape(1, 2, 3), "ids": np.array([[7, 8]], dtype=np.int64)}
    batch = build_batch(sample, 4, 0)
    assert batch["x"].shape == (4, 2, 3)
    assert batch["ids"].shape == (4, 2)
    assert batch["x"].dtype == np.float32 and batch["ids"].dtype == np.int64
    for i in range(4):
        np.testing.assert_array_equal(batch["x"][i], sample["x"][0])
    assert all(a.flags.c_contiguous for a in batch.values())


def test_build_batch_other_batch_dim_and_non_contiguous_input():
    base = np.arange(12, dtype=np.float32).reshape(3, 1, 4)
    sample = {"x": np.transpose(base, (1, 0, 2))[:, :, ::2]}  # shape (1, 3, 2), not contiguous
    assert not sample["x"].flags.c_contiguous
    batch = build_batch(sample, 3, 0)
    assert batch["x"].shape == (3, 3, 2) and batch["x"].flags.c_contiguous
    sample1 = {"x": np.ones((5, 1), dtype=np.float32)}
    batch1 = build_batch(sample1, 6, 1)
    assert batch1["x"].shape == (5, 6) and batch1["x"].flags.c_contiguous


def test_build_batch_size_one_keeps_values():
    sample = {"x": np.random.default_rng(0).random((1, 3)).astype(np.float32)}
    batch = build_batch(sample, 1, 0)
    np.testing.assert_array_equal(batch["x"], sample["x"])


def test_build_batch_without_batch_dim():
    sample = {"x": np.ones((3, 3), dtype=np.float32)}
    assert build_batch(sample, 1, None) is sample
    with pytest.raises(ValueError, match=r"^No batch dimension \(batch_dim=None\): batch_size must be 1, got 2\.$"):
        build_batch(sample, 2, None)


def test_build_batch_rejects_bad_batch_dim():
    with pytest.raises(ValueError, match=r"^Input 'x' has shape \(1, 2\); batch_dim 5 is out of range\.$"):
        build_batch({"x": np.ones((1, 2))}, 2, 5)
    with pytest.raises(ValueError, match=r"^Input 'x' is a scalar; it has no batch dimension 0\.$"):
        build_batch({"x": np.float32(1.0)}, 2, 0)
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0\.$"):
        build_batch({"x": np.ones((1, 2))}, 0, 0)


# ------------------------------------------------------------------------------------------------
# measure() with a deterministic clock
# ------------------------------------------------------------------------------------------------


def test_measure_constant_latency_stops_after_three_windows():
    runner = FakeRunner()
    clock = FakeClock([0.002])
    config = _config(measurement_request_count=10, warmup_requests=5)
    feed = {"x": np.ones((4, 2), dtype=np.float32)}
    result = measure(runner, feed, 4, config, clock=clock)
    assert result.windows == 3
    assert result.stable is True
    assert result.spread_percent == pytest.approx(0.0)
    assert result.request_count == 30
    assert runner.calls == 5 + 30
    assert runner.check_inputs_seen == {False}
    assert clock.calls == 2 * 30  # only the timed inferences touch the clock
    for name in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms"):
        assert getattr(result, name) == pytest.approx(2.0)
    assert result.std_ms == pytest.approx(0.0, abs=1e-9)
    assert result.throughput == pytest.approx(4 / 0.002)


def test_measure_reports_last_three_windows_only():
    # Two slow, noisy windows first, then a steady 1 ms.
    latencies = [0.010] * 10 + [0.003] * 10 + [0.001] * 100
    clock = FakeClock(latencies)
    result = measure(FakeRunner(), {"x": np.ones((1, 2))}, 1, _config(measurement_request_count=10), clock=clock)
    assert result.windows == 5
    assert result.stable is True
    assert result.p99_ms == pytest.approx(1.0)
    assert result.request_count == 30
    assert result.throughput == pytest.approx(1000.0)


def test_measure_percentiles_over_window_latencies():
    pattern = [0.001 * (i + 1) for i in range(10)]  # 1..10 ms in each window
    clock = FakeClock(pattern * 10)
    result = measure(FakeRunner(), {"x": np.ones((2, 2))}, 2, _config(measurement_request_count=10), clock=clock)
    expected = np.array(pattern * 3) * 1000
    assert result.windows == 3
    assert result.p50_ms == pytest.approx(np.percentile(expected, 50))
    assert result.p90_ms == pytest.approx(np.percentile(expected, 90))
    assert result.p95_ms == pytest.approx(np.percentile(expected, 95))
    assert result.p99_ms == pytest.approx(np.percentile(expected, 99))
    assert result.mean_ms == pytest.approx(5.5)
    assert result.std_ms == pytest.approx(np.std(expected))
    assert result.throughput == pytest.approx(2 / 0.0055)


def test_measure_never_stable_keeps_result_and_warns(caplog):
    # Every window is 20 % slower than the previous one.
    latencies: List[float] = []
    for w in range(10):
        latencies += [0.001 * 1.2**w] * 5
    clock = FakeClock(latencies)
    config = _config(measurement_request_count=5, max_trials=5)
    with caplog.at_level("WARNING", logger="model_navigator"):
        result = measure(FakeRunner(), {"x": np.ones((1, 2))}, 1, config, clock=clock)
    assert any("did not stabilise" in r.getMessage() for r in caplog.records)
    assert result.stable is False
    assert result.windows == 5
    assert result.spread_percent > config.stability_percentage
    assert math.isfinite(result.spread_percent)
    # figures come from windows 3..5 (1.2**2 .. 1.2**4 ms)
    assert result.p50_ms == pytest.approx(1.2**3)
    assert result.request_count == 15


def test_measure_time_windows_with_fake_clock():
    clock = FakeClock([0.001], gap=0.0)
    config = _config(measurement_mode=MeasurementMode.TIME_WINDOWS, measurement_interval=10)
    runner = FakeRunner()
    result = measure(runner, {"x": np.ones((1, 2))}, 1, config, clock=clock)
    assert result.windows == 3
    assert result.request_count == 30  # 10 inferences of 1 ms fill each 10 ms window
    assert result.p50_ms == pytest.approx(1.0)
    assert runner.calls == config.warmup_requests + 30


def test_measure_time_window_runs_at_least_one_inference():
    clock = FakeClock([0.5])  # each inference is longer than the window
    config = _config(measurement_mode="time_windows", measurement_interval=1)
    result = measure(FakeRunner(), {"x": np.ones((1, 2))}, 1, config, clock=clock)
    assert result.request_count == 3
    assert result.p50_ms == pytest.approx(500.0)


# ------------------------------------------------------------------------------------------------
# profile_runner() batch-size logic
# ------------------------------------------------------------------------------------------------


def _synthetic_measure(throughput_by_batch: Dict[int, float], seen_shapes: List[tuple]):
    def fake_measure(runner, feed, batch_size, config, clock=None):
        seen_shapes.append(feed["x"].shape)
        tp = throughput_by_batch[batch_size]
        mean_ms = batch_size / tp * 1000
        return ProfilingResult(batch_size, mean_ms, mean_ms, mean_ms, mean_ms, mean_ms, 0.0, tp, 3, True, 0.0, 30)

    return fake_measure


def test_profile_runner_sweep_stops_when_saturated(monkeypatch):
    throughput = {1: 100.0, 2: 190.0, 4: 195.0, 8: 197.0, 16: 400.0, 32: 800.0}
    shapes: List[tuple] = []
    monkeypatch.setattr(profiler, "measure", _synthetic_measure(throughput, shapes))
    seen: List[ProfilingResult] = []
    config = ProfilerConfig(max_batch_size=32)
    results = profile_runner(FakeRunner(), {"x": np.ones((1, 3), dtype=np.float32)}, 0, config, 1, seen.append)
    assert [r.batch_size for r in results] == [1, 2, 4, 8]
    assert seen == results
    assert shapes == [(1, 3), (2, 3), (4, 3), (8, 3)]


def test_profile_runner_sweep_survives_a_local_dip(monkeypatch):
    throughput = {1: 100.0, 2: 200.0, 4: 180.0, 8: 400.0, 16: 410.0, 32: 415.0, 64: 900.0}
    monkeypatch.setattr(profiler, "measure", _synthetic_measure(throughput, []))
    config = ProfilerConfig(max_batch_size=64)
    results = profile_runner(FakeRunner(), {"x": np.ones((1, 3))}, 0, config, 1)
    assert [r.batch_size for r in results] == [1, 2, 4, 8, 16, 32]


def test_profile_runner_explicit_batch_sizes_do_not_stop_early(monkeypatch):
    throughput = {1: 100.0, 2: 100.0, 4: 100.0, 8: 100.0}
    monkeypatch.setattr(profiler, "measure", _synthetic_measure(throughput, []))
    config = ProfilerConfig(batch_sizes=(1, 2, 4, 8), max_batch_size=8)
    results = profile_runner(FakeRunner(), {"x": np.ones((1, 3))}, 0, config, 1)
    assert [r.batch_size for r in results] == [1, 2, 4, 8]


def test_profile_runner_propagates_inference_errors():
    runner = FakeRunner(fail_at_batch=4)
    seen: List[ProfilingResult] = []
    config = _config(batch_sizes=(1, 4), measurement_request_count=5, stability_percentage=1000.0)
    with pytest.raises(RuntimeError, match="out of memory at batch 4"):
        profile_runner(runner, {"x": np.ones((1, 3), dtype=np.float32)}, 0, config, 1, seen.append)
    assert [r.batch_size for r in seen] == [1]


# ------------------------------------------------------------------------------------------------
# End to end on real runtimes
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((16, 32)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Relu", ["h"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    onnx.save(model, str(path))
    return path


def _onnx_runner(path: Path):
    from model_navigator.runners.onnx import OnnxRuntimeRunner

    return OnnxRuntimeRunner(
        path,
        [TensorMetadata("x", (-1, 16), "float32")],
        [TensorMetadata("y", (-1, 32), "float32")],
    )


def test_onnxruntime_end_to_end_batch_1_and_4(onnx_model):
    sample = {"x": np.random.default_rng(1).standard_normal((1, 16)).astype(np.float32)}
    config = _config(batch_sizes=(1, 4), measurement_request_count=20, warmup_requests=5, max_trials=6)
    seen: List[ProfilingResult] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a busy machine may leave a result unstable
        with _onnx_runner(onnx_model) as runner:
            results = profile_runner(runner, sample, 0, config, 4, seen.append)
            outputs = runner.infer(build_batch(sample, 4, 0), check_inputs=True)
    assert [r.batch_size for r in results] == [1, 4]
    assert seen == results
    for result in results:
        _assert_result_sane(result, result.batch_size)
        assert 3 <= result.windows <= config.max_trials
        assert result.request_count == 3 * 20
        if not result.stable:
            assert result.spread_percent > config.stability_percentage
    assert {f.name for f in dataclasses.fields(ProfilingResult)} >= {
        "batch_size", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "throughput",
        "windows", "stable", "spread_percent", "request_count",
    }  # fmt: skip
    assert outputs["y"].shape == (4, 32)


def test_onnxruntime_time_windows(onnx_model):
    sample = {"x": np.ones((1, 16), dtype=np.float32)}
    config = _config(
        batch_sizes=(2,), measurement_mode=MeasurementMode.TIME_WINDOWS, measurement_interval=50, max_trials=4
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with _onnx_runner(onnx_model) as runner:
            (result,) = profile_runner(runner, sample, 0, config, 2)
    _assert_result_sane(result, 2)
    assert 3 <= result.windows <= 4
    # each 50 ms window holds many sub-millisecond inferences, and timed inference fills much of it
    assert result.request_count > 3 * 5
    timed_ms = result.mean_ms * result.request_count
    assert timed_ms >= 0.05 * 3 * 50


def test_onnxruntime_measure_with_fake_clock(onnx_model):
    clock = FakeClock([0.004])
    config = _config(measurement_request_count=7)
    with _onnx_runner(onnx_model) as runner:
        result = measure(runner, {"x": np.ones((3, 16), dtype=np.float32)}, 3, config, clock=clock)
    assert result.windows == 3 and result.stable
    assert result.p50_ms == pytest.approx(4.0)
    assert result.throughput == pytest.approx(3 / 0.004)
    assert result.request_count == 21


class _TorchScriptTestRunner(NavigatorRunner):
    """A minimal TorchScript runner for the test (CPU)."""

    def __init__(self, model_path: Path, input_metadata, output_metadata):
        super().__init__(input_metadata, output_metadata, "cpu", "test-torchscript")
        self.model_path = model_path
        self._module = None

    def _load(self) -> None:
        import torch

        self._module = torch.jit.load(str(self.model_path), map_location="cpu").eval()

    def _infer(self, feed_dict):
        import torch

        with torch.inference_mode():
            args = [torch.from_numpy(feed_dict[m.name]) for m in self.input_metadata]
            out = self._module(*args)
        return self._name_outputs([out.numpy()])

    def _unload(self) -> None:
        self._module = None


def test_torchscript_end_to_end(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).eval()
    traced = torch.jit.trace(model, torch.ones(1, 8))
    path = tmp_path / "model.pt"
    torch.jit.save(traced, str(path))

    runner = _TorchScriptTestRunner(
        path, [TensorMetadata("x", (-1, 8), "float32")], [TensorMetadata("y", (-1, 4), "float32")]
    )
    sample = {"x": np.random.default_rng(2).standard_normal((1, 8)).astype(np.float32)}
    config = _config(measurement_request_count=20, max_trials=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with runner:
            results = profile_runner(runner, sample, 0, config, 4)
            out = runner.infer(build_batch(sample, 4, 0), check_inputs=False)["y"]
    assert [r.batch_size for r in results] == [1, 4]
    for result in results:
        _assert_result_sane(result, result.batch_size)
        assert result.request_count == 60
    expected = model(torch.from_numpy(build_batch(sample, 4, 0)["x"])).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
