"""How close is the profiler's latency to a bare ONNX Runtime loop, and what does measuring cost?

Run: python bench/profiler_accuracy.py

In one process:
  (a) profile_runner at batch 1 on an OnnxRuntimeRunner with the default ProfilerConfig: its p50;
  (b) a bare time.perf_counter loop over onnxruntime.InferenceSession.run on the same file, same
      SessionOptions (log_severity_level=3), same warm-up and the same number of timed requests: its median.
Reports both, their ratio (target: within 10 %) and the profiler's overhead, i.e. how much longer
profile_runner took in total than the sum of the latencies it timed (target: < 20 %).
Writes bench/results/profiler_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import onnxruntime  # noqa: E402
import torch  # noqa: E402

from model_navigator.core.config import ProfilerConfig  # noqa: E402
from model_navigator.core.tensor import TensorMetadata  # noqa: E402
from model_navigator.runners.onnx import OnnxRuntimeRunner  # noqa: E402
from model_navigator.steps import profiler  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "profiler_accuracy.json"
INPUT_SHAPE = (1, 3, 64, 64)


def build_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 10),
    ).eval()


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    torch.onnx.export(
        model,
        (torch.zeros(INPUT_SHAPE),),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def run_profiler(model_path: Path, sample: dict, config: ProfilerConfig) -> Dict[str, Any]:
    """profile_runner at batch 1 on a fresh runner: its result, wall time and what it timed.

    The profiler's private `_warmup` and `_measure_windows` are wrapped only to read what they
    return (and how long the untimed warm-up took); nothing is added inside a timed region.
    """
    recorded: List[List[np.ndarray]] = []
    warmup_s: List[float] = []
    original_windows, original_warmup = profiler._measure_windows, profiler._warmup

    def recording_windows(*args, **kwargs):
        out = original_windows(*args, **kwargs)
        recorded.append(out[0])
        return out

    def timed_warmup(*args, **kwargs):
        start = time.perf_counter()
        original_warmup(*args, **kwargs)
        warmup_s.append(time.perf_counter() - start)

    runner = OnnxRuntimeRunner(
        model_path,
        [TensorMetadata("input", (-1, 3, 64, 64), "float32")],
        [TensorMetadata("output", (-1, 10), "float32")],
    )
    profiler._measure_windows, profiler._warmup = recording_windows, timed_warmup
    try:
        with runner:
            start = time.perf_counter()
            results = profiler.profile_runner(runner, sample, 0, config, dataloader_batch_size=1)
            wall_s = time.perf_counter() - start
    finally:
        profiler._measure_windows, profiler._warmup = original_windows, original_warmup
    assert len(results) == 1 and len(recorded) == 1 and len(warmup_s) == 1
    windows = recorded[0]
    return {
        "result": results[0],
        "wall_s": wall_s,
        "warmup_s": warmup_s[0],
        "timed_s": float(sum(w.sum() for w in windows)),
        "timed_requests": int(sum(len(w) for w in windows)),
    }


def run_bare(model_path: Path, sample: dict, warmup: int, requests: int) -> np.ndarray:
    """A bare perf_counter loop over a fresh InferenceSession.run; latencies in s."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
    output_names = [o.name for o in session.get_outputs()]
    feed = {"input": sample["input"]}
    for _ in range(warmup):
        session.run(output_names, feed)
    timings = [0.0] * requests
    for i in range(requests):
        start = time.perf_counter()
        session.run(output_names, feed)
        timings[i] = time.perf_counter() - start
    del session
    return np.asarray(timings)


def one_round(model_path: Path, sample: dict, config: ProfilerConfig, bare_first: bool) -> Dict[str, Any]:
    """(a) and (b) once each; the bare loop times as many requests as the profiler did."""
    if bare_first:
        # The profiler's request count is only known afterwards: default config -> 3 windows of
        # measurement_request_count unless it took longer to stabilise.
        bare = run_bare(model_path, sample, config.warmup_requests, 3 * int(config.measurement_request_count))
        ours = run_profiler(model_path, sample, config)
    else:
        ours = run_profiler(model_path, sample, config)
        bare = run_bare(model_path, sample, config.warmup_requests, ours["timed_requests"])
    result = ours["result"]
    bare_p50_ms = float(np.median(bare) * 1000.0)
    timed_s, wall_s, warmup_s = ours["timed_s"], ours["wall_s"], ours["warmup_s"]
    return {
        "order": "bare, ours" if bare_first else "ours, bare",
        "our_p50_ms": result.p50_ms,
        "our_p90_ms": result.p90_ms,
        "our_p99_ms": result.p99_ms,
        "our_mean_ms": result.mean_ms,
        "our_throughput": result.throughput,
        "windows": result.windows,
        "stable": result.stable,
        "spread_percent": result.spread_percent,
        "bare_p50_ms": bare_p50_ms,
        "bare_requests": int(bare.size),
        "ratio": result.p50_ms / bare_p50_ms,
        "wall_ms": wall_s * 1000.0,
        "timed_ms": timed_s * 1000.0,
        "warmup_ms": warmup_s * 1000.0,
        "timed_requests": ours["timed_requests"],
        "overhead_percent": (wall_s - timed_s) / timed_s * 100.0,
        "overhead_excl_warmup_percent": (wall_s - warmup_s - timed_s) / timed_s * 100.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating (a)/(b) rounds; medians are reported")
    args = parser.parse_args()

    config = ProfilerConfig()
    sample = {"input": np.random.default_rng(0).standard_normal(INPUT_SHAPE).astype(np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "cnn.onnx"
        export_onnx(build_model(), model_path)
        rounds = [one_round(model_path, sample, config, bare_first=bool(i % 2)) for i in range(args.rounds)]

    def median(key: str) -> float:
        return float(np.median([r[key] for r in rounds]))

    our_p50, bare_p50 = median("our_p50_ms"), median("bare_p50_ms")
    ratio = our_p50 / bare_p50
    overhead = median("overhead_percent")
    report = {
        "model": "CNN conv3-16,relu,conv16-32,relu,avgpool,flatten,linear32-10; input 1x3x64x64; ONNX opset 17",
        "device": {
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
        },
        "profiler_config": config.to_dict(),
        "method": (
            "each round: a fresh OnnxRuntimeRunner through profile_runner (batch 1) and a fresh "
            "InferenceSession in a bare perf_counter loop with the same warm-up and request count; "
            "order alternates between rounds; summary values are medians over rounds"
        ),
        "summary": {
            "our_p50_ms": our_p50,
            "bare_p50_ms": bare_p50,
            "ratio_ours_over_bare": ratio,
            "ratio_target": "within 10% (0.90 .. 1.10)",
            "ratio_ok": bool(0.9 <= ratio <= 1.1),
            "overhead_percent": overhead,
            "overhead_definition": (
                "(profile_runner wall time - sum of timed latencies in all windows) / sum of timed latencies; "
                "includes the untimed warm-up"
            ),
            "overhead_excl_warmup_percent": median("overhead_excl_warmup_percent"),
            "overhead_target": "< 20%",
            "overhead_ok": bool(overhead < 20.0),
        },
        "rounds": rounds,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")

    header = (
        f"{'round':>5} {'order':>10} {'ours p50':>10} {'bare p50':>10} {'ratio':>6} {'win':>4} "
        f"{'wall ms':>8} {'timed ms':>8} {'warmup':>7} {'overhead':>9} {'excl wu':>8}"
    )
    print(header)
    for i, r in enumerate(rounds):
        print(
            f"{i:>5} {r['order']:>10} {r['our_p50_ms']:>10.4f} {r['bare_p50_ms']:>10.4f} {r['ratio']:>6.3f} "
            f"{r['windows']:>4} {r['wall_ms']:>8.2f} {r['timed_ms']:>8.2f} {r['warmup_ms']:>7.2f} "
            f"{r['overhead_percent']:>8.1f}% {r['overhead_excl_warmup_percent']:>7.1f}%"
        )
    print()
    print(f"median our p50   {our_p50:.4f} ms")
    print(f"median bare p50  {bare_p50:.4f} ms")
    print(f"ratio            {ratio:.3f}  (target 0.90-1.10: {'ok' if report['summary']['ratio_ok'] else 'MISSED'})")
    print(
        f"overhead         {overhead:.1f}%  (target < 20%: {'ok' if report['summary']['overhead_ok'] else 'MISSED'}; "
        f"{report['summary']['overhead_excl_warmup_percent']:.1f}% without the warm-up)"
    )
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
