"""export_arguments and export_hf_model: nav.torch.export for transformers models in one call."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from model_navigator.contrib.huggingface.wrapper import (
    ModelOutputWrapper,
    model_input_names,
    torch,
)
from model_navigator.core.errors import UserInputError

BATCH_AXIS = "batch"
SEQUENCE_AXIS = "sequence"


def _first_batch(dataloader: Any) -> Dict[str, Any]:
    try:
        first = next(iter(dataloader))
    except StopIteration:
        raise UserInputError("`dataloader` is empty.") from None
    except TypeError:
        raise UserInputError(f"`dataloader` must be iterable, got {type(dataloader).__name__}.") from None
    if not isinstance(first, dict) or not first or not all(isinstance(v, torch.Tensor) for v in first.values()):
        raise UserInputError(
            "The dataloader must yield dicts name -> torch tensor (what dataloader_from_tokenizer "
            "and dummy_dataloader build)."
        )
    return first


def _ordered_names(model: Any, batch: Dict[str, Any]) -> List[str]:
    declared = [n for n in model_input_names(model) if n in batch]
    return declared + [n for n in batch if n not in declared]


_TOKEN_SUFFIXES = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def _dynamic_input_axes(batches: Sequence[Dict[str, Any]], names: Sequence[str]) -> Dict[Tuple[int, ...], List[Any]]:
    """The non-batch input axes to make dynamic, grouped by their sizes across the batches (axes
    whose sizes agree in every batch, input_ids and attention_mask say, move together): axes whose
    size varies across the batches, and the sequence axis (1) of token inputs (`*input_ids`,
    `*attention_mask`, ...). Never a feature axis such as Whisper's mel bins."""
    groups: Dict[Tuple[int, ...], List[Any]] = {}
    for name in names:
        rank = batches[0][name].ndim
        for axis in range(1, rank):
            sizes = tuple(int(b[name].shape[axis]) for b in batches)
            token_sequence = axis == 1 and name.endswith(_TOKEN_SUFFIXES)
            if len(set(sizes)) > 1 or token_sequence:
                groups.setdefault(sizes, []).append((name, axis))
    return groups


def _probe(batch: Dict[str, Any], groups: Dict[Tuple[int, ...], List[Any]]) -> Dict[str, Any]:
    """The batch with one sample less (or one more) and every dynamic axis one shorter (or longer)."""
    shorten = {member for members in groups.values() for member in members}
    probe = {}
    for name, value in batch.items():
        value = value[:-1] if value.shape[0] > 1 else torch.cat([value, value])
        for axis in range(1, value.ndim):
            if (name, axis) in shorten:
                value = (
                    value.narrow(axis, 0, value.shape[axis] - 1)
                    if value.shape[axis] > 1
                    else torch.cat([value, value], dim=axis)
                )
        probe[name] = value
    return probe


def export_arguments(
    model: Any, dataloader: Any, output_names: Optional[Sequence[str]] = None, batch_dim: Optional[int] = 0
) -> Dict[str, Any]:
    """nav.torch.export's `input_names`, `output_names` and `dynamic_axes` for a transformers model.

    Inputs are named as the dataloader names them, in the order the model's forward() declares
    them. Dynamic: every input's batch axis, the sequence axis of token inputs (`*input_ids`,
    `*attention_mask`, ...: a decoder's length apart from the encoder's), and every axis whose
    size varies across the dataloader's batches. The model runs twice (the first batch, then that
    batch one sample less and each dynamic axis one shorter): output axes that change are dynamic.
    """
    if batch_dim not in (0, None):
        raise UserInputError("transformers models take the batch on axis 0: `batch_dim` must be 0 or None.")
    batch = _first_batch(dataloader)
    batches = list(dataloader)
    wrapper = model if isinstance(model, ModelOutputWrapper) else None
    names = list(wrapper.input_names) if wrapper is not None else _ordered_names(model, batch)
    unknown = [n for n in batch if n not in names]
    if unknown:
        raise UserInputError(f"dataloader inputs {unknown} are not inputs of the model ({', '.join(names)}).")
    names = [n for n in names if n in batch]
    if wrapper is None:
        wrapper = ModelOutputWrapper(model, input_names=names, output_names=output_names)
    groups = _dynamic_input_axes(batches, names)
    modes = [(module, module.training) for module in wrapper.modules()]
    wrapper.eval()
    try:
        with torch.inference_mode():
            first = wrapper(**batch)
            second = wrapper(**_probe(batch, groups)) if batch_dim is not None else first
    finally:
        for module, training in modes:  # leave the user's model in the mode it was in
            module.training = training
    dynamic_axes: Dict[str, Dict[int, str]] = {}
    for name in names:
        axes = {0: BATCH_AXIS} if batch_dim is not None else {}
        for members in groups.values():
            axes.update({axis: SEQUENCE_AXIS if axis == 1 else f"{name}_dim{axis}" for n, axis in members if n == name})
        if axes:
            dynamic_axes[name] = axes
    for name, tensor in first.items():
        other = second.get(name)
        if other is None or other.ndim != tensor.ndim:
            continue
        axes = {}
        for axis, (a, b) in enumerate(zip(tensor.shape, other.shape, strict=True)):
            if a != b:
                # the probe changed both the batch (axis 0) and the sequence: axis 0 is the batch
                axes[axis] = BATCH_AXIS if axis == 0 else SEQUENCE_AXIS
        if axes:
            dynamic_axes[name] = axes
    return {"input_names": tuple(names), "output_names": tuple(first), "dynamic_axes": dynamic_axes}


def export_hf_model(
    model: Any,
    dataloader: Any,
    output_names: Optional[Sequence[str]] = None,
    model_kwargs: Optional[Dict[str, Any]] = None,
    **export_kwargs: Any,
) -> Any:
    """nav.torch.export of a transformers model: wraps it in ModelOutputWrapper, fills in
    input_names, output_names and dynamic_axes from `export_arguments` (explicit `export_kwargs`
    win), names the package after the model's class and traces (`jit_options=("trace",)`:
    transformers models cannot be scripted) unless told otherwise. Returns the PackageDescriptor."""
    import model_navigator as nav

    if isinstance(model, ModelOutputWrapper):
        wrapper = model
        inner = model.model
    else:
        inner = model
        batch = _first_batch(dataloader)
        wrapper = ModelOutputWrapper(
            model, input_names=_ordered_names(model, batch), output_names=output_names, model_kwargs=model_kwargs
        )
    arguments = export_arguments(wrapper, dataloader, batch_dim=export_kwargs.get("batch_dim", 0))
    kwargs = {"model_name": type(inner).__name__, "jit_options": ("trace",), **arguments, **export_kwargs}
    return nav.torch.export(model=wrapper, dataloader=dataloader, **kwargs)
