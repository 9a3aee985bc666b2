"""Correctness tolerances: the documented defaults per precision, and how the user's atol/rtol
(a number, or a dict by output name) override them.

The rule is Polygraphy's: an element fails only when its difference exceeds every tolerance that
applies to it (absolute AND relative, when both apply), so an fp32 export that is right does not
fail on reference elements near zero, and a wrong one (a baked-in branch, a missing op) fails.

Which tolerances apply to an output:
- the user gave neither `atol` nor `rtol`: the default of the path's precision (below);
- the user gave one or both: exactly those given for that output (a number applies to every
  output, a dict to the outputs it names); an output a dict leaves out gets the default.
  `atol=float("inf")` measures without judging (the first version's behaviour).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from model_navigator.core.enums import Format, RuntimeProvider, TensorRTPrecision
from model_navigator.core.errors import UserInputError
from model_navigator.core.formats import format_spec, runtime_spec

# A user-given tolerance: one number for every output, or a dict output name -> number.
UserTolerance = Optional[Union[float, Dict[str, float]]]


@dataclass(frozen=True)
class Tolerance:
    """An element fails when |a - b| > atol and |a - b| / |b| > rtol (None: that bound does not apply)."""

    atol: Optional[float]
    rtol: Optional[float]


# The defaults, chosen from the errors of correct exports of real architectures (the README's
# correctness section and bench/results/tolerance_evidence.md hold the evidence):
# - fp32: the same math on the CPU (ONNX Runtime's fused kernels, OpenVINO pinned to f32,
#   TorchScript, torch.export, SavedModel) differs by float32 rounding only.
# - fp32 on a GPU: cuDNN convolutions and ONNX Runtime's CUDA provider use TF32 by default
#   (10-bit mantissa), about 1e-3 relative per operation.
# - fp16: TensorRT fp16 engines (and TF-TRT / Torch-TensorRT fp16) round every layer to fp16.
DEFAULT_TOLERANCES: Dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-3),
    "fp32-gpu": Tolerance(atol=1e-3, rtol=1e-2),
    "fp16": Tolerance(atol=1e-2, rtol=5e-2),
}


def default_tolerance_name(fmt: Format, precision: Optional[TensorRTPrecision], runtime: RuntimeProvider) -> str:
    """The DEFAULT_TOLERANCES entry for a path's format and precision on a runtime: fp16 for an fp16
    path, else the one the format declares (the GPU family: fp32-gpu), else the runtime's (fp32-gpu
    on CUDA / TensorRT, fp32 on the CPU); see core/formats.py."""
    if precision == TensorRTPrecision.FP16:
        return "fp16"
    return format_spec(fmt).tolerance or runtime_spec(runtime).tolerance


def check_user_tolerance(value: Any, name: str) -> UserTolerance:
    """None, a non-negative number (inf allowed: measure only) or a dict output name -> such a number."""

    def number(v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v) or v < 0:
            raise UserInputError(
                f"`{where}` must be a non-negative number (float('inf') measures without judging), got {v!r}."
            )
        return float(v)

    if value is None:
        return None
    if isinstance(value, Mapping):
        if not value or not all(isinstance(k, str) and k for k in value):
            raise UserInputError(f"`{name}` as a dict must map output names to numbers, got {dict(value)!r}.")
        return {k: number(v, f"{name}[{k!r}]") for k, v in value.items()}
    return number(value, name)


def check_tolerance_names(value: UserTolerance, name: str, output_names: Sequence[str]) -> None:
    """A per-output tolerance must name outputs the model has (checked once the outputs are known)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(output_names))
        if unknown:
            raise UserInputError(
                f"`{name}` names {unknown}, which are not outputs of the model; outputs: {list(output_names)}."
            )


def _for_output(value: UserTolerance, output: str) -> Tuple[bool, Optional[float]]:
    """(given for this output, value)."""
    if value is None:
        return False, None
    if isinstance(value, dict):
        return (output in value), value.get(output)
    return True, float(value)


def resolve_tolerance(atol: UserTolerance, rtol: UserTolerance, output: str, default: Tolerance) -> Tolerance:
    """The tolerance that judges `output`: the user's for it when given, else the default."""
    has_atol, a = _for_output(atol, output)
    has_rtol, r = _for_output(rtol, output)
    if not has_atol and not has_rtol:
        return default
    return Tolerance(atol=a if has_atol else None, rtol=r if has_rtol else None)


def describe(tolerance: Tolerance) -> str:
    parts = [f"{k}={v:g}" for k, v in (("atol", tolerance.atol), ("rtol", tolerance.rtol)) if v is not None]
    return ", ".join(parts) or "none"
