"""A real Triton Inference Server (PyTriton's tritonserver and Python backend) and its real client on
loopback ports: a tiny CNN exported and profiled here is served, its correctness samples go through
the server and come back equal to the saved outputs, the load test measures it, the config.pbtxt
nav.triton writes is loaded by the server, and no server or stub process outlives its owner.

Needs `pip install 'model-navigator[serve]'`, which cannot share an environment with this project's
TensorFlow/JAX (see the README); scripts/test.sh runs this file in .venv-serve."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest

if os.environ.get("MODEL_NAVIGATOR_SERVE_STAGE") == "1":
    # scripts/test.sh's serving stage, in the environment built for serving: a missing PyTriton is an error.
    import pytriton  # noqa: F401
else:
    pytest.importorskip(
        "pytriton",
        reason="PyTriton is not installed here (pip install 'model-navigator[serve]'); "
        "scripts/test.sh runs these tests in .venv-serve",
    )
torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import model_navigator as nav  # noqa: E402
from model_navigator.core.samples import load_sample_dir  # noqa: E402
from model_navigator.core.workspace import Workspace  # noqa: E402
from model_navigator.runners.registry import make_runner  # noqa: E402
from model_navigator.serving.env import descendants, triton_processes  # noqa: E402

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]
LIGHT = dict(measurement_request_count=15, max_trials=4, warmup_requests=2, stability_percentage=50)


def ours() -> List[dict]:
    """Triton processes below this test process."""
    mine = set(descendants(os.getpid()))
    return [p for p in triton_processes() if p["pid"] in mine]


def gone(pids: List[int], within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        alive = {p["pid"] for p in triton_processes()}
        if not alive.intersection(pids):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    import models

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("serve")
    package = nav.torch.export(
        models.cnn_model(),
        models.cnn_dataloader(),
        workdir=root / "navigator_workdir",
        model_name="tiny-cnn",
        target_formats=("onnx", "torchscript"),
        jit_options=("trace",),
        profiler_config=nav.ProfilerConfig(batch_sizes=(1, 2, 4), **LIGHT),
        verbose=False,
    )
    nav.save(package, root / "tiny_cnn.nav")
    return package, root / "tiny_cnn.nav"


def correctness_pairs(package):
    workspace = Workspace(package.workdir)
    return list(
        zip(
            load_sample_dir(workspace.input_dir("correctness")),
            load_sample_dir(workspace.output_dir("correctness")),
            strict=True,
        )
    )


def test_real_server_answers_the_correctness_samples_and_stops_clean(cnn):
    package, _ = cnn
    best = package.get_best()
    with nav.serve(package) as served:
        assert (served.path, served.runtime) == (best.path, best.runtime)
        assert served.url.startswith("http://127.0.0.1:")
        running = ours()
        assert {p["name"] for p in running} >= {"tritonserver", "triton_python_b"}, running
        # The server's own view of the model: the package's names, dtypes, dims and batching.
        import urllib.request

        with urllib.request.urlopen(f"{served.url}/v2/models/{served.model_name}/config") as r:
            config = json.loads(r.read())
        assert config["max_batch_size"] == 4 == served.plan.max_batch_size
        assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
            (m.name, "TYPE_FP32", [3, 32, 32]) for m in package.status.inputs
        ]
        assert [t["name"] for t in config["output"]] == [m.name for m in package.status.outputs]
        assert "dynamic_batching" in config
        recorded = package.status.paths[best.path].runtimes[best.runtime].correctness.per_output
        runner = make_runner(package.workdir, package.status, package.status.paths[best.path], best.runtime)
        pairs = correctness_pairs(package)
        assert pairs
        with runner:
            for inputs, expected in pairs:
                got = served.infer(inputs)
                local = runner.infer(inputs)
                assert set(got) == set(expected)
                for name, want in expected.items():
                    assert got[name].shape == want.shape and got[name].dtype == want.dtype
                    # the same error as the in-process correctness check measured, and the runner's own numbers
                    assert np.max(np.abs(got[name] - want)) <= recorded[name].max_abs_error * 1.01 + 1e-6
                    np.testing.assert_allclose(got[name], local[name], rtol=1e-5, atol=1e-6)
    pids = [p["pid"] for p in running]
    assert not served.running
    assert gone(pids, within_s=5), triton_processes()


def test_chosen_path_runtime_and_refusals(cnn):
    package, nav_file = cnn
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(nav.UserInputError, match="is not free"):
            nav.serve(nav_file, http_port=busy.getsockname()[1])
    with pytest.raises(nav.UserInputError, match="No path 'tensorrt'"):
        nav.serve(nav_file, path_key="tensorrt")
    assert not ours()
    with nav.serve(
        nav_file, path_key="torchscript-trace", runtime="CPUExecutionProvider", max_batch_size=2, model_name="cnn_ts"
    ) as served:
        assert (served.path, served.model_name, served.plan.max_batch_size) == ("torchscript-trace", "cnn_ts", 2)
        inputs, expected = correctness_pairs(package)[0]
        got = served.infer(inputs)
        name = package.status.outputs[0].name
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-5)
        with pytest.raises(Exception, match="batch-size must be <= 2"):
            served.infer({k: np.repeat(v[:1], 3, axis=0) for k, v in inputs.items()})
    with nav.serve(package, path_key="onnx", max_batch_size=0) as served:  # unbatched: whole tensors, dims -1
        assert served.plan.max_batch_size == 0 and [t.dims for t in served.plan.inputs] == [(-1, 3, 32, 32)]
        for inputs, expected in correctness_pairs(package)[:2]:
            got = served.infer(inputs)
            for name, want in expected.items():
                np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5)
    assert not ours()


def test_loadtest_command_reports_served_and_in_process_figures(cnn, tmp_path):
    _, nav_file = cnn
    out = tmp_path / "loadtest.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_navigator",
            "loadtest",
            str(nav_file),
            "--concurrency",
            "1",
            "2",
            "--measurement-request-count",
            "20",
            "--max-trials",
            "4",
            "--warmup-requests",
            "2",
            "--stability-percentage",
            "50",
            "--json",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| concurrency | served p50 ms" in done.stdout and "in-process p50 ms" in done.stdout
    report = json.loads(out.read_text())
    assert [r["concurrency"] for r in report["rows"]] == [1, 2]
    for row in report["rows"]:
        served, local = row["served"], row["inprocess"]
        assert 0 < served["p50_ms"] <= served["p90_ms"] <= served["p99_ms"]
        assert served["throughput"] > 0 and local["throughput"] > 0 and served["request_count"] >= 3 * 20 - 2
        assert served["p50_ms"] > local["p50_ms"]  # a request through HTTP and the Python backend costs more
    assert report["profiled"]["p50_ms"] > 0 and report["max_batch_size"] == 4
    assert not ours()


def test_config_pbtxt_we_write_is_loaded_by_the_real_server(cnn, tmp_path):
    """Our config.pbtxt for the ONNX path, with only its backend switched to the python backend that PyTriton's
    server ships (it has no onnxruntime backend), is loaded by tritonserver and serves the samples."""
    from model_navigator.serving.tritonserver import TritonServerProcess, available_backends, python_backend_twin

    package, _ = cnn
    assert "onnxruntime" not in available_backends() and "python" in available_backends()
    model = nav.triton.write_model_repository(package, tmp_path / "repo", path_key="onnx", model_name="cnn")
    serve_repo = tmp_path / "served"
    twin = python_backend_twin(model, serve_repo)
    with TritonServerProcess(serve_repo) as server:
        loaded = server.model_config(twin.name)
        ours_cfg = model.config
        assert loaded["backend"] == "python" and loaded["max_batch_size"] == ours_cfg.max_batch_size == 4
        assert [(t["name"], t["data_type"], t["dims"]) for t in loaded["input"]] == [
            (t.name, t.data_type, list(t.dims)) for t in ours_cfg.inputs
        ]
        assert [(t["name"], t["data_type"], t["dims"]) for t in loaded["output"]] == [
            (t.name, t.data_type, list(t.dims)) for t in ours_cfg.outputs
        ]
        assert loaded["dynamic_batching"]["preferred_batch_size"] == ours_cfg.preferred_batch_sizes
        assert loaded["instance_group"][0]["kind"] == "KIND_CPU"
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(server.url.split("//")[1])
        try:
            for inputs, expected in correctness_pairs(package):
                request = []
                for name, value in inputs.items():
                    tensor = httpclient.InferInput(name, list(value.shape), "FP32")
                    tensor.set_data_from_numpy(value)
                    request.append(tensor)
                answer = client.infer(twin.name, request)
                for name, want in expected.items():
                    np.testing.assert_allclose(answer.as_numpy(name), want, rtol=1e-4, atol=1e-5)
        finally:
            client.close()
        pids = [p["pid"] for p in ours()]
        assert len(pids) == 2
    assert gone(pids, within_s=2), triton_processes()


def test_server_stops_when_the_with_block_raises(cnn):
    package, _ = cnn
    with pytest.raises(RuntimeError, match="^the user's code failed$"):
        with nav.serve(package) as served:
            pids = [p["pid"] for p in ours()]
            assert len(pids) == 2 and served.running, triton_processes()
            raise RuntimeError("the user's code failed")
    assert not served.running
    assert gone(pids, within_s=5), triton_processes()


def test_server_stops_when_the_program_exits_normally(cnn, tmp_path):
    """No `with`, no stop(): the program's normal end stops tritonserver and its stub, and the exit is clean."""
    _, nav_file = cnn
    script = tmp_path / "serve_and_return.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, sys
        import model_navigator as nav
        served = nav.serve({str(nav_file)!r})
        print(os.getpid(), flush=True)
        sys.stdin.readline()  # the test has seen the server's processes: end the program normally
    """)
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == str(child.pid)
        below = set(descendants(child.pid))
        pids = [p["pid"] for p in triton_processes() if p["pid"] in below]
        assert len(pids) == 2, triton_processes()
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
        assert gone(pids, within_s=10), triton_processes()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_server_dies_with_the_process_that_started_it(cnn, tmp_path):
    """kill -9 of the serving process: PyTriton's parent-death signal stops tritonserver, which stops its stub."""
    _, nav_file = cnn
    script = tmp_path / "serve_and_hang.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, sys, time
        import model_navigator as nav
        served = nav.serve({str(nav_file)!r})
        print(os.getpid(), flush=True)
        time.sleep(600)
    """)
    )
    child = subprocess.Popen([sys.executable, str(script)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == str(child.pid)
        below = set(descendants(child.pid))
        pids = [p["pid"] for p in triton_processes() if p["pid"] in below]
        assert len(pids) == 2
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert gone(pids, within_s=30), triton_processes()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_serve_command_stops_the_server_on_ctrl_c(cnn):
    _, nav_file = cnn
    child = subprocess.Popen(
        [sys.executable, "-m", "model_navigator", "serve", str(nav_file), "--path", "onnx"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not any("serving until Ctrl-C" in line for line in lines):
            line = child.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        assert "onnx on CPUExecutionProvider" in "".join(lines) and "HTTP http://127.0.0.1:" in "".join(lines)
        below = set(descendants(child.pid))
        pids = [p["pid"] for p in triton_processes() if p["pid"] in below]
        assert len(pids) == 2
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=60) == 130
        assert gone(pids, within_s=2), triton_processes()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_readme_serving_snippet_runs_on_the_readme_example(tmp_path):
    """README "Serving with PyTriton", as written, on the package the README's Use snippet makes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_readme import python_snippets, run_snippet

    snippets = python_snippets()
    code = (
        snippets["Use"][0]
        + snippets["Serving with PyTriton"][0]
        + textwrap.dedent("""
        print("served outputs", sorted(outputs), outputs["output__0"].shape)
        print("loadtest rows", len(report.to_markdown().splitlines()) > 2)
    """)
    )
    out = run_snippet(code, tmp_path)
    assert "served outputs ['output__0'] (2, 7)" in out and "loadtest rows True" in out, out


def readme_serving_commands() -> List[str]:
    """The lines of the ```bash block in the README's "Serving with PyTriton" section."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Serving with PyTriton\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("\n```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_the_readme_serving_commands_run_as_written(tmp_path):
    """Each `model-navigator serve/loadtest` line of the README, as written (bash, the environment's
    model-navigator on PATH), on the package the README's Use snippet makes: a load test ends by itself
    with exit 0, a server serves until Ctrl-C and then exits 130 with its Triton processes gone."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_readme import python_snippets, run_snippet

    run_snippet(python_snippets()["Use"][0], tmp_path)
    lines = readme_serving_commands()
    assert len(lines) == 4 and all(line.startswith("model-navigator ") for line in lines), lines
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    for line in lines:
        child = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            if "loadtest" in line.split("#")[0]:
                out, err = child.communicate(timeout=600)
                assert child.returncode == 0, (line, out[-2000:], err[-4000:])
                assert "| concurrency | served p50 ms |" in out, (line, out[-2000:])
                continue
            seen = []
            while not any("serving until Ctrl-C" in text for text in seen):
                text = child.stderr.readline()
                assert text, (line, "".join(seen)[-4000:])
                seen.append(text)
            pids = [p["pid"] for p in triton_processes() if p["pid"] in set(descendants(child.pid))]
            assert len(pids) == 2, (line, triton_processes())
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=60) == 130, line
            assert gone(pids, within_s=5), (line, triton_processes())
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert json.loads((tmp_path / "loadtest.json").read_text())
