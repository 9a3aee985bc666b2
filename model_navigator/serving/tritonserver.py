"""Run the tritonserver binary that PyTriton ships on a model repository that model-navigator wrote,
so the config.pbtxt we write is read by the server itself, not only by the schema.

PyTriton's server carries one backend, `python` (no onnxruntime, pytorch, tensorflow or tensorrt
backend). A model whose backend the server has is loaded as written. Otherwise `python_backend_twin`
writes a sibling model whose config.pbtxt is ours with only the backend changed (`backend: "python"`,
no platform, no backend-specific parameters or accelerators): names, data types, dims, reshape,
max_batch_size, dynamic batching and the instance group are exactly what the writer produced, and
its model.py runs the very artifact (ONNX through onnxruntime, TorchScript through torch) inside
Triton's Python backend.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from model_navigator.core.errors import UserInputError
from model_navigator.serving.env import choose_ports, descendants, import_pytriton, reap, stub_library_path

TWIN_MODEL_PY = '''"""Python-backend twin written by model-navigator: runs {artifact} for the config.pbtxt beside it."""
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [(t["name"], pb_utils.triton_string_to_numpy(t["data_type"]), t.get("dims"))
                        for t in config["output"]]
        artifact = os.path.join(args["model_repository"], args["model_version"], "{artifact}")
        if artifact.endswith(".onnx"):
            import onnxruntime

            session = onnxruntime.InferenceSession(artifact, providers=["CPUExecutionProvider"])
            names = [n for n, _, _ in self.outputs]
            self.run = lambda feed: session.run(names, feed)
        else:
            import torch

            module = torch.jit.load(artifact, map_location="cpu").eval()

            def run(feed):
                with torch.inference_mode():
                    out = module(*[torch.from_numpy(feed[n]) for n in self.inputs])
                out = out if isinstance(out, (tuple, list)) else [out]
                return [o.numpy() for o in out]

            self.run = run

    def execute(self, requests):
        responses = []
        for request in requests:
            feed = {{n: pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in self.inputs}}
            values = self.run(feed)
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(n, np.ascontiguousarray(v, dtype=d)) for (n, d, _), v in zip(self.outputs, values)]))
        return responses
'''


def server_dist() -> Path:
    """PyTriton's tritonserver folder (bin/, backends/, python_backend_stubs/)."""
    pytriton = import_pytriton()
    return Path(pytriton.__file__).parent / "tritonserver"


def available_backends() -> List[str]:
    """The backends PyTriton's tritonserver can load (here: ['python'])."""
    return sorted(p.name for p in (server_dist() / "backends").iterdir() if p.is_dir() and p.name != "__pycache__")


def python_backend_twin(model: Any, repo: Path, name: Optional[str] = None) -> Path:
    """Write `<repo>/<name>` (default `<model>_python`): model.config (a TritonModel's) with the
    backend set to python, the same artifact, and a model.py that runs it. Returns the folder."""
    from model_navigator.triton.config import parse_model_config

    artifact = Path(model.model_path)
    if artifact.suffix not in (".onnx", ".pt"):
        raise UserInputError(f"The Python-backend twin runs ONNX and TorchScript models, not {artifact.name}.")
    name = name or f"{model.config.name}_python"
    config = replace(
        model.config,
        name=name,
        platform=None,
        backend="python",
        default_model_filename=None,
        parameters={},
        gpu_execution_accelerators=[],
    )
    text = config.to_pbtxt(
        [
            f"model-navigator's config.pbtxt of {model.config.name!r} with backend python "
            f"(the server has no {model.config.backend!r} backend)"
        ]
    )
    parse_model_config(text)
    folder = Path(repo) / name
    version_dir = folder / model.version_dir.name
    version_dir.mkdir(parents=True)
    shutil.copy2(artifact, version_dir / artifact.name)
    (version_dir / "model.py").write_text(TWIN_MODEL_PY.format(artifact=artifact.name))
    (folder / "config.pbtxt").write_text(text)
    return folder


def _die_with_parent() -> None:
    """In the server's process before exec: SIGTERM when the thread that started it dies."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class TritonServerProcess:
    """tritonserver (PyTriton's binary and Python backend) on `repo`, bound to `host` on the given or
    free ports; a context manager that waits until every model is ready and stops the server (and
    its stubs) on exit."""

    def __init__(
        self,
        repo: Path,
        host: str = "127.0.0.1",
        http_port: Optional[int] = None,
        grpc_port: Optional[int] = None,
        metrics_port: Optional[int] = None,
        timeout_s: float = 120.0,
    ):
        self.repo = Path(repo)
        self.host = host
        self.ports: Dict[str, int] = choose_ports(host, http_port, grpc_port, metrics_port)
        self.timeout_s = timeout_s
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self.process: Optional[subprocess.Popen] = None
        self.log_path: Optional[Path] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.ports['http_port']}"

    def _environment(self, libs: Path) -> Dict[str, str]:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = stub_library_path(
            os.pathsep.join(filter(None, [env.get("LD_LIBRARY_PATH"), str(libs)]))
        ) or str(libs)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # The stub's interpreter finds this environment's packages (numpy, onnxruntime, torch) here.
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p and Path(p).is_dir()])
        return env

    def start(self) -> "TritonServerProcess":
        dist = server_dist()
        self._tmp = tempfile.TemporaryDirectory(prefix="nav-tritonserver-")
        root = Path(self._tmp.name)
        backends = root / "backends"
        shutil.copytree(dist / "backends", backends)
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        shutil.copy2(
            dist / "python_backend_stubs" / version / "triton_python_backend_stub",
            backends / "python" / "triton_python_backend_stub",
        )
        self.log_path = root / "tritonserver.log"
        args = [
            str(dist / "bin" / "tritonserver"),
            f"--model-repository={self.repo}",
            f"--backend-directory={backends}",
            f"--cache-directory={dist / 'caches'}",
            f"--http-address={self.host}",
            f"--http-port={self.ports['http_port']}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.ports['grpc_port']}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.ports['metrics_port']}",
            "--exit-timeout-secs=10",
            "--strict-readiness=true",
            "--allow-gpu-metrics=false",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._environment(dist.parent.parent / "nvidia_pytriton.libs"),
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"tritonserver exited with {self.process.returncode} before it was ready:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"tritonserver was not ready within {self.timeout_s:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def model_config(self, name: str) -> Dict[str, Any]:
        """The configuration the server loaded for `name` (GET /v2/models/<name>/config)."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/v2/models/{name}/config", timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """SIGINT (Triton unloads its models and stops the stubs), SIGKILL after 30 s, then any stub
        still running after 10 s more is killed too; idempotent."""
        if self.process is not None and self.process.poll() is None:
            stubs = descendants(self.process.pid)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            reap(stubs, grace_s=10.0)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "TritonServerProcess":
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()
