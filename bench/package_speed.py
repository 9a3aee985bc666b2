"""nav.save and nav.load (extraction, no re-test) of a workspace of dense weights against `cp` of the
same bytes, with one or more copies of model_navigator run in turn (pairs): fp32 random weights in
files without a suffix (as ONNX writes external data) plus one model.onnx, no export needed.

python bench/package_speed.py [--gib 1] [--repeat 3] [--code ours=. --code main=/path/to/checkout ...]
Results: bench/results/package_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from large_model import PHASE, _cp, settle  # noqa: E402
from rss import run_measured  # noqa: E402


def make_workspace(root: Path, gib: float, files: int = 8) -> None:
    """A workspace of `gib` GiB of fp32 weights: `files` suffix-less files and one model.onnx."""
    import numpy as np

    from model_navigator.core.status import NavigatorStatus

    (root / "onnx").mkdir(parents=True)
    NavigatorStatus(model_name="weights", framework="onnx").save(root)
    rng = np.random.default_rng(0)
    per_file = int(gib * 2**30) // (files + 1) // 4
    for i in range(files + 1):
        name = "model.onnx" if i == files else f"layers.{i}.weight"
        (rng.standard_normal(per_file, dtype=np.float32) * 0.02).tofile(root / "onnx" / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", action="append", default=None, help="LABEL=FOLDER of a model_navigator copy")
    parser.add_argument("--scratch", default=None)
    args = parser.parse_args()
    codes = dict(c.split("=", 1) for c in (args.code or [f"ours={Path(__file__).resolve().parents[1]}"]))
    runs: Dict[str, List[Any]] = {}
    with tempfile.TemporaryDirectory(dir=args.scratch, prefix="nav-speed-") as tmp:
        scratch = Path(tmp)
        w, pkg = scratch / "w", scratch / "m.nav"
        make_workspace(w, args.gib)
        script = scratch / "phase.py"
        script.write_text(PHASE)
        for _ in range(args.repeat):
            runs.setdefault("cp_workdir", []).append(_cp(w, scratch / "copy", sync=False))
            runs.setdefault("cp_sync_workdir", []).append(_cp(w, scratch / "copy", sync=True))
            for label, code in codes.items():  # in turn
                env = dict(os.environ, PYTHONPATH=code)
                pkg.unlink(missing_ok=True)
                for op, target in (("save", scratch / "unused"), ("load", scratch / "loaded")):
                    settle()
                    result = run_measured(
                        [sys.executable, str(script), op, str(w), str(pkg), str(target)], str(scratch), env
                    )
                    result["op_s"] = float(result.pop("stdout").split("op_s ")[1].split()[0])
                    result["package_bytes"] = pkg.stat().st_size
                    runs.setdefault(f"{op}[{label}]", []).append(result)
                    if op == "load":
                        runs.setdefault(f"cp_package[{label}]", []).append(_cp(pkg, scratch / "copy.nav", sync=False))
                        shutil.rmtree(target)
    summary = {key: {k: statistics.median(r[k] for r in rs) for k in ("op_s", "cpu_s")} for key, rs in runs.items()}
    for key, s in summary.items():
        print(f"{key:22} {s['op_s']:7.2f} s  cpu {s['cpu_s']:6.2f} s")
    out = Path(__file__).parent / "results" / "package_speed.json"
    out.write_text(
        json.dumps(
            {"gib": args.gib, "machine": f"{os.cpu_count()} cores", "codes": codes, "summary": summary, "runs": runs},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
