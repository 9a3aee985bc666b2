"""The Ray scenario of tests/test_batch_ray.py, run inside the loopback-only namespace:
`python tests/batch_ray_scenario.py ROOT` writes ROOT/scenario.json (what the test checks).

On a two-node cluster (kind_a: head, kind_b: second node): four jobs (torch, TensorFlow, ONNX, a
factory that raises); the torch job's package re-tested on both kinds; then a slow job on kind_b whose
node's raylet is killed (-9) while it runs, beside a job on kind_a. Then everything is stopped.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import batch_models  # noqa: E402
from batch_ray_cluster import Cluster, interfaces  # noqa: E402

LIGHT = {"measurement_request_count": 10, "max_trials": 4, "warmup_requests": 2}


def export_job(name: str, framework: str, model: str, data: str, kind: str, **extra) -> dict:
    export = {"profiler_config": LIGHT, **extra.pop("export", {})}
    return {"name": name, "framework": framework, "model": f"batch_models:{model}",
            "dataloader": f"batch_models:{data}", "export": export, "resources": {"custom": {kind: 1}}, **extra}


def zoo_jobs() -> list:
    return [
        export_job("torch", "torch", "torch_model", "torch_data", "kind_a", export={"target_formats": ["onnx"]}),
        export_job("tf", "tensorflow", "tf_model", "tf_data", "kind_a", export={"target_formats": ["tf-savedmodel"]}),
        export_job("onnx", "onnx", "onnx_model", "onnx_data", "kind_b"),
        export_job("broken", "torch", "broken_model", "torch_data", "kind_b"),
    ]


def _kill_when_started(cluster: Cluster, marker_dir: Path, report: dict) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(marker_dir.glob("slow-*")):
            report["killed_raylet_pid"] = cluster.kill_raylet("kind_b")
            report["killed_at"] = time.time()
            return
        time.sleep(0.2)


def main(root: Path) -> None:
    import model_navigator as nav

    report: dict = {"interfaces": interfaces()}
    cluster = Cluster(root)
    marker_dir = root / "markers"
    marker_dir.mkdir()
    import os

    os.environ[batch_models.MARKER_ENV] = str(marker_dir)  # the nodes (started below) inherit it
    os.environ["BATCH_TEST_SLEEP_S"] = "60"
    try:
        cluster.start()
        import ray

        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        report["nodes"] = {k: n["NodeID"] for n in ray.nodes() for k in n["Resources"] if k.startswith("kind_")}
        report["node_addresses"] = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
        zoo = nav.batch.run(zoo_jobs(), root / "zoo", ray=cluster.address)
        report["zoo"] = zoo.jobs
        package = root / "zoo" / "jobs" / "torch" / "torch.nav"
        retest = [{"name": "retest", "package": str(package),
                   "retest": {"profiler_config": LIGHT},
                   "resources": [{"custom": {"kind_a": 1}}, {"custom": {"kind_b": 1}}]}]
        report["retest"] = nav.batch.run(retest, root / "retest", ray=cluster.address).jobs
        killer = threading.Thread(target=_kill_when_started, args=(cluster, marker_dir, report), daemon=True)
        killer.start()
        lost = [export_job("slow", "torch", "slow_torch_model", "torch_data", "kind_b", retries=1,
                           export={"target_formats": ["onnx"]}),
                export_job("beside", "torch", "torch_model", "torch_data", "kind_a",
                           export={"target_formats": ["onnx"]})]
        start = time.time()
        report["node_lost"] = nav.batch.run(lost, root / "lost", ray=cluster.address).jobs
        report["node_lost_wall_s"] = time.time() - start
        ray.shutdown()
    finally:
        report["left_running"] = cluster.stop()
        (root / "scenario.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
