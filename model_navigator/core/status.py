"""The typed status model. status.yaml is its serialisation and the single source of truth."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from model_navigator.core.enums import (
    Format,
    JitType,
    RuntimeProvider,
    StepStatus,
    TensorRTPrecision,
)
from model_navigator.core.config import ExportConfig
from model_navigator.core.formats import OPT_IN_RUNTIMES, SOURCE_FORMATS
from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.jax_keys import V2_SELECTOR_KEYS, rename_legacy_jax_keys
from model_navigator.core.serialization import (
    dump_yaml,
    from_plain,
    to_plain,
)
from model_navigator.core.status_schema import check_status_data, parse_yaml_text
from model_navigator.core.tensor import TensorMetadata

FORMAT_VERSION = 3
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

    @classmethod
    def judged(cls, failure: Optional[str], **fields: Any) -> "CorrectnessResult":
        """The result of a comparison: passed when nothing exceeded its tolerance or budget (`failure`
        None), else failed with `failure` as the reason. Every judge (the tolerances of
        steps/correctness, a precision's own accuracy budget) makes its verdict here."""
        return cls(status=StepStatus.FAILED if failure else StepStatus.OK, reason=failure, **fields)

    def fail(self, failure: str) -> None:
        """A judge that decides after the element-wise comparison (a precision's accuracy budget, the
        user's task metric) fails a result that comparison passed; an earlier failure stays the reason."""
        if self.status == StepStatus.OK:
            self.status, self.reason = StepStatus.FAILED, failure

    @property
    def passed(self) -> bool:
        """The one reading of a check's verdict (every consumer's `passed` comes down to this)."""
        return self.status == StepStatus.OK

    @property
    def failed(self) -> bool:
        """Checked and not passed (failed, or never finished); skipped (the runtime is not here) is no failure."""
        return self.status not in (StepStatus.OK, StepStatus.SKIPPED)


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

    @property
    def measured(self) -> bool:
        """Profiling finished with figures."""
        return self.status == StepStatus.OK and bool(self.results)


@dataclass
class ConversionResult:
    """What the conversion step made: the artifact (relative to the workspace) and what its
    producer reported (opset, input order, ...), recorded as the path's `reported`."""

    status: StepStatus
    reason: Optional[str] = None
    model_path: Optional[str] = None
    reported: Dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass
class RuntimeResult:
    """What one runtime showed for a path, and the verdicts every reader takes from it.

    `verified` is the user's mark as stored; it counts (`is_verified`) only on a result that passed:
    a mark belongs to a result, and a re-check that fails drops it (`settle_verified`)."""

    correctness: Optional[CorrectnessResult] = None
    performance: Optional[PerformanceResult] = None
    verified: bool = False

    @property
    def passed(self) -> bool:
        """Correctness was checked here and passed."""
        return self.correctness is not None and self.correctness.passed

    @property
    def failed(self) -> bool:
        """Correctness was checked here and failed (or never finished)."""
        return self.correctness is not None and self.correctness.failed

    @property
    def unchecked(self) -> bool:
        """Correctness was never checked on this runtime (a runtime added later, a mark on an unchecked one)."""
        return self.correctness is None

    @property
    def skipped(self) -> bool:
        """The check was skipped: the runtime is not available where it ran."""
        return self.correctness is not None and self.correctness.status == StepStatus.SKIPPED

    @property
    def profiled(self) -> bool:
        """Profiling finished with figures."""
        return self.performance is not None and self.performance.measured

    @property
    def profiling_failed(self) -> bool:
        return self.performance is not None and self.performance.status == StepStatus.FAILED

    @property
    def is_verified(self) -> bool:
        """The user's mark on a result that passed: the only mark the verified rule of selection counts."""
        return self.verified and self.passed

    def settle_verified(self) -> Optional[str]:
        """After a re-check: keep the mark when the new check passed, drop it when it failed; say which
        (None: nothing was marked, or the runtime was not checked here, so the mark stays as it was)."""
        if not self.verified or self.correctness is None or self.skipped:
            return None
        if self.passed:
            return "verified mark kept: the new check passed"
        self.verified = False
        return f"verified mark dropped: the new check {self.correctness.status.value}"


@dataclass
class PathStatus:
    """One export/conversion path: what it is, whether it worked and what each runtime showed.

    Two mappings, kept apart: `selectors`, which variant the path is (copied from its declaration,
    PathSpec.selectors, such as JAX's enable_xla; what get_status/get_model select by), and
    `reported`, what its producer recorded about the artifact (opset, exporter, input order, ...)."""

    key: str
    format: Format
    status: StepStatus
    jit_type: Optional[JitType] = None
    precision: Optional[TensorRTPrecision] = None
    selectors: Dict[str, Any] = field(default_factory=dict)
    reported: Dict[str, Any] = field(default_factory=dict)
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
    def flags(self) -> Mapping[str, Any]:
        """Read-only: the selectors and the reported values in one mapping (format version 2's `flags`)."""
        return MappingProxyType({**self.reported, **self.selectors})

    def record_reported(self, reported: Dict[str, Any]) -> None:
        """Add what a producer reported; it can never change which variant the path is."""
        check_reported(reported, self.selectors, "a producer")
        self.reported.update(reported)

    # Verdicts: every reader (get_status, the table, inspect, the report, selection, Triton, serving) asks these.
    @property
    def is_source(self) -> bool:
        """The user's own model: the reference every artifact is checked against, never deployed."""
        return self.format in SOURCE_FORMATS

    def is_reference(self, runtime: Optional[RuntimeProvider]) -> bool:
        """The source model run as is; an opt-in compiler of it (torch.compile) is checked like an artifact."""
        return self.is_source and runtime not in OPT_IN_RUNTIMES

    @property
    def default_runtime(self) -> Optional[RuntimeProvider]:
        """The runtime the path is judged by when none is named: the first one it was checked on."""
        return next(iter(self.runtimes), None)

    def passed(self, runtime: Optional[RuntimeProvider] = None) -> bool:
        """Produced, and correct on `runtime` (default: the default runtime). The source model passes
        as the reference; its opt-in runtimes pass only by their own check."""
        if not self.ok:
            return False
        if self.is_reference(runtime):
            return True
        result = self.runtimes.get(runtime if runtime is not None else self.default_runtime)  # type: ignore[arg-type]
        return result is not None and result.passed

    def stale(self, runtime: RuntimeProvider) -> bool:
        """Figures that no longer belong to a passing check: profiled, then re-checked and failed, or its
        check dropped since (a new runtime or artifact); shown, never ranked or recommended. The
        reference's figures are never stale: it is not checked."""
        result = self.runtimes.get(runtime)
        return result is not None and result.profiled and not result.passed and not self.is_reference(runtime)

    def deployable(self, runtime: RuntimeProvider) -> bool:
        """An artifact (not the source model) that was produced and passed its check on `runtime`."""
        return not self.is_source and self.passed(runtime)

    def passed_runtimes(self) -> List[RuntimeProvider]:
        """The runtimes this artifact may be deployed on, in the order they were checked."""
        return [rt for rt in self.runtimes if self.deployable(rt)]

    def outcome(self, runtime: Optional[RuntimeProvider] = None) -> str:
        """What the path shows on `runtime` in one word or two: its own status, else a check that did
        not pass ("correctness failed", "correctness skipped"), else "profiling failed", else "ok"."""
        result = self.runtimes.get(runtime) if runtime is not None else None
        if not self.ok or result is None:
            return self.status.value
        if result.correctness is not None and not result.passed and not self.is_reference(runtime):
            return f"correctness {result.correctness.status.value}"
        return "profiling failed" if result.profiling_failed else "ok"

    def runtime_failures(self) -> List[str]:
        """The checks and profiling runs of this produced path that failed, one line each (a runtime
        skipped, not available here, is no failure)."""
        if not self.ok:
            return []
        found = []
        for runtime, result in self.runtimes.items():
            if not self.is_reference(runtime) and result.failed:
                found.append(f"{self.key} on {runtime.value}: correctness {result.correctness.status.value}")  # type: ignore[union-attr]
            if result.profiling_failed:
                found.append(f"{self.key} on {runtime.value}: profiling failed")
        return found

    def unfit(self, runtime: Optional[RuntimeProvider] = None) -> Optional[str]:
        """Why the path (on `runtime`, when given) cannot compete in selection, or None when it can:
        deployable and profiled."""
        if self.is_source:
            if runtime is None or self.is_reference(runtime):
                return "the source model: the reference, not a deployable artifact"
            return f"the source model on {runtime.value}: checked against it, not a deployable artifact"
        if not self.ok:
            return f"{self.status.value}" + (f": {short_text(self.reason)}" if self.reason else "")
        result = self.runtimes.get(runtime) if runtime is not None else None
        if result is None:
            return "no runtime was checked" if not self.runtimes else "correctness not checked"
        corr, perf = result.correctness, result.performance
        if not result.passed:
            return (
                "correctness not checked"
                if corr is None
                else f"correctness {corr.status.value}" + (f": {short_text(corr.reason)}" if corr.reason else "")
            )
        if not result.profiled:
            return (
                "not profiled"
                if perf is None
                else f"profiling {perf.status.value}" + (f": {short_text(perf.reason)}" if perf.reason else "")
            )
        return None


def short_text(text: Optional[str], limit: int = 160) -> str:
    """A reason in one line of at most `limit` characters."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _marked_reason(reason: Optional[str]) -> str:
    """Why a path the user verified cannot compete, and what to do about it."""
    if reason is not None and reason.startswith("not profiled"):
        return f"verified, but {reason}: profile it to let it compete"
    return f"verified, but {reason}: re-test it here (or set_verified on another path) to let one compete"


class Verdict(NamedTuple):
    """One path and runtime judged for deployment: `reason` is None when it qualifies."""

    path: str
    runtime: Optional[RuntimeProvider]
    reason: Optional[str]


def check_reported(reported: Dict[str, Any], selectors: Mapping[str, Any], producer: str) -> None:
    """What a producer reports may not name one of the path's selectors: which variant a path is
    comes from its declaration alone."""
    clash = sorted(set(reported) & set(selectors))
    if clash:
        raise ValueError(
            f"{producer} reported {clash}, which select the path's variant (its selectors); "
            f"producers report what they made (opset, exporter, ...)"
        )


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
            data = {
                "model_name": self.model_name,
                "framework": self.framework,
                "target_formats": [],
                **dict(self.config or {}),
            }
            self.config = ExportConfig.from_dict(data)

    def save(self, workdir: Path) -> None:
        """Write status.yaml atomically (temporary file, then rename)."""
        dump_yaml(to_plain(self), Path(workdir) / STATUS_FILE)

    def verified_runtimes(self) -> List[Tuple[str, RuntimeProvider]]:
        """Every deployable path and runtime whose verified mark holds (on a result that passed)."""
        return [
            (key, rt)
            for key, path in self.paths.items()
            for rt, result in path.runtimes.items()
            if result.is_verified and path.deployable(rt)
        ]

    def held_marks(self) -> List[Tuple[str, RuntimeProvider]]:
        """Every artifact's path and runtime the user marked verified whose mark still holds: its check
        passed, or could not run here (not checked, skipped, or the path could not be produced again).
        A mark whose check failed is dropped by the re-check that failed it (settle_verified) and counts
        for nothing. These decide the verified rule of selection."""
        return [
            (key, rt)
            for key, path in self.paths.items()
            if not path.is_source
            for rt, result in path.runtimes.items()
            if result.verified and not result.failed
        ]

    def qualifying(self) -> List[Verdict]:
        """Every path and runtime judged for deployment, in status order: deployable and profiled
        qualify, and once any mark holds (held_marks) only verified ones do; a marked one that cannot
        compete (not profiled since its check, not checked here, not produced) stays named with the
        reason, so nothing unverified silently takes its place."""
        verdicts: List[Verdict] = []
        for key, path in self.paths.items():
            runtimes = list(path.runtimes) if path.ok or path.is_source else []
            if not runtimes and not path.is_source:
                verdicts.append(Verdict(key, None, path.unfit()))
            verdicts += [Verdict(key, rt, path.unfit(rt)) for rt in runtimes]
        marked = self.held_marks()
        if not marked:
            return verdicts
        names = ", ".join(f"{k} on {rt.value}" for k, rt in marked)
        first = [
            v._replace(reason=_marked_reason(v.reason)) if (v.path, v.runtime) in marked and v.reason is not None else v
            for v in verdicts
            if v.reason is not None or (v.path, v.runtime) in marked
        ]
        listed = {(v.path, v.runtime) for v in verdicts}
        first += [Verdict(k, rt, _marked_reason(self.paths[k].unfit(rt))) for k, rt in marked if (k, rt) not in listed]
        later = [
            Verdict(v.path, v.runtime, f"not verified ({names} is; only verified ones qualify)")
            for v in verdicts
            if v.reason is None and (v.path, v.runtime) not in marked
        ]
        return first + later

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
            status.config = ExportConfig.from_dict(
                {
                    "model_name": status.model_name,
                    "framework": status.framework,
                    "target_formats": [],
                    **_known_options(config or {}),
                }
            )
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

        LOGGER.warning(
            "%s: export options %s are unknown to this model-navigator and were ignored (written by a newer version?)",
            STATUS_FILE,
            unknown,
        )
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
        if (
            not model_path
            or model_path.startswith(("/", "\\"))
            or "\\" in model_path
            or ".." in parts
            or re.match(r"^[A-Za-z]:", model_path)
        ):
            raise PackageError(f"{STATUS_FILE}: path {key!r} has model_path {model_path!r} outside the workspace.")


def _upgrade_1_to_2(data: Dict[str, Any]) -> Dict[str, Any]:
    """Version 1 (the first public layout) stored per-runtime results under `runtime_results` with
    `tolerance: {output: {atol, rtol}}` and `latency_ms`; version 2 names them `runtimes`,
    `correctness.per_output` and `performance`."""
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
                        name: {"max_abs_error": t["atol"], "max_rel_error": t["rtol"]} for name, t in tolerance.items()
                    },
                }
            runtimes[runtime] = {"correctness": correctness, "verified": bool(result.get("verified", False))}
        path["runtimes"] = runtimes
        paths[key] = path
    data["paths"] = paths
    data["format_version"] = 2
    return data


def _upgrade_2_to_3(data: Dict[str, Any]) -> Dict[str, Any]:
    """Version 2 kept a path's selectors and what its producer reported in one `flags` mapping;
    version 3 stores them apart, as `selectors` and `reported`. The only selectors version 2 knew
    were JAX's (core/jax_keys.V2_SELECTOR_KEYS)."""
    paths = {}
    for key, path in (data.get("paths") or {}).items():
        if isinstance(path, dict) and "flags" in path:
            path = dict(path)
            flags = path.pop("flags") or {}
            if not isinstance(flags, dict):
                raise TypeError(f"path {key!r}: `flags` must be a mapping, got {type(flags).__name__}")
            path["selectors"] = {k: v for k, v in flags.items() if k in V2_SELECTOR_KEYS}
            path["reported"] = {k: v for k, v in flags.items() if k not in V2_SELECTOR_KEYS}
        paths[key] = path
    data["paths"] = paths
    data["format_version"] = 3
    return data


_UPGRADES = {1: _upgrade_1_to_2, 2: _upgrade_2_to_3}  # version -> the step to the next one


def upgrade_status(data: Dict[str, Any]) -> Dict[str, Any]:
    """Bring status data written by an older model-navigator to FORMAT_VERSION, one version at a time."""
    while data["format_version"] in _UPGRADES:
        data = _UPGRADES[data["format_version"]](data)
    return data
