"""Free space is checked before anything large is written, so a full disk fails one path with a
clear reason instead of aborting the user's process (torch.jit.save and torch.export.save abort
in C++ on a short write) or leaving half an artifact behind.

Estimates are lower bounds: an export needs at least the model's parameter bytes, a conversion
about its parent's artifact; a margin covers status.yaml, logs and the path's small files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from model_navigator.core.errors import ModelNavigatorError

MB = 2**20
MARGIN_BYTES = 1 * MB  # status.yaml, navigator.log, config.yaml, reproduce scripts
MARGIN_FACTOR = 1.1  # container overhead of the formats (zip headers, graph, names)
NO_SPACE_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class InsufficientSpace(ModelNavigatorError):
    """An artifact does not fit on its disk: the path fails with this reason, nothing is written."""


# How a write that ran out of space reads when it is not an OSError (TensorFlow's C++ writers raise
# ResourceExhaustedError with the C library's text) or when a worker reports it as text.
_NO_SPACE_TEXT = re.compile(r"No space left on device|Disk quota exceeded|\[Errno (28|122)\]")


def is_no_space(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a write that failed for lack of space (ENOSPC, EDQUOT),
    as an OSError or as a framework's error that says so (TensorFlow's SavedModel writer)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
            return True
        if not isinstance(error, OSError) and mentions_no_space(str(error)):
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


def mentions_no_space(text: str) -> bool:
    """Whether an error's text says a write ran out of space (a worker's reason, a framework's message)."""
    return bool(_NO_SPACE_TEXT.search(text or ""))


def ensure_space(folder: Union[str, Path], expected_bytes: int, what: str) -> None:
    """Raise InsufficientSpace (with space_problem's reason) when `what` cannot fit in `folder`."""
    problem = space_problem(folder, expected_bytes, what)
    if problem is not None:
        raise InsufficientSpace(problem)


def no_space_reason(folder: Union[str, Path], expected_bytes: int, what: str) -> str:
    """The reason of a write that ran out of space after the check passed (the estimate was short,
    or another process filled the disk): the folder, what is free and what was needed (more than
    that: the write used it all up; its partial file is gone, so the space is free again)."""
    try:
        free_mb = free_bytes(folder) / MB
    except OSError:
        return (
            f"not enough free space in {str(Path(folder).absolute())!r}: writing {what} failed (no space left); "
            f"nothing was left half written: free some space or choose another `workdir`"
        )
    needed = max(expected_bytes / MB, free_mb)
    return (
        f"not enough free space in {str(Path(folder).absolute())!r}: {free_mb:.1f} MB free, {what} needs more than "
        f"{needed:.1f} MB (writing it used up the free space; the partial file was removed): free some space or "
        f"choose another `workdir`"
    )


def free_bytes(folder: Union[str, Path]) -> int:
    """Free bytes (for this user) on the filesystem of `folder`, or of its nearest existing parent."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def space_problem(folder: Union[str, Path], expected_bytes: int, what: str) -> Optional[str]:
    """Why `what` (about `expected_bytes`) cannot be written into `folder`, or None when it fits
    with the margin."""
    needed = int(expected_bytes * MARGIN_FACTOR) + MARGIN_BYTES
    try:
        free = free_bytes(folder)
    except OSError:
        return None  # cannot tell: let the write itself say
    if free >= needed:
        return None
    return (
        f"not enough free space in {str(Path(folder).absolute())!r}: {free / MB:.1f} MB free, {what} needs about "
        f"{expected_bytes / MB:.1f} MB (+{MARGIN_BYTES / MB:.0f} MB for logs and status); free some space or "
        f"choose another `workdir`"
    )


def model_parameter_bytes(model: Any) -> int:
    """Bytes of every tensor a model holds (a lower bound of what its graph bakes in): a torch
    module's parameters, all its buffers (non-persistent ones too) and plain tensor attributes of
    its submodules; Keras/TF variables; a JAX export's params; 0 when it cannot tell (conversions
    then use their parent artifact's size)."""
    try:
        if hasattr(model, "named_modules") and callable(model.named_modules):  # torch.nn.Module
            return _torch_tensor_bytes(model)
        variables = getattr(model, "variables", None)
        if variables is not None and not callable(variables):  # tf.Module / Keras 2 and 3
            return sum(_array_bytes(v) for v in variables)
        if hasattr(model, "predict") and hasattr(model, "params"):  # a JAX export's function and params
            import jax

            return sum(_array_bytes(leaf) for leaf in jax.tree_util.tree_leaves(model.params))
    except Exception:  # noqa: BLE001 - an estimate: never fail an export over it
        return 0
    return 0


def _array_bytes(array: Any) -> int:
    """Bytes of a tf.Variable, a Keras 3 variable (a shape tuple, a dtype name) or a JAX/NumPy array."""
    import numpy as np

    shape = [int(d or 0) for d in array.shape]
    size = getattr(array.dtype, "size", None)  # tf.DType
    if not isinstance(size, int):
        size = np.dtype(str(getattr(array.dtype, "name", array.dtype))).itemsize
    return int(np.prod(shape, dtype=np.int64)) * size


def _torch_tensor_bytes(model: Any) -> int:
    """Parameters, buffers and tensor attributes of every submodule, each storage counted once."""
    import torch

    tensors: list = []
    for module in model.modules():
        tensors += list(module._parameters.values()) + list(module._buffers.values())
        tensors += [v for v in vars(module).values() if isinstance(v, torch.Tensor)]
    return distinct_tensor_bytes(t for t in tensors if t is not None and not t.is_meta)


def distinct_tensor_bytes(tensors: Any) -> int:
    """Bytes of the tensors, each storage counted once (tied weights, views)."""
    seen = set()
    total = 0
    for tensor in tensors:
        key = (tensor.untyped_storage().data_ptr(), tensor.dtype)
        if key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def path_bytes(path: Union[str, Path]) -> int:
    """Size of a file, or of every file under a folder (a SavedModel); 0 when it does not exist."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return 0


@contextlib.contextmanager
def written_atomically(path: Union[str, Path]) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix) to write to, renamed into place on success; on
    any failure (a full disk) it is removed, freeing its space, and `path` is never half written."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def written_in_staging(path: Union[str, Path]) -> Iterator[Path]:
    """Where to write `path` and the files beside it (an ONNX model's external data): a hidden folder
    beside it, whose files are moved into place on success (the model file last); on any failure
    the folder is removed, freeing its space, and nothing is left under the final names."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging / path.name
        entries = sorted(staging.iterdir(), key=lambda p: p.name == path.name)
        for entry in entries:
            os.replace(entry, path.parent / entry.name)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# What written_atomically and written_in_staging leave when their process is killed mid-write.
_PARTIAL = re.compile(r"^\..+\.(\d+)\.(partial|tmp(\.[^.]+)?)$")


def remove_stale_partials(folder: Union[str, Path]) -> int:
    """Remove the temporary files and staging folders in `folder` that a killed export or conversion
    left (their process is gone); a live process's are kept. Returns how many were removed."""
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
