"""`model-navigator convert --model MODULE:FUNCTION`: the user's model for re-running an export path.

An export needs the model object, which no config.yaml holds; the user names a function that
returns it (as reproduce_export.py's get_model() does), and the path's producer runs on it with the
settings recorded in status.yaml.
"""

from __future__ import annotations

from typing import Any, Callable

from model_navigator.core.enums import Framework
from model_navigator.core.errors import ModelNavigatorError, UserInputError
from model_navigator.core.references import load_function


def load_model_function(reference: str) -> Callable[[], Any]:
    """The function `--model module:function` names (see core.references.load_function)."""
    return load_function(reference, "--model")


def torch_model(reference: str) -> Any:
    """Call the function `reference` names and check it returned a torch.nn.Module (put in eval mode)."""
    import torch

    function = load_model_function(reference)
    try:
        model = function()
    except Exception as e:
        raise ModelNavigatorError(f"--model {reference!r}: calling it failed: {type(e).__name__}: {e}") from e
    if not isinstance(model, torch.nn.Module):
        raise UserInputError(f"--model {reference!r} returned a {type(model).__name__}, not a torch.nn.Module.")
    return model.eval()


def user_model(reference: str, framework: Framework) -> Any:
    """The model `--model` names, loaded before anything is written; its export context is rebuilt
    from status.yaml when the path runs (steps/recheck.py). PyTorch workspaces only."""
    if framework != Framework.TORCH:
        raise UserInputError(
            f"--model supports PyTorch workspaces; for a {framework.value} export implement "
            f"get_model() in <path>/reproduce_export.py and run <path>/reproduce_export.sh."
        )
    return torch_model(reference)
