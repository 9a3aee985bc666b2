"""Runtime selection on synthetic status data: each strategy, who qualifies, and why others lost."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest

import model_navigator as nav
from model_navigator.core.enums import Format, RuntimeProvider, StepStatus
from model_navigator.core.status import (
    CorrectnessResult,
    NavigatorStatus,
    PathStatus,
    PerformanceResult,
    ProfilingResult,
    RuntimeResult,
)
from model_navigator.selection import (
    NoRuntimeQualifiesError,
    SelectionStrategy,
    select_runtime,
)

CPU, OV = RuntimeProvider.CPU, RuntimeProvider.OPENVINO


def perf(
    batch: int, p50: float, throughput: float, p99: Optional[float] = None, stable: bool = True
) -> ProfilingResult:
    p99 = p99 if p99 is not None else p50 * 1.5
    return ProfilingResult(
        batch_size=batch,
        p50_ms=p50,
        p90_ms=p50 * 1.2,
        p95_ms=p50 * 1.3,
        p99_ms=p99,
        mean_ms=p50,
        std_ms=0.01,
        throughput=throughput,
        windows=3,
        stable=stable,
    )


def runtime(
    results: List[ProfilingResult],
    correctness: StepStatus = StepStatus.OK,
    verified: bool = False,
    perf_status: StepStatus = StepStatus.OK,
) -> RuntimeResult:
    return RuntimeResult(
        correctness=CorrectnessResult(
            status=correctness, reason=None if correctness == StepStatus.OK else "max abs 3.1"
        ),
        performance=PerformanceResult(
            status=perf_status,
            results=results if perf_status == StepStatus.OK else [],
            reason=None if perf_status == StepStatus.OK else "worker crashed",
        ),
        verified=verified,
    )


def make_status(
    paths: Dict[str, Tuple[Format, Dict[RuntimeProvider, RuntimeResult]]], extra: Tuple[PathStatus, ...] = ()
) -> NavigatorStatus:
    status = NavigatorStatus(model_name="m", framework="torch")
    status.paths["torch"] = PathStatus(
        key="torch",
        format=Format.TORCH,
        status=StepStatus.OK,
        runtimes={
            CPU: RuntimeResult(performance=PerformanceResult(status=StepStatus.OK, results=[perf(1, 0.001, 1e6)]))
        },
    )
    for key, (fmt, runtimes) in paths.items():
        status.paths[key] = PathStatus(
            key=key, format=fmt, status=StepStatus.OK, model_path=f"{key}/model", runtimes=runtimes
        )
    for path in extra:
        status.paths[path.key] = path
    return status


@pytest.fixture
def status() -> NavigatorStatus:
    """onnx/CPU: fastest at batch 1; onnx/OpenVINO: best throughput at batch 16, tail latency 9 ms;
    torchscript-trace: middle of the road, best throughput within a 5 ms p99 budget."""
    return make_status(
        {
            "onnx": (
                Format.ONNX,
                {
                    CPU: runtime([perf(1, 0.20, 5000, p99=0.30), perf(16, 4.0, 4000, p99=6.0)]),
                    OV: runtime([perf(1, 0.35, 2800, p99=0.50), perf(16, 2.5, 6400, p99=9.0)]),
                },
            ),
            "torchscript-trace": (
                Format.TORCHSCRIPT,
                {
                    CPU: runtime([perf(1, 0.30, 3300, p99=0.40), perf(16, 3.0, 5300, p99=4.5)]),
                },
            ),
        },
        extra=(PathStatus(key="trt-fp16", format=Format.TENSORRT, status=StepStatus.SKIPPED, reason="no GPU"),),
    )


def reasons(selection) -> Dict[Tuple[str, Optional[str]], str]:
    return {(r.path, r.runtime.value if r.runtime else None): r.reason for r in selection.rejected}


def test_min_latency_picks_lowest_p50_at_batch_1(status):
    best = select_runtime(status, SelectionStrategy.MIN_LATENCY)
    assert (best.path, best.runtime, best.batch_size) == ("onnx", CPU, 1)
    assert best.p50_ms == pytest.approx(0.20) and best.figures.throughput == 5000
    why = reasons(best)
    assert why[("onnx", "OpenVINO")].startswith("p50 0.350 ms vs 0.200 ms at batch size 1 (75% slower)")
    assert "0.300 ms vs 0.200 ms" in why[("torchscript-trace", "CPUExecutionProvider")]
    assert "not a deployable artifact" in why[("torch", "CPUExecutionProvider")]
    assert why[("trt-fp16", None)] == "skipped: no GPU"
    # the ranking order: losers listed best first
    losers = [(r.path, r.runtime) for r in best.rejected if r.runtime is not None and r.path != "torch"]
    assert losers == [("torchscript-trace", CPU), ("onnx", OV)]


def test_min_latency_at_a_given_batch_size(status):
    best = select_runtime(status, "min_latency", batch_size=16)
    assert (best.path, best.runtime, best.batch_size) == ("onnx", OV, 16)
    with pytest.raises(NoRuntimeQualifiesError) as e:
        select_runtime(status, "min-latency", batch_size=8)
    assert "not profiled at batch size 8 (profiled: 1, 16)" in str(e.value)


def test_max_throughput_takes_each_runtimes_best_batch_size(status):
    best = select_runtime(status, "max-throughput")
    assert (best.path, best.runtime, best.batch_size) == ("onnx", OV, 16)
    assert best.throughput == 6400
    why = reasons(best)
    # onnx/CPU is best at batch 1 (5000/s): its deciding figure is that batch size, not the largest
    onnx_why = why[("onnx", "CPUExecutionProvider")]
    assert onnx_why.startswith("throughput 5000/s (batch size 1) vs 6400/s (batch size 16)")
    assert "5300/s (batch size 16)" in why[("torchscript-trace", "CPUExecutionProvider")]


def test_max_throughput_within_latency_budget_uses_p99(status):
    best = select_runtime(status, latency_budget_ms=5.0)  # the budget implies the strategy
    assert best.strategy == SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY
    assert (best.path, best.runtime, best.batch_size) == ("torchscript-trace", CPU, 16)
    assert best.latency_percentile == 99 and best.latency_budget_ms == 5.0
    why = reasons(best)
    # OpenVINO's batch 16 (p99 9 ms) is over budget, so its batch 1 competes and loses on throughput
    assert why[("onnx", "OpenVINO")].startswith("throughput 2800/s (batch size 1)")
    assert why[("onnx", "CPUExecutionProvider")].startswith("throughput 5000/s (batch size 1)")
    # a looser budget lets OpenVINO's batch 16 in; p50 as the percentile changes the answer too
    assert select_runtime(status, "max-throughput-within-latency", latency_budget_ms=10).runtime == OV
    assert select_runtime(status, latency_budget_ms=3.0, latency_percentile=50).runtime == OV


def test_budget_nobody_meets_explains_every_runtime(status):
    with pytest.raises(NoRuntimeQualifiesError) as e:
        select_runtime(status, latency_budget_ms=0.1)
    message = str(e.value)
    assert "No path and runtime qualifies for strategy 'max-throughput-within-latency' within 0.1 ms" in message
    assert "onnx on CPUExecutionProvider: over the latency budget: p99 0.300 ms at batch size 1 > 0.1 ms" in message
    assert len([r for r in e.value.rejected if "over the latency budget" in r.reason]) == 3


def test_failed_correctness_and_profiling_do_not_qualify(status):
    status.paths["onnx"].runtimes[CPU].correctness.status = StepStatus.FAILED
    status.paths["onnx"].runtimes[CPU].correctness.reason = "output 'y' differs: max abs error 3.1"
    status.paths["torchscript-trace"].runtimes[CPU] = runtime([], perf_status=StepStatus.FAILED)
    best = select_runtime(status, "min-latency")
    assert (best.path, best.runtime) == ("onnx", OV)
    why = reasons(best)
    assert why[("onnx", "CPUExecutionProvider")] == "correctness failed: output 'y' differs: max abs error 3.1"
    assert why[("torchscript-trace", "CPUExecutionProvider")] == "profiling failed: worker crashed"


def test_failed_path_and_unprofiled_runtime_are_explained(status):
    status.paths["torchscript-trace"].status = StepStatus.FAILED
    status.paths["torchscript-trace"].reason = "RuntimeError: cannot trace"
    status.paths["onnx"].runtimes[OV].performance = None
    best = select_runtime(status)
    why = reasons(best)
    assert why[("torchscript-trace", None)] == "failed: RuntimeError: cannot trace"
    assert why[("onnx", "OpenVINO")] == "not profiled"


def test_only_verified_runtimes_qualify_once_any_is_verified(status):
    status.paths["torchscript-trace"].runtimes[CPU].verified = True
    best = select_runtime(status, "min-latency")
    assert (best.path, best.runtime, best.verified) == ("torchscript-trace", CPU, True)
    why = reasons(best)
    assert why[("onnx", "CPUExecutionProvider")].startswith("not verified")
    assert why[("onnx", "OpenVINO")].startswith("not verified")


def test_ties_break_on_the_other_figure_then_path_order():
    status = make_status(
        {
            "onnx": (Format.ONNX, {CPU: runtime([perf(1, 0.5, 2000)])}),
            "torchscript-script": (Format.TORCHSCRIPT, {CPU: runtime([perf(1, 0.5, 2100)])}),
            "torchscript-trace": (Format.TORCHSCRIPT, {CPU: runtime([perf(1, 0.5, 2100)])}),
        }
    )
    assert select_runtime(status, "min-latency").path == "torchscript-script"  # same p50, more throughput
    best = select_runtime(status, "max-throughput")
    assert best.path == "torchscript-script"  # same throughput and p50: the earlier path
    assert "tie broken" in reasons(best)[("torchscript-trace", "CPUExecutionProvider")]


def test_min_latency_default_batch_is_the_smallest_common_one():
    status = make_status(
        {
            "onnx": (Format.ONNX, {CPU: runtime([perf(2, 0.4, 5000), perf(8, 1.0, 8000)])}),
            "torchscript-trace": (Format.TORCHSCRIPT, {CPU: runtime([perf(1, 0.1, 10000), perf(2, 0.5, 4000)])}),
        }
    )
    best = select_runtime(status, "min-latency")
    assert (best.path, best.batch_size) == ("onnx", 2)  # batch 1 was not profiled for onnx: compare at 2


def test_unstable_measurements_count_and_say_so():
    status = make_status({"onnx": (Format.ONNX, {CPU: runtime([perf(1, 0.4, 5000, stable=False)])})})
    best = select_runtime(status)
    assert best.path == "onnx" and "(unstable measurement)" in best.summary()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "fastest"}, "unknown value 'fastest'"),
        ({"strategy": "max-throughput-within-latency"}, "needs `latency_budget_ms`"),
        (
            {"strategy": "min-latency", "latency_budget_ms": 2.0},
            "applies to strategy 'max-throughput-within-latency' only",
        ),
        ({"latency_budget_ms": -1.0}, "must be a number > 0"),
        ({"batch_size": 0}, "`batch_size` must be a positive integer"),
        ({"latency_percentile": 75}, "`latency_percentile` must be one of"),
    ],
)
def test_bad_arguments_are_user_errors(status, kwargs, message):
    with pytest.raises(nav.UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_runtime(status, **kwargs)


def test_empty_status_raises_with_reasons():
    status = make_status({"onnx": (Format.ONNX, {CPU: runtime([], correctness=StepStatus.FAILED)})})
    with pytest.raises(NoRuntimeQualifiesError) as e:
        select_runtime(status)
    assert [(r.path, r.runtime) for r in e.value.rejected] == [("torch", CPU), ("onnx", CPU)]


def test_selection_to_dict_and_rejection_unpacks(status):
    best = select_runtime(status, "max-throughput")
    data = best.to_dict()
    assert data["path"] == "onnx" and data["runtime"] == "OpenVINO" and data["batch_size"] == 16
    assert data["strategy"] == "max-throughput" and data["throughput"] == 6400
    path, rt, reason = best.rejected[0]
    assert isinstance(reason, str) and path in status.paths


def test_descriptor_get_best_and_runner(tmp_path, status):
    """get_best_runner builds the winner's runner (an OpenVINO runner for onnx on OpenVINO)."""
    pytest.importorskip("openvino")
    from model_navigator.runners.openvino import OpenVINORunner

    status.save(tmp_path)
    descriptor = nav.PackageDescriptor.from_workdir(tmp_path)
    assert descriptor.get_best("max-throughput").runtime == OV
    runner = descriptor.get_best_runner("max-throughput")
    assert isinstance(runner, OpenVINORunner) and runner.model_path == tmp_path / "onnx/model"
    # the status round-trips through status.yaml with the new runtime names
    reloaded = NavigatorStatus.load(tmp_path)
    assert OV in reloaded.paths["onnx"].runtimes
