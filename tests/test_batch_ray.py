"""nav.batch.run on a real two-node Ray cluster started by the test on this machine (tests/batch_ray_cluster.py):
loopback-only network namespace, token authentication on, a head node (kind_a) and a second node (kind_b);
four jobs, a re-test on both kinds, and kill -9 of the second node's raylet while its job runs; then
nothing of the cluster may be left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from batch_ray_cluster import namespace_unavailable, run_in_namespace
from helpers import repo_env

TESTS_DIR = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scenario():
    pytest.importorskip("ray")
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    why = namespace_unavailable()
    if why:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="navray", dir="/tmp"))  # short: Ray's socket paths live under it
    env = repo_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env["PYTHONPATH"]])
    result = run_in_namespace(
        [sys.executable, str(TESTS_DIR / "batch_ray_scenario.py"), str(root)], timeout=540, env=env
    )
    report_file = root / "scenario.json"
    assert report_file.is_file(), f"rc {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    report = json.loads(report_file.read_text())
    report["root"] = str(root)
    report["stderr"] = result.stderr
    assert result.returncode == 0, result.stderr[-5000:]
    return report


def test_cluster_is_loopback_only_with_two_kinds_of_node(scenario):
    assert scenario["interfaces"] == ["lo"]
    assert scenario["node_addresses"] == ["127.0.0.1"]
    assert set(scenario["nodes"]) == {"kind_a", "kind_b"} and len(set(scenario["nodes"].values())) == 2


def test_four_jobs_land_on_their_node_kind_and_the_failing_one_is_recorded(scenario):
    jobs = {r["run_id"]: r for r in scenario["zoo"]}
    nodes = scenario["nodes"]
    for run_id, kind, paths in (
        ("torch", "kind_a", {"onnx"}),
        ("tf", "kind_a", {"tf-savedmodel"}),
        ("onnx", "kind_b", {"onnx"}),
    ):
        record = jobs[run_id]
        assert record["status"] == "ok", record
        assert record["node_id"] == nodes[kind]
        assert record["best"]["path"] in paths and record["best"]["p50_ms"] > 0 and record["correct"]
        job_dir = Path(scenario["root"], "zoo", "jobs", run_id)
        assert (job_dir / record["package"]).is_file() and (job_dir / record["report"]).is_file()
    assert jobs["broken"]["status"] == "failed" and "this factory fails on purpose" in jobs["broken"]["reason"]
    assert jobs["broken"]["node_id"] == nodes["kind_b"]


def test_rerun_skips_the_jobs_done_and_runs_the_failed_one_again(scenario):
    first = {r["run_id"]: r for r in scenario["zoo"]}
    again = {r["run_id"]: r for r in scenario["zoo_rerun"]}
    for run_id in ("torch", "tf", "onnx"):
        assert again[run_id].get("reused") is True and again[run_id]["status"] == "ok"
        assert again[run_id]["best"] == first[run_id]["best"]  # the earlier result, not a new run
        assert Path(scenario["root"], "zoo", "jobs", run_id, again[run_id]["package"]).is_file()
    assert not again["broken"].get("reused") and again["broken"]["status"] == "failed"
    assert "this factory fails on purpose" in again["broken"]["reason"]


def test_retest_runs_once_per_node_kind_side_by_side(scenario):
    runs = {r["run_id"]: r for r in scenario["retest"]}
    assert set(runs) == {"retest@kind_a", "retest@kind_b"}
    for kind in ("kind_a", "kind_b"):
        record = runs[f"retest@{kind}"]
        assert record["status"] == "ok" and record["node_id"] == scenario["nodes"][kind]
        assert "onnx on CPUExecutionProvider" in record["correct"]
    summary = json.loads(Path(scenario["root"], "retest", "summary.json").read_text())
    side = summary["comparisons"]["retest"]
    assert [s["kind"] for s in side] == ["kind_a", "kind_b"] and all(s["best"]["p50_ms"] > 0 for s in side)
    for entry in side:  # every path per kind, and the index shows them in one table
        assert entry["paths"]["onnx on CPUExecutionProvider"]["correctness"] == "ok"
        assert entry["paths"]["onnx on CPUExecutionProvider"]["p50_ms"] > 0
    index = Path(scenario["root"], "retest", "index.html").read_text()
    assert "<h2>retest: side by side</h2><table><tr><th>path and runtime</th><th>kind_a</th><th>kind_b</th>" in index


def test_ctrl_c_cancels_the_running_and_the_queued_job(scenario):
    assert scenario["interrupt_raised"] is True
    runs = {r["run_id"]: r for r in scenario["interrupted"]}
    assert runs["slow"]["status"] == "cancelled" and runs["queued"]["status"] == "cancelled"
    assert scenario["interrupted_job_alive"] is False  # the job's process on the node is gone too


def test_job_on_a_killed_node_is_reported_with_the_reason_and_the_other_goes_on(scenario):
    assert scenario.get("killed_raylet_pid"), "the slow job never started on the second node"
    runs = {r["run_id"]: r for r in scenario["node_lost"]}
    assert runs["beside"]["status"] == "ok"
    slow = runs["slow"]
    assert slow["status"] == "failed"
    assert "lost" in slow["reason"] or "died" in slow["reason"].lower(), slow["reason"]
    assert scenario["node_lost_wall_s"] < 120  # reported, not waited on for the whole sleep


def test_nothing_of_the_cluster_is_left_running(scenario):
    assert scenario["left_running"] == []
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert scenario["root"] not in ps
