"""ModelOutputWrapper: a transformers model as a module with named keyword inputs and a dict of
named tensor outputs, which tracers and exporters handle."""

from __future__ import annotations

import inspect
import types
from collections.abc import Mapping
from typing import Any, Dict, Optional, Sequence

from model_navigator.api.torch import _import_torch
from model_navigator.core.errors import UserInputError

torch = _import_torch()
_TorchModule: Any = torch.nn.Module  # imported at run time: the base class through a typed name

# forward() parameters of transformers models that are options, not input tensors.
NOT_INPUTS = frozenset(
    {
        "labels",
        "return_dict",
        "output_attentions",
        "output_hidden_states",
        "use_cache",
        "past_key_values",
        "cache",
        "cache_position",
        "head_mask",
        "cross_attn_head_mask",
        "decoder_head_mask",
        "return_loss",
        "interpolate_pos_encoding",
        "encoder_outputs",
        "logits_to_keep",
        "num_logits_to_keep",
        "kwargs",
    }
)


def unwrap_model_output(output: Any, prefix: str = "") -> Dict[str, Any]:
    """A model's output (a transformers ModelOutput, a dict, a tuple or a tensor) as a flat dict of
    named tensors: None dropped, nested tuples named `name.0`, `name.1`, ..., positional outputs
    `output_0`, ... ; anything else (a cache object) is an error naming it."""
    flat: Dict[str, Any] = {}

    def walk(value: Any, name: str) -> None:
        if value is None:
            return
        if isinstance(value, torch.Tensor):
            flat[name or "output_0"] = value
        elif isinstance(value, Mapping):  # ModelOutput is an OrderedDict without its None fields
            for key, item in value.items():
                walk(item, f"{name}.{key}" if name else str(key))
        elif isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                walk(item, f"{name}.{i}" if name else f"output_{i}")
        else:
            raise UserInputError(
                f"model output {name or 'output'!r} is a {type(value).__name__}, not a tensor; pass output_names "
                f"to keep only tensor outputs, or disable it (e.g. use_cache=False)."
            )

    walk(output, prefix)
    return flat


def model_input_names(model: Any) -> Sequence[str]:
    """The tensor inputs a transformers model's forward() declares, in its order."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD and p.name not in NOT_INPUTS)


class ModelOutputWrapper(_TorchModule):
    """Calls `model(**inputs, return_dict=True)` and returns its outputs as a dict of named tensors.

    `forward` gets a real signature with `input_names` (default: the tensor inputs the model's
    forward declares), so torch.jit.trace and torch.onnx.export name and order the inputs; only
    the inputs given are passed on. `output_names` keeps those outputs, in that order (default:
    every tensor output). `use_cache=False` is passed when the model takes it, so decoders return
    no cache objects. `model_kwargs` are passed on every call (e.g. `output_hidden_states=True`).
    """

    def __init__(
        self,
        model: Any,
        input_names: Optional[Sequence[str]] = None,
        output_names: Optional[Sequence[str]] = None,
        model_kwargs: Optional[Dict[str, Any]] = None,
    ):
        super().__init__()
        if not isinstance(model, torch.nn.Module):
            raise UserInputError(
                f"`model` must be a torch.nn.Module (a transformers model), got {type(model).__name__}."
            )
        self.model = model
        self.training = model.training  # the wrapper is in the model's mode
        names = tuple(input_names) if input_names is not None else tuple(model_input_names(model))
        if not names:
            raise UserInputError("Cannot tell the model's inputs from its forward(); pass `input_names`.")
        bad = [n for n in names if not isinstance(n, str) or not n.isidentifier()]
        if bad or len(set(names)) != len(names):
            raise UserInputError(f"`input_names` must be distinct Python identifiers, got {list(names)}.")
        self.input_names = names
        self.output_names = tuple(output_names) if output_names is not None else None
        accepted: Mapping[str, Any]
        try:
            accepted = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            accepted = {}
        self.model_kwargs = {
            "return_dict": True,
            **({"use_cache": False} if "use_cache" in accepted else {}),
            **(model_kwargs or {}),
        }
        signature = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
            + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in names]
        )

        def forward(self, *args: Any, **kwargs: Any) -> Dict[str, Any]:
            return self._forward(*args, **kwargs)

        forward.__signature__ = signature  # type: ignore[attr-defined]
        forward.__doc__ = f"Call the wrapped model with {', '.join(names)}; return a dict of named tensors."
        # A per-instance bound method: inspect.signature (used by the tracer and the ONNX exporter)
        # sees the input names, and copy.deepcopy rebinds it to the copy.
        self.forward = types.MethodType(forward, self)

    def _forward(self, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        if len(args) > len(self.input_names):
            raise TypeError(
                f"forward() takes {len(self.input_names)} inputs ({', '.join(self.input_names)}), "
                f"got {len(args)} positional"
            )
        inputs = dict(zip(self.input_names, args, strict=False))
        for name, value in kwargs.items():
            if name not in self.input_names:
                raise TypeError(f"forward() got an unexpected input {name!r}; inputs: {', '.join(self.input_names)}")
            if name in inputs:
                raise TypeError(f"forward() got input {name!r} twice")
            inputs[name] = value
        output = self.model(**{k: v for k, v in inputs.items() if v is not None}, **self.model_kwargs)
        if self.output_names is not None:
            if not isinstance(output, Mapping):
                raise UserInputError(
                    f"`output_names` needs a model that returns a ModelOutput or dict, got {type(output).__name__}."
                )
            missing = [n for n in self.output_names if output.get(n) is None]
            if missing:
                raise UserInputError(
                    f"outputs {missing} are not among the model's outputs "
                    f"{[k for k, v in output.items() if v is not None]}."
                )
            output = {n: output[n] for n in self.output_names}
        return unwrap_model_output(output)
