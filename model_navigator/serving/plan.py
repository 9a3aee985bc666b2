"""What to serve, decided before any server starts: the path and runtime (the given one, or the best
by a selection strategy, as for Triton model repositories), checked to have passed correctness, and
its tensors and batching exactly as config.pbtxt would declare them (model_navigator.triton)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

from model_navigator.core.enums import RuntimeProvider, parse_enum, resolve_runtime
from model_navigator.core.errors import UserInputError
from model_navigator.core.status import NavigatorStatus, PathStatus
from model_navigator.triton.config import MODEL_NAME_PATTERN, TritonTensor
from model_navigator.triton.tensors import triton_tensor


def triton_tensors(status: NavigatorStatus, batched: bool) -> Tuple[List[TritonTensor], List[TritonTensor]]:
    """Inputs and outputs under the package's own names with Triton data types and dims (the batch axis
    left out when `batched`), by the repository writer's own rule (triton.tensors.triton_tensor)."""
    return (
        [triton_tensor(m, batched, m.name) for m in status.inputs],
        [triton_tensor(m, batched, m.name) for m in status.outputs],
    )


@dataclass
class ServePlan:
    """The path and runtime to serve, with Triton's view of its tensors and batching."""

    workdir: Path
    status: NavigatorStatus
    path: PathStatus
    runtime: RuntimeProvider
    model_name: str
    inputs: List[TritonTensor]
    outputs: List[TritonTensor]
    max_batch_size: int
    preferred_batch_sizes: List[int]
    batching: str  # the sentence saying how max_batch_size was chosen (plan_batching's)
    selection: Any = None  # the Selection when a strategy chose the path

    def summary(self) -> str:
        """One line: which path on which runtime, and why (the selection), for logs and the CLI."""
        chosen = f"{self.path.key} on {self.runtime.value}"
        if self.selection is not None:
            chosen = self.selection.summary()
        return f"model {self.model_name!r}: {chosen}"


def plan_serving(
    package: Union[Any, str, Path],
    stack: List[Any],
    path_key: Optional[str] = None,
    runtime: Optional[Union[str, RuntimeProvider]] = None,
    strategy: Any = None,
    latency_budget_ms: Optional[float] = None,
    model_name: Optional[str] = None,
    max_batch_size: Optional[int] = None,
    max_precision_loss: Optional[float] = float("inf"),
) -> ServePlan:
    """Decide what `package` (a PackageDescriptor, workspace folder or .nav file; a .nav is unpacked into
    a temporary folder that joins `stack`) serves; every refusal is a UserInputError raised here.
    `max_precision_loss` caps a reduced-precision result's relative L2 error (None: full precision only)."""
    from model_navigator.selection import check_precision_loss, parse_strategy
    from model_navigator.triton.batching import plan_batching
    from model_navigator.triton.repository import choose_path, sanitize_model_name, workdir_of

    if model_name is not None and not MODEL_NAME_PATTERN.match(model_name):
        raise UserInputError(
            f"`model_name` {model_name!r} is not a name Triton accepts (letters, digits, '_', '.', '-')."
        )
    if max_batch_size is not None and (
        isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 0
    ):
        raise UserInputError(f"`max_batch_size` must be an integer >= 0, got {max_batch_size!r}.")
    check_precision_loss(max_precision_loss)
    strategy = parse_strategy(strategy, latency_budget_ms) if path_key is None else strategy
    rt = parse_enum(RuntimeProvider, runtime, "runtime") if runtime is not None else None
    workdir, status = workdir_of(package, stack)
    if rt is not None:
        rt = resolve_runtime(rt, status.config.target_device)
    path, rt, selection = choose_path(status, path_key, rt, strategy, latency_budget_ms, max_precision_loss)
    if not path.deployable(rt):
        raise UserInputError(
            f"Path {path.key!r} has not passed correctness on {rt.value}; only a path and runtime "
            f"that passed are served (run correctness on it first)."
        )
    if path.model_path is None or not (workdir / path.model_path).exists():
        raise UserInputError(f"The artifact of path {path.key!r} is missing from {workdir}.")
    percentile = selection.latency_percentile if selection is not None and latency_budget_ms else 99
    batching = plan_batching(status, path, rt, max_batch_size, latency_budget_ms, percentile)
    if batching.off and max_batch_size:
        raise UserInputError(f"max_batch_size={max_batch_size} cannot apply: {batching.off}.")
    inputs, outputs = triton_tensors(status, batching.max_batch_size > 0)
    return ServePlan(
        workdir=workdir,
        status=status,
        path=path,
        runtime=rt,
        model_name=model_name or sanitize_model_name(status.model_name),
        inputs=inputs,
        outputs=outputs,
        max_batch_size=batching.max_batch_size,
        preferred_batch_sizes=list(batching.preferred),
        batching=batching.reason,
        selection=selection,
    )
