"""The Ray scenario of tests/test_batch_ray.py, run inside the loopback-only namespace:
`python tests/batch_ray_scenario.py ROOT` writes ROOT/scenario.json (what the test checks).

On a two-node cluster (kind_a: head, kind_b: second node): four jobs (torch, TensorFlow, ONNX, a
factory that raises), then the same jobs again (the three done are skipped); the torch job's package
re-tested on both kinds; Ctrl-C while a slow job runs and another waits; then a slow job on kind_b
whose node's raylet is killed (-9) while it runs, beside a job on kind_a. Then everything is stopped.
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
    return {
        "name": name,
        "framework": framework,
        "model": f"batch_models:{model}",
        "dataloader": f"batch_models:{data}",
        "export": export,
        "resources": {"custom": {kind: 1}},
        **extra,
    }


def zoo_jobs() -> list:
    return [
        export_job("torch", "torch", "torch_model", "torch_data", "kind_a", export={"target_formats": ["onnx"]}),
        export_job("tf", "tensorflow", "tf_model", "tf_data", "kind_a", export={"target_formats": ["tf-savedmodel"]}),
        export_job("onnx", "onnx", "onnx_model", "onnx_data", "kind_b"),
        export_job("broken", "torch", "broken_model", "torch_data", "kind_b"),
    ]


def _wait_for_slow_jobs(marker_dir: Path, count: int) -> list:
    """The pids of the slow jobs' processes, once `count` of them have started (within 2 minutes)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(marker_dir.glob("slow-*"))) < count:
        time.sleep(0.2)
    return sorted(int(p.read_text()) for p in marker_dir.glob("slow-*"))


def _kill_when_started(cluster: Cluster, marker_dir: Path, report: dict) -> None:
    if len(_wait_for_slow_jobs(marker_dir, 2)) >= 2:
        report["killed_raylet_pid"] = cluster.kill_raylet("kind_b")


def _interrupt_when_started(marker_dir: Path, report: dict) -> None:
    """Ctrl-C, as the driver gets it (KeyboardInterrupt in its main thread), once the slow job runs."""
    import _thread

    pids = _wait_for_slow_jobs(marker_dir, 1)
    if pids:
        report["interrupted_job_pid"] = pids[0]
        _thread.interrupt_main()


def _interrupt_phase(cluster: Cluster, marker_dir: Path, root: Path, report: dict) -> None:
    import model_navigator as nav

    jobs = [
        export_job("slow", "torch", "slow_torch_model", "torch_data", "kind_a"),
        export_job("queued", "torch", "torch_model", "torch_data", "kind_a"),
    ]
    threading.Thread(target=_interrupt_when_started, args=(marker_dir, report), daemon=True).start()
    try:
        nav.batch.run(jobs, root / "interrupted", ray=cluster.address)
        report["interrupt_raised"] = False
    except KeyboardInterrupt:
        report["interrupt_raised"] = True
    report["interrupted"] = json.loads((root / "interrupted" / "summary.json").read_text())["jobs"]
    time.sleep(3)  # the cancelled task's worker is gone; its job process follows within the lifeline's watch
    pid = report.get("interrupted_job_pid")
    report["interrupted_job_alive"] = (
        pid is not None
        and Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[:1]
    )


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
        started = time.time()  # the same jobs again: the three done are skipped, the failed one runs again
        report["zoo_rerun"] = nav.batch.run(zoo_jobs(), root / "zoo", ray=cluster.address).jobs
        report["zoo_rerun_wall_s"] = time.time() - started
        package = root / "zoo" / "jobs" / "torch" / "torch.nav"
        retest = [
            {
                "name": "retest",
                "package": str(package),
                "retest": {"profiler_config": LIGHT},
                "resources": [{"custom": {"kind_a": 1}}, {"custom": {"kind_b": 1}}],
            }
        ]
        report["retest"] = nav.batch.run(retest, root / "retest", ray=cluster.address).jobs
        _interrupt_phase(cluster, marker_dir, root, report)
        killer = threading.Thread(target=_kill_when_started, args=(cluster, marker_dir, report), daemon=True)
        killer.start()
        lost = [
            export_job(
                "slow",
                "torch",
                "slow_torch_model",
                "torch_data",
                "kind_b",
                retries=1,
                export={"target_formats": ["onnx"]},
            ),
            export_job("beside", "torch", "torch_model", "torch_data", "kind_a", export={"target_formats": ["onnx"]}),
        ]
        start = time.time()
        report["node_lost"] = nav.batch.run(lost, root / "lost", ray=cluster.address).jobs
        report["node_lost_wall_s"] = time.time() - start
        ray.shutdown()
    finally:
        report["left_running"] = cluster.stop()
        (root / "scenario.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
