"""Small torch helpers shared by the torch exporters and runners (import torch lazily)."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np


def flatten_outputs(value: Any) -> Tuple[List[Any], List[str]]:
    """Flatten a model's output (tensor, tuple/list, dict, nested) into tensors and default names."""
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


def to_torch_inputs(sample: Dict[str, np.ndarray], names: Sequence[str], device: str, keyword: bool):
    """numpy sample -> (args, kwargs) for calling a torch model."""
    import torch

    tensors = [torch.from_numpy(np.ascontiguousarray(sample[n])).to(device) for n in names]
    if keyword:
        return (), dict(zip(names, tensors))
    return tuple(tensors), {}


def outputs_to_numpy(value: Any) -> List[np.ndarray]:
    tensors, _ = flatten_outputs(value)
    return [t.detach().cpu().numpy() for t in tensors]
