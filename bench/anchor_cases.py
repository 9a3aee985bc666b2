"""The upstream comparison's three cases (the reference's Linear example, a small CNN, a tiny BERT with
three inputs: ../shared/anchor/models.py) exported with every default, each run in a fresh
interpreter: wall and CPU time and peak memory per process (the main one, its largest worker, and
the private part, RssAnon, which does not depend on what the page cache holds). With --base, the
same runs with another checkout's model_navigator, in turn (pairs), so a change shows as a ratio; with
--upstream, the upstream tool (Model Navigator 0.14, nav.torch.optimize on the CPU) in its own
environment (../shared/anchor/install.sh), in turn too: the ratios the targets are stated in.

python bench/anchor_cases.py [--repeat 3] [--base /path/to/earlier/checkout] [--anchor ../shared/anchor]
                             [--upstream /path/to/.anchor-venv/bin/python]
Results: bench/results/anchor_cases.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rss import run_measured  # noqa: E402

KEYS = (
    "wall_s",
    "cpu_s",
    "peak_tree_mib",
    "peak_tree_pss_mib",
    "peak_process_mib",
    "peak_main_mib",
    "peak_child_mib",
    "peak_anon_mib",
)


def _median(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {key: statistics.median(r[key] for r in runs) for key in KEYS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=["linear", "cnn", "bert"])
    parser.add_argument("--base", default=None, help="folder of an earlier checkout to pair against")
    parser.add_argument("--anchor", default="/work/shared/anchor", help="the folder of ours_case.py and models.py")
    parser.add_argument(
        "--upstream",
        default=None,
        help="the Python of the upstream tool's environment (the anchor's install.sh): its run_optimize.py "
        "CASE cpu runs in turn with ours, and the ratios to it are recorded",
    )
    parser.add_argument("--out", default=None, help="result file (bench/results/anchor_cases.json)")
    args = parser.parse_args()
    codes = {"ours": str(Path(__file__).resolve().parents[1])}
    if args.base:
        codes["base"] = args.base
    if args.upstream:
        codes["upstream"] = args.upstream
    script = Path(args.anchor) / "ours_case.py"
    results: Dict[str, Any] = {}
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / "anchor_cases.json"
    for case in args.cases:
        runs: Dict[str, List[Dict[str, Any]]] = {name: [] for name in codes}
        for _ in range(args.repeat):
            for name, code in codes.items():  # in turn: the machine's load changes from minute to minute
                with tempfile.TemporaryDirectory() as tmp:
                    if name == "upstream":  # its own environment; CPU target, defaults otherwise
                        argv = [code, str(Path(args.anchor) / "run_optimize.py"), case, "cpu", str(Path(tmp) / "ws")]
                        env = dict(os.environ)
                    else:
                        argv = [sys.executable, str(script), case, str(Path(tmp) / "ws")]
                        env = dict(os.environ, PYTHONPATH=code)
                    result = run_measured(argv, tmp, env)
                result["timing"] = [line for line in result.pop("stdout").splitlines() if line.startswith("TIMING")]
                runs[name].append(result)
        results[case] = {name: {**_median(r), "runs": r} for name, r in runs.items()}
        for name in codes:
            m = results[case][name]
            print(
                f"{case:7} {name:8} wall {m['wall_s']:6.2f} s  cpu {m['cpu_s']:6.2f} s  largest process "
                f"{m['peak_process_mib']:5.0f} MiB (main {m['peak_main_mib']:.0f}, worker {m['peak_child_mib']:.0f}, "
                f"private {m['peak_anon_mib']:.0f})  tree {m['peak_tree_mib']:.0f} MiB "
                f"(Pss {m['peak_tree_pss_mib']:.0f})  load "
                f"{[r['load_1min'] for r in runs[name]]}",
                flush=True,
            )
        for other in ("base", "upstream"):
            if other in codes:
                results[case][f"ratio_vs_{other}"] = {
                    key: round(results[case]["ours"][key] / max(results[case][other][key], 1e-9), 3) for key in KEYS
                }
        out.write_text(
            json.dumps(
                {
                    "machine": f"{os.cpu_count()} cores",
                    "python": sys.version.split()[0],
                    "base": args.base,
                    "upstream": args.upstream,
                    "results": results,
                },
                indent=1,
            )
        )  # after each case
    return 0


if __name__ == "__main__":
    sys.exit(main())
