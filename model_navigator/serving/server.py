"""nav.serve: the package's best verified runner (or a chosen path and runtime) behind a real Triton
Inference Server, through PyTriton's Python backend.

    with nav.serve(package) as served:            # free loopback ports unless given
        outputs = served.infer({"x": batch})      # through Triton's HTTP endpoint
        print(served.url, served.plan.batching)

The server stops when the `with` block ends (normally, on an exception or Ctrl-C), at interpreter
exit (PyTriton's atexit), and if this process dies (PyTriton starts tritonserver with
PR_SET_PDEATHSIG; the Python-backend stubs watch their server). Start it from the main thread: the
kernel's parent-death signal follows the thread that started the server.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from model_navigator.core.enums import RuntimeProvider
from model_navigator.core.errors import UserInputError
from model_navigator.serving.env import choose_ports, import_pytriton, python_backend_environment
from model_navigator.serving.plan import ServePlan, plan_serving

LOGGER = logging.getLogger(__name__)


def _np_dtype(tensor: Any, status: Any, which: str) -> np.dtype:
    """The numpy dtype the package recorded for a tensor (TensorMetadata.dtype)."""
    metas = status.inputs if which == "input" else status.outputs
    return np.dtype(next(m.dtype for m in metas if m.name == tensor.name))


def make_infer_func(runner: Any, plan: ServePlan) -> Callable[..., Any]:
    """PyTriton's inference callable: the batch Triton formed (dynamic batching stacks requests along
    axis 0) goes through the active runner; scalars travel as dims [1] as config.pbtxt declares them."""
    from pytriton.decorators import batch

    batched = plan.max_batch_size > 0
    scalar_in = {t.name for t in plan.inputs if t.reshape == ()}
    scalar_out = {t.name for t in plan.outputs if t.reshape == ()}
    out_dtypes = {t.name: _np_dtype(t, plan.status, "output") for t in plan.outputs}
    lock = threading.Lock()  # one model instance: requests reach the runner one batch at a time

    def infer(**inputs: np.ndarray) -> Dict[str, np.ndarray]:
        feed = {}
        for name, value in inputs.items():
            if name in scalar_in:
                value = value.reshape(value.shape[:1] if batched else ())
            feed[name] = np.ascontiguousarray(value)
        with lock:
            outputs = runner.infer(feed, check_inputs=False)
        result = {}
        for name, dtype in out_dtypes.items():
            value = np.asarray(outputs[name], dtype=dtype)
            if name in scalar_out:
                value = value.reshape((-1, 1) if batched else (1,))
            result[name] = value
        return result

    if batched:
        return batch(infer)

    def infer_each(requests: List[Any]) -> List[Dict[str, np.ndarray]]:
        """Unbatched (max_batch_size 0): every request is a whole input, run on its own."""
        return [infer(**dict(request.items())) for request in requests]

    return infer_each


class ServedModel:
    """A running Triton server with one model bound to a package's runner; stop() (or leaving the
    `with` block) stops the server, deactivates the runner and removes any unpacked package."""

    def __init__(self, plan: ServePlan, triton: Any, runner: Any, host: str, ports: Dict[str, int], stack: List[Any]):
        self.plan = plan
        self.host = host
        self.http_port = ports["http_port"]
        self.grpc_port = ports["grpc_port"]
        self.metrics_port = ports["metrics_port"]
        self._triton = triton
        self._runner = runner
        self._stack = stack
        self._stopped = False
        self._clients: Dict[int, Any] = {}

    @property
    def model_name(self) -> str:
        return self.plan.model_name

    @property
    def path(self) -> str:
        return self.plan.path.key

    @property
    def runtime(self) -> RuntimeProvider:
        return self.plan.runtime

    @property
    def runner(self) -> Any:
        """The active runner the server hands its batches to (the load test also calls it in process)."""
        return self._runner

    @property
    def url(self) -> str:
        """Triton's HTTP endpoint, e.g. http://127.0.0.1:8000."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.host}:{self.grpc_port}"

    @property
    def running(self) -> bool:
        return not self._stopped and self._triton.is_alive()

    def client(self, grpc: bool = False, timeout_s: float = 60.0) -> Any:
        """A new PyTriton ModelClient for the model (one per thread; close it, or use it as a context manager)."""
        from pytriton.client import ModelClient

        return ModelClient(
            self.grpc_url if grpc else self.url,
            self.model_name,
            init_timeout_s=timeout_s,
            inference_timeout_s=timeout_s,
        )

    def infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """One request through Triton's HTTP endpoint (the batch axis first when the model batches)."""
        key = threading.get_ident()
        if key not in self._clients:
            self._clients[key] = self.client()
        client = self._clients[key]
        if self.plan.max_batch_size > 0:
            return client.infer_batch(**feed)
        return client.infer_sample(**feed)

    def wait(self) -> None:
        """Serve until Ctrl-C (KeyboardInterrupt propagates, so `with` stops the server) or the server dies."""
        while self.running:
            threading.Event().wait(0.5)

    def stop(self) -> None:
        """Stop the server (Triton unloads the model, the stubs exit), then release the runner; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for client in self._clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - the server may already be gone
                pass
        self._clients.clear()
        try:
            self._triton.stop()
        finally:
            try:
                self._runner.deactivate()
            finally:
                for item in reversed(self._stack):
                    item.cleanup()
                self._stack.clear()

    def __enter__(self) -> "ServedModel":
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def describe(self) -> str:
        """What is served where: model, path, runtime, endpoints, batching."""
        return (
            f"{self.plan.summary()}\n  HTTP {self.url}  gRPC {self.grpc_url}  metrics port {self.metrics_port}\n"
            f"  {self.plan.batching}"
        )


def _check_queue_delay(max_queue_delay_us: Any) -> None:
    """Refuse a queue delay PyTriton's DynamicBatcher cannot take, before any port or package is touched."""
    if isinstance(max_queue_delay_us, bool) or not isinstance(max_queue_delay_us, int) or max_queue_delay_us < 0:
        raise UserInputError(f"`max_queue_delay_us` must be an integer >= 0, got {max_queue_delay_us!r}.")


def _model_config(plan: ServePlan, max_queue_delay_us: int) -> Tuple[List[Any], List[Any], Any]:
    """PyTriton's inputs, outputs and ModelConfig: the package's dtypes, config.pbtxt's dims and batching."""
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    inputs = [Tensor(name=t.name, dtype=_np_dtype(t, plan.status, "input"), shape=tuple(t.dims)) for t in plan.inputs]
    outputs = [
        Tensor(name=t.name, dtype=_np_dtype(t, plan.status, "output"), shape=tuple(t.dims)) for t in plan.outputs
    ]
    config = ModelConfig(
        batching=plan.max_batch_size > 0,
        max_batch_size=max(plan.max_batch_size, 1),
        batcher=DynamicBatcher(
            max_queue_delay_microseconds=max_queue_delay_us, preferred_batch_size=plan.preferred_batch_sizes or None
        ),
    )
    return inputs, outputs, config


def _log_file(verbose: bool, stack: List[Any]) -> Optional[Path]:
    """Where tritonserver logs unless `verbose` (a temporary folder joining `stack`): PyTriton echoes the
    server's log on stdout otherwise."""
    if verbose:
        return None
    logs = tempfile.TemporaryDirectory(prefix="nav-serve-")
    stack.append(logs)
    return Path(logs.name) / "tritonserver.log"


def _triton_config(host: str, ports: Dict[str, int], verbose: bool, log_file: Optional[Path]) -> Any:
    """PyTriton's TritonConfig: every endpoint on `host` at `ports`, logging to `log_file` (or verbosely)."""
    from pytriton.triton import TritonConfig

    return TritonConfig(
        http_address=host,
        grpc_address=host,
        metrics_address=host,
        log_verbose=1 if verbose else None,
        log_file=log_file,
        allow_gpu_metrics=False,
        **ports,
    )


def _quiet(triton: Any, verbose: bool) -> None:
    """Stop PyTriton echoing what tritonserver prints (its shutdown line) on our stdout; its log is in the log file."""
    server = getattr(triton, "_triton_server", None)
    if not verbose and server is not None and hasattr(server, "_verbose"):
        server._verbose = False


def _abandon(log_file: Optional[Path], triton: Any, runner: Any, stack: List[Any]) -> None:
    """After a failed start: show Triton's last log lines, then stop the server, release the runner and
    remove what `stack` holds, in that order even when one of them fails."""
    if log_file is not None and log_file.exists():
        tail = log_file.read_text(errors="replace").splitlines()[-30:]
        LOGGER.error("Triton's log (last lines):\n%s", "\n".join(tail))
    try:
        if triton is not None:
            triton.stop()
    finally:
        if runner is not None and getattr(runner, "is_active", False):
            runner.deactivate()
        for item in reversed(stack):
            item.cleanup()


def serve(
    package: Union[Any, str, Path],
    path_key: Optional[str] = None,
    runtime: Optional[Union[str, RuntimeProvider]] = None,
    strategy: Any = None,
    latency_budget_ms: Optional[float] = None,
    model_name: Optional[str] = None,
    max_batch_size: Optional[int] = None,
    max_queue_delay_us: int = 0,
    host: str = "127.0.0.1",
    http_port: Optional[int] = None,
    grpc_port: Optional[int] = None,
    metrics_port: Optional[int] = None,
    verbose: bool = False,
    max_precision_loss: Optional[float] = float("inf"),
) -> ServedModel:
    """Start a Triton server serving one path of `package` (a PackageDescriptor, workspace folder or
    .nav file) and return once the model is ready.

    The path is `path_key` (and `runtime`), or the best by `strategy` (see nav.triton.write_model_repository:
    the same choice, `max_precision_loss` included, and only a path and runtime that passed correctness).
    Inputs and outputs keep the package's names, dtypes and dims (-1 on dynamic axes); max_batch_size comes
    from the profiled batch sizes as in config.pbtxt (`max_batch_size` wins; 0 serves unbatched) with dynamic
    batching. Ports are the ones given (refused when busy) or free ones on `host` (loopback by default).
    """
    import_pytriton()  # before anything else: the install hint
    from pytriton.triton import Triton

    from model_navigator.runners.registry import make_runner

    _check_queue_delay(max_queue_delay_us)
    ports = choose_ports(host, http_port, grpc_port, metrics_port)
    stack: List[Any] = []
    runner = triton = log_file = None
    try:
        plan = plan_serving(
            package,
            stack,
            path_key,
            runtime,
            strategy,
            latency_budget_ms,
            model_name,
            max_batch_size,
            max_precision_loss,
        )
        source = getattr(package, "source_model", None)
        runner = make_runner(plan.workdir, plan.status, plan.path, plan.runtime, source)
        runner.activate()  # load the model before the server starts: its errors come first
        inputs, outputs, config = _model_config(plan, max_queue_delay_us)
        log_file = _log_file(verbose, stack)
        triton = Triton(config=_triton_config(host, ports, verbose, log_file))
        triton.bind(
            plan.model_name, make_infer_func(runner, plan), inputs=inputs, outputs=outputs, config=config, strict=True
        )
        with python_backend_environment():
            triton.run()
        _quiet(triton, verbose)
        LOGGER.info("serving %s at http://%s:%d", plan.summary(), host, ports["http_port"])
        return ServedModel(plan, triton, runner, host, ports, stack)
    except BaseException:
        _abandon(log_file, triton, runner, stack)
        raise
