"""The one schema check of status.yaml data, run by every reader (nav.load, inspect, report, triton,
serve, profile, workspace readers) before the typed status is built from it: every field has its
declared type (a number is a number, not a string; a mapping is a mapping), numbers lie in their
range and nothing nests deeper than MAX_DEPTH. A file that fails gets a PackageError naming the
field, never a raw Python error later in a reader."""

from __future__ import annotations

import dataclasses
import enum
import math
import typing
from typing import Any, Dict, Optional

import yaml

from model_navigator.core.errors import PackageError
from model_navigator.core.serialization import type_hints

PARSER_DEPTH = 200  # brackets deeper than this are refused before parsing (see _flow_depth)
MAX_DEPTH = 32  # status.yaml nests ~8 levels; free-form mappings (flags, environment) a few more
# Fields that may be negative: TensorMetadata.shape uses -1 for a dynamic axis.
_MINIMUM: Dict[str, float] = {"shape": -1, "batch_size": 1, "format_version": 1}


def check_status_data(data: Any, cls: Any, where: str = "status.yaml") -> None:
    """Raise PackageError naming the first field of `data` (plain YAML data) that does not match the
    dataclass `cls` (NavigatorStatus): its type, its range or the nesting depth."""
    _check(cls, data, "", 0, where, None)


def _fail(where: str, field: str, problem: str) -> PackageError:
    return PackageError(
        f"{where} is malformed: field `{field or '(root)'}` {problem}; it was not written by this "
        f"model-navigator as it is (edited or corrupted): re-export or re-save the package."
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _check(cls: Any, value: Any, field: str, depth: int, where: str, name: Optional[str]) -> None:
    """Check one value against its annotation `cls`; `name` is the dataclass field it belongs to (ranges)."""
    if depth > MAX_DEPTH:
        raise _fail(where, field, f"nests deeper than {MAX_DEPTH} levels")
    origin, args = typing.get_origin(cls), typing.get_args(cls)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _check(option, value, field, depth, where, name)
            except PackageError as e:
                errors.append(e)
        raise errors[0]
    if cls is Any or cls is object:
        return _check_plain(value, field, depth, where)
    if value is None:
        raise _fail(where, field, "is null but must be set")
    if origin in (list, tuple, typing.Sequence) or cls in (list, tuple):
        if not isinstance(value, list):
            raise _fail(where, field, f"must be a list, got {_shown(value)}")
        item = args[0] if args else Any
        for i, v in enumerate(value):
            _check(item, v, f"{field}[{i}]", depth + 1, where, name)
        return
    if origin is dict or cls is dict:
        if not isinstance(value, dict):
            raise _fail(where, field, f"must be a mapping, got {_shown(value)}")
        key_type, value_type = args if args else (Any, Any)
        for k, v in value.items():
            _check(key_type, k, f"{field}.{k}" if field else str(k), depth + 1, where, None)
            _check(value_type, v, f"{field}.{k}" if field else str(k), depth + 1, where, name)
        return
    if dataclasses.is_dataclass(cls):
        _check_dataclass(cls, value, field, depth, where)
    elif isinstance(cls, type) and issubclass(cls, enum.Enum):
        allowed = [m.value for m in cls]
        if value not in allowed:
            raise _fail(where, field, f"is {_shown(value)}, not one of {allowed}")
    else:
        _check_scalar(cls, value, field, where, name)


def _check_dataclass(cls: Any, value: Any, field: str, depth: int, where: str) -> None:
    if not isinstance(value, dict):
        raise _fail(where, field, f"must be a mapping ({cls.__name__}), got {_shown(value)}")
    hints = type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _fail(where, f"{field}.{f.name}" if field else f.name, "is missing")
            continue
        child = f"{field}.{f.name}" if field else f.name
        hint = Any if f.name == "config" and cls.__name__ == "NavigatorStatus" else hints[f.name]
        if hint is Any and f.name == "config" and value[f.name] is not None and not isinstance(value[f.name], dict):
            raise _fail(where, child, f"must be a mapping, got {_shown(value[f.name])}")
        _check(hint, value[f.name], child, depth + 1, where, f.name)


def _check_scalar(cls: Any, value: Any, field: str, where: str, name: Optional[str]) -> None:
    if cls is bool:
        if not isinstance(value, bool):
            raise _fail(where, field, f"must be true or false, got {_shown(value)}")
        return
    if cls is str:
        if not isinstance(value, str):
            raise _fail(where, field, f"must be a string, got {_shown(value)}")
        return
    if cls in (int, float):
        number = (int,) if cls is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, number):
            raise _fail(where, field, f"must be {'an integer' if cls is int else 'a number'}, got {_shown(value)}")
        minimum = _MINIMUM.get(name or "", 0)
        if not math.isnan(value) and value < minimum:
            raise _fail(where, field, f"is {value}, below its minimum {minimum}")


def _check_plain(value: Any, field: str, depth: int, where: str) -> None:
    """A free-form value (flags, environment): only plain YAML data, nested at most MAX_DEPTH levels."""
    if depth > MAX_DEPTH:
        raise _fail(where, field, f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(v, f"{field}.{k}" if field else str(k), depth + 1, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{field}[{i}]", depth + 1, where)


def _flow_depth(text: str) -> int:
    """The deepest nesting of [ and { outside quotes: refused before the YAML parser recurses into it
    (thousands of levels take it seconds before it gives up with a RecursionError)."""
    depth = deepest = 0
    quote = None
    for char in text:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def parse_yaml_text(text: str, where: str) -> Any:
    """Plain YAML `text` as data (safe loading, aliases refused), or a PackageError naming `where`
    (bad YAML, nesting too deep for the parser itself)."""
    if _flow_depth(text) > PARSER_DEPTH:
        raise PackageError(
            f"{where} nests too deeply to be read (more than {MAX_DEPTH} levels are never "
            f"written by model-navigator); it was not loaded."
        )
    try:
        if _C_LOADER is None:
            return yaml.load(text, Loader=NoAliasSafeLoader)
        _check_events(text)  # libyaml parses without recursing; its composer recurses: depth first
        return yaml.load(text, Loader=_C_LOADER)
    except _TooDeep as e:
        raise PackageError(
            f"{where} nests too deeply to be read (more than {MAX_DEPTH} levels are never "
            f"written by model-navigator); it was not loaded."
        ) from e
    except RecursionError as e:
        raise PackageError(
            f"{where} nests too deeply to be read (more than {MAX_DEPTH} levels are never "
            f"written by model-navigator); it was not loaded."
        ) from e
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PackageError(f"{where} is not safe, plain YAML and was not loaded: {first}") from e


# libyaml's loader reads status.yaml ~10x faster than the pure-Python one (a run reads it per step).
_C_LOADER = getattr(yaml, "CSafeLoader", None)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class _TooDeep(Exception):
    """Nesting deeper than PARSER_DEPTH, found in the event stream."""


def _check_events(text: str) -> None:
    """What NoAliasSafeLoader refuses, checked on libyaml's event stream before it composes the
    nodes: an alias (ComposerError, as there), nesting deeper than PARSER_DEPTH (_TooDeep)."""
    assert _C_LOADER is not None
    depth = 0
    for event in yaml.parse(text, Loader=_C_LOADER):
        if isinstance(event, _OPEN):
            depth += 1
            if depth > PARSER_DEPTH:
                raise _TooDeep()
        elif isinstance(event, _CLOSE):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            mark = typing.cast(Any, event.start_mark)  # libyaml's Mark, with the same fields
            message = f"YAML alias *{event.anchor} is not allowed in status.yaml"
            raise yaml.composer.ComposerError(None, None, message, mark)


class NoAliasSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also refuses anchors/aliases (a 'billion laughs' defence)."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"YAML alias *{event.anchor} is not allowed in status.yaml", event.start_mark
            )
        return super().compose_node(parent, index)
