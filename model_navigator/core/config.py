"""Typed configuration: the export configuration recorded in status.yaml and ProfilerConfig."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from model_navigator.core.enums import (
    Format,
    Framework,
    JitType,
    MeasurementMode,
    RuntimeProvider,
    TensorRTPrecision,
    TensorRTPrecisionMode,
    parse_enum,
)
from model_navigator.core.errors import UserInputError
from model_navigator.core.serialization import from_plain, to_plain


@dataclass
class ProfilerConfig:
    """How profiling measures (the reference's ProfilerConfig, plus an optional batch sweep).

    batch_sizes: batch sizes to profile; default (1, dataloader batch size).
    measurement_mode: COUNT_WINDOWS (measurement_request_count inferences per window) or
        TIME_WINDOWS (measurement_interval ms per window).
    stability_percentage: the last 3 windows' mean latency and throughput must lie within this
        percentage of their average for the result to count as stable.
    max_trials: most windows measured before the result is kept and marked unstable.
    max_batch_size: when set (and batch_sizes is None), sweep powers of two 1, 2, 4 ... up to it,
        stopping once throughput grew less than throughput_cutoff_threshold for
        throughput_backoff_limit steps in a row.
    warmup_requests: inferences run before measuring.
    """

    batch_sizes: Optional[Sequence[int]] = None
    measurement_mode: MeasurementMode = MeasurementMode.COUNT_WINDOWS
    measurement_interval: Optional[float] = 5000
    measurement_request_count: Optional[int] = 50
    stability_percentage: float = 10.0
    max_trials: int = 10
    max_batch_size: Optional[int] = None
    throughput_cutoff_threshold: float = 0.05
    throughput_backoff_limit: int = 2
    warmup_requests: int = 10

    def __post_init__(self) -> None:
        self.measurement_mode = parse_enum(MeasurementMode, self.measurement_mode, "profiler_config.measurement_mode")
        if self.batch_sizes is not None:
            if isinstance(self.batch_sizes, int):
                self.batch_sizes = (self.batch_sizes,)
            sizes = tuple(self.batch_sizes)
            if not sizes or any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in sizes):
                raise UserInputError(
                    f"`profiler_config.batch_sizes` must be positive integers, got {self.batch_sizes!r}."
                )
            self.batch_sizes = tuple(sorted(set(sizes)))
        if self.measurement_mode == MeasurementMode.COUNT_WINDOWS:
            if not self.measurement_request_count or self.measurement_request_count < 1:
                raise UserInputError("`profiler_config.measurement_request_count` must be >= 1 for COUNT_WINDOWS.")
        else:
            if not self.measurement_interval or self.measurement_interval <= 0:
                raise UserInputError("`profiler_config.measurement_interval` (ms) must be > 0 for TIME_WINDOWS.")
        if self.stability_percentage <= 0:
            raise UserInputError("`profiler_config.stability_percentage` must be > 0.")
        if self.max_trials < 3:
            raise UserInputError("`profiler_config.max_trials` must be >= 3: stability compares 3 windows.")
        if self.max_batch_size is not None and self.max_batch_size < 1:
            raise UserInputError("`profiler_config.max_batch_size` must be >= 1.")
        if self.warmup_requests < 0:
            raise UserInputError("`profiler_config.warmup_requests` must be >= 0.")

    def to_dict(self) -> Dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ProfilerConfig":
        """Build from a dict; an unknown key is an error, never silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserInputError(f"`profiler_config` has unknown options {unknown}; known: {sorted(known)}.")
        return from_plain(cls, data)


@dataclass
class ExportConfig:
    """Every export argument after validation; recorded in status.yaml and each path's config.yaml."""

    framework: Framework
    model_name: str
    target_formats: Tuple[Format, ...]
    jit_options: Tuple[JitType, ...] = (JitType.SCRIPT, JitType.TRACE)
    target_precisions: Tuple[TensorRTPrecision, ...] = (TensorRTPrecision.FP32, TensorRTPrecision.FP16)
    precision_mode: TensorRTPrecisionMode = TensorRTPrecisionMode.HIERARCHY
    runtimes: Optional[Tuple[RuntimeProvider, ...]] = None
    opset: int = 17
    onnx_dynamo: bool = False
    atol: Optional[Union[float, Dict[str, float]]] = None  # None: the path's default tolerance
    rtol: Optional[Union[float, Dict[str, float]]] = None
    input_names: Tuple[str, ...] = ()
    output_names: Tuple[str, ...] = ()
    dynamic_axes: Dict[str, List[int]] = field(default_factory=dict)
    trt_dynamic_axes: Optional[Dict[str, Dict[int, List[int]]]] = None
    max_workspace_size: Optional[int] = None
    minimum_segment_size: int = 3
    target_device: str = "cpu"
    batch_dim: Optional[int] = 0
    sample_count: int = 100
    forward_kw_names: Optional[Tuple[str, ...]] = None
    run_profiling: bool = True
    profiler_config: ProfilerConfig = field(default_factory=ProfilerConfig)
    disable_git_info: bool = False
    enable_xla: Optional[Tuple[bool, ...]] = None
    jit_compile: Optional[Tuple[bool, ...]] = None
    isolation: str = "auto"
    step_timeout_s: Optional[float] = None
    # Reduced precision (core/budget.py): the user's budgets {precision: {measure: limit, "outputs": {...}}}
    # over the defaults, and a task metric "module:function" that decides instead.
    accuracy_budget: Optional[Dict[str, Any]] = None
    task_metric: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Union[Dict[str, Any], "ExportConfig"]) -> "ExportConfig":
        if isinstance(data, ExportConfig):
            return replace(data)
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise UserInputError(f"export configuration has unknown options {unknown}.")
        if isinstance(data.get("isolation"), bool):  # written before isolation modes existed
            data["isolation"] = "full" if data["isolation"] else "off"
        return from_plain(cls, data)


def check_target_device(target_device: Optional[str], cuda_available: bool) -> str:
    """ExportConfig.target_device from the user's value: None picks CUDA when there is one."""
    if target_device is None:
        return "cuda" if cuda_available else "cpu"
    if not isinstance(target_device, str) or not (target_device == "cpu" or target_device.startswith("cuda")):
        raise UserInputError(f"`target_device` must be 'cpu' or 'cuda' (or 'cuda:N'), got {target_device!r}.")
    if target_device.startswith("cuda") and not cuda_available:
        raise UserInputError("`target_device` is 'cuda' but no CUDA device is available; use target_device='cpu'.")
    return target_device


def check_profiler_config(profiler_config: Optional[Any]) -> ProfilerConfig:
    """A ProfilerConfig from the user's value (None: the defaults; a dict: its known keys only)."""
    if profiler_config is None:
        return ProfilerConfig()
    if isinstance(profiler_config, dict):
        return ProfilerConfig.from_dict(profiler_config)  # refuses unknown keys
    if not isinstance(profiler_config, ProfilerConfig):
        raise UserInputError(f"`profiler_config` must be a nav.ProfilerConfig, got {type(profiler_config).__name__}.")
    return profiler_config
