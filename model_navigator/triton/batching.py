"""max_batch_size and dynamic batching of config.pbtxt, from what was measured on a path and runtime
(plan_batching); shared by the repository writer and serving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from model_navigator.core.enums import RuntimeProvider
from model_navigator.core.status import NavigatorStatus, PathStatus


@dataclass
class Batching:
    """max_batch_size and the preferred batch sizes of config.pbtxt, and why (said by the CLI)."""

    max_batch_size: int
    preferred: List[int]
    reason: str
    off: Optional[str] = None  # why batching is impossible for this model, when it is


def _sizes(results: List[Any]) -> str:
    """The profiled batch sizes, ascending, for the sentence saying why."""
    return ", ".join(str(r.batch_size) for r in sorted(results, key=lambda r: r.batch_size))


def _why_no_batching(status: NavigatorStatus) -> Optional[str]:
    """Why Triton cannot batch this model (max_batch_size 0), or None."""
    batch_dim = status.config.batch_dim
    tensors = list(status.inputs) + list(status.outputs)
    if batch_dim is None:
        return "the model takes no batch (batch_dim=None)"
    if batch_dim != 0:
        return f"Triton batches along the first axis; this model's batch axis is {batch_dim}"
    fixed = [t.name for t in tensors if len(t.shape) == 0 or t.shape[0] != -1]
    return f"tensors {fixed} have no dynamic batch axis" if fixed else None


def plan_batching(
    status: NavigatorStatus,
    path: PathStatus,
    runtime: RuntimeProvider,
    max_batch_size: Optional[int] = None,
    latency_budget_ms: Optional[float] = None,
    latency_percentile: int = 99,
) -> Batching:
    """max_batch_size from what was measured on this path and runtime: the largest profiled batch size
    whose p`latency_percentile` meets `latency_budget_ms` when a budget is given, else the largest
    profiled one; without profiling results the largest batch size correctness was checked at, else 1.
    Never the dataloader's batch size as such. `max_batch_size` given by the user wins."""
    off = _why_no_batching(status)
    if off is not None:
        return Batching(0, [], f"max_batch_size 0 (no batching): {off}", off=off)
    result = path.runtimes.get(runtime)
    profiled = list(result.performance.results) if result is not None and result.profiled else []  # type: ignore[union-attr]
    where = f"{path.key} on {runtime.value}"
    if max_batch_size is not None:
        reason = f"max_batch_size {max_batch_size}: as asked"
    elif profiled and latency_budget_ms is not None:
        key = f"p{latency_percentile}_ms"
        fitting = [r for r in profiled if getattr(r, key) <= latency_budget_ms]
        if fitting:
            max_batch_size = max(r.batch_size for r in fitting)
            reason = (
                f"max_batch_size {max_batch_size}: the largest batch size of {where} whose p{latency_percentile} "
                f"met the {latency_budget_ms:g} ms budget (profiled: {_sizes(profiled)})"
            )
        else:
            max_batch_size = min(r.batch_size for r in profiled)
            reason = (
                f"max_batch_size {max_batch_size}: no profiled batch size of {where} met the "
                f"{latency_budget_ms:g} ms budget (profiled: {_sizes(profiled)}); the smallest"
            )
    elif profiled:
        max_batch_size = max(r.batch_size for r in profiled)
        reason = (
            f"max_batch_size {max_batch_size}: the largest batch size profiled on {where} (profiled: "
            f"{_sizes(profiled)}); profile larger ones (`model-navigator profile --max-batch-size N`) or "
            f"give max_batch_size (--max-batch-size) to serve more"
        )
    else:
        checked = list(result.correctness.batch_sizes) if result is not None and result.passed else []  # type: ignore[union-attr]
        max_batch_size = max(checked) if checked else 1
        reason = (
            f"max_batch_size {max_batch_size}: {where} was not profiled; "
            + (
                "the largest batch size its correctness was checked at"
                if checked
                else "nothing says a larger batch works"
            )
            + "; give max_batch_size (--max-batch-size) to choose"
        )
    if max_batch_size < 1:
        return Batching(0, [], "max_batch_size 0 (no batching): as asked")
    fitting = [r for r in profiled if 1 < r.batch_size <= max_batch_size]
    preferred = [max(fitting, key=lambda r: r.throughput).batch_size] if fitting else []
    if preferred:
        reason += f"; dynamic batching prefers {preferred[0]} (the most throughput)"
    return Batching(max_batch_size, preferred, reason)
