"""Wall time and peak memory of nav.torch.export against a hand-written script doing the same
framework work (jit script + trace + save, torch.export + save, ONNX export, inference of every
format over the same correctness samples), each in a fresh interpreter.

python bench/export_overhead.py [--repeat 3]

Variants per model (Linear = the reference example, CNN = 1x3x64x64 small convnet):
  script        the hand-written script (no profiling)
  nav-inproc    nav.torch.export(run_profiling=False, isolation=False)
  nav-isolated  nav.torch.export(run_profiling=False)             (isolation='auto', the default)
  nav-full-isolation  nav.torch.export(run_profiling=False, isolation=True)  (torch steps in the worker too)
  nav-default   nav.torch.export() with every default, profiling included
Peak memory is the largest sum of RSS over the whole process tree (and of Pss: shared pages once, which
is what a forked export costs), the largest RSS of one process and its private part (RssAnon), sampled
every 10 ms (bench/rss.py).
Results: bench/results/export_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rss import run_measured  # noqa: E402

MODELS = {
    "linear": textwrap.dedent("""
        model = torch.nn.Linear(5, 7).eval()
        dataloader = [torch.full((3, 5), 1.0) for _ in range(10)]
        export_kwargs = dict(opset=13, input_names=("input",), dynamic_axes={"input": {0: "batch"}})
    """),
    "cnn": textwrap.dedent("""
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10)).eval()
        dataloader = [torch.randn(2, 3, 64, 64) for _ in range(10)]
        export_kwargs = dict(opset=17)
    """),
}

SCRIPT = """
import time
start = time.perf_counter()
import numpy as np, torch, onnxruntime as ort, warnings
{model}
samples = [x[i:i + 1] for x in dataloader for i in range(x.shape[0])]
example = torch.cat([samples[0], samples[0]])
with torch.inference_mode():
    ref = [model(s).numpy() for s in samples]
scripted = torch.jit.script(model); scripted.save("script.pt")
traced = torch.jit.trace(model, example); traced.save("trace.pt")
ep = torch.export.export(model, (example,), dynamic_shapes=({{0: torch.export.Dim.AUTO}},))
torch.export.save(ep, "model.pt2")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.onnx.export(model, (example,), "model.onnx", opset_version=17, input_names=["input"],
                      dynamic_axes={{"input": {{0: "b"}}}}, dynamo=False)
errors = []
for path in ("script.pt", "trace.pt"):
    m = torch.jit.load(path)
    with torch.inference_mode():
        errors.append(max(float(np.abs(m(s).numpy() - r).max()) for s, r in zip(samples, ref)))
m = torch.export.load("model.pt2").module()
with torch.inference_mode():
    errors.append(max(float(np.abs(m(s).numpy() - r).max()) for s, r in zip(samples, ref)))
sess = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
errors.append(max(float(np.abs(sess.run(None, {{"input": s.numpy()}})[0] - r).max()) for s, r in zip(samples, ref)))
print("errors", errors, "in", time.perf_counter() - start)
"""

NAV = """
import time
start = time.perf_counter()
import torch
import model_navigator as nav
{model}
nav.torch.export(model=model, dataloader=dataloader, verbose=False, {extra}**export_kwargs)
print("nav in", time.perf_counter() - start)
"""

VARIANTS = {
    "script": None,
    "nav-inproc": "run_profiling=False, isolation=False, ",
    "nav-isolated": "run_profiling=False, ",
    "nav-full-isolation": "run_profiling=False, isolation=True, ",
    "nav-default": "",
}


def run_one(code: str) -> Dict[str, Any]:
    """One fresh interpreter running `code`: wall, CPU and peak memory (bench/rss.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(code)
        result = run_measured([sys.executable, str(script)], tmp, dict(os.environ))
        result.pop("stdout")
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    results = {}
    for model_name in args.models:
        model = MODELS[model_name]
        for variant, extra in VARIANTS.items():
            code = SCRIPT.format(model=model) if extra is None else NAV.format(model=model, extra=extra)
            runs = [run_one(code) for _ in range(args.repeat)]
            results.setdefault(model_name, {})[variant] = {
                "wall_s": statistics.median(r["wall_s"] for r in runs),
                "peak_rss_mib": statistics.median(r["peak_tree_mib"] for r in runs),
                # the memory the tree holds: a forked export's pages shared with its parent count once
                "peak_pss_mib": statistics.median(r["peak_tree_pss_mib"] for r in runs),
                "peak_process_mib": statistics.median(r["peak_process_mib"] for r in runs),
                "peak_anon_mib": statistics.median(r["peak_anon_mib"] for r in runs),
                "runs": runs,
            }
            r = results[model_name][variant]
            print(
                f"{model_name:7} {variant:13} wall {r['wall_s']:6.2f} s   peak RSS {r['peak_rss_mib']:7.0f} MiB "
                f"(Pss {r['peak_pss_mib']:.0f}, largest process {r['peak_process_mib']:.0f}, "
                f"private {r['peak_anon_mib']:.0f})",
                flush=True,
            )
        base = results[model_name]["script"]
        for variant in ("nav-inproc", "nav-isolated", "nav-full-isolation"):
            r = results[model_name][variant]
            r["wall_ratio_vs_script"] = r["wall_s"] / base["wall_s"]
            r["memory_ratio_vs_script"] = r["peak_rss_mib"] / base["peak_rss_mib"]
            r["pss_ratio_vs_script"] = r["peak_pss_mib"] / base["peak_pss_mib"]
        results[model_name]["isolation_cost"] = (
            results[model_name]["nav-isolated"]["wall_s"] / results[model_name]["nav-inproc"]["wall_s"] - 1
        )
        results[model_name]["full_isolation_cost"] = (
            results[model_name]["nav-full-isolation"]["wall_s"] / results[model_name]["nav-inproc"]["wall_s"] - 1
        )
    print()
    for model_name, r in results.items():
        print(
            f"{model_name}: in-process {r['nav-inproc']['wall_ratio_vs_script']:.2f}x script wall, "
            f"{r['nav-inproc']['memory_ratio_vs_script']:.2f}x memory; isolated "
            f"{r['nav-isolated']['wall_ratio_vs_script']:.2f}x wall, "
            f"{r['nav-isolated']['memory_ratio_vs_script']:.2f}x memory "
            f"({r['nav-isolated']['pss_ratio_vs_script']:.2f}x in Pss); "
            f"isolation 'auto' costs {100 * r['isolation_cost']:+.0f}%, full "
            f"{100 * r['full_isolation_cost']:+.0f}%; defaults with profiling "
            f"{r['nav-default']['wall_s']:.2f} s"
        )
    out = Path(__file__).parent / "results" / "export_overhead.json"
    out.write_text(
        json.dumps(
            {"machine": f"{os.cpu_count()} cores", "python": sys.version.split()[0], "results": results}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
