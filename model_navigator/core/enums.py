"""Stable string enums: their values appear in folder names, status.yaml and the CLI."""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Optional, Tuple, Type, TypeVar, Union

from model_navigator.core.errors import UserInputError

E = TypeVar("E", bound=Enum)


class StrEnum(str, Enum):
    """A str-valued enum whose str() is its value (folder names, YAML)."""

    def __str__(self) -> str:
        return self.value


class Framework(StrEnum):
    TORCH = "torch"
    TENSORFLOW = "tensorflow"
    JAX = "jax"
    ONNX = "onnx"


class Format(StrEnum):
    """Model formats. TORCH/TENSORFLOW/JAX/ONNX_SOURCE name the user's source model (never an artifact)."""

    TORCHSCRIPT = "torchscript"
    TORCH_EXPORTEDPROGRAM = "torch-exportedprogram"
    ONNX = "onnx"
    TORCH_TRT = "torch-trt"
    TF_SAVEDMODEL = "tf-savedmodel"
    TF_TRT = "tf-trt"
    TENSORRT = "trt"
    TORCH = "torch"
    TENSORFLOW = "tensorflow"
    JAX = "jax"
    ONNX_SOURCE = "onnx-source"  # the user's .onnx file given to nav.onnx.export


class JitType(StrEnum):
    SCRIPT = "script"
    TRACE = "trace"


class TensorRTPrecision(StrEnum):
    """A path's precision (`target_precisions`): fp32 / fp16 for the TensorRT family, int8 / bf16 for
    the reduced-precision CPU paths (ONNX int8, OpenVINO bf16). The name is the reference's; `Precision`
    is the same enum."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    BF16 = "bf16"


Precision = TensorRTPrecision
# Precisions below fp32 on the CPU: judged by an accuracy budget (core/budget.py), not element-wise.
REDUCED_PRECISIONS = (TensorRTPrecision.INT8, TensorRTPrecision.BF16)


class TensorRTPrecisionMode(StrEnum):
    SINGLE = "single"
    HIERARCHY = "hierarchy"


class RuntimeProvider(StrEnum):
    """Runtimes. For ONNX these are ONNX Runtime providers; for framework formats they name the
    device the framework runs on (CPU -> cpu, CUDA -> cuda)."""

    CPU = "CPUExecutionProvider"
    CUDA = "CUDAExecutionProvider"
    TRT = "TensorrtExecutionProvider"
    # OpenVINO's own runtime (openvino.Core, CPU plugin) on the .onnx artifact; not ONNX Runtime's
    # OpenVINO execution provider (a separate onnxruntime-openvino build), hence not "...ExecutionProvider".
    OPENVINO = "OpenVINO"
    # torch.compile (inductor) of the user's source model; opt-in, in the user's process.
    TORCH_COMPILE = "TorchCompile"
    # The reference's names for the framework's own runtime. Accepted wherever a runtime is taken and
    # resolved to CPU / CUDA (the device the framework runs on); status.yaml never holds them.
    PYT = "PyTorchExecutionProvider"
    TF = "TensorFlowExecutionProvider"


FRAMEWORK_RUNTIME_ALIASES = (RuntimeProvider.PYT, RuntimeProvider.TF)


def resolve_runtime(runtime: RuntimeProvider, device: str) -> RuntimeProvider:
    """PyTorchExecutionProvider / TensorFlowExecutionProvider -> the framework on `device` (CPU or CUDA)."""
    if runtime in FRAMEWORK_RUNTIME_ALIASES:
        return RuntimeProvider.CPU if device == "cpu" else RuntimeProvider.CUDA
    return runtime


def parse_runtime(value: Union[str, RuntimeProvider], argument: str, device: str) -> RuntimeProvider:
    """A user's runtime name as a member, the reference's framework aliases resolved for `device`."""
    return resolve_runtime(parse_enum(RuntimeProvider, value, argument), device)


class MeasurementMode(StrEnum):
    COUNT_WINDOWS = "count_windows"
    TIME_WINDOWS = "time_windows"


class StepStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_RUN = "not_run"


def parse_enum(enum_cls: Type[E], value: Union[str, E], argument: str) -> E:
    """Turn a user's string or enum into a member, or raise a UserInputError listing the choices."""
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        for member in enum_cls:
            if value == member.value or value.lower() == member.value.lower() or value.upper() == member.name:
                return member
    choices = ", ".join(repr(m.value) for m in enum_cls)
    raise UserInputError(f"`{argument}`: unknown value {value!r}; choose from {choices}.")


def parse_enum_tuple(
    enum_cls: Type[E], value: Optional[Union[str, E, Iterable[Union[str, E]]]], argument: str
) -> Optional[Tuple[E, ...]]:
    """Normalise one value or a sequence of values into a tuple of enum members (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (str, Enum)):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise UserInputError(
            f"`{argument}` must be a value or a tuple of values, got {type(value).__name__}."
        ) from None
    if not items:
        raise UserInputError(f"`{argument}` is empty; pass None for the defaults or at least one value.")
    return tuple(dict.fromkeys(parse_enum(enum_cls, v, argument) for v in items))
