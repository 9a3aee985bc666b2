"""Tensor metadata and conversion of framework tensors to numpy without importing frameworks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np


@dataclass(frozen=True)
class TensorMetadata:
    """Name, shape (-1 marks a dynamic axis) and numpy dtype name of one input or output."""

    name: str
    shape: Tuple[int, ...]
    dtype: str

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TensorMetadata":
        return cls(name=str(data["name"]), shape=tuple(int(d) for d in data["shape"]), dtype=str(data["dtype"]))


def is_tensor(value: Any) -> bool:
    """True for numpy arrays and torch / tensorflow / jax tensors (checked by type, no imports)."""
    if isinstance(value, np.ndarray):
        return True
    module = type(value).__module__ or ""
    root = module.split(".")[0]
    if root == "torch":
        return type(value).__name__ in ("Tensor", "Parameter")
    if root in ("tensorflow", "tf_keras", "keras"):
        return hasattr(value, "numpy") and hasattr(value, "shape")
    if root in ("jax", "jaxlib"):
        return hasattr(value, "shape") and hasattr(value, "dtype")
    return False


def to_numpy(value: Any) -> np.ndarray:
    """Convert a tensor of any supported framework to a numpy array on the host."""
    if isinstance(value, np.ndarray):
        return value
    root = (type(value).__module__ or "").split(".")[0]
    if root == "torch":
        return value.detach().cpu().numpy()
    if root in ("tensorflow", "tf_keras", "keras"):
        return np.asarray(value.numpy())
    return np.asarray(value)


def flatten_outputs(value: Any) -> Tuple[List[Any], List[str]]:
    """Flatten a model's output (tensor, tuple/list, dict, nested) into tensors and default names
    (dict keys, else output__N); shared by every framework."""
    tensors: List[Any] = []
    names: List[str] = []

    def walk(v: Any, name: str) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                walk(item, f"{name}.{k}" if name else str(k))
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                walk(item, f"{name}.{i}" if name else f"output__{i}")
        elif hasattr(v, "shape") and hasattr(v, "dtype"):
            tensors.append(v)
            names.append(name or "output__0")
        elif v is None:
            return
        else:
            raise TypeError(f"model output {name or 'output'!r} is {type(v).__name__}, not a tensor")

    walk(value, "")
    return tensors, names
