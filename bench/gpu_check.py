"""The GPU family, checked in one short run on a machine with a CUDA GPU (issue 8's device check).

Exports a small CNN with every framework that is installed there, on target_device="cuda", and
writes what each path and runtime did (status, reason, max errors, p50 latency) to
OUT/gpu_check.json, plus each framework's progress lines and status table to OUT/gpu_check.log
(the workspaces stay in a temporary folder: only those two files come back). Each framework runs
in its own interpreter with a time limit, so one that crashes (a CUDA or TensorRT abort) leaves the
others' results. Nothing here is a test: CI never has a GPU.

    python3 bench/gpu_check.py --out "$OUT" [--frameworks torch,jax,tensorflow] [--timeout 240]

On the lent device machine (Python 3.12, CUDA torch and jax, no polygraphy / tf2onnx / TensorRT),
carry Polygraphy as a wheel, made here once:

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl polygraphy==0.53.6
    # device run, carry [".whl"]:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    PYTHONUNBUFFERED=1 python3 bench/gpu_check.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

FRAMEWORKS = ("torch", "jax", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not


def environment() -> Dict[str, Any]:
    """Versions and devices, read without importing anything heavy in this process."""
    code = r"""
import importlib.util, json
info = {}
for m in ("torch", "onnxruntime", "tensorrt", "torch_tensorrt", "tensorflow", "jax", "polygraphy", "tf2onnx",
          "openvino"):
    info[m] = None
    if importlib.util.find_spec(m) is not None:
        try:
            info[m] = __import__(m).__version__
        except Exception as e:
            info[m] = f"import failed: {type(e).__name__}: {e}"
if info["torch"]:
    import torch
    info["torch_cuda"] = torch.cuda.is_available() and torch.cuda.get_device_name(0)
if info["onnxruntime"] and not str(info["onnxruntime"]).startswith("import failed"):
    import onnxruntime
    info["onnxruntime_providers"] = onnxruntime.get_available_providers()
print(json.dumps(info))
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        return {"error": "reading the environment took over 90 s"}
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-2000:]}


def summarize(status: Any) -> List[Dict[str, Any]]:
    """One row per path and runtime: what a person reading the closing note needs."""
    from model_navigator.package.table import status_rows

    rows = []
    for row in status_rows(status):
        rows.append(
            {
                "path": row["path"],
                "runtime": row["runtime"],
                "status": row["status"],
                "correctness": row.get("correctness"),
                "reason": row.get("correctness_reason") or row.get("reason"),
                "max_abs_rel": row["errors"],
                "p50_ms": {p["batch_size"]: round(p["p50_ms"], 4) for p in row["performance"]},
            }
        )
    return rows


def run_torch(workdir: Path) -> Any:
    import torch

    import model_navigator as nav

    torch.manual_seed(0)
    model = (
        torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(8, 4),
        )
        .cuda()
        .eval()
    )
    dataloader = [torch.randn(2, 3, 32, 32, device="cuda") for _ in range(4)]
    return nav.torch.export(
        model,
        dataloader,
        workdir=workdir,
        target_device="cuda",
        verbose=True,
        profiler_config=nav.ProfilerConfig(batch_sizes=(1, 8)),
    )


def run_jax(workdir: Path) -> Any:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import model_navigator as nav

    key = jax.random.PRNGKey(0)
    params = {"w": jax.random.normal(key, (16, 4)), "b": jnp.zeros((4,))}

    def predict(x, params):
        return jax.nn.relu(x @ params["w"] + params["b"])

    dataloader = [np.random.default_rng(i).standard_normal((2, 16)).astype(np.float32) for i in range(4)]
    return nav.jax.export(
        predict,
        params,
        dataloader,
        workdir=workdir,
        target_device="cuda",
        verbose=True,
        profiler_config=nav.ProfilerConfig(batch_sizes=(1, 8)),
    )


def run_tensorflow(workdir: Path) -> Any:
    import numpy as np
    import tensorflow as tf

    import model_navigator as nav

    inputs = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    outputs = tf.keras.layers.Dense(4)(tf.keras.layers.GlobalAveragePooling2D()(x))
    model = tf.keras.Model(inputs, outputs)
    dataloader = [np.random.default_rng(i).standard_normal((2, 32, 32, 3)).astype(np.float32) for i in range(4)]
    return nav.tensorflow.export(
        model,
        dataloader,
        workdir=workdir,
        target_device="cuda",
        verbose=True,
        profiler_config=nav.ProfilerConfig(batch_sizes=(1, 8)),
    )


def section(framework: str, out: Path) -> int:
    """One framework, in this interpreter: export on cuda, print the table, write its rows."""
    start = time.perf_counter()
    result: Dict[str, Any] = {"framework": framework}
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"gpu_check_{framework}_")) / "navigator_workdir"  # not under OUT
        descriptor = globals()[f"run_{framework}"](workdir)
        result["rows"] = summarize(descriptor.status)
        result["skipped_paths"] = {
            k: p.reason for k, p in descriptor.status.paths.items() if p.status.value == "skipped"
        }
    except Exception as e:  # the whole export refused or raised: that is the finding
        import traceback

        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()[-4000:]
    result["wall_s"] = round(time.perf_counter() - start, 2)
    (out / f"gpu_check_{framework}.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check_out")))
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    # 3 x 150 s + the environment stay inside the device tool's 600 s per command.
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per framework")
    parser.add_argument("--section", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section:
        return section(args.section, args.out)
    report: Dict[str, Any] = {"environment": environment(), "frameworks": {}}
    print(json.dumps(report["environment"], indent=1), flush=True)
    with open(args.out / "gpu_check.log", "w") as log:
        for framework in args.frameworks.split(","):
            if importlib.util.find_spec(framework) is None:
                report["frameworks"][framework] = {"error": f"{framework} not installed"}
                continue
            print(f"== {framework}", flush=True)
            try:
                proc = subprocess.run(
                    [sys.executable, __file__, "--section", framework, "--out", str(args.out)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=args.timeout,
                )
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            part = args.out / f"gpu_check_{framework}.json"
            report["frameworks"][framework] = json.loads(part.read_text()) if part.exists() else {}
            report["frameworks"][framework]["returncode"] = rc
            part.unlink(missing_ok=True)
            # After every framework: a run killed at the command's limit still brings back the rest.
            (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    for framework, result in report["frameworks"].items():
        print(f"-- {framework}: rc {result.get('returncode')}, {result.get('wall_s')} s, {result.get('error') or ''}")
        for row in result.get("rows", []):
            print(
                f"   {row['path']:<28} {str(row['runtime']):<26} {row['status']:<8} {row['correctness']} "
                f"{row['max_abs_rel']} {row['p50_ms']} {(row['reason'] or '')[:140]}"
            )
        for key, reason in (result.get("skipped_paths") or {}).items():
            print(f"   skipped {key}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
