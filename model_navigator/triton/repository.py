"""Write a Triton Inference Server model repository entry from a package:

    <repo>/<model_name>/config.pbtxt
    <repo>/<model_name>/<version>/model.onnx | model.pt | model.savedmodel/ | model.plan

for one path and runtime: the one given, or the best by a selection strategy (see
model_navigator.selection). config.pbtxt names the platform/backend the runtime maps to, the inputs
and outputs with Triton data types and dims (-1 for dynamic axes, the batch axis left out when
batching), max_batch_size and dynamic batching from the profiled batch sizes, and a CPU or GPU
instance group; it is checked against Triton's ModelConfig schema before anything is written.
"""

from __future__ import annotations

import copy
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from model_navigator.core.enums import Format, RuntimeProvider, parse_enum, resolve_runtime
from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.formats import CPU_RUNTIMES, FORMATS, TritonBackend
from model_navigator.core.logging import LOGGER
from model_navigator.core.status import NavigatorStatus, PathStatus
from model_navigator.triton.batching import Batching, plan_batching
from model_navigator.triton.config import (
    MODEL_NAME_PATTERN,
    TritonConfigError,
    TritonModelConfig,
    parse_model_config,
)
from model_navigator.triton.tensors import triton_names, triton_tensor

CONFIG_FILE = "config.pbtxt"


# How Triton serves one format on one runtime: declared beside the format (core/formats.py).
Backend = TritonBackend


def backend_for(fmt: Format, runtime: RuntimeProvider) -> Backend:
    """The Triton platform/backend for a path format and the runtime it was checked on."""
    backend = FORMATS[fmt].triton_backend(runtime) if fmt in FORMATS else None
    if backend is None:
        raise UserInputError(
            f"Triton has no backend for format {fmt.value!r} here; choose an ONNX, TorchScript, SavedModel or "
            f"TensorRT path (path_key=...)."
        )
    return backend


@dataclass
class TritonModel:
    """What write_model_repository wrote."""

    model_dir: Path
    version_dir: Path
    config_path: Path
    model_path: Path
    path: str
    runtime: RuntimeProvider
    config: TritonModelConfig
    renamed: Dict[str, str] = field(default_factory=dict)  # tensor name in the package -> name in Triton
    selection: Any = None  # the Selection when the path was chosen by a strategy
    batching: str = ""  # how max_batch_size was chosen, in one sentence


def sanitize_model_name(name: str) -> str:
    """`name` as a folder name Triton accepts: other characters become '_', no leading dot, never empty."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip()).lstrip(".") or "model"
    return cleaned


def _filtered_status(
    status: NavigatorStatus, path_key: Optional[str], runtime: Optional[RuntimeProvider]
) -> NavigatorStatus:
    paths = {}
    for key, path in status.paths.items():
        if path_key is not None and key != path_key:
            continue
        if runtime is not None:
            path = copy.copy(path)
            path.runtimes = {rt: r for rt, r in path.runtimes.items() if rt == runtime}
        paths[key] = path
    return replace(status, paths=paths)


def choose_path(
    status: NavigatorStatus,
    path_key: Optional[str],
    runtime: Optional[RuntimeProvider],
    strategy: Any,
    latency_budget_ms: Optional[float],
    max_precision_loss: Optional[float] = float("inf"),
) -> Tuple[PathStatus, RuntimeProvider, Any]:
    """The path and runtime to serve, and the Selection when a strategy decided it; `max_precision_loss`
    caps a reduced-precision (int8, bf16) result's relative L2 error (None: full precision only)."""
    from model_navigator.selection import NoRuntimeQualifiesError, select_runtime

    if path_key is None:
        selection = select_runtime(
            _filtered_status(status, None, runtime), strategy, latency_budget_ms, max_precision_loss=max_precision_loss
        )
        return status.paths[selection.path], selection.runtime, selection
    path = _named_path(status, path_key)
    if runtime is not None:
        result = path.runtimes.get(runtime)
        if result is not None and not result.unchecked and not result.passed:
            reason = result.correctness.reason if result.correctness is not None else None
            raise UserInputError(f"Path {path_key!r} failed correctness on {runtime.value}: {reason}.")
        _refuse_over_loss(path, {runtime: result}, max_precision_loss)
        if result is None or result.unchecked:  # a config for another machine: allowed, said
            LOGGER.warning("Path %s was never checked on %s here; writing it as asked", path_key, runtime.value)
        return path, runtime, None
    passed = _within_loss(path, path.passed_runtimes(), max_precision_loss)
    if len(passed) > 1:
        try:
            selection = select_runtime(
                _filtered_status(status, path_key, None),
                strategy,
                latency_budget_ms,
                max_precision_loss=max_precision_loss,
            )
            return path, selection.runtime, selection
        except NoRuntimeQualifiesError:
            pass  # not profiled: take the first that passed
    if passed:
        return path, passed[0], None
    checked = {rt: r.correctness.status.value for rt, r in path.runtimes.items() if not r.unchecked}  # type: ignore[union-attr]
    if checked:
        raise UserInputError(
            f"Path {path_key!r} passed correctness on no runtime "
            f"({', '.join(f'{rt.value} {st}' for rt, st in checked.items())})."
        )
    device = status.config.target_device
    rt = RuntimeProvider.CPU if device == "cpu" else RuntimeProvider.CUDA
    _refuse_over_loss(path, {rt: None}, max_precision_loss)
    return path, rt, None


def _named_path(status: NavigatorStatus, path_key: str) -> PathStatus:
    """The path `path_key` names, refused when absent, the source model, or not made (failed, skipped)."""
    path = status.paths.get(path_key)
    if path is None:
        raise UserInputError(f"No path {path_key!r} in this package; paths: {', '.join(status.paths)}.")
    if path.is_source:
        raise UserInputError(
            f"Path {path_key!r} is the source model, which is not part of a package; choose an exported path."
        )
    if not path.ok:
        raise UserInputError(f"Path {path_key!r} {path.status.value}: {path.reason}; it has no model to serve.")
    return path


def _within_loss(
    path: PathStatus, passed: List[RuntimeProvider], max_precision_loss: Optional[float]
) -> List[RuntimeProvider]:
    """The runtimes of `passed` that `max_precision_loss` keeps; refused when it keeps none of them."""
    from model_navigator.selection import precision_loss_reason

    if passed:
        _refuse_over_loss(path, {rt: path.runtimes[rt] for rt in passed}, max_precision_loss)
    return [rt for rt in passed if precision_loss_reason(path, path.runtimes[rt], max_precision_loss) is None]


def _refuse_over_loss(
    path: PathStatus, results: Dict[RuntimeProvider, Any], max_precision_loss: Optional[float]
) -> None:
    """A named reduced-precision path is refused when `max_precision_loss` excludes it on every runtime at hand."""
    from model_navigator.selection import precision_loss_reason

    reasons = {rt: precision_loss_reason(path, r, max_precision_loss) for rt, r in results.items()}
    if reasons and all(reasons.values()):
        why = "; ".join(f"{rt.value}: {reason}" for rt, reason in reasons.items())
        raise UserInputError(
            f"Path {path.key!r} is excluded by `max_precision_loss` ({why}); raise "
            f"max_precision_loss (--max-precision-loss) or name a full-precision path."
        )


def model_config_for(
    status: NavigatorStatus,
    path: PathStatus,
    runtime: RuntimeProvider,
    model_name: str,
    max_batch_size: Optional[int] = None,
    max_queue_delay_us: Optional[int] = None,
    instance_count: int = 1,
    batching: Optional[Batching] = None,
) -> Tuple[TritonModelConfig, Dict[str, str], Backend]:
    """The config.pbtxt of one path and runtime; `batching` defaults to plan_batching's without a budget."""
    backend = backend_for(path.format, runtime)
    batching = batching or plan_batching(status, path, runtime, max_batch_size)
    mbs, preferred, why = batching.max_batch_size, batching.preferred, batching.off
    if why and max_batch_size:
        raise UserInputError(f"max_batch_size={max_batch_size} cannot apply: {why}.")
    if why:
        LOGGER.info("Triton config for %s: no batching (%s)", model_name, why)
    batched = mbs > 0
    in_names, out_names, renamed = triton_names(status, backend)
    config = TritonModelConfig(
        name=model_name,
        platform=backend.platform,
        backend=backend.backend,
        default_model_filename=backend.default_model_filename,
        max_batch_size=mbs,
        inputs=[triton_tensor(m, batched, n) for m, n in zip(status.inputs, in_names, strict=True)],
        outputs=[triton_tensor(m, batched, n) for m, n in zip(status.outputs, out_names, strict=True)],
        instance_kind="KIND_CPU" if runtime in CPU_RUNTIMES else "KIND_GPU",
        instance_count=instance_count,
        dynamic_batching=mbs > 1,
        preferred_batch_sizes=preferred,
        max_queue_delay_us=max_queue_delay_us,
        parameters=backend_parameters(backend, path, runtime),
        gpu_execution_accelerators=list(backend.gpu_execution_accelerators),
    )
    return config, renamed, backend


def backend_parameters(backend: Backend, path: PathStatus, runtime: RuntimeProvider) -> Dict[str, str]:
    """The backend's parameters; OpenVINO also gets the inference precision the path was checked at
    (f32 for fp32 paths, as the runner pins it; bf16 for the bf16 path)."""
    parameters = dict(backend.parameters)
    if runtime == RuntimeProvider.OPENVINO:
        parameters["INFERENCE_PRECISION_HINT"] = str(path.reported.get("inference_precision_hint", "f32"))
    return parameters


def workdir_of(package: Any, stack: List[Any]) -> Tuple[Path, NavigatorStatus]:
    """(workspace folder, status) of a PackageDescriptor, a workspace folder or a .nav file; a workspace
    whose load did not finish is refused (it may lack the very files a repository or a server needs)."""
    from model_navigator.package.descriptor import PackageDescriptor

    if isinstance(package, PackageDescriptor):
        return _finished_load(package.workdir, package.status)
    target = Path(package)
    if target.is_dir():
        return _finished_load(target, NavigatorStatus.load(target))
    if target.is_file():
        from model_navigator.package.archive_extract import extract_archive

        tmp = tempfile.TemporaryDirectory(prefix="nav-triton-")
        stack.append(tmp)
        root = Path(tmp.name) / "workdir"
        extract_archive(target, root)  # validated; removed again if a check fails
        return root, NavigatorStatus.load(root)
    raise UserInputError(f"{str(package)!r} is neither a PackageDescriptor, a workspace folder nor a .nav file.")


def _finished_load(root: Path, status: NavigatorStatus) -> Tuple[Path, NavigatorStatus]:
    from model_navigator.core.runs import unfinished_load

    why = unfinished_load(status)
    if why is not None:
        raise PackageError(
            f"workspace {str(root)!r} is incomplete: {why}; load the package into it again "
            f"(nav.load(..., override_workdir=True)) before writing a Triton repository or serving it."
        )
    return root, status


def _check_arguments(
    version: Any, instance_count: Any, max_batch_size: Any, max_queue_delay_us: Any, model_name: Optional[str]
) -> None:
    """Refuse bad numbers and model names before the package is opened."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserInputError(f"`version` must be an integer >= 1, got {version!r}.")
    if isinstance(instance_count, bool) or not isinstance(instance_count, int) or instance_count < 1:
        raise UserInputError(f"`instance_count` must be an integer >= 1, got {instance_count!r}.")
    if max_batch_size is not None and (
        isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 0
    ):
        raise UserInputError(f"`max_batch_size` must be an integer >= 0, got {max_batch_size!r}.")
    if max_queue_delay_us is not None and (not isinstance(max_queue_delay_us, int) or max_queue_delay_us < 0):
        raise UserInputError(f"`max_queue_delay_us` must be an integer >= 0, got {max_queue_delay_us!r}.")
    if model_name is not None and not MODEL_NAME_PATTERN.match(model_name):
        raise UserInputError(
            f"`model_name` {model_name!r} is not a folder name Triton accepts (letters, digits, '_', '.', '-')."
        )


def _artifact_of(workdir: Path, path: PathStatus) -> Path:
    """The chosen path's model file or folder in the workspace, refused when status.yaml names none or it is gone."""
    if path.model_path is None:
        raise UserInputError(f"Path {path.key!r} has no artifact recorded in status.yaml.")
    artifact = workdir / path.model_path
    if not artifact.exists():
        raise UserInputError(f"The artifact of path {path.key!r} is missing: {artifact}.")
    return artifact


def _config_text(
    config: TritonModelConfig,
    path: PathStatus,
    runtime: RuntimeProvider,
    selection: Any,
    batching: Batching,
    renamed: Dict[str, str],
) -> str:
    """config.pbtxt with a header saying where it came from and why, checked against Triton's schema
    (when protobuf is there) so that nothing invalid is written."""
    header = [f"written by model-navigator from path {path.key!r} ({path.format.value}), runtime {runtime.value}"]
    if selection is not None:
        header.append(f"chosen by {selection.summary()}")
    header.append(batching.reason)
    if renamed:
        header.append(
            "tensors renamed for the PyTorch backend: " + ", ".join(f"{a} -> {b}" for a, b in renamed.items())
        )
    text = config.to_pbtxt(header)
    try:
        parse_model_config(text)  # Triton's schema and load-time rules, before writing anything
    except TritonConfigError as e:
        if "needs protobuf" not in str(e):
            raise
        LOGGER.warning("%s; config.pbtxt written without schema validation", e)
    return text


def _install(repo: Path, name: str, version: int, artifact: Path, filename: str, text: str, override: bool) -> Path:
    """Write `<repo>/<name>` in a staging folder beside it, then move it into place (replacing the old
    one only when `override`), so that a failure leaves no half-written model; return the model folder."""
    model_dir = repo / name
    if model_dir.exists() and not override:
        raise UserInputError(
            f"{str(model_dir)!r} already exists and was left untouched; pass override=True "
            f"(--override) to replace it, or choose another model_name."
        )
    repo.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=repo))
    try:
        version_dir = staging / str(version)
        version_dir.mkdir()
        target = version_dir / filename
        if artifact.is_dir():
            shutil.copytree(artifact, target)
        else:
            shutil.copy2(artifact, target)
        (staging / CONFIG_FILE).write_text(text)
        if model_dir.exists():
            shutil.rmtree(model_dir)
        staging.rename(model_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return model_dir


def write_model_repository(
    package: Union[Any, str, Path],
    repo_path: Union[str, Path],
    path_key: Optional[str] = None,
    runtime: Optional[Union[str, RuntimeProvider]] = None,
    strategy: Any = None,
    latency_budget_ms: Optional[float] = None,
    model_name: Optional[str] = None,
    version: int = 1,
    max_batch_size: Optional[int] = None,
    max_queue_delay_us: Optional[int] = None,
    instance_count: int = 1,
    override: bool = False,
    max_precision_loss: Optional[float] = float("inf"),
) -> TritonModel:
    """Write `<repo_path>/<model_name>/<version>/model.*` and `config.pbtxt` for one path of
    `package` (a PackageDescriptor, a workspace folder or a .nav file).

    The path is `path_key` (and `runtime`), or the best by `strategy` ('min-latency' by default;
    'max-throughput'; 'max-throughput-within-latency' with `latency_budget_ms`). max_batch_size
    defaults to the largest profiled batch size (with `latency_budget_ms`: the largest whose p99 meets
    it; see plan_batching, whose sentence is TritonModel.batching) and dynamic batching prefers the
    batch size with the highest measured throughput. `max_precision_loss` caps the relative L2 error of a
    reduced-precision (int8, bf16) path (None: full precision only; by default any that passed its budget
    and pays, see model_navigator.selection). An existing `<repo_path>/<model_name>` is refused unless `override`
    (then replaced; other models in the repository are never touched).
    """
    from model_navigator.core.workdir_lock import source_lock

    with source_lock(package, "triton"):  # a workspace is not read while another process writes it
        return _write_model_repository(
            package,
            repo_path,
            path_key,
            runtime,
            strategy,
            latency_budget_ms,
            model_name,
            version,
            max_batch_size,
            max_queue_delay_us,
            instance_count,
            override,
            max_precision_loss,
        )


def _write_model_repository(
    package: Union[Any, str, Path],
    repo_path: Union[str, Path],
    path_key: Optional[str],
    runtime: Optional[Union[str, RuntimeProvider]],
    strategy: Any,
    latency_budget_ms: Optional[float],
    model_name: Optional[str],
    version: int,
    max_batch_size: Optional[int],
    max_queue_delay_us: Optional[int],
    instance_count: int,
    override: bool,
    max_precision_loss: Optional[float],
) -> TritonModel:
    from model_navigator.selection import check_precision_loss, parse_strategy

    _check_arguments(version, instance_count, max_batch_size, max_queue_delay_us, model_name)
    check_precision_loss(max_precision_loss)
    strategy = parse_strategy(strategy, latency_budget_ms) if path_key is None else strategy
    rt = parse_enum(RuntimeProvider, runtime, "runtime") if runtime is not None else None

    stack: List[Any] = []
    try:
        workdir, status = workdir_of(package, stack)
        if rt is not None:  # the reference's PyTorchExecutionProvider / TensorFlowExecutionProvider
            rt = resolve_runtime(rt, status.config.target_device)
        path, rt, selection = choose_path(status, path_key, rt, strategy, latency_budget_ms, max_precision_loss)
        artifact = _artifact_of(workdir, path)
        name = model_name or sanitize_model_name(status.model_name)
        batching = plan_batching(
            status,
            path,
            rt,
            max_batch_size,
            latency_budget_ms,
            selection.latency_percentile if selection is not None and latency_budget_ms else 99,
        )
        config, renamed, backend = model_config_for(
            status, path, rt, name, max_batch_size, max_queue_delay_us, instance_count, batching
        )
        text = _config_text(config, path, rt, selection, batching, renamed)
        model_dir = _install(Path(repo_path), name, version, artifact, backend.filename, text, override)
        LOGGER.info("Triton model %s: %s (%s on %s)", name, model_dir, path.key, rt.value)
        return TritonModel(
            model_dir=model_dir,
            version_dir=model_dir / str(version),
            config_path=model_dir / CONFIG_FILE,
            model_path=model_dir / str(version) / backend.filename,
            path=path.key,
            runtime=rt,
            config=config,
            renamed=renamed,
            selection=selection,
            batching=batching.reason,
        )
    finally:
        for tmp in stack:
            tmp.cleanup()
