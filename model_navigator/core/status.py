"""The typed status model. status.yaml is its serialisation and the single source of truth."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Union

from model_navigator.core.enums import (
    Format,
    JitType,
    RuntimeProvider,
    StepStatus,
    TensorRTPrecision,
)
from model_navigator.core.config import ExportConfig
from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.jax_keys import rename_legacy_jax_keys
from model_navigator.core.serialization import (
    dump_yaml,
    from_plain,
    to_plain,
)
from model_navigator.core.status_schema import check_status_data, parse_yaml_text
from model_navigator.core.tensor import TensorMetadata

FORMAT_VERSION = 2
STATUS_FILE = "status.yaml"


@dataclass
class OutputError:
    """Largest absolute and relative difference of one output against the source model, and the
    tolerance it was judged by (None: that bound did not apply). A reduced-precision path (int8,
    bf16) also records the whole-output measures (core/budget.py) and the budget that judged them."""

    max_abs_error: float
    max_rel_error: float
    atol: Optional[float] = None
    rtol: Optional[float] = None
    rel_l2: Optional[float] = None  # ||actual - reference|| / ||reference|| over the correctness samples
    cosine: Optional[float] = None
    top1: Optional[float] = None  # share of rows whose argmax agrees (class-score outputs only)
    budget: Optional[Dict[str, float]] = None  # measure -> limit it was judged by (None: not budget-judged)


@dataclass
class CorrectnessResult:
    status: StepStatus
    reason: Optional[str] = None
    per_output: Dict[str, OutputError] = field(default_factory=dict)
    batch_sizes: List[int] = field(default_factory=list)
    sample_count: int = 0
    atol: Optional[Union[float, Dict[str, float]]] = None  # the user's, as given (None: not given)
    rtol: Optional[Union[float, Dict[str, float]]] = None
    tolerance: Optional[str] = None  # "user", or "default fp32" / "default fp32-gpu" / "default fp16"
    # reduced precision: "default int8 budget" / "user int8 budget" / "task metric mod:fn"
    task_metric: Optional[Dict[str, Any]] = None  # {"function", "score", "passed"} when a task metric decided
    warnings: List[str] = field(default_factory=list)  # e.g. outputs the samples do not exercise
    duration_s: float = 0.0


@dataclass
class ProfilingResult:
    """Latency (ms) and throughput (samples/s) of one runtime at one batch size."""

    batch_size: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    throughput: float
    windows: int
    stable: bool
    spread_percent: float = 0.0
    request_count: int = 0


@dataclass
class PerformanceResult:
    status: StepStatus
    reason: Optional[str] = None
    results: List[ProfilingResult] = field(default_factory=list)
    duration_s: float = 0.0


@dataclass
class ConversionResult:
    """What the conversion step made: the artifact (relative to the workspace) and what its
    producer reported (opset, input order, ...)."""

    status: StepStatus
    reason: Optional[str] = None
    model_path: Optional[str] = None
    flags: Dict[str, Any] = field(default_factory=dict)  # what the producer reported (the path's flags)
    duration_s: float = 0.0


@dataclass
class RuntimeResult:
    correctness: Optional[CorrectnessResult] = None
    performance: Optional[PerformanceResult] = None
    verified: bool = False


# The path variants a declaration selects by (PathSpec.selectors: JAX's enable_xla / jit_compile);
# every other key of PathStatus.flags is what the path's producer reported.
SELECTOR_KEYS = ("enable_xla", "jit_compile")


@dataclass
class PathStatus:
    """One export/conversion path: what it is, whether it worked and what each runtime showed.

    `flags` (one mapping in status.yaml) holds the declaration's selectors (`selectors`: which
    variant this is, what get_status/get_model select by) and what the producer reported
    (`reported`: opset, exporter, input order, ...); record_reported adds the latter."""

    key: str
    format: Format
    status: StepStatus
    jit_type: Optional[JitType] = None
    precision: Optional[TensorRTPrecision] = None
    flags: Dict[str, Any] = field(default_factory=dict)
    parent: Optional[str] = None
    reason: Optional[str] = None
    model_path: Optional[str] = None
    duration_s: float = 0.0
    # What the exporter warned that may make the graph wrong (TracerWarning, a specialised axis, ...).
    warnings: List[str] = field(default_factory=list)
    runtimes: Dict[RuntimeProvider, RuntimeResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == StepStatus.OK

    @property
    def selectors(self) -> Dict[str, Any]:
        return {k: v for k, v in self.flags.items() if k in SELECTOR_KEYS}

    @property
    def reported(self) -> Dict[str, Any]:
        return {k: v for k, v in self.flags.items() if k not in SELECTOR_KEYS}

    def record_reported(self, reported: Dict[str, Any]) -> None:
        """Add what a producer reported; it can never change which variant the path is."""
        check_reported(reported, "a producer")
        self.flags.update(reported)


def check_reported(reported: Dict[str, Any], producer: str) -> None:
    """What a producer reports may not name a selector: which variant a path is comes from its
    declaration alone."""
    clash = sorted(set(reported) & set(SELECTOR_KEYS))
    if clash:
        raise ValueError(f"{producer} reported {clash}, which select the path's variant (its selectors); "
                         f"producers report what they made (opset, exporter, ...)")


@dataclass
class RunRecord:
    """One operation that wrote this status (export, load, profile, convert): who ran it, when, and
    whether it finished. finished_at stays null for a run that was killed or crashed mid-way."""

    id: str
    operation: str
    pid: int
    host: str
    started_at: str
    finished_at: Optional[str] = None
    outcome: str = "running"  # running (or killed), finished, interrupted, failed
    reason: Optional[str] = None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass
class NavigatorStatus:
    model_name: str
    framework: str
    format_version: int = FORMAT_VERSION
    navigator_version: str = ""
    created_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat())
    # The export's configuration. Given as a dict (or left out, in hand-built statuses), it is read
    # into an ExportConfig; a dict without the export's own fields takes this status's.
    config: ExportConfig = None  # type: ignore[assignment]
    environment: Dict[str, Any] = field(default_factory=dict)
    git: Optional[Dict[str, Any]] = None
    dataloader: Dict[str, Any] = field(default_factory=dict)
    samples: Dict[str, List[str]] = field(default_factory=dict)
    inputs: List[TensorMetadata] = field(default_factory=list)
    outputs: List[TensorMetadata] = field(default_factory=list)
    paths: Dict[str, PathStatus] = field(default_factory=dict)
    runs: List[RunRecord] = field(default_factory=list)  # absent in older files: nothing recorded

    def __post_init__(self) -> None:
        if not isinstance(self.config, ExportConfig):
            data = {"model_name": self.model_name, "framework": self.framework, "target_formats": [],
                    **dict(self.config or {})}
            self.config = ExportConfig.from_dict(data)

    def save(self, workdir: Path) -> None:
        """Write status.yaml atomically (temporary file, then rename)."""
        dump_yaml(to_plain(self), Path(workdir) / STATUS_FILE)

    @classmethod
    def from_dict(cls, data: Any) -> "NavigatorStatus":
        if not isinstance(data, dict):
            raise PackageError(f"{STATUS_FILE} must hold a mapping, got {type(data).__name__}.")
        version = data.get("format_version")
        if not isinstance(version, int):
            raise PackageError(f"{STATUS_FILE} has no integer `format_version`; it was not written by model-navigator.")
        if version > FORMAT_VERSION:
            raise PackageError(
                f"{STATUS_FILE} has format_version {version}, newer than this model-navigator understands "
                f"({FORMAT_VERSION}); upgrade model-navigator to read it."
            )
        try:
            data = upgrade_status(dict(data))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise PackageError(f"{STATUS_FILE} is malformed (format_version {version}): {type(e).__name__}: {e}") from e
        data = rename_legacy_jax_keys(data)  # earlier versions' JAX path keys
        check_status_data(data, cls)  # types, ranges, depth: one check for every reader
        config = data.pop("config", None)
        try:
            status = from_plain(cls, data)
            if config is not None and not isinstance(config, dict):
                raise TypeError(f"`config` must be a mapping, got {type(config).__name__}")
            status.config = ExportConfig.from_dict({"model_name": status.model_name, "framework": status.framework,
                                                    "target_formats": [], **_known_options(config or {})})
        except (TypeError, ValueError, KeyError, UserInputError) as e:
            raise PackageError(f"{STATUS_FILE} is malformed: {e}") from e
        for key, path in status.paths.items():
            check_path_names(key, path)
        return status

    @classmethod
    def load(cls, workdir: Path) -> "NavigatorStatus":
        path = Path(workdir) / STATUS_FILE
        if not path.is_file():
            raise PackageError(f"No {STATUS_FILE} in {workdir}: not a model-navigator workspace.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PackageError(f"{path} cannot be read: {e}") from e
        try:
            return cls.from_dict(parse_yaml_text(text, str(path)))
        except PackageError as e:
            raise PackageError(f"{path}: {e}") from e


def _known_options(config: Dict[str, Any]) -> Dict[str, Any]:
    """The export options this version knows; others (written by a newer model-navigator) are
    dropped with a warning rather than making the package unreadable."""
    from dataclasses import fields

    known = {f.name for f in fields(ExportConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        from model_navigator.core.logging import LOGGER

        LOGGER.warning("%s: export options %s are unknown to this model-navigator and were ignored (written by a "
                       "newer version?)", STATUS_FILE, unknown)
    return {k: v for k, v in config.items() if k in known}


_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_path_names(key: str, path: PathStatus) -> None:
    """A path key is a plain folder name and its model_path stays inside the workspace: a crafted
    status.yaml must never make us read or write outside it."""
    if not isinstance(key, str) or not _KEY.match(key) or key in (".", "..") or path.key != key:
        raise PackageError(f"{STATUS_FILE}: path key {key!r} is not a plain folder name (or differs from its `key`).")
    model_path = path.model_path
    if model_path is not None:
        parts = PurePosixPath(model_path).parts
        if (not model_path or model_path.startswith(("/", "\\")) or "\\" in model_path or ".." in parts
                or re.match(r"^[A-Za-z]:", model_path)):
            raise PackageError(f"{STATUS_FILE}: path {key!r} has model_path {model_path!r} outside the workspace.")


def upgrade_status(data: Dict[str, Any]) -> Dict[str, Any]:
    """Bring status data written by an older model-navigator to FORMAT_VERSION, one version at a time.

    Version 1 (the first public layout) stored per-runtime results under `runtime_results` with
    `tolerance: {output: {atol, rtol}}` and `latency_ms`; version 2 names them `runtimes`,
    `correctness.per_output` and `performance`.
    """
    if data["format_version"] == 1:
        paths = {}
        for key, path in (data.get("paths") or {}).items():
            path = dict(path)
            runtimes = {}
            for runtime, result in (path.pop("runtime_results", None) or {}).items():
                tolerance = result.get("tolerance") or {}
                correctness = None
                if "correctness_status" in result:
                    correctness = {
                        "status": result["correctness_status"],
                        "reason": result.get("correctness_reason"),
                        "per_output": {
                            name: {"max_abs_error": t["atol"], "max_rel_error": t["rtol"]}
                            for name, t in tolerance.items()
                        },
                    }
                runtimes[runtime] = {"correctness": correctness, "verified": bool(result.get("verified", False))}
            path["runtimes"] = runtimes
            paths[key] = path
        data["paths"] = paths
        data["format_version"] = 2
    return data
