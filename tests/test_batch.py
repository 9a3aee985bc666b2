"""nav.batch.run and `model-navigator batch` in local mode (separate processes on this machine, no Ray):
the jobs file's validation, real exports of tiny torch / TensorFlow / ONNX models, a failing factory,
re-tests on two resource kinds, reruns, timeouts and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import model_navigator as nav
from helpers import LIGHT_PROFILER, REPO_ROOT, repo_env

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture
def worker_path(monkeypatch):
    """The job workers find this checkout and tests/batch_models.py."""
    env = repo_env()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS_DIR), env["PYTHONPATH"]]))


def _job(name, framework="torch", model="torch_model", data="torch_data", **extra):
    export = {"profiler_config": LIGHT_PROFILER, **extra.pop("export", {})}
    return {
        "name": name,
        "framework": framework,
        "model": f"batch_models:{model}",
        "dataloader": f"batch_models:{data}",
        "export": export,
        **extra,
    }


def _cli(*args, cwd=None, **popen):
    env = repo_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env["PYTHONPATH"]])
    command = [sys.executable, "-m", "model_navigator.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


# ------------------------------------------------------------------------------------------------
# Validation: before any job starts, errors name the job and the key
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job, words",
    [
        (_job("a", export={"target_format": ["onnx"]}), ["job 'a'", "target_format", "target_formats"]),
        (_job("a", export={"workdir": "x"}), ["job 'a'", "workdir", "batch runner"]),
        (_job("a", export={"profiler_config": {"max_trials": "x"}}), ["job 'a'", "profiler_config"]),
        ({**_job("a"), "model": "not a reference"}, ["job 'a'", "`model`", "MODULE:FUNCTION"]),
        ({**_job("a"), "framework": "mxnet"}, ["job 'a'", "`framework`", "torch"]),
        ({k: v for k, v in _job("a").items() if k != "dataloader"}, ["job 'a'", "`dataloader` is missing"]),
        ({**_job("a"), "timeout": 3}, ["job 'a'", "timeout", "timeout_s"]),
        ({**_job("a"), "retries": -1}, ["job 'a'", "`retries`"]),
        ({**_job("a"), "resources": {"custom": {"kind": 0}}}, ["job 'a'", "resources", "custom"]),
        ({**_job("a"), "resources": [{"cpus": 1}, {"cpus": 1}]}, ["job 'a'", "resources", "label"]),
        ({"name": "r", "package": "missing.nav"}, ["job 'r'", "`package`", "not a file"]),
        ({"name": "bad/name"}, ["job #1", "`name`"]),
    ],
)
def test_bad_job_is_refused_naming_job_and_key(tmp_path, job, words):
    with pytest.raises(nav.UserInputError) as info:
        nav.batch.run([job], tmp_path / "out", verbose=False)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert not (tmp_path / "out").exists()  # nothing written before the checks


def test_duplicate_names_and_a_bad_second_job_stop_everything_before_start(tmp_path):
    with pytest.raises(nav.UserInputError, match=r"repeated: \['a'\]"):
        nav.batch.run([_job("a"), _job("a")], tmp_path / "out", verbose=False)
    with pytest.raises(nav.UserInputError, match="job 'b'"):
        nav.batch.run([_job("a"), _job("b", export={"nope": 1})], tmp_path / "out", verbose=False)
    assert not (tmp_path / "out").exists()


def test_cli_bad_jobs_file_exits_2_with_one_line(tmp_path):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump({"jobs": [_job("x", export={"target_format": ["onnx"]})]}))
    result = _cli("batch", str(jobs), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "job 'x'" in result.stderr and "target_format" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert _cli("batch", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o")).returncode == 2
    assert _cli("batch", str(jobs), "-o", str(tmp_path / "o"), "--max-parallel", "0").returncode == 2


def test_factories_are_found_beside_the_jobs_file(tmp_path):
    (tmp_path / "my_zoo.py").write_text("def get_model():\n    raise ValueError('my_zoo was imported')\n")
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump([{**_job("mine"), "model": "my_zoo:get_model"}]))
    result = nav.batch.run(str(jobs), tmp_path / "out", verbose=False)  # my_zoo is not on PYTHONPATH
    assert result["mine"]["status"] == "failed" and "ValueError: my_zoo was imported" in result["mine"]["reason"]


def test_output_folder_with_other_files_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user file")
    with pytest.raises(nav.UserInputError, match="other files"):
        nav.batch.run([_job("a")], out, verbose=False)
    assert (out / "mine.txt").read_text() == "user file"


def test_ray_without_a_cluster_is_a_clear_error(tmp_path):
    pytest.importorskip("ray")
    with pytest.raises(nav.UserInputError, match="cannot join the Ray cluster"):
        nav.batch.run([_job("a")], tmp_path / "out", ray="127.0.0.1:1", verbose=False)


# ------------------------------------------------------------------------------------------------
# Real jobs, locally
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_five_jobs_locally_summary_table_index_and_rerun(tmp_path, worker_path):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    jobs = [
        _job("torch", export={"target_formats": ["onnx", "torchscript"]}),
        _job("tf", "tensorflow", "tf_model", "tf_data", export={"target_formats": ["tf-savedmodel"]}),
        _job("onnx", "onnx", "onnx_model", "onnx_data"),
        _job("broken", model="broken_model"),
        _job(
            "wrong",
            model="branchy_model",
            data="branchy_data",
            export={"target_formats": ["onnx", "torchscript"], "jit_options": ["trace"]},
        ),
    ]
    jobs_file = tmp_path / "jobs.yaml"
    jobs_file.write_text(yaml.safe_dump({"jobs": jobs}))
    out = tmp_path / "out"
    result = _cli("batch", str(jobs_file), "-o", str(out), "--max-parallel", "2")
    assert result.returncode == 1, result.stderr  # one job failed
    summary = json.loads((out / "summary.json").read_text())
    by_id = {r["run_id"]: r for r in summary["jobs"]}
    assert [r["status"] for r in summary["jobs"]] == ["ok", "ok", "ok", "failed", "failed"]
    assert "this factory fails on purpose" in by_id["broken"]["reason"]
    wrong = by_id["wrong"]  # every path exported and failed correctness: recorded with the reason, package kept
    assert wrong["reason"].startswith("no exported path passed its correctness check: "), wrong["reason"]
    assert "onnx" in wrong["reason"] and "torchscript-trace" in wrong["reason"] and wrong["correct"] == []
    assert (out / "jobs" / "wrong" / wrong["package"]).is_file()
    for run_id, best in (
        ("torch", {"onnx", "torchscript-script", "torchscript-trace"}),
        ("tf", {"tf-savedmodel"}),
        ("onnx", {"onnx"}),
    ):
        record = by_id[run_id]
        assert record["best"]["path"] in best
        assert record["best"]["batch_size"] == 1 and record["best"]["p50_ms"] > 0
        assert record["correct"] and record["speedup"] > 0
        job_dir = out / "jobs" / run_id
        assert (job_dir / record["package"]).is_file() and (job_dir / record["report"]).is_file()
        assert nav.load(
            job_dir / record["package"], workdir=tmp_path / f"{run_id}_check", retest_conversions=False, verbose=False
        ).status.model_name
    index = (out / "index.html").read_text()
    for run_id in ("torch", "tf", "onnx", "broken", "wrong"):
        assert f'href="jobs/{run_id}/job.log"' in index
    assert 'href="jobs/torch/report/report.html"' in index
    # progress lines on stderr, the table on stdout
    assert "job broken: failed" in result.stderr and "job torch: started" in result.stderr
    assert "best path and runtime" in result.stdout and "this factory fails on purpose" in result.stdout

    again = _cli("batch", str(jobs_file), "-o", str(out), "--max-parallel", "2")
    rerun = {r["run_id"]: r for r in json.loads((out / "summary.json").read_text())["jobs"]}
    assert "3 done before" in again.stderr and "job torch: started" not in again.stderr
    assert all(rerun[i].get("reused") for i in ("torch", "tf", "onnx"))
    assert not rerun["broken"].get("reused") and not rerun["wrong"].get("reused")
    jobs[0]["export"]["target_formats"] = ["onnx"]  # a changed job runs again
    jobs_file.write_text(yaml.safe_dump({"jobs": jobs}))
    changed = _cli("batch", str(jobs_file), "-o", str(out))
    assert "job torch: started" in changed.stderr and "job tf: started" not in changed.stderr


@pytest.mark.slow
def test_retest_on_two_kinds_compared_side_by_side(tmp_path, worker_path, capsys):
    pytest.importorskip("torch")
    first = nav.batch.run([_job("torch", export={"target_formats": ["onnx"]})], tmp_path / "a", verbose=False)
    assert first.ok
    package = tmp_path / "a" / "jobs" / "torch" / "torch.nav"
    retest = {
        "name": "retest",
        "package": str(package),
        "retest": {"profiler_config": LIGHT_PROFILER},
        "resources": [{"cpus": 1, "label": "small"}, {"cpus": 2, "label": "big"}],
    }
    capsys.readouterr()
    result = nav.batch.run([retest], tmp_path / "b")
    assert [r["run_id"] for r in result.jobs] == ["retest@small", "retest@big"]
    assert result.ok
    side = json.loads(result.summary_file.read_text())["comparisons"]["retest"]
    assert [s["kind"] for s in side] == ["small", "big"]
    for entry in side:
        assert entry["status"] == "ok" and "onnx on CPUExecutionProvider" in entry["correct"]
        assert entry["best"]["p50_ms"] > 0 and entry["best"]["throughput"] > 0
        onnx = entry["paths"]["onnx on CPUExecutionProvider"]  # every path per kind, not only the best
        assert onnx["correctness"] == "ok" and onnx["batch_size"] == 1 and onnx["p50_ms"] > 0
        assert [k for k, v in entry["paths"].items() if v["correctness"] == "source"] == [
            "torch on CPUExecutionProvider"
        ]  # the source model, the reference of the checks
    # the terminal and index.html show the kinds side by side: a row per path, a column per kind
    out = capsys.readouterr().out
    assert "retest: side by side" in out
    row = next(line for line in out.splitlines() if "onnx on CPUExecutionProvider" in line and "p50" in line)
    assert row.count("ok, p50 ") == 2, out
    index = result.index_file.read_text()
    assert "<h2>retest: side by side</h2><table><tr><th>path and runtime</th><th>small</th><th>big</th></tr>" in index
    onnx_ms = [f"{s['paths']['onnx on CPUExecutionProvider']['p50_ms']:.3f} ms" for s in side]
    assert all(f"ok, p50 {ms}" in index for ms in onnx_ms), index
    assert package.is_file()  # the package re-tested is left as it was


@pytest.mark.slow
def test_timeout_kills_the_job_and_the_next_one_runs(tmp_path, worker_path, monkeypatch):
    pytest.importorskip("torch")
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("BATCH_TEST_MARKER_DIR", str(markers))
    monkeypatch.setenv("BATCH_TEST_SLEEP_S", "60")
    start = time.monotonic()
    result = nav.batch.run(
        [{**_job("slow", model="slow_torch_model"), "timeout_s": 3, "retries": 1}, _job("quick", model="broken_model")],
        tmp_path / "out",
        verbose=False,
    )
    assert time.monotonic() - start < 40
    slow = result["slow"]
    assert slow["status"] == "failed" and "timed out after 3 s" in slow["reason"] and slow["attempts"] == 2
    assert result["quick"]["status"] == "failed" and "on purpose" in result["quick"]["reason"]
    pids = [int(p.read_text()) for p in markers.glob("slow-*")]
    assert len(pids) == 2 and not any(_alive(p) for p in pids)


@pytest.mark.slow
def test_ctrl_c_cancels_running_and_queued_keeps_finished_and_a_rerun_goes_on(tmp_path):
    """Ctrl-C while the second of three jobs runs: the finished one keeps its package and record, the
    running and the queued ones are cancelled (the running one's process gone); a rerun skips the
    finished job and runs the other two."""
    pytest.importorskip("torch")
    markers = tmp_path / "markers"
    markers.mkdir()
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        yaml.safe_dump(
            [
                _job("first", export={"target_formats": ["onnx"]}),
                _job("slow", model="slow_torch_model"),
                _job("queued", model="broken_model"),
            ]
        )
    )
    env = repo_env(BATCH_TEST_MARKER_DIR=str(markers), BATCH_TEST_SLEEP_S="60")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env["PYTHONPATH"]])
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_navigator.cli.main", "batch", str(jobs), "-o", str(tmp_path / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    deadline = time.monotonic() + 60
    while not list(markers.glob("slow-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    records = {r["run_id"]: r for r in json.loads((tmp_path / "out" / "summary.json").read_text())["jobs"]}
    assert records["slow"]["status"] == "cancelled" and records["queued"]["status"] == "cancelled"
    assert "before it started" in records["queued"]["reason"] or "before it finished" in records["queued"]["reason"]
    pid = int(next(markers.glob("slow-*")).read_text())
    assert not _alive(pid)
    assert records["first"]["status"] == "ok", records["first"]  # finished before Ctrl-C: left in place
    package = tmp_path / "out" / "jobs" / "first" / records["first"]["package"]
    assert package.is_file()
    (markers / f"slow-{pid}").unlink()
    env["BATCH_TEST_SLEEP_S"] = "0"
    again = subprocess.run(
        [sys.executable, "-m", "model_navigator.cli.main", "batch", str(jobs), "-o", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert "1 done before" in again.stderr and "job first: started" not in again.stderr, again.stderr
    rerun = {r["run_id"]: r for r in json.loads((tmp_path / "out" / "summary.json").read_text())["jobs"]}
    assert rerun["first"].get("reused") and package.is_file()
    assert rerun["slow"]["status"] == "ok" and rerun["queued"]["status"] == "failed"
