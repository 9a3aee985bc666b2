"""Triton model configuration (config.pbtxt): a small typed model, its text rendering, and a check
against Triton's own protobuf schema (`inference.ModelConfig`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from model_navigator.core.errors import ModelNavigatorError

# numpy dtype name -> Triton data type (model_config.proto, DataType).
TRITON_DTYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16",
    "object": "TYPE_STRING",
    "bytes": "TYPE_STRING",
    "str": "TYPE_STRING",
}

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class TritonConfigError(ModelNavigatorError):
    """A config.pbtxt does not parse as Triton's ModelConfig, or breaks one of Triton's rules."""


def triton_dtype(dtype: str) -> str:
    name = str(dtype).replace("numpy.", "")
    if name.startswith(("<U", "|S", "<S", "|U")):
        return "TYPE_STRING"
    try:
        return TRITON_DTYPES[name]
    except KeyError:
        raise TritonConfigError(f"dtype {dtype!r} has no Triton data type; known: {sorted(TRITON_DTYPES)}") from None


@dataclass
class TritonTensor:
    name: str
    data_type: str
    dims: Tuple[int, ...]
    reshape: Optional[Tuple[int, ...]] = None  # e.g. () for a scalar given to Triton as dims [1]


@dataclass
class TritonModelConfig:
    """What model-navigator writes into config.pbtxt (a subset of inference.ModelConfig)."""

    name: str
    inputs: List[TritonTensor]
    outputs: List[TritonTensor]
    platform: Optional[str] = None
    backend: Optional[str] = None
    max_batch_size: int = 0
    default_model_filename: Optional[str] = None
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    dynamic_batching: bool = False
    preferred_batch_sizes: List[int] = field(default_factory=list)
    max_queue_delay_us: Optional[int] = None
    parameters: Dict[str, str] = field(default_factory=dict)
    gpu_execution_accelerators: List[str] = field(default_factory=list)

    def to_pbtxt(self, header: Sequence[str] = ()) -> str:
        """The protobuf text format Triton reads, with `header` lines as # comments on top."""
        out: List[str] = [f"# {line}" for line in header]
        out.append(f"name: {_quote(self.name)}")
        if self.platform:
            out.append(f"platform: {_quote(self.platform)}")
        if self.backend:
            out.append(f"backend: {_quote(self.backend)}")
        if self.default_model_filename:
            out.append(f"default_model_filename: {_quote(self.default_model_filename)}")
        out.append(f"max_batch_size: {int(self.max_batch_size)}")
        for label, tensors in (("input", self.inputs), ("output", self.outputs)):
            out.append(f"{label} [")
            for i, t in enumerate(tensors):
                out.append("  {")
                out.append(f"    name: {_quote(t.name)}")
                out.append(f"    data_type: {t.data_type}")
                out.append(f"    dims: [ {', '.join(str(int(d)) for d in t.dims)} ]")
                if t.reshape is not None:
                    out.append(f"    reshape: {{ shape: [ {', '.join(str(int(d)) for d in t.reshape)} ] }}")
                out.append("  }" + ("," if i < len(tensors) - 1 else ""))
            out.append("]")
        out.append("instance_group [")
        out.append("  {")
        out.append(f"    count: {int(self.instance_count)}")
        out.append(f"    kind: {self.instance_kind}")
        out.append("  }")
        out.append("]")
        if self.dynamic_batching:
            out.append("dynamic_batching {")
            if self.preferred_batch_sizes:
                out.append(f"  preferred_batch_size: [ {', '.join(str(int(b)) for b in self.preferred_batch_sizes)} ]")
            if self.max_queue_delay_us is not None:
                out.append(f"  max_queue_delay_microseconds: {int(self.max_queue_delay_us)}")
            out.append("}")
        if self.gpu_execution_accelerators:
            out.append("optimization {")
            out.append("  execution_accelerators {")
            out.append("    gpu_execution_accelerator: [")
            for i, name in enumerate(self.gpu_execution_accelerators):
                comma = "," if i < len(self.gpu_execution_accelerators) - 1 else ""
                out.append(f"      {{ name: {_quote(name)} }}{comma}")
            out.append("    ]")
            out.append("  }")
            out.append("}")
        for key, value in self.parameters.items():
            out.append("parameters {")
            out.append(f"  key: {_quote(key)}")
            out.append(f"  value: {{ string_value: {_quote(value)} }}")
            out.append("}")
        return "\n".join(out) + "\n"


def _quote(text: str) -> str:
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def parse_model_config(text: str) -> Any:
    """Parse config.pbtxt text into Triton's `inference.ModelConfig` (unknown fields, wrong types
    and bad enum values raise TritonConfigError), then apply Triton's own load-time rules that the
    schema cannot express. Returns the protobuf message."""
    try:
        from google.protobuf import text_format
    except ImportError as e:  # pragma: no cover - protobuf comes with onnx
        raise TritonConfigError("validating config.pbtxt needs protobuf: pip install protobuf") from e
    from model_navigator.triton.schema import model_config_class

    message = model_config_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise TritonConfigError(f"config.pbtxt is not a valid Triton ModelConfig: {e}") from e
    check_model_config(message)
    return message


def check_model_config(config: Any) -> None:
    """Rules Triton enforces when it loads a model (server/src/model_config_utils.cc), which the
    protobuf schema alone does not."""
    problems = []
    if not config.name:
        problems.append("`name` is empty")
    if not config.platform and not config.backend:
        problems.append("neither `platform` nor `backend` is set")
    if config.max_batch_size < 0:
        problems.append("`max_batch_size` is negative")
    for label, tensors in (("input", config.input), ("output", config.output)):
        if not tensors:
            problems.append(f"no {label}s")
        names = [t.name for t in tensors]
        if len(set(names)) != len(names):
            problems.append(f"duplicate {label} names {names}")
        for t in tensors:
            if not t.name:
                problems.append(f"an {label} has no name")
            if t.data_type == 0:  # TYPE_INVALID
                problems.append(f"{label} {t.name!r} has no data_type")
            if not t.dims:
                problems.append(f"{label} {t.name!r} has no dims (a scalar needs dims [1] and reshape {{ shape: [] }})")
            if any(d < -1 or d == 0 for d in t.dims):
                problems.append(f"{label} {t.name!r} has dims {list(t.dims)}: each must be -1 (dynamic) or >= 1")
    if config.HasField("dynamic_batching"):
        if config.max_batch_size < 1:
            problems.append("dynamic_batching needs max_batch_size >= 1")
        too_big = [b for b in config.dynamic_batching.preferred_batch_size if b > config.max_batch_size or b < 1]
        if too_big:
            problems.append(f"preferred_batch_size {too_big} outside 1..max_batch_size ({config.max_batch_size})")
    if problems:
        raise TritonConfigError("config.pbtxt breaks Triton's rules: " + "; ".join(problems))
