"""Wall time of a batch of 8 small models: local with 1 and 2 jobs at a time, and on a two-node Ray cluster
(one CPU per node, so 2 at a time as well), in turn for ROUNDS rounds; the medians, and the overhead Ray
adds per job over the local runner at the same parallelism.

python bench/batch.py [ROUNDS]   -> bench/results/batch.json (root: it runs itself inside a loopback-only
network namespace, tests/batch_ray_cluster.py, with the cluster's token auth on)
python bench/batch.py ROUNDS --overhead -> bench/results/batch_overhead.json: the fixed cost per job alone,
    8 jobs whose factory raises at once (process start, imports, scheduling, the folder's trip back), local
    with 2 at a time against Ray with 2 one-CPU nodes
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
sys.path[:0] = [str(REPO), str(TESTS)]
INSIDE = "MODEL_NAVIGATOR_BENCH_IN_NAMESPACE"
LIGHT = {"measurement_request_count": 10, "max_trials": 4, "warmup_requests": 2}


def zoo_jobs() -> list:
    import batch_models

    return [
        {
            "name": f"zoo_{i}",
            "framework": "torch",
            "model": f"batch_models:zoo_{i}",
            "dataloader": "batch_models:torch_data",
            "export": {"target_formats": ["onnx"], "profiler_config": LIGHT},
        }
        for i in range(len(batch_models.ZOO))
    ]


def overhead_jobs() -> list:
    return [
        {
            "name": f"noop_{i}",
            "framework": "torch",
            "model": "batch_models:broken_model",
            "dataloader": "batch_models:torch_data",
        }
        for i in range(8)
    ]


def _timed(jobs: list, out: Path, **kwargs) -> dict:
    import model_navigator as nav

    start = time.perf_counter()
    result = nav.batch.run(jobs, out, verbose=False, **kwargs)
    wall = time.perf_counter() - start
    expected = "failed" if jobs[0]["name"].startswith("noop") else "ok"
    assert all(r["status"] == expected for r in result.jobs), [r.get("reason") for r in result.jobs]
    return {"wall_s": wall, "job_s": [r["wall_s"] for r in result.jobs]}


def inside(rounds: int, overhead: bool) -> dict:
    from batch_ray_cluster import Cluster

    root = Path(tempfile.mkdtemp(prefix="navbench", dir="/tmp"))
    cluster = Cluster(root, cpus_per_node=1)  # sets RAY_AUTH_MODE / RAY_AUTH_TOKEN_PATH: before ray is imported
    import ray

    runs: dict = {"local_1": [], "local_2": [], "ray_2_nodes": []}
    try:
        start = time.perf_counter()
        cluster.start()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        cluster_start_s = time.perf_counter() - start
        jobs = overhead_jobs() if overhead else zoo_jobs()
        if overhead:
            del runs["local_1"]
        for i in range(rounds):  # in turn, so that load from other jobs on the machine hits all three alike
            if not overhead:
                runs["local_1"].append(_timed(jobs, root / f"l1_{i}", max_parallel=1))
            runs["local_2"].append(_timed(jobs, root / f"l2_{i}", max_parallel=2))
            runs["ray_2_nodes"].append(_timed(jobs, root / f"r_{i}", ray=cluster.address))
        ray.shutdown()
    finally:
        left = cluster.stop()
    median = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    jobs_n = len(jobs)
    return {
        "jobs": jobs_n,
        "rounds": rounds,
        "load_average_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "ray_cluster_start_s": cluster_start_s,
        "median_wall_s": median,
        "median_job_s": {k: statistics.median(s for r in v for s in r["job_s"]) for k, v in runs.items()},
        "ray_overhead_per_job_s": (median["ray_2_nodes"] - median["local_2"]) / jobs_n * 2,
        "runs": runs,
        "left_running_after_stop": left,
    }


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    overhead = "--overhead" in sys.argv
    if os.environ.get(INSIDE):
        print(json.dumps(inside(rounds, overhead)))
        return 0
    from batch_ray_cluster import namespace_unavailable, run_in_namespace

    why = namespace_unavailable()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    env = dict(os.environ, **{INSIDE: "1"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(TESTS), env.get("PYTHONPATH")) if p)
    result = run_in_namespace(
        [sys.executable, __file__, str(rounds), *(["--overhead"] if overhead else [])], timeout=3000, env=env
    )
    if result.returncode != 0:
        print(result.stderr[-4000:], file=sys.stderr)
        return 1
    data = json.loads(result.stdout.strip().splitlines()[-1])
    out = REPO / "bench" / "results" / ("batch_overhead.json" if overhead else "batch.json")
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(
        json.dumps(
            {k: data[k] for k in ("median_wall_s", "median_job_s", "ray_overhead_per_job_s", "ray_cluster_start_s")},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
