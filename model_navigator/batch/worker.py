"""One batch job in its own process: export (or re-test a package), save the .nav, write its report.

`python -m model_navigator.batch.worker SPEC.json JOB_DIR PARENT_PID main|thread` writes
JOB_DIR/<run_id>.nav, JOB_DIR/report/report.html and JOB_DIR/result.json (what the summary reads),
whatever happens; it dies with the process that started it (model_navigator.steps.lifeline).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Optional

RESULT_FILE = "result.json"
NODE_ENV = "MODEL_NAVIGATOR_BATCH_NODE"  # set by the Ray runner: the node's id, shown in the summary


def write_json(path: Path, data: Dict[str, Any]) -> None:
    """Write then rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _profiler_config(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    if isinstance(kwargs.get("profiler_config"), dict):
        from model_navigator.core.config import ProfilerConfig

        kwargs = {**kwargs, "profiler_config": ProfilerConfig(**kwargs["profiler_config"])}
    return kwargs


def _export(spec: Dict[str, Any], job_dir: Path) -> Any:
    import importlib

    from model_navigator.core.references import load_function

    for folder in reversed(spec.get("search_path") or []):  # the user's folders (the job runs in its own)
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.insert(0, folder)
    model = load_function(spec["model"], "model")()
    dataloader = load_function(spec["dataloader"], "dataloader")()
    api = importlib.import_module(f"model_navigator.api.{spec['framework']}")
    kwargs = _profiler_config(spec.get("export") or {})
    return api.export(model, dataloader, workdir=job_dir / "workdir", override_workdir=True, verbose=True, **kwargs)


def _retest(spec: Dict[str, Any], job_dir: Path) -> Any:
    from model_navigator.package import nav

    kwargs = _profiler_config(spec.get("retest") or {})
    kwargs.setdefault("retest_conversions", True)
    kwargs.setdefault("run_profiling", True)
    return nav.load(spec["package_file"], workdir=job_dir / "workdir", override_workdir=True, verbose=True, **kwargs)


def _figures(status: Any) -> Dict[str, Any]:
    """The paths and runtimes that passed correctness, each path's figures; the best (lowest p50), its p50
    and throughput at the smallest batch, the source's, the speedup."""
    from model_navigator.package.table import find_failures
    from model_navigator.selection import NoRuntimeQualifiesError, select_runtime

    out: Dict[str, Any] = {"failures": find_failures(status), "correct": [], "best": None, "paths": _per_path(status)}
    for key, path in status.paths.items():
        out["correct"] += [f"{key} on {runtime.value}" for runtime in path.passed_runtimes()]
    try:
        try:
            best = select_runtime(status, batch_size=1)
        except NoRuntimeQualifiesError:  # not profiled at batch size 1: the smallest one profiled
            best = select_runtime(status)
    except NoRuntimeQualifiesError as e:
        out["no_best"] = str(e).splitlines()[0].rstrip(":")
        return out
    out["best"] = {
        "path": best.path,
        "runtime": best.runtime.value,
        "batch_size": best.batch_size,
        "p50_ms": best.p50_ms,
        "throughput": best.throughput,
        "verified": best.verified,
    }
    for path in status.paths.values():
        for runtime, result in path.runtimes.items():
            if not path.is_reference(runtime):
                continue
            perf = result.performance
            same = [r for r in (perf.results if perf else []) if r.batch_size == best.batch_size]
            if same:
                out["source_p50_ms"] = same[0].p50_ms
                out["speedup"] = same[0].p50_ms / best.p50_ms if best.p50_ms > 0 else None
                return out
    return out


def _per_path(status: Any) -> Dict[str, Dict[str, Any]]:
    """Each path and runtime ("onnx on CPUExecutionProvider"): its correctness and its p50 and
    throughput at its smallest profiled batch size (what the side-by-side comparison of kinds shows)."""
    out: Dict[str, Dict[str, Any]] = {}
    for key, path in status.paths.items():
        for runtime, result in path.runtimes.items():
            if path.is_reference(runtime):
                correctness = "source"  # the reference the others are checked against
            elif path.passed(runtime):
                correctness = "ok"
            else:  # the status's word for it: "correctness failed", "failed" (the export), ...
                correctness = path.outcome(runtime) if not result.unchecked else "not checked"
            entry: Dict[str, Any] = {"correctness": correctness, "batch_size": None, "p50_ms": None, "throughput": None}
            perf = result.performance
            if perf is not None and perf.results:
                first = min(perf.results, key=lambda r: r.batch_size)
                entry.update(batch_size=first.batch_size, p50_ms=first.p50_ms, throughput=first.throughput)
            out[f"{key} on {runtime.value}"] = entry
    return out


def run_job(spec: Dict[str, Any], job_dir: Path) -> Dict[str, Any]:
    """Run one job in this process; never raises: a failure is the result's `status` and `reason`."""
    from model_navigator.package import nav

    start = time.perf_counter()
    result: Dict[str, Any] = {
        "run_id": spec["run_id"],
        "name": spec["name"],
        "kind": spec.get("kind"),
        "node": os.environ.get(NODE_ENV) or socket.gethostname(),
        "status": "failed",
    }
    try:
        descriptor = _retest(spec, job_dir) if spec.get("package_file") else _export(spec, job_dir)
        package = job_dir / f"{spec['run_id']}.nav"
        nav.save(descriptor, package, keep_workdir=False, override=True)
        result["package"] = package.name
        result.update(_figures(descriptor.status))
        if result["correct"]:
            result["status"] = "ok"
        else:
            result["reason"] = "no exported path passed its correctness check: " + (
                "; ".join(result["failures"]) or result.get("no_best") or "no path ran"
            )
        result["report"] = _write_report(package, job_dir)
    except BaseException as e:  # noqa: BLE001 - the job's failure is its result; the batch goes on
        traceback.print_exc()
        result["reason"] = f"{type(e).__name__}: {e}".strip()[:2000]
    result["wall_s"] = time.perf_counter() - start
    return result


def _write_report(package: Path, job_dir: Path) -> Optional[str]:
    try:
        from model_navigator.report import write_report

        files = write_report(package, job_dir / "report")
        return str(Path(files.html).relative_to(job_dir))
    except Exception as e:  # noqa: BLE001 - e.g. matplotlib missing: the job's results stand without it
        print(f"report not written: {type(e).__name__}: {e}", flush=True)
        return None


def main(argv: Optional[list] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from model_navigator.steps.lifeline import die_with_parent, parse_lifeline

    die_with_parent(*parse_lifeline(argv[2:]))
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    job_dir = Path(argv[1])
    result = run_job(spec, job_dir)
    write_json(job_dir / RESULT_FILE, result)
    print(
        f"job {spec['run_id']}: {result['status']}" + (f" ({result['reason']})" if result.get("reason") else ""),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
