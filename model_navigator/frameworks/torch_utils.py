"""Small torch helpers shared by the torch exporters and runners (import torch lazily)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from model_navigator.core.tensor import flatten_outputs  # noqa: F401  (shared by every framework)


def to_torch_inputs(
    sample: Dict[str, np.ndarray],
    names: Sequence[str],
    device: str,
    keyword: bool,
    kw_names: Optional[Sequence[str]] = None,
):
    """numpy sample -> (args, kwargs) for calling a torch model; keyword inputs are passed under
    `kw_names` (the forward's parameter names, when `input_names` renamed them) or their own names."""
    import torch

    tensors = [torch.from_numpy(np.ascontiguousarray(sample[n])).to(device) for n in names]
    if keyword:
        return (), dict(zip(kw_names or names, tensors, strict=True))
    return tuple(tensors), {}


def outputs_to_numpy(value: Any) -> List[np.ndarray]:
    tensors, _ = flatten_outputs(value)
    return [t.detach().cpu().numpy() for t in tensors]
