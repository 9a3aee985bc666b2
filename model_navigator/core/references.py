"""`module:function` references to the user's code (`convert --model`, the batch jobs' factories): checked and
imported."""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any, Callable

from model_navigator.core.errors import UserInputError

REFERENCE = re.compile(r"^(?P<module>[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*):(?P<function>[A-Za-z_][\w]*)$")


def load_function(reference: str, label: str) -> Callable[..., Any]:
    """The function `module:function` names, imported with the current folder on sys.path (as `python -m`
    has it), so a module beside the user is found by the installed command too; errors start with `label`."""
    match = REFERENCE.match(reference or "")
    if match is None:
        raise UserInputError(
            f"{label} {reference!r} is not MODULE:FUNCTION (e.g. my_models:get_model, a function "
            f"in my_models.py that returns the model)."
        )
    module_name, function_name = match.group("module"), match.group("function")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserInputError(
            f"{label} {reference!r}: cannot import {module_name!r}: {e} (the current folder and "
            f"PYTHONPATH are searched)."
        ) from e
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserInputError(f"{label} {reference!r}: {module_name} has no function {function_name!r}.")
    return function
