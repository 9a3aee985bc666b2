"""One place that turns the typed config/status dataclasses into plain YAML/JSON data and back."""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import tempfile
import typing
from pathlib import Path
from typing import Any, Dict

import yaml


@functools.lru_cache(maxsize=None)
def type_hints(cls: Any) -> Dict[str, Any]:
    """typing.get_type_hints of a dataclass, once per class: it compiles every string annotation
    on each call, and reading one status.yaml asks ~100 times (do not change the dict returned)."""
    return typing.get_type_hints(cls)


def to_plain(value: Any) -> Any:
    """Dataclasses -> dicts, enums -> values, tuples -> lists, numpy scalars -> Python scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {(k.value if isinstance(k, enum.Enum) else k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return value.item()
    return value


def from_plain(cls: Any, data: Any) -> Any:
    """Build an instance of the annotated type `cls` from plain data (the inverse of to_plain)."""
    if data is None:
        return None
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin is typing.Union:
        non_none = [a for a in args if a is not type(None)]
        last_error: Exception = TypeError(f"cannot read {data!r}")
        for arg in non_none:
            try:
                return from_plain(arg, data)
            except (TypeError, ValueError, KeyError) as e:
                last_error = e
        raise last_error
    if origin in (list, typing.List, typing.Sequence):
        return [from_plain(args[0] if args else Any, v) for v in data]
    if origin in (tuple, typing.Tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in data)
        return tuple(from_plain(a, v) for a, v in zip(args, data, strict=True)) if args else tuple(data)
    if origin in (dict, typing.Dict):
        key_type, value_type = args if args else (Any, Any)
        return {from_plain(key_type, k): from_plain(value_type, v) for k, v in data.items()}
    if cls is Any or cls is object:
        return data
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return cls(data)
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} expects a mapping, got {type(data).__name__}")
        hints = type_hints(typing.cast(type, cls))
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in data and f.init:
                kwargs[f.name] = from_plain(hints[f.name], data[f.name])
        return cls(**kwargs)
    if cls is float and isinstance(data, (int, float)):
        return float(data)
    if cls in (int, str, bool) and not isinstance(data, cls):
        raise TypeError(f"expected {cls.__name__}, got {data!r}")
    return data


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to a temporary file beside `path` and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # an ordinary file, not mkstemp's private 0600
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        from model_navigator.core.diskspace import InsufficientSpace, free_bytes, is_no_space

        if isinstance(e, OSError) and is_no_space(e):
            raise InsufficientSpace(
                f"Cannot write {str(path)!r}: no space left on its disk ({free_bytes(path.parent) / 2**20:.1f} MB "
                f"free, {len(text.encode()) / 2**20:.2f} MB needed); free some space and run again."
            ) from e
        raise


# libyaml's emitter writes the same text as the pure-Python one, ~4x faster (status.yaml is written
# after every step of a run).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def yaml_text(data: Any) -> str:
    """The YAML text dump_yaml writes for `data`."""
    return yaml.dump(to_plain(data), Dumper=_DUMPER, sort_keys=False, allow_unicode=True)


def dump_yaml(data: Dict[str, Any], path: Path) -> None:
    atomic_write_text(path, yaml_text(data))


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)
