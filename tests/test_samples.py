"""Unit tests of model_navigator.core.samples: splitting, selection, npz storage and the errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from model_navigator.core.errors import UserInputError
from model_navigator.core.samples import (
    SampleSet,
    build_batch,
    check_dataloader,
    collect_samples,
    infer_metadata,
    load_sample,
    load_sample_dir,
    save_sample,
    select_samples,
    varying_axes,
)

torch = pytest.importorskip("torch")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _sample_set(samples, names=("x",), keyword=False, batch_dim=0) -> SampleSet:
    return SampleSet(
        samples=samples,
        input_names=tuple(names),
        keyword=keyword,
        dataloader_batch_size=1,
        dataloader_len=len(samples),
        batch_dim=batch_dim,
    )


# ------------------------------------------------------------------------------------------------
# Splitting along batch_dim
# ------------------------------------------------------------------------------------------------


def test_split_batch_dim_0_single_tensor():
    batches = [np.arange(15, dtype=np.float32).reshape(3, 5), np.arange(10, dtype=np.float32).reshape(2, 5) + 100]
    ss = collect_samples(batches, None, 0)
    assert ss.input_names == ("input__0",)
    assert ss.keyword is False
    assert len(ss.samples) == 5
    assert ss.dataloader_batch_size == 3  # the largest batch
    assert ss.dataloader_len == 2
    assert ss.batch_dim == 0
    for s in ss.samples:
        assert s["input__0"].shape == (1, 5)
        assert s["input__0"].flags.c_contiguous
    np.testing.assert_array_equal(ss.samples[1]["input__0"], batches[0][1:2])
    np.testing.assert_array_equal(ss.samples[4]["input__0"], batches[1][1:2])


def test_split_batch_dim_1():
    x = _rng().standard_normal((2, 4, 5)).astype(np.float32)  # batch on axis 1
    y = _rng(1).standard_normal((7, 4)).astype(np.float32)
    ss = collect_samples([(x, y)], None, 1)
    assert len(ss.samples) == 4
    assert ss.dataloader_batch_size == 4
    for i, s in enumerate(ss.samples):
        assert s["input__0"].shape == (2, 1, 5)
        assert s["input__1"].shape == (7, 1)
        np.testing.assert_array_equal(s["input__0"], x[:, i : i + 1, :])
        np.testing.assert_array_equal(s["input__1"], y[:, i : i + 1])
        assert s["input__0"].flags.c_contiguous and s["input__1"].flags.c_contiguous


def test_batch_dim_none_keeps_items_whole():
    batches = [torch.randn(3, 5), torch.randn(3, 5)]
    ss = collect_samples(batches, None, None)
    assert len(ss.samples) == 2
    assert ss.samples[0]["input__0"].shape == (3, 5)
    assert ss.dataloader_batch_size == 1
    assert ss.batch_dim is None
    np.testing.assert_array_equal(ss.samples[1]["input__0"], batches[1].numpy())


def test_split_copies_data_away_from_the_dataloader():
    batch = torch.zeros(2, 3)
    ss = collect_samples([batch], None, 0)
    batch.fill_(5.0)
    assert float(np.abs(ss.samples[0]["input__0"]).max()) == 0.0


class _ReusingLoader:
    """A loader that refills one preallocated tensor per item (common with pinned buffers)."""

    def __init__(self, n: int, shape=(2, 3)):
        self.n = n
        self.buffer = torch.zeros(shape)

    def __len__(self):
        return self.n

    def __iter__(self):
        for i in range(self.n):
            self.buffer.fill_(float(i))
            yield self.buffer


def test_reused_buffer_with_batch_dim_0_keeps_each_item():
    ss = collect_samples(_ReusingLoader(3), None, 0)
    values = [float(s["input__0"][0, 0]) for s in ss.samples]
    assert values == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


def test_reused_buffer_with_batch_dim_none_keeps_each_item():
    ss = collect_samples(_ReusingLoader(3), None, None)
    values = [float(s["input__0"][0, 0]) for s in ss.samples]
    assert values == [0.0, 1.0, 2.0]


# ------------------------------------------------------------------------------------------------
# Sample kinds: tensor / tuple / list / dict, numpy and torch
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("container", [tuple, list])
def test_tuple_and_list_samples_are_positional(container):
    a = torch.randn(2, 3)
    b = torch.randint(0, 10, (2, 4))
    ss = collect_samples([container([a, b])], None, 0)
    assert ss.keyword is False
    assert ss.input_names == ("input__0", "input__1")
    assert len(ss.samples) == 2
    assert ss.samples[0]["input__1"].dtype == np.int64
    np.testing.assert_array_equal(ss.samples[1]["input__0"], a[1:2].numpy())


def test_tuple_samples_take_input_names_in_order():
    ss = collect_samples([(np.zeros((1, 2), np.float32), np.ones((1, 3), np.float32))], ("first", "second"), 0)
    assert ss.input_names == ("first", "second")
    assert ss.samples[0]["second"].shape == (1, 3)


def test_dict_samples_are_keyword_and_keep_key_order():
    item = {"b": np.zeros((2, 3), np.float32), "a": np.ones((2, 1), np.int64)}
    ss = collect_samples([item], None, 0)
    assert ss.keyword is True
    assert ss.input_names == ("b", "a")
    assert list(ss.samples[0]) == ["b", "a"]


def test_dict_samples_with_input_names_take_their_order():
    item = {"b": np.zeros((2, 3), np.float32), "a": np.ones((2, 1), np.int64)}
    ss = collect_samples([item], ("a", "b"), 0)
    assert ss.input_names == ("a", "b")
    assert list(ss.samples[1]) == ["a", "b"]


def test_dict_items_in_different_key_order_are_aligned():
    first = {"a": np.zeros((1, 2), np.float32), "b": np.zeros((1, 3), np.float32)}
    second = {"b": np.ones((1, 3), np.float32), "a": np.ones((1, 2), np.float32)}
    ss = collect_samples([first, second], None, 0)
    assert ss.input_names == ("a", "b")
    assert all(list(s) == ["a", "b"] for s in ss.samples)
    assert ss.samples[1]["b"].shape == (1, 3)


def test_numpy_and_torch_samples_give_equal_numpy_samples():
    data = _rng().standard_normal((4, 6)).astype(np.float32)
    from_numpy = collect_samples([data], None, 0)
    from_torch = collect_samples([torch.from_numpy(data.copy())], None, 0)
    assert len(from_numpy.samples) == len(from_torch.samples) == 4
    for a, b in zip(from_numpy.samples, from_torch.samples, strict=True):
        assert isinstance(b["input__0"], np.ndarray)
        np.testing.assert_array_equal(a["input__0"], b["input__0"])


def test_torch_tensor_requiring_grad_is_accepted():
    x = torch.randn(2, 3, requires_grad=True)
    ss = collect_samples([x], None, 0)
    np.testing.assert_array_equal(ss.samples[0]["input__0"], x[0:1].detach().numpy())


@pytest.mark.parametrize(
    "dtype, np_dtype",
    [
        (torch.int64, np.int64),
        (torch.float16, np.float16),
        (torch.bool, np.bool_),
        (torch.int32, np.int32),
        (torch.float64, np.float64),
        (torch.uint8, np.uint8),
    ],
)
def test_dtypes_are_kept(dtype, np_dtype):
    x = (torch.arange(6).reshape(2, 3) % 2).to(dtype)
    ss = collect_samples([x], None, 0)
    assert ss.samples[0]["input__0"].dtype == np_dtype
    np.testing.assert_array_equal(ss.samples[1]["input__0"], x[1:2].numpy())


def test_varying_batch_sizes_across_items_are_allowed():
    ss = collect_samples([torch.randn(4, 2), torch.randn(1, 2), torch.randn(3, 2)], None, 0)
    assert len(ss.samples) == 8
    assert ss.dataloader_batch_size == 4


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


def test_dataloader_without_len():
    with pytest.raises(UserInputError, match=r"`dataloader`.*len\(\)"):
        collect_samples((torch.randn(1, 2) for _ in range(3)), None, 0)


def test_dataloader_without_iter():
    class OnlyLen:
        def __len__(self):
            return 1

    with pytest.raises(UserInputError, match=r"`dataloader`.*iter"):
        check_dataloader(OnlyLen())


def test_empty_dataloader():
    with pytest.raises(UserInputError, match=r"`dataloader` is empty"):
        collect_samples([], None, 0)


def test_dataloader_whose_len_lies_and_yields_nothing():
    class Liar:
        def __len__(self):
            return 3

        def __iter__(self):
            return iter(())

    with pytest.raises(UserInputError, match=r"`dataloader`.*yielded no items"):
        collect_samples(Liar(), None, 0)


@pytest.mark.parametrize(
    "item",
    [
        "text",
        3,
        1.5,
        None,
        [1.0, 2.0],
        (torch.zeros(1, 2), "x"),
        [],
        (),
        {"a": 1.0},
        {1: torch.zeros(1, 2)},
        np.float32(1.0),
    ],
)
def test_unsupported_sample_types(item):
    with pytest.raises(UserInputError, match=r"`dataloader` item 0"):
        collect_samples([item], None, 0)


def test_unsupported_type_names_the_item_index():
    with pytest.raises(UserInputError, match=r"`dataloader` item 2.*builtins\.str"):
        collect_samples([torch.zeros(1, 2), torch.zeros(1, 2), "oops"], None, 0)


def test_object_dtype_is_refused():
    with pytest.raises(UserInputError, match=r"dtype object"):
        collect_samples([np.array([[1, "a"]], dtype=object)], None, 0)


def test_input_names_count_mismatch_tuple():
    with pytest.raises(UserInputError, match=r"`input_names` has 2 names.*1 tensors"):
        collect_samples([torch.zeros(1, 2)], ("a", "b"), 0)


def test_input_names_mismatch_dict_keys():
    with pytest.raises(UserInputError, match=r"`input_names`.*do not match the keys"):
        collect_samples([{"x": torch.zeros(1, 2)}], ("y",), 0)


@pytest.mark.parametrize("names", [("a", "a"), ("a", ""), ("a", 3)])
def test_input_names_must_be_unique_non_empty_strings(names):
    with pytest.raises(UserInputError, match=r"`input_names`"):
        collect_samples([(torch.zeros(1, 2), torch.zeros(1, 2))], names, 0)


def test_inconsistent_batch_sizes_within_an_item_keep_every_item_whole():
    with pytest.warns(
        UserWarning,
        match=r"disagree on the batch size along batch_dim=0 \(input__0: 2, input__1: 3\)"
        r".*batch_dim=None",
    ):
        sample_set = collect_samples(
            [(torch.zeros(2, 3), torch.zeros(3, 3)), (torch.ones(2, 3), torch.ones(3, 3))], None, 0
        )
    assert sample_set.batch_dim is None
    assert len(sample_set.samples) == 2
    assert sample_set.samples[1]["input__1"].shape == (3, 3)
    assert float(sample_set.samples[1]["input__0"].sum()) == 6.0


def test_inconsistent_batch_sizes_on_batch_dim_1():
    with pytest.warns(UserWarning, match=r"batch_dim=1"):
        sample_set = collect_samples([(torch.zeros(2, 3), torch.zeros(2, 4))], None, 1)
    assert sample_set.batch_dim is None and len(sample_set.samples) == 1


def test_items_with_different_inputs():
    with pytest.raises(UserInputError, match=r"item 1 holds inputs .* item 0 held"):
        collect_samples([torch.zeros(1, 2), (torch.zeros(1, 2), torch.zeros(1, 2))], None, 0)


def test_dict_then_tuple_items():
    with pytest.raises(UserInputError, match=r"item 1"):
        collect_samples([{"x": torch.zeros(1, 2)}, (torch.zeros(1, 2),)], None, 0)


def test_batch_dim_beyond_rank():
    with pytest.raises(UserInputError, match=r"no axis 2 to split"):
        collect_samples([torch.zeros(3, 4)], None, 2)


def test_scalar_with_batch_dim():
    with pytest.raises(UserInputError, match=r"no axis 0"):
        collect_samples([np.array(1.0, dtype=np.float32)], None, 0)


def test_empty_batch():
    with pytest.raises(UserInputError, match=r"empty batch"):
        collect_samples([torch.zeros(0, 4)], None, 0)


@pytest.mark.parametrize("batch_dim", [-1, 1.0, True, "0"])
def test_bad_batch_dim(batch_dim):
    with pytest.raises(UserInputError, match=r"`batch_dim`"):
        collect_samples([torch.zeros(2, 4)], None, batch_dim)


def test_rank_change_between_items_is_a_user_error():
    with pytest.raises(UserInputError, match=r"rank"):
        ss = collect_samples([torch.zeros(1, 5), torch.zeros(1, 5, 2)], None, 0)
        select_samples(ss, 10)


def test_bfloat16_input_is_a_clear_user_error():
    """numpy has no bfloat16: the samples are refused before any export, naming the item, input and fix."""
    with pytest.raises(UserInputError) as info:
        collect_samples([torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bfloat16)], None, 0)
    message = str(info.value)
    assert message.startswith("`dataloader` item 1, input 'input__0' cannot become a numpy array"), message
    assert "bfloat16 and other dtypes numpy lacks are not supported: feed float32/float16 samples." in message


# ------------------------------------------------------------------------------------------------
# Selection
# ------------------------------------------------------------------------------------------------


def _seq_samples(lengths, width=3):
    return [{"ids": np.zeros((1, n), np.int64), "img": np.zeros((1, width, n + 1), np.float32)} for n in lengths]


def test_conversion_picks_the_extremes_of_every_varying_axis():
    lengths = [5, 3, 9, 3, 9, 7, 4, 8]
    ss = _sample_set(_seq_samples(lengths), names=("ids", "img"), keyword=True)
    selected = select_samples(ss, 100)
    chosen = {lengths[i] for i in selected["conversion"]}
    assert min(lengths) in chosen and max(lengths) in chosen
    assert selected["conversion"] == sorted(set(selected["conversion"]))
    # Only extremes (plus, at most, the sample that represents the constant axes).
    assert len(selected["conversion"]) <= 3


def test_conversion_covers_two_independent_axes():
    shapes = [(1, 3, 10, 20), (1, 3, 4, 30), (1, 3, 16, 8), (1, 3, 12, 12)]
    ss = _sample_set([{"x": np.zeros(s, np.float32)} for s in shapes])
    conv = select_samples(ss, 10)["conversion"]
    heights = {shapes[i][2] for i in conv}
    widths = {shapes[i][3] for i in conv}
    assert {4, 16} <= heights
    assert {8, 30} <= widths


def test_conversion_with_constant_shapes_is_one_sample():
    ss = _sample_set([{"x": np.full((1, 4), i, np.float32)} for i in range(6)])
    assert select_samples(ss, 3)["conversion"] == [0]


def test_conversion_with_scalar_inputs_and_no_batch():
    ss = _sample_set([{"x": np.array(float(i), np.float32)} for i in range(4)], batch_dim=None)
    selected = select_samples(ss, 2)
    assert selected["conversion"] == [0]
    assert len(selected["correctness"]) == 2


def test_correctness_count_and_uniqueness():
    ss = _sample_set([{"x": np.full((1, 2), i, np.float32)} for i in range(50)])
    selected = select_samples(ss, 7)
    corr = selected["correctness"]
    assert len(corr) == 7
    assert len(set(corr)) == 7
    assert corr == sorted(corr)
    assert all(0 <= i < 50 for i in corr)


def test_correctness_takes_all_when_fewer_samples_than_count():
    ss = _sample_set([{"x": np.full((1, 2), i, np.float32)} for i in range(5)])
    assert select_samples(ss, 100)["correctness"] == [0, 1, 2, 3, 4]


def test_selection_is_deterministic_and_independent_of_global_rng():
    def run():
        ss = _sample_set([{"x": np.full((1, 2), i, np.float32)} for i in range(40)])
        return select_samples(ss, 10)

    np.random.seed(1)
    first = run()
    np.random.seed(12345)
    np.random.random(100)
    second = run()
    assert first == second


def test_profiling_is_one_sample_in_range():
    ss = _sample_set([{"x": np.full((1, 2), i, np.float32)} for i in range(13)])
    selected = select_samples(ss, 5)
    assert len(selected["profiling"]) == 1
    assert 0 <= selected["profiling"][0] < 13
    assert ss.selected == selected
    assert set(selected) == {"conversion", "correctness", "profiling"}


def test_single_sample_dataloader():
    ss = collect_samples([torch.zeros(1, 3)], None, 0)
    selected = select_samples(ss, 100)
    assert selected == {"conversion": [0], "correctness": [0], "profiling": [0]}


# ------------------------------------------------------------------------------------------------
# npz storage
# ------------------------------------------------------------------------------------------------


def test_npz_round_trip_keeps_names_order_dtypes_and_values(tmp_path: Path):
    sample = {
        "zeta": np.arange(6, dtype=np.int64).reshape(1, 6) * (2**40),
        "alpha": np.linspace(-1, 1, 8, dtype=np.float16).reshape(1, 8),
        "mask": np.array([[True, False, True]]),
        "scalar": np.array(3.5, dtype=np.float32),
        "u8": np.array([[0, 255]], dtype=np.uint8),
    }
    path = tmp_path / "deep" / "folder" / "0.npz"
    save_sample(path, sample)
    loaded = load_sample(path)
    assert list(loaded) == list(sample)
    for name, value in sample.items():
        assert loaded[name].dtype == value.dtype, name
        assert loaded[name].shape == value.shape, name
        np.testing.assert_array_equal(loaded[name], value)
    # Readable without pickle by plain numpy too.
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(sample)


def test_npz_file_holds_no_pickled_objects(tmp_path: Path):
    path = tmp_path / "0.npz"
    save_sample(path, {"x": np.zeros((1, 2), np.float32)})
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["x.npy"]


def test_load_sample_refuses_pickled_arrays(tmp_path: Path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"allow_pickle"):
        load_sample(path)


def test_load_sample_dir_orders_numerically(tmp_path: Path):
    for i in (10, 2, 0, 1):
        save_sample(tmp_path / f"{i}.npz", {"x": np.full((1,), i, np.int64)})
    loaded = load_sample_dir(tmp_path)
    assert [int(s["x"][0]) for s in loaded] == [0, 1, 2, 10]


def test_collected_samples_round_trip_through_npz(tmp_path: Path):
    items = [
        {"input_ids": torch.randint(0, 50, (2, n)), "attention_mask": torch.ones(2, n, dtype=torch.int64)}
        for n in (3, 6)
    ]
    ss = collect_samples(items, None, 0)
    for i, s in enumerate(ss.samples):
        save_sample(tmp_path / f"{i}.npz", s)
    for original, loaded in zip(ss.samples, load_sample_dir(tmp_path), strict=True):
        assert list(loaded) == ["input_ids", "attention_mask"]
        for k in original:
            assert loaded[k].dtype == np.int64
            np.testing.assert_array_equal(loaded[k], original[k])


@pytest.mark.parametrize("name", ["file", "allow_pickle"])
def test_npz_round_trip_with_names_that_shadow_savez_parameters(tmp_path: Path, name: str):
    sample = {name: np.arange(3, dtype=np.float32), "other": np.ones(2, np.int64)}
    save_sample(tmp_path / "0.npz", sample)
    loaded = load_sample(tmp_path / "0.npz")
    assert list(loaded) == [name, "other"]
    np.testing.assert_array_equal(loaded[name], sample[name])


# ------------------------------------------------------------------------------------------------
# Batches, metadata, varying axes
# ------------------------------------------------------------------------------------------------


def test_build_batch_repeats_a_single_sample():
    sample = {"x": np.arange(3, dtype=np.float32).reshape(1, 3), "m": np.array([[True, False]])}
    batch = build_batch(sample, 4, 0)
    assert batch["x"].shape == (4, 3) and batch["m"].shape == (4, 2)
    assert batch["m"].dtype == np.bool_
    for row in batch["x"]:
        np.testing.assert_array_equal(row, sample["x"][0])


def test_build_batch_on_axis_1_is_contiguous():
    sample = {"x": np.arange(6, dtype=np.float32).reshape(2, 1, 3)}
    batch = build_batch(sample, 5, 1)
    assert batch["x"].shape == (2, 5, 3)
    assert batch["x"].flags.c_contiguous
    np.testing.assert_array_equal(batch["x"][:, 4], sample["x"][:, 0])


def test_build_batch_without_batch_dim():
    sample = {"x": np.zeros((3, 3), np.float32)}
    assert build_batch(sample, 1, None) is sample
    with pytest.raises(ValueError, match=r"batch_size must be 1"):
        build_batch(sample, 2, None)


def test_infer_metadata_marks_batch_and_dynamic_axes():
    samples = [{"ids": np.zeros((1, n), np.int64), "img": np.zeros((1, 3, 4), np.float16)} for n in (2, 5)]
    meta = infer_metadata(samples, ["ids", "img"], 0, {"ids": [1]})
    assert [(m.name, m.shape, m.dtype) for m in meta] == [("ids", (-1, -1), "int64"), ("img", (-1, 3, 4), "float16")]


def test_infer_metadata_without_batch_dim():
    samples = [{"x": np.zeros((3, 4), np.bool_)}]
    (meta,) = infer_metadata(samples, ["x"], None, {})
    assert meta.shape == (3, 4) and meta.dtype == "bool"


def test_varying_axes():
    samples = [{"x": np.zeros((1, n, 4, m), np.float32)} for n, m in ((2, 7), (5, 7), (3, 1))]
    assert varying_axes(samples, "x") == [1, 3]
    assert varying_axes(samples[:1], "x") == []


def test_varying_axes_rank_change_is_a_user_error():
    samples = [{"x": np.zeros((1, 2))}, {"x": np.zeros((1, 2, 3))}]
    with pytest.raises(UserInputError, match=r"changes rank"):
        varying_axes(samples, "x")
