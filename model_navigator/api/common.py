"""Argument validation and the export flow shared by every framework's export()."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import Format, RuntimeProvider
from model_navigator.core.errors import UserInputError
from model_navigator.core.workspace import DEFAULT_WORKDIR


def check_tolerance(value: Optional[float], name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0 or value != value:
        raise UserInputError(f"`{name}` must be a non-negative number or None, got {value!r}.")
    return float(value)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise UserInputError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_names(names: Optional[Iterable[str]], argument: str) -> Optional[Tuple[str, ...]]:
    if names is None:
        return None
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise UserInputError(f"`{argument}` must be unique, non-empty strings, got {names!r}.")
    return names


def check_formats(formats: Optional[Tuple[Format, ...]], allowed: Sequence[Format], framework: str) -> Tuple[Format, ...]:
    if formats is None:
        return tuple(allowed)
    wrong = [f.value for f in formats if f not in allowed]
    if wrong:
        raise UserInputError(
            f"`target_formats` {wrong} do not apply to {framework}; choose from {[f.value for f in allowed]}."
        )
    return formats


def check_target_device(target_device: Optional[str], cuda_available: bool) -> str:
    if target_device is None:
        return "cuda" if cuda_available else "cpu"
    if not isinstance(target_device, str) or not (target_device == "cpu" or target_device.startswith("cuda")):
        raise UserInputError(f"`target_device` must be 'cpu' or 'cuda' (or 'cuda:N'), got {target_device!r}.")
    if target_device.startswith("cuda") and not cuda_available:
        raise UserInputError("`target_device` is 'cuda' but no CUDA device is available; use target_device='cpu'.")
    return target_device


def check_runtimes(runtimes: Optional[Tuple[RuntimeProvider, ...]], device: str) -> Optional[Tuple[RuntimeProvider, ...]]:
    if runtimes is None:
        return None
    if device == "cpu":
        wrong = [r.value for r in runtimes if r != RuntimeProvider.CPU]
        if wrong:
            raise UserInputError(
                f"`runtimes` {wrong} need a GPU but target_device is 'cpu'; use "
                f"runtimes=('{RuntimeProvider.CPU.value}',) or target_device='cuda'."
            )
    return runtimes


def normalize_dynamic_axes(
    dynamic_axes: Optional[Dict[str, Any]], known: Dict[str, int]
) -> Dict[str, List[int]]:
    """{'name': {0: 'batch'}} or {'name': [0, 1]} -> {'name': [0, 1]}, checking names and axes."""
    if dynamic_axes is None:
        return {}
    if not isinstance(dynamic_axes, dict):
        raise UserInputError(f"`dynamic_axes` must be a dict name -> {{axis: label}} or [axes], got {type(dynamic_axes).__name__}.")
    result: Dict[str, List[int]] = {}
    for name, axes in dynamic_axes.items():
        if name not in known:
            raise UserInputError(
                f"`dynamic_axes` names {name!r}, which is neither an input nor an output; known names: {sorted(known)}."
            )
        if isinstance(axes, dict):
            axes = list(axes.keys())
        if not isinstance(axes, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            raise UserInputError(f"`dynamic_axes[{name!r}]` must be a dict {{axis: label}} or a list of axes, got {axes!r}.")
        rank = known[name]
        bad = [a for a in axes if not 0 <= a < rank]
        if bad:
            raise UserInputError(f"`dynamic_axes[{name!r}]` has axes {bad} outside the tensor's rank {rank}.")
        result[name] = sorted(set(int(a) for a in axes))
    return result


def check_workdir(workdir: Optional[Any], override_workdir: bool) -> Path:
    """Resolve the workdir and refuse an existing one (untouched) unless override_workdir."""
    root = Path(workdir) if workdir is not None else Path.cwd() / DEFAULT_WORKDIR
    if root.exists() and not override_workdir:
        raise UserInputError(
            f"`workdir` {str(root)!r} already exists and was left untouched; pass override_workdir=True "
            f"to replace it, or choose another `workdir`."
        )
    return root


def check_profiler_config(profiler_config: Optional[Any]) -> ProfilerConfig:
    if profiler_config is None:
        return ProfilerConfig()
    if isinstance(profiler_config, dict):
        return ProfilerConfig.from_dict(profiler_config)  # refuses unknown keys
    if not isinstance(profiler_config, ProfilerConfig):
        raise UserInputError(f"`profiler_config` must be a nav.ProfilerConfig, got {type(profiler_config).__name__}.")
    return profiler_config


def check_opset(opset: Any) -> int:
    """An ONNX opset the installed onnx package knows (7 .. its latest)."""
    value = check_positive_int(opset, "opset", 7)
    try:
        import onnx.defs

        latest = onnx.defs.onnx_opset_version()
    except ImportError:
        return value
    if value > latest:
        raise UserInputError(f"`opset` {value} is newer than the installed onnx supports ({latest}); use 7..{latest}.")
    return value


def check_trt_dynamic_axes(
    trt_dynamic_axes: Optional[Dict[str, Dict[int, Any]]], input_ranks: Dict[str, int]
) -> Optional[Dict[str, Dict[int, List[int]]]]:
    """{input: {axis: (min, opt, max)}} with known inputs, axes within rank and min <= opt <= max."""
    if trt_dynamic_axes is None:
        return None
    if not isinstance(trt_dynamic_axes, dict):
        raise UserInputError("`trt_dynamic_axes` must be a dict input name -> {axis: (min, opt, max)}.")
    result: Dict[str, Dict[int, List[int]]] = {}
    for name, axes in trt_dynamic_axes.items():
        if name not in input_ranks:
            raise UserInputError(f"`trt_dynamic_axes` names {name!r}, which is not an input; inputs: {sorted(input_ranks)}.")
        if not isinstance(axes, dict):
            raise UserInputError(f"`trt_dynamic_axes[{name!r}]` must be a dict axis -> (min, opt, max), got {axes!r}.")
        result[name] = {}
        for axis, shape in axes.items():
            if not isinstance(axis, int) or not 0 <= axis < input_ranks[name]:
                raise UserInputError(f"`trt_dynamic_axes[{name!r}]` axis {axis!r} is outside the input's rank {input_ranks[name]}.")
            values = list(shape) if isinstance(shape, (list, tuple)) else []
            if len(values) != 3 or not all(isinstance(v, int) and v >= 1 for v in values) or not values[0] <= values[1] <= values[2]:
                raise UserInputError(
                    f"`trt_dynamic_axes[{name!r}][{axis}]` must be (min, opt, max) positive ints with min <= opt <= max, "
                    f"got {shape!r}.")
            result[name][axis] = values
    return result
