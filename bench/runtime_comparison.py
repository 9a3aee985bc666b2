"""p50 latency of one CNN on every CPU runtime model-navigator offers, measured by its own profiler
in one export: torch eager (the source model), torch.compile (inductor), TorchScript (trace and
script), torch.export (.pt2), ONNX Runtime and OpenVINO (both on the ONNX export), at batch 1 and 16.

python bench/runtime_comparison.py [--models cnn cnn64] [--requests 100]

Models:
  cnn    the tests' CNN (tests/models.py: Conv2d(3, 8, 3), ReLU, pool, Linear(8, 4)) on 3x32x32
  cnn64  the export-overhead bench's CNN (two 3x3 convolutions, 16 and 32 channels) on 3x64x64
Every runtime runs the same profiling sample with the same ProfilerConfig (batch sizes 1 and 16,
count windows of --requests inferences, stable when 3 windows agree within 10%). The winner by
min latency and by max throughput is what PackageDescriptor.get_best() picks.
Results: bench/results/runtime_comparison.json (and a Markdown table on stdout).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BATCH_SIZES = (1, 16)
COLUMNS = [  # (label, path key, runtime value)
    ("torch eager", "torch", "CPUExecutionProvider"),
    ("torch.compile", "torch", "TorchCompile"),
    ("TorchScript trace", "torchscript-trace", "CPUExecutionProvider"),
    ("TorchScript script", "torchscript-script", "CPUExecutionProvider"),
    ("torch.export (.pt2)", "torch-exportedprogram", "CPUExecutionProvider"),
    ("ONNX Runtime", "onnx", "CPUExecutionProvider"),
    ("OpenVINO", "onnx", "OpenVINO"),
]


def build(name: str):
    import models
    import torch

    if name == "cnn":
        return models.cnn_model(), [
            torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)
        ]
    if name == "cnn64":
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(32, 10),
        ).eval()
        return model, [torch.randn(16, 3, 64, 64) for _ in range(2)]
    raise SystemExit(f"unknown model {name!r}")


def run(name: str, requests: int, workdir: Path) -> dict:
    import model_navigator as nav

    model, dataloader = build(name)
    start = time.perf_counter()
    package = nav.torch.export(
        model,
        dataloader,
        model_name=name,
        workdir=workdir,
        sample_count=16,
        target_formats=("torchscript", "torch-exportedprogram", "onnx"),
        runtimes=("CPUExecutionProvider", "OpenVINO", "TorchCompile"),
        profiler_config=nav.ProfilerConfig(batch_sizes=BATCH_SIZES, measurement_request_count=requests),
        verbose=False,
    )
    wall = time.perf_counter() - start
    rows = {}
    for label, key, runtime in COLUMNS:
        result = package.status.paths[key].runtimes.get(nav.RuntimeProvider(runtime))
        perf = result.performance if result else None
        corr = result.correctness if result else None
        row = {
            "path": key,
            "runtime": runtime,
            "correctness": None if corr is None else corr.status.value,
            "max_abs_error": None
            if corr is None or not corr.per_output
            else max(e.max_abs_error for e in corr.per_output.values()),
        }
        if perf is not None and perf.status.value == "ok":
            for r in perf.results:
                row[f"bs{r.batch_size}"] = {
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                    "throughput": r.throughput,
                    "stable": r.stable,
                }
        else:
            row["error"] = (perf.reason if perf else None) or (corr.reason if corr else "not run")
        rows[label] = row
    best = {s: package.get_best(s).to_dict() for s in ("min-latency", "max-throughput")}
    for value in best.values():
        value.pop("rejected")
    return {"export_wall_s": wall, "runtimes": rows, "best": best}


def table(name: str, result: dict) -> str:
    lines = [
        f"### {name}",
        "",
        "| runtime | p50 ms, batch 1 | p50 ms, batch 16 | samples/s, batch 16 | max abs error |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, row in result["runtimes"].items():

        def cell(batch: int, field: str, fmt: str, row: dict = row) -> str:
            r = row.get(f"bs{batch}")
            if r is None:
                return "-"
            return format(r[field], fmt) + ("" if r["stable"] else " ~")

        err = (
            "reference"
            if row["correctness"] is None and row["path"] == "torch"
            else (f"{row['max_abs_error']:.1e}" if row["max_abs_error"] is not None else "-")
        )
        lines.append(
            f"| {label} | {cell(1, 'p50_ms', '.3f')} | {cell(16, 'p50_ms', '.3f')} | "
            f"{cell(16, 'throughput', '.0f')} | {err} |"
        )
    for strategy, b in result["best"].items():
        lines.append(
            f"\n{strategy}: **{b['path']} on {b['runtime']}** (batch {b['batch_size']}, "
            f"p50 {b['p50_ms']:.3f} ms, {b['throughput']:.0f}/s)"
        )
    lines.append(f"\nexport + checks + profiling of all of it: {result['export_wall_s']:.0f} s ('~': unstable)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "cnn64"])
    parser.add_argument("--requests", type=int, default=100, help="inferences per measurement window")
    args = parser.parse_args()

    import onnxruntime
    import torch

    from model_navigator.runners.openvino import import_openvino

    openvino = import_openvino()  # without OpenVINO's usage telemetry

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            results[name] = run(name, args.requests, Path(tmp) / name)
            print(table(name, results[name]), "\n", flush=True)
    out = ROOT / "bench" / "results" / "runtime_comparison.json"
    out.write_text(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
                "python": sys.version.split()[0],
                "versions": {
                    "torch": torch.__version__,
                    "onnxruntime": onnxruntime.__version__,
                    "openvino": openvino.__version__,
                },
                "batch_sizes": BATCH_SIZES,
                "measurement_request_count": args.requests,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
