"""Free space is checked before anything large is written, so a full disk fails one path with a
clear reason instead of aborting the user's process (torch.jit.save and torch.export.save abort
in C++ on a short write) or leaving half an artifact behind.

Estimates are lower bounds: an export needs at least the model's parameter bytes, a conversion
about its parent's artifact; a margin covers status.yaml, logs and the path's small files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Optional, Union

MB = 2**20
MARGIN_BYTES = 1 * MB  # status.yaml, navigator.log, config.yaml, reproduce scripts
MARGIN_FACTOR = 1.1  # container overhead of the formats (zip headers, graph, names)


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
    return (f"not enough free space in {str(Path(folder).absolute())!r}: {free / MB:.1f} MB free, {what} needs about "
            f"{expected_bytes / MB:.1f} MB (+{MARGIN_BYTES / MB:.0f} MB for logs and status); free some space or "
            f"choose another `workdir`")


def model_parameter_bytes(model: Any) -> int:
    """Bytes of a model's parameters and buffers (torch state_dict, Keras/TF variables); 0 when it
    cannot tell (a JAX function: conversions then use their parent artifact's size)."""
    try:
        if hasattr(model, "state_dict") and callable(model.state_dict):  # torch.nn.Module
            seen = set()
            total = 0
            for tensor in model.state_dict(keep_vars=True).values():
                key = (tensor.untyped_storage().data_ptr(), tensor.dtype) if hasattr(tensor, "untyped_storage") \
                    else id(tensor)
                if key not in seen:
                    seen.add(key)
                    total += tensor.numel() * tensor.element_size()
            return total
        variables = getattr(model, "variables", None)
        if variables is not None and not callable(variables):  # tf.Module / Keras
            return sum(int(v.shape.num_elements() or 0) * v.dtype.size for v in variables)
    except Exception:  # noqa: BLE001 - an estimate: never fail an export over it
        return 0
    return 0


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
