"""Validation of the export() arguments every framework takes, and what the shared flow derives
from the samples (dynamic axes, tensor metadata, the ExportConfig fields); the flow itself is
api/frontend.py."""

from __future__ import annotations

import numbers
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from model_navigator.core.enums import Format, RuntimeProvider
from model_navigator.core.errors import UserInputError
from model_navigator.core.logging import LOGGER
from model_navigator.core.workspace import DEFAULT_WORKDIR


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


def check_formats(
    formats: Optional[Tuple[Format, ...]], allowed: Sequence[Format], framework: str, specs: Sequence[Any] = ()
) -> Tuple[Format, ...]:
    """The requested formats plus, as the reference does, the formats they are made from (torch-trt
    needs TorchScript, trt needs ONNX, TensorFlow's ONNX needs the SavedModel), parents first. A
    format that one path exports straight from the model (JAX's ONNX through jax2onnx) pulls in
    nothing: its other paths are then skipped for want of their parent, as they say."""
    if formats is None:
        return tuple(allowed)
    wrong = [f.value for f in formats if f not in allowed]
    if wrong:
        raise UserInputError(
            f"`target_formats` {wrong} do not apply to {framework}; choose from {[f.value for f in allowed]}."
        )
    by_key = {s.key: s for s in specs}
    exported = {s.format for s in specs if s.is_export}
    result = list(formats)
    changed = True
    while changed:
        changed = False
        for spec in specs:
            parent = by_key.get(spec.parent) if spec.parent else None
            if (
                spec.format in result
                and spec.format not in exported
                and parent is not None
                and parent.format not in result
            ):
                result.insert(0, parent.format)
                changed = True
    return tuple(result)


def check_runtimes(
    runtimes: Optional[Tuple[RuntimeProvider, ...]], device: str
) -> Optional[Tuple[RuntimeProvider, ...]]:
    if runtimes is None:
        return None
    from model_navigator.core.enums import resolve_runtime
    from model_navigator.core.formats import CPU_RUNTIMES, RUNTIME_MODULES

    runtimes = tuple(dict.fromkeys(resolve_runtime(r, device) for r in runtimes))  # PyTorchExecutionProvider ...
    from model_navigator.steps.scope import runtime_available

    missing = [r for r in runtimes if not runtime_available(r)]
    if missing:
        module, extra = RUNTIME_MODULES[missing[0]]
        raise UserInputError(
            f"`runtimes` {[r.value for r in missing]} need the `{module}` module, which is not installed: "
            f"pip install 'model-navigator[{extra}]'."
        )
    if device == "cpu":
        wrong = [r.value for r in runtimes if r not in CPU_RUNTIMES]
        if wrong:
            raise UserInputError(
                f"`runtimes` {wrong} need a GPU but target_device is 'cpu'; use "
                f"runtimes=('{RuntimeProvider.CPU.value}',) or target_device='cuda'."
            )
    elif RuntimeProvider.OPENVINO in runtimes:
        raise UserInputError(
            f"`runtimes` ['{RuntimeProvider.OPENVINO.value}'] runs on the CPU only but target_device is "
            f"{device!r}; use target_device='cpu' for it."
        )
    return runtimes


def normalize_dynamic_axes(dynamic_axes: Optional[Dict[str, Any]], known: Dict[str, int]) -> Dict[str, List[int]]:
    """{'name': {0: 'batch'}} or {'name': [0, 1]} -> {'name': [0, 1]}, checking names and axes."""
    if dynamic_axes is None:
        return {}
    if not isinstance(dynamic_axes, dict):
        raise UserInputError(
            f"`dynamic_axes` must be a dict name -> {{axis: label}} or [axes], got {type(dynamic_axes).__name__}."
        )
    result: Dict[str, List[int]] = {}
    for name, axes in dynamic_axes.items():
        if name not in known:
            raise UserInputError(
                f"`dynamic_axes` names {name!r}, which is neither an input nor an output; known names: {sorted(known)}."
            )
        if isinstance(axes, dict):
            axes = list(axes.keys())
        if not isinstance(axes, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            raise UserInputError(
                f"`dynamic_axes[{name!r}]` must be a dict {{axis: label}} or a list of axes, got {axes!r}."
            )
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
            raise UserInputError(
                f"`trt_dynamic_axes` names {name!r}, which is not an input; inputs: {sorted(input_ranks)}."
            )
        if not isinstance(axes, dict):
            raise UserInputError(f"`trt_dynamic_axes[{name!r}]` must be a dict axis -> (min, opt, max), got {axes!r}.")
        result[name] = {}
        for axis, shape in axes.items():
            if not isinstance(axis, int) or not 0 <= axis < input_ranks[name]:
                raise UserInputError(
                    f"`trt_dynamic_axes[{name!r}]` axis {axis!r} is outside the input's rank {input_ranks[name]}."
                )
            values = list(shape) if isinstance(shape, (list, tuple)) else []
            positive = all(isinstance(v, int) and v >= 1 for v in values)
            if len(values) != 3 or not positive or not values[0] <= values[1] <= values[2]:
                raise UserInputError(
                    f"`trt_dynamic_axes[{name!r}][{axis}]` must be (min, opt, max) positive ints with "
                    f"min <= opt <= max, got {shape!r}."
                )
            result[name][axis] = values
    return result


def check_bool_options(value: Any, name: str, default: Tuple[bool, ...] = (True, False)) -> Tuple[bool, ...]:
    """None -> `default`; a bool or a tuple/list of bools -> a tuple without repeats (JAX's
    `enable_xla` / `jit_compile`)."""
    if value is None:
        return default
    items = (value,) if isinstance(value, bool) else value
    if not isinstance(items, (tuple, list)) or not items or not all(isinstance(v, bool) for v in items):
        raise UserInputError(f"`{name}` must be True, False, or a tuple of them such as (True, False), got {value!r}.")
    return tuple(dict.fromkeys(items))


def axes_and_metadata(
    sample_set: Any,
    outputs: Dict[int, Dict[str, Any]],
    output_names: Sequence[str],
    dynamic_axes: Optional[Dict[str, Any]],
    trt_dynamic_axes: Optional[Dict[str, Dict[int, Any]]],
) -> Tuple[Dict[str, List[int]], Optional[Dict[str, Dict[int, List[int]]]], List[Any], List[Any]]:
    """The dynamic axes of every input and output (the batch axis, the user's `dynamic_axes`, else
    the axes whose size varies across samples), the checked `trt_dynamic_axes`, and the input and
    output metadata (-1 on dynamic axes), from the samples and the source model's outputs."""
    from model_navigator.core.samples import infer_metadata, varying_axes

    batch_dim = sample_set.batch_dim
    needed = sorted(outputs)
    input_ranks = {n: sample_set.samples[0][n].ndim for n in sample_set.input_names}
    output_ranks = {n: outputs[needed[0]][n].ndim for n in output_names}
    overlap = set(input_ranks) & set(output_ranks)
    if overlap:
        raise UserInputError(f"Input and output names overlap: {sorted(overlap)}; give distinct `output_names`.")
    user_axes = normalize_dynamic_axes(dynamic_axes, {**input_ranks, **output_ranks})
    trt_axes = check_trt_dynamic_axes(trt_dynamic_axes, input_ranks)
    axes: Dict[str, List[int]] = {}
    all_out = [outputs[i] for i in needed]

    def dynamic(name: str, auto: List[int]) -> List[int]:
        """The user's axes for `name`, plus any axis whose size varies across the samples: an export
        fixed on it would fail its own samples, so it is added, and said."""
        if name not in user_axes:
            return auto
        missing = sorted(set(auto) - set(user_axes[name]))
        if missing:
            message = (
                f"`dynamic_axes[{name!r}]` leaves axes {missing} fixed, but their size varies across the "
                f"samples; they are made dynamic too (name them in `dynamic_axes` to silence this)."
            )
            warnings.warn(message, UserWarning, stacklevel=4)
            LOGGER.warning(message)
        return sorted(set(user_axes[name]) | set(missing))

    for name in sample_set.input_names:
        auto = varying_axes(sample_set.samples, name)
        axes[name] = sorted(set(dynamic(name, auto) + ([batch_dim] if batch_dim is not None else [])))
    for name in output_names:
        auto = varying_axes(all_out, name)
        batch_axes = [batch_dim] if batch_dim is not None and output_ranks[name] > batch_dim else []
        axes[name] = sorted(set(dynamic(name, auto) + batch_axes))
    axes = {k: v for k, v in axes.items() if v}
    inputs_meta = infer_metadata(sample_set.samples, sample_set.input_names, batch_dim, axes)
    outputs_meta = infer_metadata(all_out, list(output_names), batch_dim, axes)
    return axes, trt_axes, inputs_meta, outputs_meta


def check_source_outputs(
    outputs: Dict[int, Dict[str, Any]],
    output_names: Sequence[str],
    atol: Any,
    rtol: Any,
    allow_nonfinite_outputs: bool,
    describe: Optional[Callable[[int], str]] = None,
) -> Optional[str]:
    """Before anything is exported: per-output tolerances name real outputs (else an error). Returns
    why no path can be checked when the source model's outputs on the saved samples hold NaN/inf (a
    NaN reference makes every check meaningless), unless the user says the model produces them on
    purpose; the export then records that and produces nothing (as the reference does). `describe`
    names a sample as the user finds it (SampleSet.describe: the dataloader item and batch position)."""
    import numpy as np

    from model_navigator.core.tolerance import check_tolerance_names

    check_tolerance_names(atol, "atol", output_names)
    check_tolerance_names(rtol, "rtol", output_names)
    if allow_nonfinite_outputs:
        return None
    for index in sorted(outputs):
        for name in output_names:
            value = np.asarray(outputs[index][name])
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                what = "NaN" if np.isnan(value).any() else "inf"
                count = int((~np.isfinite(value)).sum())
                return (
                    f"The source model's output {name!r} holds {what} ({count} of {value.size} elements) on "
                    f"{describe(index) if describe else f'sample {index} of the dataloader'}: correctness cannot "
                    f"be checked against it, so no format was "
                    f"produced. Verify the dataloader and the model, or pass allow_nonfinite_outputs=True if the "
                    f"model produces NaN/inf on purpose (they are then compared by value: NaN must match NaN, inf "
                    f"the same inf)."
                )
    return None


def sample_config_fields(
    sample_set: Any,
    output_names: Sequence[str],
    axes: Dict[str, List[int]],
    trt_axes: Optional[Dict[str, Dict[int, List[int]]]],
) -> Dict[str, Any]:
    """The ExportConfig fields every framework derives from the samples and the source outputs."""
    return {
        "input_names": tuple(sample_set.input_names),
        "output_names": tuple(output_names),
        "dynamic_axes": axes,
        "trt_dynamic_axes": trt_axes,
        "batch_dim": sample_set.batch_dim,
        "forward_kw_names": tuple(sample_set.forward_names or sample_set.input_names) if sample_set.keyword else None,
    }
