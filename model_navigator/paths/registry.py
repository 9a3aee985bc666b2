"""All declared paths per framework (the graph the pipeline walks)."""

from __future__ import annotations

from typing import Tuple

from model_navigator.core.enums import Format, Framework
from model_navigator.core.errors import UserInputError
from model_navigator.core.formats import FORMATS
from model_navigator.paths.base import PathSpec


def paths_for(framework: Framework) -> Tuple[PathSpec, ...]:
    if framework == Framework.TORCH:
        from model_navigator.paths.torch import torch_paths

        return torch_paths()
    if framework == Framework.TENSORFLOW:
        from model_navigator.paths.tensorflow import tensorflow_paths

        return tensorflow_paths()
    if framework == Framework.JAX:
        from model_navigator.paths.jax import jax_paths

        return jax_paths()
    if framework == Framework.ONNX:
        from model_navigator.paths.onnx import onnx_paths

        return onnx_paths()
    raise UserInputError(f"No paths declared for framework {framework.value!r}.")


def find_spec(framework: Framework, key: str) -> PathSpec:
    for spec in paths_for(framework):
        if spec.key == key:
            return spec
    raise UserInputError(f"Unknown path {key!r} for {framework.value}.")


def formats_of(framework: Framework) -> Tuple[Format, ...]:
    """The formats a framework's export() offers: those its paths make, in FORMATS' order (the
    default target_formats, and the choices an error lists)."""
    made = {spec.format for spec in paths_for(framework)}
    return tuple(fmt for fmt in FORMATS if fmt in made)
