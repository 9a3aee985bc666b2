"""Dataloader samples: validation, splitting into single samples, selection and npz storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.errors import UserInputError
from model_navigator.core.tensor import TensorMetadata, is_tensor, to_numpy

Sample = Dict[str, np.ndarray]
SEED = 0

_SUPPORTED = "a tensor (torch, tf, jax or numpy), a tuple/list of tensors, or a dict name -> tensor"


@dataclass
class SampleSet:
    """The dataloader turned into single samples plus how they were given (positional or keyword)."""

    samples: List[Sample]
    input_names: Tuple[str, ...]
    keyword: bool
    dataloader_batch_size: int
    dataloader_len: int
    batch_dim: Optional[int]
    selected: Dict[str, List[int]] = field(default_factory=dict)
    # keyword samples whose keys `input_names` renamed: the keys (the forward's parameter names) in
    # input order; None when the inputs keep the keys' names
    forward_names: Optional[Tuple[str, ...]] = None
    # where each single sample came from: (dataloader item, position in that item's batch)
    origins: List[Tuple[int, int]] = field(default_factory=list)

    def of_set(self, name: str) -> List[Sample]:
        """The samples selected for one set (conversion, correctness, profiling), as saved to model_input/<name>/."""
        return [self.samples[i] for i in self.selected.get(name, [])]

    def describe(self, index: int) -> str:
        """Sample `index` as the user can find it: the dataloader item and its position in that batch."""
        if index >= len(self.origins):
            return f"sample {index}"
        item, position = self.origins[index]
        return f"dataloader item {item}" + (f", position {position} in its batch" if self.batch_dim is not None else "")


def _describe(value: Any) -> str:
    return type(value).__module__ + "." + type(value).__name__


def _item_to_named(
    item: Any, index: int, input_names: Optional[Sequence[str]], rename: bool = False
) -> Tuple[Dict[str, Any], bool]:
    """One dataloader item -> (ordered mapping name -> tensor, given as keywords?). With `rename`,
    `input_names` none of which is a dict key name its entries by position (the reference's rule)."""
    if isinstance(item, dict):
        keys = list(item.keys())
        for k, v in item.items():
            if not isinstance(k, str) or not is_tensor(v):
                raise UserInputError(
                    f"`dataloader` item {index}: dict entry {k!r} holds {_describe(v)}; every value must be "
                    f"a tensor and every key a str ({_SUPPORTED})."
                )
        # renamed by position only when no name is a key: names that partly match the keys are ambiguous
        if input_names is not None and rename and not set(input_names) & set(keys):
            if len(input_names) != len(keys):
                raise UserInputError(
                    f"`input_names` has {len(input_names)} names {tuple(input_names)} but the dataloader's dict "
                    f"samples hold {len(keys)} inputs {tuple(keys)}; give one name per dict entry, in its order."
                )
            return {n: item[k] for n, k in zip(input_names, keys, strict=True)}, True
        if input_names is not None:
            if set(input_names) != set(keys):
                raise UserInputError(
                    f"`input_names` {tuple(input_names)} do not match the keys of the dataloader's dict samples "
                    f"{tuple(keys)}; pass the same names (any order)"
                    + (
                        ", or names none of which is a key to rename the inputs by the keys' position,"
                        if rename
                        else ""
                    )
                    + " or leave `input_names` out."
                )
            keys = list(input_names)
        return {k: item[k] for k in keys}, True
    if is_tensor(item):
        values = [item]
    elif isinstance(item, (tuple, list)):
        if not item:
            raise UserInputError(f"`dataloader` item {index} is an empty {type(item).__name__}; expected {_SUPPORTED}.")
        for j, v in enumerate(item):
            if not is_tensor(v):
                raise UserInputError(
                    f"`dataloader` item {index}, element {j} is {_describe(v)}; expected {_SUPPORTED}."
                )
        values = list(item)
    else:
        raise UserInputError(f"`dataloader` item {index} is {_describe(item)}; expected {_SUPPORTED}.")
    if input_names is not None:
        if len(input_names) != len(values):
            raise UserInputError(
                f"`input_names` has {len(input_names)} names {tuple(input_names)} but dataloader samples hold "
                f"{len(values)} tensors; give one name per tensor in the order the samples hold them."
            )
        names = list(input_names)
    else:
        names = [f"input__{i}" for i in range(len(values))]
    return dict(zip(names, values, strict=True)), False


def check_dataloader(dataloader: Any) -> int:
    """Require len() and iter(); return the length (> 0)."""
    if not hasattr(dataloader, "__len__"):
        raise UserInputError(
            f"`dataloader` ({_describe(dataloader)}) has no len(); wrap it in a list or give it __len__ "
            f"so model-navigator knows how many samples to read."
        )
    if not hasattr(dataloader, "__iter__"):
        raise UserInputError(f"`dataloader` ({_describe(dataloader)}) is not iterable; it must implement __iter__.")
    length = len(dataloader)
    if length == 0:
        raise UserInputError("`dataloader` is empty; give at least one sample.")
    return length


def _check_arguments(input_names: Optional[Sequence[str]], batch_dim: Optional[int]) -> Optional[Tuple[str, ...]]:
    """`input_names` as a tuple of unique non-empty strings (None stays None); `batch_dim` an int >= 0 or None."""
    if input_names is not None:
        if isinstance(input_names, str):
            input_names = (input_names,)
        input_names = tuple(input_names)
        if len(set(input_names)) != len(input_names) or not all(isinstance(n, str) and n for n in input_names):
            raise UserInputError(f"`input_names` must be unique non-empty strings, got {input_names}.")
    if batch_dim is not None and (not isinstance(batch_dim, int) or isinstance(batch_dim, bool) or batch_dim < 0):
        raise UserInputError(f"`batch_dim` must be a non-negative int or None, got {batch_dim!r}.")
    return input_names


def _to_arrays(named: Dict[str, Any], index: int) -> Dict[str, np.ndarray]:
    """One item's tensors as numpy arrays, refusing dtypes numpy lacks (bfloat16) and object arrays."""
    arrays = {}
    for k, v in named.items():
        if getattr(v, "is_meta", False) or str(getattr(v, "device", "")) == "meta":
            raise UserInputError(
                f"`dataloader` item {index}, input {k!r} is a tensor on the meta device, which holds no data; "
                f"feed tensors with values (on the CPU or a GPU), e.g. torch.randn(...) instead of torch.empty(..., "
                f"device='meta')."
            )
        try:
            arrays[k] = to_numpy(v)
        except TypeError as e:  # e.g. bfloat16, which numpy has no dtype for
            raise UserInputError(
                f"`dataloader` item {index}, input {k!r} cannot become a numpy array ({e}); "
                f"bfloat16 and other dtypes numpy lacks are not supported: feed float32/float16 samples."
            ) from e
        if arrays[k].dtype == object:
            raise UserInputError(f"`dataloader` item {index}, input {k!r} has dtype object; use numeric tensors.")
    return arrays


def _check_like_first(
    arrays: Dict[str, np.ndarray], names: Tuple[str, ...], first: Dict[str, np.ndarray], index: int
) -> None:
    """Every item holds the inputs of item 0, each with the rank and dtype it had there."""
    if set(arrays) != set(names) or len(arrays) != len(names):
        raise UserInputError(
            f"`dataloader` item {index} holds inputs {tuple(arrays)} but item 0 held {names}; "
            f"every sample must have the same inputs."
        )
    for k, a in arrays.items():
        if a.ndim != first[k].ndim:
            raise UserInputError(
                f"`dataloader` item {index}, input {k!r} has rank {a.ndim} (shape {a.shape}) but item 0 had "
                f"rank {first[k].ndim}; an input keeps its number of axes across samples."
            )
        if a.dtype != first[k].dtype:
            raise UserInputError(
                f"`dataloader` item {index}, input {k!r} has dtype {a.dtype.name} but item 0 had "
                f"{first[k].dtype.name}; an input keeps its dtype across samples (the exported graph takes one): "
                f"cast every sample to {first[k].dtype.name}."
            )


def _batch_sizes(arrays: Dict[str, np.ndarray], index: int, batch_dim: int) -> Dict[str, int]:
    """Each input's size along `batch_dim` (an input without that axis is an error)."""
    for k, a in arrays.items():
        if a.ndim <= batch_dim:
            raise UserInputError(
                f"`dataloader` item {index}, input {k!r} has shape {a.shape} with no axis {batch_dim} to "
                f"split batches on; set `batch_dim` to the batch axis, or batch_dim=None if the model "
                f"takes no batch."
            )
    return {k: int(a.shape[batch_dim]) for k, a in arrays.items()}


def _split_batch(arrays: Dict[str, np.ndarray], index: int, batch_dim: int) -> List[Sample]:
    """One batched item as single samples (batch axis kept, size 1), its inputs agreeing on the batch."""
    batch = next(iter(_batch_sizes(arrays, index, batch_dim).values()))
    if batch == 0:
        raise UserInputError(f"`dataloader` item {index} has an empty batch (size 0 on axis {batch_dim}).")
    return [{k: np.ascontiguousarray(np.take(a, [i], axis=batch_dim)) for k, a in arrays.items()} for i in range(batch)]


def _uneven_batch(items: List[Dict[str, np.ndarray]], batch_dim: int) -> Optional[str]:
    """Why the items cannot be split along `batch_dim` (the inputs of one disagree on its size), or
    None. The reference then treats every dataloader item as one sample; so do we, and say so."""
    for index, arrays in enumerate(items):
        sizes = _batch_sizes(arrays, index, batch_dim)
        if len(set(sizes.values())) > 1:
            return (
                f"`dataloader` item {index}: the inputs disagree on the batch size along batch_dim={batch_dim} "
                f"({', '.join(f'{k}: {v}' for k, v in sizes.items())}), so every dataloader item is kept whole as "
                f"one sample, as with batch_dim=None (pass batch_dim=None to say so on purpose): no batch axis "
                f"is made dynamic and correctness is not checked on rebuilt batches."
            )
    return None


def collect_samples(
    dataloader: Iterable[Any],
    input_names: Optional[Sequence[str]],
    batch_dim: Optional[int],
    rename_keywords: bool = False,
) -> SampleSet:
    """Read the whole dataloader and split every batch along `batch_dim` into single samples (kept
    whole, with a warning, when the inputs of an item disagree on the batch size).
    `rename_keywords`: `input_names` may rename dict samples' keys by position (the forward's
    names are kept in `forward_names`)."""
    length = check_dataloader(dataloader)
    input_names = _check_arguments(input_names, batch_dim)
    items: List[Dict[str, np.ndarray]] = []
    names: Optional[Tuple[str, ...]] = None
    forward_names: Optional[Tuple[str, ...]] = None
    keyword = False
    first: Dict[str, np.ndarray] = {}
    for index, item in enumerate(dataloader):
        named, keyword = _item_to_named(item, index, input_names, rename_keywords)
        if keyword and forward_names is None and set(named) != set(item):  # renamed: the keys are the forward's
            forward_names = tuple(item)
        arrays = _to_arrays(named, index)
        if names is None:
            names, first = tuple(arrays), {k: a[:0] if a.ndim else a.copy() for k, a in arrays.items()}
        _check_like_first(arrays, names, first, index)
        items.append({k: np.array(arrays[k], copy=True) for k in names})  # loaders may reuse buffers
    if names is None:
        raise UserInputError(f"`dataloader` reports len() == {length} but yielded no items.")
    uneven = _uneven_batch(items, batch_dim) if batch_dim is not None else None
    if uneven is not None:
        import warnings

        from model_navigator.core.logging import LOGGER

        warnings.warn(uneven, UserWarning, stacklevel=3)
        LOGGER.warning("%s", uneven)
        batch_dim = None
    samples: List[Sample] = []
    origins: List[Tuple[int, int]] = []
    max_batch = 1
    for index, arrays in enumerate(items):
        if batch_dim is None:
            samples.append(arrays)
            origins.append((index, 0))
            continue
        split = _split_batch(arrays, index, batch_dim)
        max_batch = max(max_batch, len(split))
        samples.extend(split)
        origins.extend((index, position) for position in range(len(split)))
    return SampleSet(
        samples=samples,
        input_names=names,
        keyword=keyword,
        dataloader_batch_size=max_batch,
        dataloader_len=length,
        batch_dim=batch_dim,
        forward_names=forward_names,
        origins=origins,
    )


def select_samples(sample_set: SampleSet, sample_count: int) -> Dict[str, List[int]]:
    """Pick conversion (extremes of every axis), correctness (random, seeded) and profiling indices."""
    samples = sample_set.samples
    n = len(samples)
    conversion: List[int] = []
    for name in sample_set.input_names:
        shapes = np.array([s[name].shape for s in samples]) if samples[0][name].ndim else np.zeros((n, 0))
        for axis in range(shapes.shape[1]):
            for idx in (int(np.argmin(shapes[:, axis])), int(np.argmax(shapes[:, axis]))):
                if idx not in conversion:
                    conversion.append(idx)
    if not conversion:
        conversion = [0]
    rng = np.random.default_rng(SEED)
    count = min(sample_count, n)
    correctness = sorted(int(i) for i in rng.choice(n, size=count, replace=False))
    profiling = [int(rng.integers(n))]
    sample_set.selected = {"conversion": sorted(conversion), "correctness": correctness, "profiling": profiling}
    return sample_set.selected


CALIBRATION_SET = "calibration"
CALIBRATION_COUNT = 16


def select_calibration(sample_set: SampleSet, count: int = CALIBRATION_COUNT) -> List[int]:
    """Up to `count` samples held apart from the correctness samples (seeded): what static int8
    calibrates on, so its correctness check never sees a sample it was calibrated on. Recorded in
    sample_set.selected["calibration"]; inputs only (no reference outputs are needed)."""
    used = set(sample_set.selected.get("correctness", []))
    free = [i for i in range(len(sample_set.samples)) if i not in used]
    rng = np.random.default_rng(SEED + 1)
    chosen = sorted(int(i) for i in rng.choice(free, size=min(count, len(free)), replace=False)) if free else []
    sample_set.selected[CALIBRATION_SET] = chosen
    return chosen


def save_sample(path: Path, sample: Sample) -> None:
    """Write one sample as npz (one .npy per name, no pickle; any name, even 'file', works)."""
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, value in sample.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def load_sample(path: Path) -> Sample:
    """Load one npz sample without pickle, keeping the stored order of names."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_sample_dir(folder: Path) -> List[Sample]:
    files = sorted(Path(folder).glob("*.npz"), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
    return [load_sample(f) for f in files]


def build_batch(sample: Dict[str, np.ndarray], batch_size: int, batch_dim: Optional[int]) -> Dict[str, np.ndarray]:
    """Rebuild a batch: repeat single samples along batch_dim to batch_size; arrays come back C-contiguous."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if batch_dim is None:
        if batch_size != 1:
            raise ValueError(f"No batch dimension (batch_dim=None): batch_size must be 1, got {batch_size}.")
        return sample
    batch: Dict[str, np.ndarray] = {}
    for name, value in sample.items():
        array = np.asarray(value)
        if array.ndim == 0:
            raise ValueError(f"Input {name!r} is a scalar; it has no batch dimension {batch_dim}.")
        if not -array.ndim <= batch_dim < array.ndim:
            raise ValueError(f"Input {name!r} has shape {array.shape}; batch_dim {batch_dim} is out of range.")
        size = array.shape[batch_dim]
        if size == batch_size:
            batched = array
        elif size == 1:
            batched = np.repeat(array, batch_size, axis=batch_dim)
        elif size > 1:
            # A sample that already holds several items: cycle through them.
            batched = np.take(array, np.arange(batch_size) % size, axis=batch_dim)
        else:
            raise ValueError(f"Input {name!r} has shape {array.shape}: empty along batch_dim {batch_dim}.")
        batch[name] = batched if batched.flags.c_contiguous else np.ascontiguousarray(batched)
    return batch


def infer_metadata(
    samples: Sequence[Sample],
    names: Sequence[str],
    batch_dim: Optional[int],
    dynamic_axes: Dict[str, List[int]],
) -> List[TensorMetadata]:
    """Metadata from single samples: -1 on the batch axis and on every axis that is dynamic."""
    result = []
    for name in names:
        first = samples[0][name]
        shape = list(first.shape)
        for axis in dynamic_axes.get(name, []):
            if axis < len(shape):
                shape[axis] = -1
        if batch_dim is not None and batch_dim < len(shape):
            shape[batch_dim] = -1
        result.append(TensorMetadata(name=name, shape=tuple(shape), dtype=first.dtype.name))
    return result


def varying_axes(samples: Sequence[Sample], name: str) -> List[int]:
    """Axes of `name` whose size differs between samples."""
    shapes = {s[name].shape for s in samples}
    if len(shapes) <= 1:
        return []
    ndims = {len(s) for s in shapes}
    if len(ndims) != 1:
        raise UserInputError(f"Input or output {name!r} changes rank between samples: {sorted(shapes)}.")
    return [axis for axis in range(ndims.pop()) if len({s[axis] for s in shapes}) > 1]
