"""JAX helpers shared by nav.jax, the jax2tf exporter and the JAX source runner: the memory
settings the reference advises, importing jax and jax2tf with clear errors, calling the user's
predict function with its params, and flattening what it returns.

The predict function follows the reference: its last parameter takes the params (model weights).
Positional samples call `predict(*inputs, params)`; dict samples call
`predict(**inputs, <last parameter>=params)`. Outputs (an array, tuples/lists, dicts, Flax
structures: any pytree) are flattened in jax.tree_util order and named by their tree path.

No module here imports jax or TensorFlow at import time.
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.errors import FrameworkMissingError, UserInputError
from model_navigator.core.logging import LOGGER

PREALLOCATE_ENV = "XLA_PYTHON_CLIENT_PREALLOCATE"
TF_GROWTH_ENV = "TF_FORCE_GPU_ALLOW_GROWTH"
# jax2tf's non-native (pure TensorFlow ops) serialization, i.e. enable_xla=False: deprecated in
# jax 0.4.31, removed in jax 0.7.2 (jax PR #31404); jax 0.7.1 is the last release that has it.
LAST_JAX_WITH_NON_NATIVE = "0.7.1"
NON_NATIVE_REMOVED_IN = "0.7.2"
TESTED_JAX = "jax 0.10.2 (current) and jax 0.7.1 (the last with enable_xla=False), with tensorflow-cpu 2.21"
DEFAULT_PARAMS_ARG = "params"

PREALLOCATE_AT_IMPORT = os.environ.get(PREALLOCATE_ENV)  # the user's own setting, if any


def configure_memory() -> None:
    """What the reference advises for JAX users, set for them unless they chose otherwise:
    XLA_PYTHON_CLIENT_PREALLOCATE=false (JAX must not grab 75% of the GPU when it initialises) and
    TF_FORCE_GPU_ALLOW_GROWTH=true (TensorFlow, here and in the worker processes, grows its GPU
    memory instead of taking all of it). Both only matter on a GPU."""
    os.environ.setdefault(PREALLOCATE_ENV, "false")
    os.environ.setdefault(TF_GROWTH_ENV, "true")


def set_tf_memory_growth(tf: Any) -> None:
    """tf.config.experimental.set_memory_growth for every visible GPU (the reference's snippet);
    no-op without a GPU. Too late once TensorFlow initialised its GPUs: then logged, not raised."""
    try:
        gpus = tf.config.experimental.list_physical_devices("GPU")
    except Exception:
        return
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError) as e:
            LOGGER.debug("TensorFlow memory growth not set for %s: %s", gpu, e)


def import_jax() -> Any:
    """`import jax` after configure_memory(); a clear error naming the extra when it is missing."""
    configure_memory()
    if "jax" in sys.modules:
        return sys.modules["jax"]
    try:
        import jax
    except ImportError as e:
        raise FrameworkMissingError(f"nav.jax needs JAX: pip install 'model-navigator[jax]' ({e}).") from e
    return jax


def jax_version() -> str:
    try:
        return str(import_jax().__version__)
    except FrameworkMissingError:
        return "not installed"


def import_jax2tf() -> Any:
    """jax.experimental.jax2tf, or an error that names the installed jax and the versions that work."""
    from model_navigator.frameworks.tensorflow_utils import import_tensorflow

    import_jax()
    try:
        import_tensorflow()
    except FrameworkMissingError as e:
        raise FrameworkMissingError(
            f"nav.jax exports through jax2tf, which needs TensorFlow: pip install 'model-navigator[jax]' ({e})."
        ) from e
    try:
        from jax.experimental import jax2tf
    except ImportError as e:
        raise FrameworkMissingError(
            f"nav.jax exports through jax.experimental.jax2tf, which the installed jax {jax_version()} does not "
            f"have ({type(e).__name__}: {e}). jax2tf ships with jax 0.4.x to 0.10.x (tested: {TESTED_JAX}); "
            f"install one of those: pip install 'model-navigator[jax]'."
        ) from e
    if not hasattr(jax2tf, "convert"):
        raise FrameworkMissingError(
            f"jax.experimental.jax2tf of the installed jax {jax_version()} has no convert(); nav.jax needs a jax "
            f"whose jax2tf.convert exists (tested: {TESTED_JAX})."
        )
    return jax2tf


def non_native_supported() -> bool:
    """Does the installed jax2tf still convert to plain TensorFlow ops (enable_xla=False)?"""
    import importlib.util

    try:
        return importlib.util.find_spec("jax.experimental.jax2tf.impl_no_xla") is not None
    except (ImportError, ValueError):
        return False


def enable_xla_false_reason() -> Optional[str]:
    """Why an enable_xla=False SavedModel cannot be made with the installed jax, or None."""
    if non_native_supported():
        return None
    return (
        f"enable_xla=False needs jax2tf's non-native serialization (plain TensorFlow ops, convertible to ONNX), "
        f"which the installed jax {jax_version()} no longer has: it was deprecated in jax 0.4.31 and removed in jax "
        f"{NON_NATIVE_REMOVED_IN}, and jax2tf now ignores enable_xla and always emits one XlaCallModule op; "
        f"install jax<={LAST_JAX_WITH_NON_NATIVE} (jaxlib to match, flax<0.12) for this variant"
    )


def jax_gpu_available() -> bool:
    jax = import_jax()
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def jax_device(device: str) -> Any:
    """model-navigator device ('cpu', 'cuda', 'cuda:1') -> a jax Device."""
    jax = import_jax()
    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return jax.devices("gpu")[index]
    return jax.devices("cpu")[0]


# ------------------------------------------------------------------------------------------------
# The user's predict function and its params
# ------------------------------------------------------------------------------------------------


@dataclass
class JaxModel:
    """The source model of a JAX export: the predict function and the params it takes last.
    Calling it calls predict with the params (what the source runner and get_model() give)."""

    predict: Callable[..., Any]
    params: Any
    params_arg: str = DEFAULT_PARAMS_ARG

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return self.predict(*args, **kwargs, **{self.params_arg: self.params})
        return self.predict(*args, self.params)


def _signature(fn: Callable[..., Any]) -> Optional[inspect.Signature]:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def params_argument(fn: Callable[..., Any]) -> str:
    """The name of the predict function's last parameter (keyword calls pass the params by it)."""
    sig = _signature(fn)
    if sig is None:
        return DEFAULT_PARAMS_ARG
    named = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named[-1].name if named else DEFAULT_PARAMS_ARG


def check_predict(fn: Any, input_names: Sequence[str], keyword: bool) -> str:
    """Refuse a predict function that cannot take the samples and the params; return the name of
    its params parameter."""
    if not callable(fn):
        raise UserInputError(
            f"`model` must be the JAX predict function (a callable whose last argument is the params), got "
            f"{type(fn).__module__}.{type(fn).__name__}."
        )
    params_arg = params_argument(fn)
    sig = _signature(fn)
    if sig is None:
        return params_arg
    try:
        if keyword:
            sig.bind(**{n: None for n in input_names}, **{params_arg: None})
        else:
            sig.bind(*([None] * (len(input_names) + 1)))
    except TypeError as e:
        shown = ", ".join(input_names)
        call = (
            f"model({', '.join(f'{n}=...' for n in input_names)}, {params_arg}=params)"
            if keyword
            else f"model({shown}, params)"
        )
        raise UserInputError(
            f"The predict function {getattr(fn, '__name__', type(fn).__name__)}{sig} cannot be called as {call} "
            f"({e}): it must take one argument per dataloader input ({len(input_names)}: {shown}) and the params "
            f"last; wrap it to match."
        ) from e
    return params_arg


def check_params(params: Any) -> None:
    """Every leaf of the params pytree must be a numeric array or number."""
    jax = import_jax()
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in leaves:
        try:
            kind = np.asarray(leaf).dtype.kind
        except Exception:
            kind = "O"
        if kind not in "biufc" and str(getattr(leaf, "dtype", "")) != "bfloat16":
            raise UserInputError(
                f"`model_params` leaf {jax.tree_util.keystr(path) or '(root)'} is {type(leaf).__name__}, not a "
                f"numeric array; model_params must be a pytree of arrays (e.g. Flax's model.init(...) result)."
            )


def call_predict(
    model: JaxModel, inputs: Sequence[Any], names: Sequence[str], keyword: bool, params: Any = None
) -> Any:
    """predict(*inputs, params) or predict(**inputs, <params_arg>=params); `params` defaults to the
    model's own (the exporter passes them as traced values)."""
    weights = model.params if params is None else params
    if keyword:
        return model.predict(**dict(zip(names, inputs, strict=True)), **{model.params_arg: weights})
    return model.predict(*inputs, weights)


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def flatten_outputs(value: Any) -> Tuple[List[Any], List[str]]:
    """Flatten any pytree the predict function returns into leaves (jax.tree_util order) and names:
    dict keys and attribute names joined by '.', positions as output__N at the top level."""
    jax = import_jax()
    leaves, _ = jax.tree_util.tree_flatten_with_path(value)
    tensors: List[Any] = []
    names: List[str] = []
    for path, leaf in leaves:
        parts: List[str] = []
        for depth, key in enumerate(path):
            piece = _key_name(key)
            if depth == 0 and type(key).__name__ in ("SequenceKey", "FlattenedIndexKey"):
                piece = f"output__{piece}"
            parts.append(piece)
        tensors.append(leaf)
        names.append(".".join(parts) or "output__0")
    return tensors, names


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(value)


def describe_inputs(sample: Dict[str, np.ndarray]) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sample.items()}
