"""TensorFlow helpers shared by nav.tensorflow, the SavedModel exporter, the converters and the
runners: a quiet import, calling the user's model, flattening its outputs.

TensorFlow is imported only by `import_tensorflow()`, so a torch user never loads it. TensorFlow
prints start-up lines (absl, oneDNN) straight to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL
says, and logs Python warnings through its own handlers: `tf_quiet()` keeps both out of the
user's terminal and sends them to the model-navigator log (navigator.log / format.log), holding
them until a log file is open when none is yet.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
import warnings
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence

import numpy as np

from model_navigator.core.errors import FrameworkMissingError, UserInputError
from model_navigator.core.logging import LOGGER, muted_terminal
from model_navigator.core.tensor import flatten_outputs  # noqa: F401  (shared by every framework)

SIGNATURE_KEY = "serving_default"  # the one signature of every SavedModel model-navigator writes

# Loggers TensorFlow, Keras and tf2onnx write through (each with its own stderr handler).
NOISY_LOGGERS = ("tensorflow", "absl", "keras", "tf2onnx", "h5py")
_PENDING: Deque[str] = collections.deque(maxlen=200)  # TF output caught while no log file was open
_LOCK = threading.RLock()
_DEPTH = 0
# Names TensorFlow accepts for graph ops (signature inputs become placeholders with these names).
_TF_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")


def _in_worker() -> bool:
    """The model-navigator worker sends its stderr to navigator.log already: no need to catch it."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) == "model_navigator.steps.worker"


def _log_file_open() -> bool:
    return any(isinstance(h, logging.FileHandler) for h in LOGGER.handlers)


def _emit(text: str) -> None:
    text = text.strip()
    if not text:
        return
    if _log_file_open():
        LOGGER.debug("%s", text)
    else:
        _PENDING.append(text)


def flush_pending() -> None:
    """Write what TensorFlow printed before a log file was open into the log now open."""
    while _PENDING and _log_file_open():
        LOGGER.debug("%s", _PENDING.popleft())


class _Forward(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _emit(f"[{record.name}] {record.levelname}: {record.getMessage()}")
        except Exception:  # a log line must never break an export
            pass


@contextlib.contextmanager
def _forwarded_loggers() -> Iterator[None]:
    """TensorFlow's, Keras' and tf2onnx's loggers write to our log meanwhile, through one handler."""
    forward = _Forward()
    saved = []
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(forward)
        logger.propagate = False
    # absl.logging.log() calls logging.basicConfig() when the root logger has no handler, which would
    # leave a stderr handler on the user's root logger for good: give it a silent one meanwhile.
    root_guard = logging.NullHandler()
    logging.root.addHandler(root_guard)
    try:
        yield
    finally:
        logging.root.removeHandler(root_guard)
        for logger, handlers, propagate in saved:
            logger.removeHandler(forward)
            for handler in handlers:
                logger.addHandler(handler)
            logger.propagate = propagate


@contextlib.contextmanager
def _stderr_fd_to(capture: Any) -> Iterator[None]:
    """File descriptor 2 (TensorFlow's C++ lines) writes into `capture` meanwhile."""
    try:
        sys.stderr.flush()
        stderr_fd: Optional[int] = os.dup(2)
        os.dup2(capture.fileno(), 2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): leave stderr alone
        stderr_fd = None
    try:
        yield
    finally:
        if stderr_fd is not None:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(stderr_fd, 2)
            os.close(stderr_fd)


def _emit_captured(what: str, capture: Any, caught: List[Any]) -> None:
    capture.seek(0)
    output = capture.read().decode("utf-8", "replace")
    if output.strip():
        _emit(f"{what} printed:\n{output}")
    for w in caught:
        _emit(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})")


@contextlib.contextmanager
def tf_quiet(what: str = "tensorflow") -> Iterator[None]:
    """Route TensorFlow's C++ stderr lines, its Python log records and Python warnings raised in
    the block to the model-navigator log instead of the terminal. Nested blocks are free."""
    global _DEPTH
    with _LOCK:
        _DEPTH += 1
        outer = _DEPTH == 1
    try:
        if not outer or _in_worker():
            yield
            return
        caught: List[Any] = []
        with tempfile.TemporaryFile(mode="w+b") as capture:
            try:
                with (
                    _forwarded_loggers(),
                    muted_terminal(),
                    _stderr_fd_to(capture),
                    warnings.catch_warnings(record=True) as caught,
                ):
                    warnings.simplefilter("always")
                    yield
            finally:
                _emit_captured(what, capture, caught)
    finally:
        with _LOCK:
            _DEPTH -= 1


def import_tensorflow() -> Any:
    """`import tensorflow` with its start-up noise in the log; a clear error when it is missing."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with tf_quiet("import tensorflow"):
            import tensorflow as tf
    except ImportError as e:
        raise FrameworkMissingError(
            f"nav.tensorflow needs TensorFlow 2: pip install 'model-navigator[tensorflow]' ({e})."
        ) from e
    return tf


def is_keras_model(model: Any) -> bool:
    """A Keras 3 (or tf.keras) model or layer, checked without importing keras ourselves."""
    for cls in type(model).__mro__:
        module = cls.__module__ or ""
        if cls.__name__ == "Layer" and (
            module.startswith("keras") or module.startswith("tf_keras") or module.startswith("tensorflow.python.keras")
        ):
            return True
    return False


def module_function(model: Any) -> Any:
    """What export() calls on a tf.Module: its __call__ (a tf.function, or plain Python that the
    SavedModel's own tf.function traces), else its only tf.function attribute."""
    tf = import_tensorflow()
    generic = tf.types.experimental.GenericFunction
    call = model.__call__ if callable(model) else None
    if call is not None:
        return call
    names = []
    for cls in type(model).__mro__:
        names += [n for n, v in vars(cls).items() if isinstance(v, generic) and not n.startswith("_")]
    names += [n for n, v in vars(model).items() if isinstance(v, generic) and not n.startswith("_")]
    names = list(dict.fromkeys(names))
    if len(names) == 1:
        return getattr(model, names[0])
    if not names:
        raise UserInputError(
            f"`model` is a tf.Module ({type(model).__name__}) with nothing to call; give it a __call__ "
            f"decorated with @tf.function (or pass a Keras model)."
        )
    raise UserInputError(
        f"`model` is a tf.Module with several tf.functions {names} and no __call__; make the one to export "
        f"its __call__."
    )


def check_model(model: Any) -> None:
    """A Keras model/layer or a tf.Module with a tf.function, else a UserInputError."""
    tf = import_tensorflow()
    if is_keras_model(model):
        return
    if isinstance(model, tf.Module):
        module_function(model)
        return
    raise UserInputError(
        f"`model` must be a Keras model or a tf.Module with a tf.function, got {type(model).__module__}."
        f"{type(model).__name__}."
    )


def check_tf_names(names: Sequence[str], what: str) -> None:
    """Input names become SavedModel signature placeholders: TensorFlow's op-name rules apply."""
    bad = [n for n in names if not _TF_NAME.match(n)]
    if bad:
        raise UserInputError(
            f"{what} {bad} are not valid TensorFlow names (letters, digits, '.', '_', '-', '/'; not starting "
            f"with '_' or '-'); give `input_names` such as ('input',)."
        )


def call_model(model: Any, inputs: Sequence[Any], names: Sequence[str], keyword: bool) -> Any:
    """Call the user's model as export() does (eagerly, or inside the SavedModel's tf.function):
    Keras models get a tensor, a list (several positional inputs) or a dict (dict samples) and
    training=False; a tf.Module's tf.function gets positional or keyword tensors."""
    if is_keras_model(model):
        if keyword:
            return model(dict(zip(names, inputs, strict=True)), training=False)
        return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
    fn = module_function(model)
    if keyword:
        return fn(**dict(zip(names, inputs, strict=True)))
    return fn(*inputs)


def to_tf_inputs(sample: Dict[str, np.ndarray], names: Sequence[str]) -> List[Any]:
    tf = import_tensorflow()
    return [tf.convert_to_tensor(np.ascontiguousarray(sample[n])) for n in names]


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def device_name(device: str) -> str:
    """model-navigator device ('cpu', 'cuda', 'cuda:1') -> TensorFlow device ('/CPU:0', '/GPU:1')."""
    if device.startswith("cuda"):
        return f"/GPU:{device.split(':', 1)[1] if ':' in device else 0}"
    return "/CPU:0"


def gpu_available() -> bool:
    """Does the installed TensorFlow see a GPU (tensorflow-cpu never does)?"""
    tf = import_tensorflow()
    try:
        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:
        return False
