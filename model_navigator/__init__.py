"""model-navigator: export, convert, verify and profile PyTorch, TensorFlow 2 and JAX models.

Importing this package imports no framework; nav.torch / nav.tensorflow / nav.jax load theirs lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import (
    Format,
    JitType,
    MeasurementMode,
    RuntimeProvider,
    TensorRTPrecision,
    TensorRTPrecisionMode,
)
from model_navigator.core.errors import (
    ModelNavigatorError,
    PackageError,
    UserInputError,
)
from model_navigator.package.descriptor import PackageDescriptor

__version__ = "0.3.0"

_LAZY = {
    "torch": "model_navigator.api.torch",
    "tensorflow": "model_navigator.api.tensorflow",
    "jax": "model_navigator.api.jax",
    "onnx": "model_navigator.api.onnx",
    "triton": "model_navigator.triton",
    "selection": "model_navigator.selection",
    "batch": "model_navigator.batch",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    if name in ("SelectionStrategy", "Selection", "NoRuntimeQualifiesError", "select_runtime"):
        from model_navigator import selection

        return getattr(selection, name)
    if name in ("serve", "loadtest"):  # model_navigator.serving: PyTriton is imported when called
        from model_navigator import serving

        return getattr(serving, name)
    if name in ("save", "load", "profile"):
        from model_navigator.package import nav

        return getattr(nav, name)
    raise AttributeError(f"module 'model_navigator' has no attribute {name!r}")


__all__ = [
    "Format",
    "JitType",
    "MeasurementMode",
    "ModelNavigatorError",
    "PackageDescriptor",
    "PackageError",
    "ProfilerConfig",
    "RuntimeProvider",
    "TensorRTPrecision",
    "TensorRTPrecisionMode",
    "UserInputError",
    "jax",
    "load",
    "profile",
    "save",
    "tensorflow",
    "torch",
    "NoRuntimeQualifiesError",
    "Selection",
    "SelectionStrategy",
    "select_runtime",
    "selection",
    "triton",
    "loadtest",
    "serve",
    "batch",
]
