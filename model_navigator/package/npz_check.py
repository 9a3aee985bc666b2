"""Checking an .npz file of samples without pickle: every array is loaded with allow_pickle=False,
object arrays, zip bombs and broken files are refused. Used on every npz entry of a package."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import IO, Optional, Union

import numpy as np

from model_navigator.core.errors import PackageError
from model_navigator.package.archive_format import BOMB_MIN_SIZE, DEFAULT_MAX_RATIO, DEFAULT_MAX_UNPACKED_BYTES


def check_npz_safe(
    path: Union[Path, str, IO[bytes]],
    *,
    where: Optional[str] = None,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> None:
    """Load every array of the npz `path` (a file, or a seekable binary file object such as an
    entry copied out of a package) without pickle; refuse object arrays, bombs and broken files."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    where = where or str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise PackageError(f"{where} is not a valid .npz file (not a zip archive): {e}") from e
    if sum(i.file_size for i in infos) > max_unpacked_bytes:
        raise PackageError(f"{where} refused: its arrays unpack beyond max_unpacked_bytes={max_unpacked_bytes}.")
    for info in infos:
        if info.file_size > BOMB_MIN_SIZE and info.file_size / max(info.compress_size, 1) > max_ratio:
            raise PackageError(f"{where} refused: array {info.filename!r} exceeds max_ratio={max_ratio:g} (zip bomb).")
    key = None
    if not isinstance(path, Path):
        path.seek(0)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise PackageError(f"{where} is not an .npz archive of arrays.")
            for key in data.files:
                array = data[key]
                if array.dtype.hasobject:
                    raise PackageError(f"{where} refused: array {key!r} has object dtype (Python objects).")
                del array
    except PackageError:
        raise
    except ValueError as e:
        what = f"array {key!r}" if key is not None else "the file"
        raise PackageError(
            f"{where} refused: {what} cannot be loaded without pickle (object arrays / pickled data are "
            f"not allowed in packages): {e}"
        ) from e
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise PackageError(f"{where} is not a valid .npz file: {e}") from e
