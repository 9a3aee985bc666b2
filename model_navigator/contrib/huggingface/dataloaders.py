"""Dataloaders for transformers models: from a tokenizer and texts, or random tokens from a spec."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from model_navigator.core.errors import UserInputError

# name -> (shape, dtype, (low, high)); shape entries are ints or "batch" / "sequence".
InputSpec = Mapping[str, Tuple[Sequence[Union[int, str]], Any, Tuple[float, float]]]

BATCH = "batch"
SEQUENCE = "sequence"


def _torch():
    from model_navigator.api.torch import _import_torch

    return _import_torch()


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserInputError(f"`{name}` must be a positive integer, got {value!r}.")
    return value


def dataloader_from_tokenizer(
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 2,
    max_length: Optional[int] = None,
    pad_to_max_length: bool = False,
) -> List[Dict[str, Any]]:
    """Tokenize `texts` in batches of `batch_size` into a list of dicts name -> torch tensor.

    Each batch is padded to its longest text (so batches of different lengths give the export
    samples of different sequence lengths: the sequence axis becomes dynamic); `max_length`
    truncates, and with `pad_to_max_length` every batch is padded to it. The last batch may be
    smaller. The names are the tokenizer's (`input_ids`, `attention_mask`, `token_type_ids`, ...).
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise UserInputError("`texts` must be a non-empty list of strings.")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise UserInputError(f"`texts` must hold strings; item {bad[0]} is {type(texts[bad[0]]).__name__}.")
    _positive(batch_size, "batch_size")
    if max_length is not None:
        _positive(max_length, "max_length")
    if pad_to_max_length and max_length is None:
        raise UserInputError("`pad_to_max_length=True` needs `max_length`.")
    if not callable(tokenizer):
        raise UserInputError(
            f"`tokenizer` must be a transformers tokenizer (callable), got {type(tokenizer).__name__}."
        )
    torch = _torch()
    batches = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(
            list(texts[start : start + batch_size]),
            padding="max_length" if pad_to_max_length else "longest",
            truncation=max_length is not None,
            max_length=max_length,
            return_tensors="pt",
        )
        batch = {name: value for name, value in dict(encoded).items() if isinstance(value, torch.Tensor)}
        if not batch:
            raise UserInputError("The tokenizer returned no tensors for return_tensors='pt'.")
        batches.append(batch)
    return batches


def input_spec_from_config(config: Any, input_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """An input spec for a text model's `config` (vocab_size, type_vocab_size): input_ids in
    [0, vocab_size), attention_mask of ones, token_type_ids in [0, type_vocab_size) when the
    config has token types. `input_names` picks a subset (in that order)."""
    vocab = getattr(config, "vocab_size", None)
    if not isinstance(vocab, int) or vocab < 1:
        raise UserInputError(
            f"`config` has no positive `vocab_size` ({type(config).__name__}); build the spec "
            f"yourself: {{name: (shape, dtype, (low, high))}}."
        )
    spec: Dict[str, Any] = {
        "input_ids": ((BATCH, SEQUENCE), "int64", (0, vocab)),
        "attention_mask": ((BATCH, SEQUENCE), "int64", (1, 2)),
    }
    types = getattr(config, "type_vocab_size", None)
    if isinstance(types, int) and types >= 1:
        spec["token_type_ids"] = ((BATCH, SEQUENCE), "int64", (0, types))
    if input_names is not None:
        unknown = [n for n in input_names if n not in spec]
        if unknown:
            raise UserInputError(f"`input_names` {unknown} are not known for this config; choose from {list(spec)}.")
        spec = {n: spec[n] for n in input_names}
    return spec


def _dtype(torch: Any, dtype: Any, name: str) -> Any:
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype.replace("torch.", ""), None), torch.dtype):
        return getattr(torch, dtype.replace("torch.", ""))
    raise UserInputError(f"input spec {name!r}: unknown dtype {dtype!r}; use a torch dtype or its name ('int64').")


def dummy_dataloader(
    input_spec: InputSpec,
    batches: int = 2,
    batch_size: int = 2,
    seq_lens: Sequence[int] = (8, 16),
    seed: int = 0,
) -> List[Dict[str, Any]]:
    """`batches` dicts of random torch tensors from `input_spec` = {name: (shape, dtype, (low, high))}.

    Shape entries are ints, "batch" (-> `batch_size`) or "sequence" (-> the batch's entry of
    `seq_lens`, cycled, so the sequence axis varies across batches). Integer dtypes draw from
    [low, high) (`(1, 2)` gives ones, e.g. an attention mask), float dtypes uniformly in [low, high).
    The same `seed` gives the same tensors.
    """
    torch = _torch()
    if not isinstance(input_spec, Mapping) or not input_spec:
        raise UserInputError("`input_spec` must be a non-empty dict {name: (shape, dtype, (low, high))}.")
    _positive(batches, "batches")
    _positive(batch_size, "batch_size")
    lens = list(seq_lens) if not isinstance(seq_lens, int) else [seq_lens]
    if not lens:
        raise UserInputError("`seq_lens` must hold at least one length.")
    for n in lens:
        _positive(n, "seq_lens")
    parsed = {}
    for name, entry in input_spec.items():
        try:
            shape, dtype, (low, high) = entry
        except (TypeError, ValueError):
            raise UserInputError(f"input spec {name!r} must be (shape, dtype, (low, high)), got {entry!r}.") from None
        for dim in shape:
            if dim not in (BATCH, SEQUENCE) and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
                raise UserInputError(
                    f"input spec {name!r}: shape entries are positive ints, {BATCH!r} or {SEQUENCE!r}; got {dim!r}."
                )
        if not high > low:
            raise UserInputError(f"input spec {name!r}: the range ({low}, {high}) is empty; high must exceed low.")
        parsed[name] = (tuple(shape), _dtype(torch, dtype, name), low, high)
    generator = torch.Generator().manual_seed(int(seed))
    out = []
    for index in range(batches):
        seq = lens[index % len(lens)]
        batch = {}
        for name, (shape, dtype, low, high) in parsed.items():
            size = tuple(batch_size if d == BATCH else seq if d == SEQUENCE else d for d in shape)
            if dtype.is_floating_point:
                tensor = torch.rand(size, generator=generator) * (high - low) + low
                batch[name] = tensor.to(dtype)
            elif dtype == torch.bool:
                batch[name] = torch.randint(int(low), int(high), size, generator=generator).bool()
            else:
                batch[name] = torch.randint(int(low), int(high), size, generator=generator, dtype=dtype)
        out.append(batch)
    return out
