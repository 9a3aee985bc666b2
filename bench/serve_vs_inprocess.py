"""What serving costs: a small CNN exported and profiled by model-navigator, its best path served on a real
Triton Inference Server (PyTriton, Python backend) and measured through Triton's HTTP client at
concurrency 1, 2 and 4, beside the same runner called in process at the same concurrency (both with the
profiler's window and stability rules: nav.loadtest).

.venv-serve/bin/python bench/serve_vs_inprocess.py [--requests 100]   (needs model-navigator[serve])

Model: the export-overhead bench's CNN (two 3x3 convolutions, 16 and 32 channels, on 3x64x64), profiled
at batch sizes 1, 2, 4 and 8 (so Triton's max_batch_size is 8); requests carry one sample.
Results: bench/results/serve_vs_inprocess.json and .md (the table is printed too).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per measurement window")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()

    import torch

    import model_navigator as nav

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
    dataloader = [torch.randn(8, 3, 64, 64) for _ in range(2)]
    config = nav.ProfilerConfig(batch_sizes=(1, 2, 4, 8), measurement_request_count=args.requests)
    with tempfile.TemporaryDirectory(prefix="nav-serve-bench-") as tmp:
        start = time.perf_counter()
        package = nav.torch.export(
            model,
            dataloader,
            model_name="cnn64",
            workdir=Path(tmp) / "w",
            target_formats=("onnx", "torchscript"),
            jit_options=("trace",),
            profiler_config=config,
            verbose=False,
        )
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        report = nav.loadtest(
            package,
            concurrency=args.concurrency,
            batch_size=1,
            profiler_config=nav.ProfilerConfig(measurement_request_count=args.requests),
        )
        loadtest_s = time.perf_counter() - start
    table = report.to_markdown()
    print(table)
    results = {
        "report": report.to_dict(),
        "export_s": export_s,
        "loadtest_s": loadtest_s,
        "requests_per_window": args.requests,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
    }
    out = ROOT / "bench" / "results"
    (out / "serve_vs_inprocess.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "serve_vs_inprocess.md").write_text(
        "# Served (Triton through PyTriton) vs in process: the CNN of bench/serve_vs_inprocess.py\n\n"
        f"{os.cpu_count()} CPUs shared with other jobs, Python {platform.python_version()}, torch {torch.__version__}; "
        f"{args.requests} requests per window, requests of one sample.\n\n" + table + "\n"
    )
    print(f"wrote {out / 'serve_vs_inprocess.json'} and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
