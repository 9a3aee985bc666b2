"""The `model-navigator profile` options, one per ProfilerConfig field: the option's name, type,
choices and list-ness come from the field (a new field gets its option), the help from _HELP.

Every option defaults to None, meaning "ProfilerConfig's own default" (said in the help), so
ProfilerConfig alone validates the values and fills in the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import typing
from typing import Any, Dict, Tuple


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# field -> (metavar, help, refused by argparse unless > 0); fields not listed get a plain option.
_HELP: Dict[str, Tuple[str, str, bool]] = {
    "batch_sizes": ("N", "batch sizes to profile (default: 1 and the dataloader batch size)", True),
    "measurement_mode": ("", "", False),
    "measurement_interval": ("MS", "window length in ms (time_windows)", True),
    "measurement_request_count": ("N", "inferences per window (count_windows)", True),
    "stability_percentage": ("P", "", True),
    "max_trials": ("N", "", True),
    "max_batch_size": ("N", "sweep batch sizes 1, 2, 4 ... up to N (when --batch-sizes is not given)", True),
    "throughput_cutoff_threshold": ("F", "", False),
    "throughput_backoff_limit": ("N", "", False),
    "warmup_requests": ("N", "", False),
}


def _option(field: dataclasses.Field, annotation: Any) -> Dict[str, Any]:
    """add_argument's keywords for one ProfilerConfig field."""
    metavar, text, positive = _HELP.get(field.name, ("", "", False))
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    kind = args[0] if typing.get_origin(annotation) is typing.Union and len(args) == 1 else annotation
    kwargs: Dict[str, Any] = {"default": None, "dest": field.name}
    if typing.get_origin(kind) in (list, tuple, typing.get_origin(typing.Sequence[int])):
        kwargs["nargs"] = "+"
        kind = typing.get_args(kind)[0]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        kwargs["choices"] = [member.value for member in kind]
    elif kind is int:
        kwargs["type"] = positive_int if positive else int
    elif kind is float:
        kwargs["type"] = positive_float if positive else float
    if metavar:
        kwargs["metavar"] = metavar
    default = field.default
    if default is not None and default is not dataclasses.MISSING:
        shown = default.value if isinstance(default, enum.Enum) else default
        text = f"{text}; default: {shown}" if text else f"default: {shown}"
    if text:
        kwargs["help"] = text
    return kwargs


def add_profiler_options(parser: argparse.ArgumentParser) -> None:
    """--batch-sizes, --measurement-mode, ...: one option per ProfilerConfig field."""
    from model_navigator.core.config import ProfilerConfig

    hints = typing.get_type_hints(ProfilerConfig)
    for field in dataclasses.fields(ProfilerConfig):
        parser.add_argument("--" + field.name.replace("_", "-"), **_option(field, hints[field.name]))


def profiler_config_from_args(args: argparse.Namespace) -> Any:
    """The ProfilerConfig of the options given (the others keep its defaults); it validates them
    (UserInputError) before anything is touched."""
    from model_navigator.core.config import ProfilerConfig

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(ProfilerConfig)}
    return ProfilerConfig(**{name: value for name, value in options.items() if value is not None})
