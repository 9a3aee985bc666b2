"""Tensors as config.pbtxt declares them: Triton data types and dims, and the names Triton's
backend needs (the PyTorch backend's `<name>__<index>`). Shared by the repository writer and serving."""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

from model_navigator.core.formats import TritonBackend
from model_navigator.core.status import NavigatorStatus
from model_navigator.core.tensor import TensorMetadata
from model_navigator.triton.config import TritonTensor, triton_dtype

_INDEXED_NAME = re.compile(r"^.+__\d+$")
_INDEX_SUFFIX = re.compile(r"__\d+$")


def triton_tensor(meta: TensorMetadata, batched: bool, name: str) -> TritonTensor:
    """One tensor of config.pbtxt: Triton's data type and dims, the batch axis left out when `batched`."""
    dims = tuple(meta.shape[1:] if batched else meta.shape)
    if not dims:  # a scalar (or a per-batch scalar): Triton wants dims [1] reshaped to []
        return TritonTensor(name, triton_dtype(meta.dtype), (1,), reshape=())
    return TritonTensor(name, triton_dtype(meta.dtype), dims)


def triton_names(status: NavigatorStatus, backend: TritonBackend) -> Tuple[List[str], List[str], Dict[str, str]]:
    """Tensor names as Triton's backend needs them. ONNX, SavedModel and TensorRT keep theirs; the
    PyTorch backend (indexed_names) finds tensors by `<name>__<index>` (or, for inputs, forward()'s
    argument names, which keyword inputs are), so other names are given that form."""
    ins = [m.name for m in status.inputs]
    outs = [m.name for m in status.outputs]
    renamed: Dict[str, str] = {}
    if not backend.indexed_names:
        return ins, outs, renamed

    def indexed(names: List[str]) -> List[str]:
        if all(_INDEXED_NAME.match(n) for n in names):
            return names
        result = []
        for i, n in enumerate(names):
            new = f"{_INDEX_SUFFIX.sub('', n)}__{i}"
            if new != n:
                renamed[n] = new
            result.append(new)
        return result

    if not status.config.forward_kw_names:
        ins = indexed(ins)
    outs = indexed(outs)
    return ins, outs, renamed
