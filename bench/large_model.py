"""Big models end to end: export + check, nav.save, nav.load (extraction only) and nav.load with its
re-test of a stack of square Linear layers (random weights), each phase in a fresh interpreter,
with its wall time and peak memory (whole process tree and the largest single process); `cp -r` of
the workdir and `cp` of the package, run in turn with save and load, are the disk-speed baselines.

python bench/large_model.py                      default: 16 x 2048^2 (256 MiB), onnx + torchscript
python bench/large_model.py --case 2.2g          36 x 4096^2 (2.25 GiB, past ONNX's 2 GiB: external data), onnx
python bench/large_model.py --case 4g            68 x 4096^2 (4.25 GiB, many external-data files), onnx + torchscript
python bench/large_model.py --code /path/to/old/checkout   the same phases run another copy's model_navigator

Needs free disk of about 4x the weights (workdir, package, loaded copies) and memory of ~1.5x.
Results: bench/results/large_model_<case>.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rss import children_cpu_s, run_measured  # noqa: E402

CASES = {
    "default": {"layers": 16, "dim": 2048, "formats": ["onnx", "torchscript"]},
    "2.2g": {"layers": 36, "dim": 4096, "formats": ["onnx"]},
    "4g": {"layers": 68, "dim": 4096, "formats": ["onnx", "torchscript"]},
}

PHASE = r"""
import sys, time
from pathlib import Path
start = time.perf_counter()
import model_navigator as nav
from model_navigator.package.descriptor import PackageDescriptor
phase, workdir, package, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
if phase == "export":
    import torch
    layers, dim, formats = int(sys.argv[5]), int(sys.argv[6]), tuple(sys.argv[7].split(","))
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(dim, dim, bias=False) for _ in range(layers)]).eval()
    with torch.no_grad():
        for layer in model:
            torch.nn.init.normal_(layer.weight, std=dim ** -0.5)  # keeps the activations' scale
    dataloader = [torch.randn(2, dim) for _ in range(3)]
    desc = nav.torch.export(model, dataloader, workdir=workdir, target_formats=formats, run_profiling=False,
                            verbose=False)
    print("verdicts", {k: [r.passed for r in p.runtimes.values()] for k, p in desc.status.paths.items()})
elif phase == "save":
    begin = time.perf_counter()
    nav.save(PackageDescriptor.from_workdir(workdir), package)
    print("op_s", time.perf_counter() - begin)
elif phase in ("load", "retest"):
    begin = time.perf_counter()
    desc = nav.load(package, workdir=target, retest_conversions=phase == "retest", verbose=False)
    print("op_s", time.perf_counter() - begin)
    print("verdicts", {k: [r.passed for r in p.runtimes.values()] for k, p in desc.status.paths.items()})
"""


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _measure(argv: List[str], cwd: str, env: Dict[str, str]) -> Dict[str, Any]:
    settle()
    result = run_measured(argv, cwd, env)
    lines = result.pop("stdout").splitlines()
    op = [float(line.split()[1]) for line in lines if line.startswith("op_s ")]
    result["op_s"] = round(op[0], 3) if op else None
    result["output"] = [line for line in lines if line.startswith("verdicts")]
    return result


def settle() -> None:
    """Write back every dirty page first, so an operation is not throttled by the one before it (a
    2 GiB write leaves most of its bytes dirty: the next write would wait for their writeback)."""
    subprocess.run(["sync"], check=True)


def _cp(src: Path, dst: Path, sync: bool) -> Dict[str, float]:
    """Wall and CPU time of `cp -r src dst` (then `sync -f` of the copy when `sync`, as nav.save fsyncs),
    started with no dirty pages left by the step before (settle)."""
    settle()
    cpu = children_cpu_s()
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    if sync:
        subprocess.run(["sync", "-f", str(dst)], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    return {"wall_s": round(elapsed, 3), "op_s": round(elapsed, 3), "cpu_s": round(children_cpu_s() - cpu, 3)}


def run_case(case: str, repeat: int, code: str, scratch: Path) -> Dict[str, Any]:
    spec = CASES[case]
    env = dict(os.environ, PYTHONPATH=code)
    script = scratch / "phase.py"
    script.write_text(PHASE)
    w, pkg = scratch / "w", scratch / "m.nav"

    def phase(name: str, target: Path) -> Dict[str, Any]:
        return _measure(
            [
                sys.executable,
                str(script),
                name,
                str(w),
                str(pkg),
                str(target),
                str(spec["layers"]),
                str(spec["dim"]),
                ",".join(spec["formats"]),
            ],
            str(scratch),
            env,
        )

    result: Dict[str, Any] = {"case": case, **spec, "weights_bytes": 4 * spec["layers"] * spec["dim"] ** 2}
    result["export"] = phase("export", w)
    result["workdir_bytes"] = _tree_bytes(w)
    rows: Dict[str, List[Any]] = {
        k: [] for k in ("save", "cp_workdir", "cp_sync_workdir", "load", "cp_package", "retest")
    }
    for i in range(repeat):  # paired, in turn: the disk's state changes from minute to minute
        rows["cp_workdir"].append(_cp(w, scratch / "copy", sync=False))
        rows["cp_sync_workdir"].append(_cp(w, scratch / "copy", sync=True))
        pkg.unlink(missing_ok=True)
        rows["save"].append(phase("save", scratch / "unused"))
        rows["cp_package"].append(_cp(pkg, scratch / "copy.nav", sync=False))
        rows["load"].append(phase("load", scratch / f"l{i}"))
        shutil.rmtree(scratch / f"l{i}")
    result["package_bytes"] = pkg.stat().st_size
    rows["retest"].append(phase("retest", scratch / "r"))
    shutil.rmtree(scratch / "r")
    for key, runs in rows.items():
        result[key] = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "op_s", "cpu_s")}
        result[key]["runs"] = runs
    # nav.save / nav.load themselves (op_s: without the interpreter's start) against the copies
    for name, op, base in (
        ("save_vs_cp", "save", "cp_workdir"),
        ("save_vs_cp_sync", "save", "cp_sync_workdir"),
        ("load_vs_cp", "load", "cp_package"),
    ):
        result[name] = round(result[op]["op_s"] / result[base]["op_s"], 2)
        result[name.replace("_vs_", "_cpu_vs_")] = round(result[op]["cpu_s"] / result[base]["cpu_s"], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=sorted(CASES), default="default")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--code",
        default=str(Path(__file__).resolve().parents[1]),
        help="folder holding the model_navigator package to measure",
    )
    parser.add_argument("--scratch", default=None, help="folder for the workdir and packages (a temporary one)")
    parser.add_argument("--out", default=None, help="result file (bench/results/large_model_<case>.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.scratch, prefix="nav-large-") as tmp:
        result = run_case(args.case, args.repeat, args.code, Path(tmp))
    result["code"] = args.code
    result["machine"] = f"{os.cpu_count()} cores"
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))
    for key in ("export", "save", "load", "retest", "cp_workdir", "cp_sync_workdir", "cp_package"):
        r = result[key]
        first = r["runs"][0] if "runs" in r else r
        memory = (
            f"  peak tree {first['peak_tree_mib']} MiB, largest process {first['peak_process_mib']} MiB"
            if "peak_tree_mib" in first
            else ""
        )
        print(f"{key:16} wall {r['wall_s']:7.2f} s  op {r['op_s'] or 0:7.2f} s  cpu {r['cpu_s']:7.2f} s{memory}")
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"large_model_{args.case}.json"
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
