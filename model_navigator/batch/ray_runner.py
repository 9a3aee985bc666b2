"""The Ray runner: each job a Ray task with its resources, its folder made on the node and sent back.

No shared filesystem is assumed: a re-test job's package travels to the node in the object store,
and the job's folder (.nav, report, log, result) comes back to the driver as a zip. A task lost
with its node is retried by Ray (`max_retries` = the job's `retries`); a job that no live node can
take any more is cancelled and reported failed with that reason instead of waiting forever.
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, List, Optional, Tuple

from model_navigator.batch.jobs import Resources, Run
from model_navigator.batch.local import Interrupted
from model_navigator.batch.process import Children, prepare_job_dir, run_job_process
from model_navigator.batch.worker import NODE_ENV, write_json
from model_navigator.core.errors import UserInputError

POLL_S = 0.5
FEASIBILITY_CHECK_S = 2.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise UserInputError(
            "--ray needs Ray: pip install 'model-navigator[ray]' (or run without --ray: local processes)."
        ) from e
    return ray


def connect(address: str) -> Callable[[], None]:
    """Join the cluster at `address` ("auto": the one this machine belongs to); returns what disconnects.
    A cluster with token authentication needs RAY_AUTH_MODE=token and its token (see the README)."""
    ray = _import_ray()
    if not isinstance(address, str) or not address:
        raise UserInputError(
            f"--ray must be a cluster address (host:port, ray://host:port) or 'auto', got {address!r}."
        )
    if ray.is_initialized():
        return lambda: None
    _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    except Exception as e:  # noqa: BLE001 - no cluster, wrong address, refused token
        raise UserInputError(
            f"cannot join the Ray cluster at {address!r}: {type(e).__name__}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        ) from e
    return ray.shutdown


def _check_reachable(address: str) -> None:
    """A host:port that does not answer is refused at once (ray.init would retry it for minutes)."""
    if address == "auto":
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UserInputError(f"--ray {address!r} is not host:port, ray://host:port or 'auto'.")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UserInputError(
            f"cannot join the Ray cluster at {address!r}: nothing answers there ({e}); start it "
            f"with `ray start --head` or give its address."
        ) from None


def _zip_folder(folder: Path) -> bytes:
    """The job's folder, without the workspace's bulk (its log and status.yaml stay, for a failed job)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if not path.is_file() or path.is_symlink():
                continue
            if rel.parts[0] == "workdir" and path.name not in ("navigator.log", "status.yaml"):
                continue
            archive.write(path, rel.as_posix())
    return buffer.getvalue()


def _unzip_folder(data: bytes, folder: Path) -> None:
    """Unpack a job's folder from its node; entries outside `folder` or links are refused."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"a job's folder from its node holds an unsafe entry {info.filename!r}")
        archive.extractall(folder)


def _task(spec: Dict[str, Any], package: Optional[bytes]) -> Tuple[Dict[str, Any], bytes]:
    """On the node: run the job in a child process in a temporary folder; its result and folder as a zip."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    os.environ[NODE_ENV] = f"{socket.gethostname()}:{node_id[:8]}"
    with tempfile.TemporaryDirectory(prefix="nav-batch-") as tmp:
        job_dir = Path(tmp) / "job"
        prepare_job_dir(job_dir)
        spec = dict(spec)
        if package is not None:
            spec["package_file"] = str(Path(tmp) / "input.nav")
            Path(spec["package_file"]).write_bytes(package)
        result = run_job_process(spec, job_dir, spec.get("timeout_s"), 0, Children())
        result["node_id"] = node_id
        write_json(job_dir / "result.json", result)
        return result, _zip_folder(job_dir)


def _feasible(ray: Any, resources: Resources) -> bool:
    """Some live node has (in total) what the job asks for."""
    need = {"CPU": resources.cpus, "GPU": resources.gpus, **resources.custom}
    for node in ray.nodes():
        if node.get("Alive") and all(node.get("Resources", {}).get(k, 0) >= v for k, v in need.items() if v):
            return True
    return False


def _infeasible(run: Run, submitted: Optional[float] = None) -> Dict[str, Any]:
    """The result of a job no live node can take: never submitted, or lost with its node (`submitted`)."""
    r = run.resources
    need = f"cpus={r.cpus:g} gpus={r.gpus:g} custom={r.custom}"
    if submitted is None:
        return {
            "status": "failed",
            "reason": f"no live node of the cluster offers {need}: none of that kind joined "
            f"(or it died); not submitted",
            "wall_s": 0.0,
        }
    return {
        "status": "failed",
        "wall_s": time.perf_counter() - submitted,
        "reason": f"lost: no live node offers {need} any more (the node it ran or waited on died); "
        f"retries={run.job.retries} cannot place it, so it was cancelled",
    }


def _submit(ray: Any, run: Run, task: Any, packages: Dict[str, Any]) -> Any:
    package_ref = None
    if run.job.package is not None:
        if run.job.package not in packages:
            packages[run.job.package] = ray.put(Path(run.job.package).read_bytes())
        package_ref = packages[run.job.package]
    r = run.resources
    options: Dict[str, Any] = {
        "num_cpus": r.cpus,
        "num_gpus": r.gpus,
        "max_retries": run.job.retries,
        "retry_exceptions": False,
    }
    if r.custom:
        options["resources"] = r.custom
    return task.options(**options).remote(run.spec(), package_ref)


def _collect(ray: Any, ref: Any, run: Run, jobs_dir: Path, submitted: float) -> Dict[str, Any]:
    job_dir = jobs_dir / run.run_id
    prepare_job_dir(job_dir)
    try:
        result, folder = ray.get(ref)
        _unzip_folder(folder, job_dir)
    except Exception as e:  # noqa: BLE001 - a lost node, a cancelled task, an unsafe folder: the job's result
        text = str(e).strip().splitlines()
        result = {
            "status": "failed",
            "reason": f"{type(e).__name__}: {text[0] if text else ''}".strip(),
            "wall_s": time.perf_counter() - submitted,
        }
    result["queued_s"] = max(0.0, time.perf_counter() - submitted - float(result.get("wall_s", 0)))
    return result


def run_ray(runs: List[Run], jobs_dir: Path, progress: Callable[[str, Run, Dict], None]) -> Dict[str, Dict]:
    """Results by run id; Ctrl-C cancels what is queued or running and raises Interrupted with the rest."""
    ray = _import_ray()
    task = ray.remote(_task)
    results: Dict[str, Dict] = {}
    pending: Dict[Any, Tuple[Run, float]] = {}
    packages: Dict[str, Any] = {}
    try:
        for run in runs:
            if not _feasible(ray, run.resources):
                results[run.run_id] = _infeasible(run)
                progress("finished", run, results[run.run_id])
                continue
            pending[_submit(ray, run, task, packages)] = (run, time.perf_counter())
            progress("submitted", run, {})
        last_check = time.perf_counter()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                run, submitted = pending.pop(ref)
                results[run.run_id] = _collect(ray, ref, run, jobs_dir, submitted)
                progress("finished", run, results[run.run_id])
            if time.perf_counter() - last_check >= FEASIBILITY_CHECK_S:
                last_check = time.perf_counter()
                for ref, (run, submitted) in list(pending.items()):
                    if not _feasible(ray, run.resources):
                        ray.cancel(ref, force=True)
                        del pending[ref]
                        results[run.run_id] = _infeasible(run, submitted)
                        progress("finished", run, results[run.run_id])
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise Interrupted(results) from None
    return results
