"""export_arguments and export_hf_model: nav.torch.export for transformers models in one call."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

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
        raise UserInputError("The dataloader must yield dicts name -> torch tensor (what dataloader_from_tokenizer "
                             "and dummy_dataloader build).")
    return first


def _ordered_names(model: Any, batch: Dict[str, Any]) -> List[str]:
    declared = [n for n in model_input_names(model) if n in batch]
    return declared + [n for n in batch if n not in declared]


def _sequence_inputs(batch: Dict[str, Any], names: Sequence[str]) -> List[str]:
    """Inputs with a sequence axis (axis 1 of the length of the main input, input_ids if present)."""
    main = "input_ids" if "input_ids" in batch else names[0]
    if batch[main].ndim < 2:
        return []
    length = batch[main].shape[1]
    return [n for n in names if batch[n].ndim >= 2 and batch[n].shape[1] == length]


def _probe(batch: Dict[str, Any], seq_inputs: Sequence[str]) -> Dict[str, Any]:
    """The batch with one sample less (or one more) and a sequence one token shorter (or longer)."""
    probe = {}
    for name, value in batch.items():
        value = value[:-1] if value.shape[0] > 1 else torch.cat([value, value])
        if name in seq_inputs:
            value = value[:, :-1] if value.shape[1] > 1 else torch.cat([value, value], dim=1)
        probe[name] = value
    return probe


def export_arguments(model: Any, dataloader: Any, output_names: Optional[Sequence[str]] = None,
                     batch_dim: Optional[int] = 0) -> Dict[str, Any]:
    """nav.torch.export's `input_names`, `output_names` and `dynamic_axes` for a transformers model.

    Inputs are named as the dataloader names them, in the order the model's forward() declares
    them. The model runs twice (the first batch, then that batch one sample and one token
    shorter): output axes that follow the batch are `batch`, those that follow the sequence length
    are `sequence`; every input's batch axis and the sequence axis of token inputs are dynamic.
    """
    if batch_dim not in (0, None):
        raise UserInputError("transformers models take the batch on axis 0: `batch_dim` must be 0 or None.")
    batch = _first_batch(dataloader)
    wrapper = model if isinstance(model, ModelOutputWrapper) else None
    names = list(wrapper.input_names) if wrapper is not None else _ordered_names(model, batch)
    unknown = [n for n in batch if n not in names]
    if unknown:
        raise UserInputError(f"dataloader inputs {unknown} are not inputs of the model ({', '.join(names)}).")
    names = [n for n in names if n in batch]
    if wrapper is None:
        wrapper = ModelOutputWrapper(model, input_names=names, output_names=output_names)
    seq_inputs = _sequence_inputs(batch, names)
    modes = [(module, module.training) for module in wrapper.modules()]
    wrapper.eval()
    try:
        with torch.inference_mode():
            first = wrapper(**batch)
            second = wrapper(**_probe(batch, seq_inputs)) if batch_dim is not None else first
    finally:
        for module, training in modes:  # leave the user's model in the mode it was in
            module.training = training
    dynamic_axes: Dict[str, Dict[int, str]] = {}
    for name in names:
        axes = {0: BATCH_AXIS} if batch_dim is not None else {}
        if name in seq_inputs:
            axes[1] = SEQUENCE_AXIS
        if axes:
            dynamic_axes[name] = axes
    for name, tensor in first.items():
        other = second.get(name)
        if other is None or other.ndim != tensor.ndim:
            continue
        axes = {}
        for axis, (a, b) in enumerate(zip(tensor.shape, other.shape)):
            if a != b:
                # the probe changed both the batch (axis 0) and the sequence: axis 0 is the batch
                axes[axis] = BATCH_AXIS if axis == 0 else SEQUENCE_AXIS
        if axes:
            dynamic_axes[name] = axes
    return {"input_names": tuple(names), "output_names": tuple(first), "dynamic_axes": dynamic_axes}


def export_hf_model(model: Any, dataloader: Any, output_names: Optional[Sequence[str]] = None,
                    model_kwargs: Optional[Dict[str, Any]] = None, **export_kwargs: Any) -> Any:
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
        wrapper = ModelOutputWrapper(model, input_names=_ordered_names(model, batch), output_names=output_names,
                                     model_kwargs=model_kwargs)
    arguments = export_arguments(wrapper, dataloader, batch_dim=export_kwargs.get("batch_dim", 0))
    kwargs = {"model_name": type(inner).__name__, "jit_options": ("trace",), **arguments, **export_kwargs}
    return nav.torch.export(model=wrapper, dataloader=dataloader, **kwargs)
