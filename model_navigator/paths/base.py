"""A path is declared once as data: folder, artifact, what it is made from, by which producer,
which runtimes run it and what it needs to be available."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Optional, Sequence, Tuple

from model_navigator.core.enums import (
    Format,
    JitType,
    RuntimeProvider,
    TensorRTPrecision,
)


@dataclass(frozen=True)
class PathSpec:
    """One export or conversion path.

    parent None means the path is exported from the user's model in the user's process; otherwise
    it is converted from the parent path's artifact by a stand-alone step (worker process).
    producer is "module:function"; it is imported only when the path runs.
    availability, when set, is "module:function" called with the spec: it returns why the path
    cannot run with what is installed (beyond a missing module or GPU), or None.
    """

    key: str
    format: Format
    artifact: str
    producer: str
    parent: Optional[str] = None
    jit_type: Optional[JitType] = None
    precision: Optional[TensorRTPrecision] = None
    selectors: Tuple[Tuple[str, Any], ...] = ()  # which variant: (name, value) of ExportConfig options
    cpu_runtimes: Tuple[RuntimeProvider, ...] = (RuntimeProvider.CPU,)
    gpu_runtimes: Tuple[RuntimeProvider, ...] = (RuntimeProvider.CUDA,)
    requires_modules: Tuple[str, ...] = ()
    requires_gpu: bool = False
    extra: Optional[str] = None
    availability: Optional[str] = None
    # An export that may run in a child forked from the user's process where the framework allows it
    # (ExportContext.forks, steps/forked.py): False where this process needs what the exporter imports
    # anyway, to check the artifact (a child would import it a second time).
    forkable: bool = True

    @property
    def is_export(self) -> bool:
        return self.parent is None

    @property
    def selector_dict(self) -> Dict[str, Any]:
        return dict(self.selectors)

    def runtimes_for(self, device: str) -> Tuple[RuntimeProvider, ...]:
        return self.gpu_runtimes if device.startswith("cuda") else self.cpu_runtimes

    def unavailable_reason(self, device: str, gpu_present: bool) -> Optional[str]:
        """Why this path cannot run here (a missing library or GPU), or None when it can."""
        missing = [m for m in self.requires_modules if importlib.util.find_spec(m) is None]
        if missing:
            hint = f" (pip install 'model-navigator[{self.extra}]')" if self.extra else ""
            return f"{', '.join(missing)} not installed{hint}"
        if self.requires_gpu and not gpu_present:
            return "needs a CUDA GPU; none found"
        if self.requires_gpu and not device.startswith("cuda"):
            return f"needs a CUDA GPU; target_device is {device!r}"
        if not self.runtimes_for(device):
            return f"no runtime runs {self.format.value} on {device!r}"
        if self.availability:
            module_name, func_name = self.availability.split(":")
            try:
                return getattr(importlib.import_module(module_name), func_name)(self)
            except Exception as e:  # e.g. a GPU library that is installed but does not import
                from model_navigator.core.logging import LOGGER

                LOGGER.debug("availability check %s of %s raised", self.availability, self.key, exc_info=True)
                return f"checking {self.key} failed: {type(e).__name__}: {e}"
        return None


class ExportContext:
    """What a framework's export producers take as request.context (the user's model and the
    settings it is exported with), built by exporters/<framework>.py: in memory by export(), from
    status.yaml and the saved samples by reproduce_export.py and `convert --model`. What else an
    export needs of the framework is asked of it here, so the pipeline names no framework."""

    def scope(self) -> ContextManager[Any]:
        """Wraps every export call (the framework's device scope)."""
        return contextlib.nullcontext()

    def write_reproduce(self, workspace: Any, spec: "PathSpec") -> None:
        """Write the path's reproduce_export script."""
        raise NotImplementedError

    def failure_hint(self, spec: "PathSpec", reason: str) -> Optional[str]:
        """What to try when the export of `spec` failed for a known exporter limit, or None."""
        return None

    def forks(self) -> bool:
        """Whether exports may run in a child forked from this process (steps/forked.py): only where the
        framework survives a fork."""
        return False

    def after_fork(self) -> None:
        """Make the framework usable in the forked child, before the export runs there."""


Hint = Tuple[Tuple[str, ...], str, str]  # (phrases in the reason, path key prefix, what to try)


def match_hint(hints: Sequence[Hint], spec: "PathSpec", reason: str) -> Optional[str]:
    """The first hint whose path key prefix and one of whose phrases match, or None."""
    for phrases, prefix, hint in hints:
        if spec.key.startswith(prefix) and any(p in reason for p in phrases):
            return hint
    return None


@dataclass
class ProduceRequest:
    """What every producer gets, an export and a conversion alike: the path, where its artifact
    goes, the workspace and its status; an export also the framework's export context (the user's
    model and its settings), a conversion the parent path's artifact. A producer returns what it
    reports about the artifact (opset, input order, ...), recorded in status.yaml."""

    spec: PathSpec
    out_path: Path
    workspace: Any  # core.workspace.Workspace
    status: Any  # core.status.NavigatorStatus
    context: Any = None
    parent_path: Optional[Path] = None

    @property
    def config(self) -> Any:
        """The export's configuration (status.config, an ExportConfig)."""
        return self.status.config


def load_producer(spec: PathSpec) -> Callable[[ProduceRequest], Dict[str, Any]]:
    module_name, func_name = spec.producer.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def produce(request: ProduceRequest) -> Dict[str, Any]:
    """Run the path's declared producer (imported now) on the request; checked here, where it ran,
    that what it reports names no selector (core.status.check_reported)."""
    from model_navigator.core.status import check_reported

    reported = load_producer(request.spec)(request) or {}
    check_reported(reported, request.spec.selector_dict, request.spec.producer)
    return reported
