"""Synthetic samples for a model file handed over without a dataloader (`model-navigator export
model.onnx`): one array per graph input from its shape and dtype, with a fixed seed. Fixed axes
keep their size; a dynamic batch axis (axis 0 dynamic in every input) gets `batch_size`; every other
dynamic axis needs a size from the user (by its symbolic name, or one for all), else a clear error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from model_navigator.core.errors import UserInputError

Dim = Union[int, str, None]  # a fixed size, a symbolic name (dim_param), or unknown


@dataclass
class SyntheticSpec:
    """How to fill the inputs: sizes of dynamic axes by name (or `dynamic_size` for any), the batch,
    how many batches, the seed, and the [low, high) range of integer inputs."""

    sizes: Dict[str, int]
    dynamic_size: Optional[int] = None
    batch_size: int = 2
    batches: int = 4
    seed: int = 0
    int_range: Tuple[int, int] = (0, 100)


def onnx_input_dims(path: Path) -> List[Tuple[str, np.dtype, List[Dim]]]:
    """(name, numpy dtype, dims) of every real input of the ONNX file (checked with onnx's checker)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    from model_navigator.exporters.onnx import load_checked

    proto = load_checked(Path(path).absolute())
    initializers = {i.name for i in proto.graph.initializer}
    result = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
            raise UserInputError(
                f"ONNX input {value.name!r} has no tensor shape: its samples cannot be made up; "
                f"export with a dataloader (nav.onnx.export) instead."
            )
        dims: List[Dim] = [
            int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
        ]
        result.append((value.name, np.dtype(tensor_dtype_to_np_dtype(tensor.elem_type)), dims))
    return result


def _size(name: str, axis: int, dim: Dim, spec: SyntheticSpec, batch: bool) -> int:
    if isinstance(dim, int) and dim > 0:
        return dim
    if isinstance(dim, str) and dim in spec.sizes:  # named by --dim, the batch axis included
        return spec.sizes[dim]
    if batch and axis == 0:
        return spec.batch_size
    if spec.dynamic_size is not None:
        return spec.dynamic_size
    if isinstance(dim, str):
        label, hint = f"axis {axis} ({dim!r})", f"--dim {dim}=SIZE (or --dynamic-size SIZE for every dynamic axis)"
    else:
        label, hint = f"axis {axis} (no name)", "--dynamic-size SIZE (the axis has no name for --dim)"
    raise UserInputError(
        f"Model input {name!r} has a dynamic {label} whose size cannot be guessed: give it with {hint}."
    )


def _check_dim_names(inputs: List[Tuple[str, np.dtype, List[Dim]]], spec: SyntheticSpec) -> None:
    """--dim NAME=SIZE must name a dynamic axis of the model: a misspelt name is refused, not ignored."""
    known = sorted({d for _, _, dims in inputs for d in dims if isinstance(d, str)})
    unknown = sorted(set(spec.sizes) - set(known))
    if unknown:
        raise UserInputError(
            f"--dim {', '.join(unknown)}: no input axis of the model has that name; the named "
            f"dynamic axes are: {', '.join(known) or 'none (use --dynamic-size SIZE)'}."
        )


def _fill(rng: np.random.Generator, shape: Tuple[int, ...], dtype: np.dtype, spec: SyntheticSpec, name: str) -> Any:
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind in "iu":
        low, high = spec.int_range
        return rng.integers(low, high, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    raise UserInputError(
        f"Model input {name!r} has dtype {dtype}, which synthetic samples cannot fill; export with "
        f"a dataloader (nav.onnx.export) instead."
    )


def synthetic_onnx_samples(path: Path, spec: SyntheticSpec) -> Tuple[List[Dict[str, np.ndarray]], Optional[int]]:
    """`spec.batches` dict samples for the ONNX file, and the batch_dim to export them with (0 when
    every input's axis 0 is dynamic: the batch; else None, each sample fed whole)."""
    return synthetic_samples(onnx_input_dims(path), spec)


def synthetic_samples(
    inputs: List[Tuple[str, np.dtype, List[Dim]]], spec: SyntheticSpec
) -> Tuple[List[Dict[str, np.ndarray]], Optional[int]]:
    """`spec.batches` dict samples for inputs (name, dtype, dims), and the batch_dim to export them with."""
    if spec.int_range[0] >= spec.int_range[1]:
        raise UserInputError(f"--int-range {spec.int_range[0]} {spec.int_range[1]}: LOW must be below HIGH.")
    _check_dim_names(inputs, spec)
    batch = bool(inputs) and all(dims and not (isinstance(dims[0], int) and dims[0] > 0) for _, _, dims in inputs)
    shapes = {
        name: tuple(_size(name, axis, dim, spec, batch) for axis, dim in enumerate(dims)) for name, _, dims in inputs
    }
    rng = np.random.default_rng(spec.seed)
    samples = [
        {name: _fill(rng, shapes[name], dtype, spec, name) for name, dtype, _ in inputs} for _ in range(spec.batches)
    ]
    return samples, 0 if batch else None


def savedmodel_inputs(path: Path) -> Tuple[Any, List[Tuple[str, np.dtype, List[Dim]]]]:
    """A SavedModel folder's `serving_default` as a tf.Module nav.tensorflow.export takes (called
    with the inputs in the signature's name order, returning its dict of outputs), and those
    inputs' (name, dtype, dims: None where the signature leaves an axis free)."""
    from model_navigator.frameworks.tensorflow_utils import import_tensorflow, tf_quiet

    tf = import_tensorflow()
    try:
        with tf_quiet("tf.saved_model.load"):
            loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
    except Exception as e:
        raise UserInputError(
            f"{str(path)!r} is not a SavedModel with a `serving_default` signature: "
            f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        ) from e
    specs = signature.structured_input_signature[1]
    names = sorted(specs)
    inputs: List[Tuple[str, np.dtype, List[Dim]]] = []
    for name in names:
        if specs[name].shape.rank is None:
            raise UserInputError(f"SavedModel input {name!r} has no known rank: its samples cannot be made up.")
        inputs.append((name, np.dtype(specs[name].dtype.as_numpy_dtype), list(specs[name].shape.as_list())))
    module_base: Any = tf.Module

    class SignatureModule(module_base):
        """The loaded SavedModel (its variables tracked) called through its serving signature."""

        def __init__(self) -> None:
            super().__init__(name="savedmodel")
            self.loaded = loaded

        def __call__(self, *tensors: Any) -> Any:
            return self.loaded.signatures["serving_default"](**dict(zip(names, tensors, strict=True)))

    return SignatureModule(), inputs
