"""Every bad input to nav.torch.export is refused with a clear error before anything is written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import models
import pytest

import model_navigator as nav
import helpers
from model_navigator import ModelNavigatorError, UserInputError

torch = pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour on a machine without a GPU")


class CountingLinear(torch.nn.Module):
    """Linear 5 -> 7 that counts its forward calls (to prove validation ran before the model)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(models.SEED)
        self.linear = torch.nn.Linear(5, 7)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear(x)


def _kwargs(workdir: Path, **overrides: Any) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = dict(
        model=models.linear_model(),
        dataloader=models.linear_dataloader(batches=2, batch_size=2, random=True),
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
    )
    kwargs.update(overrides)
    return kwargs


def _snapshot(root: Path) -> Dict[str, Any]:
    """Every file and folder below root with its bytes' hash, size, mode and mtime."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            result[p.relative_to(root).as_posix()] = (digest, st.st_size, st.st_mode, st.st_mtime_ns)
    return result


def _make_existing_workdir(root: Path) -> Dict[str, Any]:
    (root / "sub").mkdir(parents=True)
    (root / "keep.txt").write_text("the user's own file\n")
    (root / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4)
    return _snapshot(root)


def _assert_refused(workdir: Path, error: type, pattern: str, **overrides: Any) -> BaseException:
    with pytest.raises(error, match=pattern) as info:
        nav.torch.export(**_kwargs(workdir, **overrides))
    assert not workdir.exists(), "the workdir was created although the input was refused"
    return info.value


# ------------------------------------------------------------------------------------------------
# The dataloader and the samples
# ------------------------------------------------------------------------------------------------


def test_dataloader_without_len(workdir):
    _assert_refused(workdir, UserInputError, r"`dataloader`.*len\(\)", dataloader=(torch.randn(2, 5) for _ in range(3)))


def test_empty_dataloader(workdir):
    _assert_refused(workdir, UserInputError, r"`dataloader` is empty", dataloader=[])


@pytest.mark.parametrize(
    "item", ["text", 7, [1.0, 2.0], {"x": [1.0]}, None], ids=["str", "int", "floats", "dict", "none"]
)
def test_unsupported_sample_type(workdir, item):
    _assert_refused(workdir, UserInputError, r"`dataloader` item 0", dataloader=[item])


def test_input_names_count_not_matching_samples(workdir):
    _assert_refused(workdir, UserInputError, r"`input_names`", input_names=("a", "b"))


def test_input_names_not_matching_dict_keys(workdir, token_model, token_dataloader):
    _assert_refused(
        workdir,
        UserInputError,
        r"`input_names`.*do not match",
        model=token_model,
        dataloader=token_dataloader,
        input_names=("input_ids", "mask"),
    )


def test_inconsistent_batch_sizes_are_kept_whole_and_a_model_that_cannot_take_them_fails_before_writing(workdir):
    # the reference keeps each item whole (tests/test_reference_round_two.py); this model takes one input
    with pytest.warns(UserWarning, match=r"batch size along batch_dim=0 \(input__0: 2, input__1: 3\)"):
        _assert_refused(
            workdir,
            nav.ModelNavigatorError,
            r"failed on dataloader item 0",
            model=models.two_output_model(),
            dataloader=[(torch.randn(2, 5), torch.randn(3, 5))],
        )


@pytest.mark.parametrize("batch_dim", [-1, 2, "0"])
def test_bad_batch_dim(workdir, batch_dim):
    _assert_refused(workdir, UserInputError, r"batch_dim", batch_dim=batch_dim)


def test_rank_changing_input(workdir):
    with pytest.raises(UserInputError, match=r"rank"):
        nav.torch.export(**_kwargs(workdir, dataloader=[torch.randn(1, 5), torch.randn(1, 5, 2)]))
    assert not workdir.exists()


# ------------------------------------------------------------------------------------------------
# Enum-like strings
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argument, value, pattern",
    [
        ("target_formats", "savedmodel-ish", r"`target_formats`: unknown value 'savedmodel-ish'"),
        ("target_formats", ("onnx", "foo"), r"`target_formats`: unknown value 'foo'.*'onnx'"),
        ("target_formats", "tf-savedmodel", r"`target_formats`.*do not apply to PyTorch"),
        ("target_formats", (), r"`target_formats` is empty"),
        ("jit_options", "compile", r"`jit_options`: unknown value 'compile'.*'script', 'trace'"),
        ("target_precisions", "fp8", r"`target_precisions`: unknown value 'fp8'.*'fp32', 'fp16', 'int8', 'bf16'"),
        ("runtimes", "FooExecutionProvider", r"`runtimes`: unknown value"),
        ("precision_mode", "mixed", r"`precision_mode`: unknown value 'mixed'"),
        ("precison_mode", "mixed", r"`precision_mode`: unknown value 'mixed'"),
        ("target_device", "tpu", r"`target_device` must be 'cpu' or 'cuda'"),
    ],
)
def test_unknown_strings(workdir, argument, value, pattern):
    model = CountingLinear()
    _assert_refused(workdir, UserInputError, pattern, model=model, **{argument: value})
    assert model.calls == 0, "the model ran before the arguments were checked"


def test_both_precision_mode_spellings(workdir):
    _assert_refused(
        workdir, UserInputError, r"`precision_mode`.*`precison_mode`", precision_mode="single", precison_mode="single"
    )


@NO_GPU
@pytest.mark.parametrize("runtime", ["CUDAExecutionProvider", "TensorrtExecutionProvider", nav.RuntimeProvider.CUDA])
def test_gpu_runtime_with_cpu_target(workdir, runtime):
    _assert_refused(
        workdir,
        UserInputError,
        r"`runtimes`.*need a GPU.*target_device is 'cpu'",
        runtimes=(runtime,),
        target_device="cpu",
    )


@NO_GPU
def test_gpu_runtime_without_target_device_on_a_cpu_machine(workdir):
    _assert_refused(workdir, UserInputError, r"`runtimes`.*need a GPU", runtimes=("CUDAExecutionProvider",))


@NO_GPU
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_target_without_gpu(workdir, device):
    model = CountingLinear()
    _assert_refused(
        workdir, UserInputError, r"`target_device` is 'cuda' but no CUDA device", model=model, target_device=device
    )
    assert model.calls == 0


# ------------------------------------------------------------------------------------------------
# Numbers
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["atol", "rtol"])
@pytest.mark.parametrize("value", [-1e-3, float("nan"), "0.1", True])
def test_bad_tolerance(workdir, argument, value):
    _assert_refused(workdir, UserInputError, rf"`{argument}`.*{value!r}", **{argument: value})


@pytest.mark.parametrize("value", [0, -5, 2.5, "10", True])
def test_bad_sample_count(workdir, value):
    _assert_refused(workdir, UserInputError, r"`sample_count`", sample_count=value)


@pytest.mark.parametrize("value", [0, 6, -13, 13.0, "13", False])
def test_bad_opset(workdir, value):
    _assert_refused(workdir, UserInputError, r"`opset`", opset=value)


def test_opset_beyond_any_onnx_release(workdir):
    _assert_refused(workdir, UserInputError, r"`opset`", opset=100)


@pytest.mark.parametrize(
    "argument, value",
    [("max_workspace_size", 0), ("step_timeout_s", 0), ("step_timeout_s", -1.0), ("model_name", ""), ("model_name", 3)],
)
def test_other_bad_values(workdir, argument, value):
    _assert_refused(workdir, UserInputError, rf"`{argument}`", **{argument: value})


def test_bad_profiler_config_type(workdir):
    _assert_refused(workdir, UserInputError, r"`profiler_config` must be a nav.ProfilerConfig", profiler_config="fast")


def test_bad_profiler_config_values_are_refused_at_construction():
    with pytest.raises(UserInputError, match=r"max_trials"):
        nav.ProfilerConfig(max_trials=2)
    with pytest.raises(UserInputError, match=r"batch_sizes"):
        nav.ProfilerConfig(batch_sizes=(0, 4))


def test_profiler_config_dict_with_unknown_key(workdir):
    _assert_refused(
        workdir,
        UserInputError,
        r"measurement_request_cnt",
        profiler_config={"measurement_request_cnt": 5},
        run_profiling=True,
    )


def test_model_is_not_a_module(workdir):
    _assert_refused(workdir, UserInputError, r"`model` must be a torch.nn.Module", model=lambda x: x)


# ------------------------------------------------------------------------------------------------
# Names and axes (need the model's outputs)
# ------------------------------------------------------------------------------------------------


def test_dynamic_axes_naming_unknown_tensor(workdir):
    error = _assert_refused(
        workdir,
        UserInputError,
        r"`dynamic_axes` names 'inptu'",
        input_names=("input",),
        dynamic_axes={"inptu": {0: "batch"}},
    )
    assert "input" in str(error)  # lists the known names


def test_dynamic_axes_axis_outside_rank(workdir):
    _assert_refused(
        workdir,
        UserInputError,
        r"`dynamic_axes\['input'\]`.*rank 2",
        input_names=("input",),
        dynamic_axes={"input": {3: "x"}},
    )


@pytest.mark.parametrize("axes", [[0], {"input": "batch"}, {"input": [0.5]}])
def test_dynamic_axes_malformed(workdir, axes):
    _assert_refused(workdir, UserInputError, r"`dynamic_axes", input_names=("input",), dynamic_axes=axes)


def test_trt_dynamic_axes_naming_unknown_tensor(workdir):
    _assert_refused(
        workdir,
        UserInputError,
        r"`trt_dynamic_axes`.*'inptu'",
        input_names=("input",),
        trt_dynamic_axes={"inptu": {0: (1, 2, 4)}},
    )


def test_output_names_count_mismatch(workdir):
    _assert_refused(workdir, UserInputError, r"`output_names` has 2 names.*returns 1 tensors", output_names=("a", "b"))


def test_output_names_too_few(workdir):
    _assert_refused(
        workdir,
        UserInputError,
        r"`output_names` has 1 names.*returns 2 tensors",
        model=models.two_output_model(),
        output_names=("only",),
    )


@pytest.mark.parametrize("names", [("y", "y"), ("",), (1,)])
def test_output_names_malformed(workdir, names):
    _assert_refused(
        workdir,
        UserInputError,
        r"`output_names`",
        model=models.two_output_model() if len(names) == 2 else models.linear_model(),
        output_names=names,
    )


def test_output_names_overlapping_input_names(workdir):
    _assert_refused(workdir, UserInputError, r"overlap.*`output_names`", input_names=("x",), output_names=("x",))


def test_unsupported_model_output(workdir):
    class ReturnsString(torch.nn.Module):
        def forward(self, x):
            return "not a tensor"

    _assert_refused(workdir, UserInputError, r"Unsupported model output", model=ReturnsString())


# ------------------------------------------------------------------------------------------------
# The model itself fails
# ------------------------------------------------------------------------------------------------


def test_model_raising_on_samples(workdir, raising_model):
    error = _assert_refused(
        workdir,
        ModelNavigatorError,
        r"The model failed on dataloader item 0, position 0 in its batch",
        model=raising_model,
    )
    assert models.FAILING_MODEL_MESSAGE in str(error)
    assert "ModelFailure" in str(error)
    assert "(1, 5)" in str(error)  # the input shapes it was called with
    assert isinstance(error.__cause__, models.ModelFailure)


class _OutputsDependOnTheSample(torch.nn.Module):
    """Two outputs for a sample whose sum is positive, one otherwise."""

    def forward(self, x):
        return (x, x * 2) if float(x.sum()) > 0 else (x,)


def test_a_sample_with_another_number_of_outputs_is_refused(workdir):
    """Names and tensors are zipped strictly: the sample whose outputs differ is named, none is dropped."""
    _assert_refused(
        workdir,
        UserInputError,
        r"dataloader item 1, position 0 .*the model returned 1 tensors \('output__0',\), the first sample "
        r"2; return the same outputs for every sample\.$",
        model=_OutputsDependOnTheSample(),
        dataloader=[torch.ones(2, 5), -torch.ones(2, 5)],
    )


def test_model_rejecting_the_dtype_of_the_samples(workdir):
    error = _assert_refused(
        workdir, ModelNavigatorError, r"The model failed", dataloader=[torch.ones(2, 5, dtype=torch.float64)]
    )
    assert "Double" in str(error) or "double" in str(error)


# ------------------------------------------------------------------------------------------------
# An existing workdir
# ------------------------------------------------------------------------------------------------


def test_existing_workdir_without_override_is_left_untouched(workdir):
    before = _make_existing_workdir(workdir)
    model = CountingLinear()
    with pytest.raises(UserInputError, match=r"`workdir`.*already exists.*override_workdir=True"):
        nav.torch.export(**_kwargs(workdir, model=model))
    assert _snapshot(workdir) == before
    assert model.calls == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"atol": -1.0},
        {"dataloader": []},
        {"input_names": ("a", "b")},
        {"dynamic_axes": {"nope": [0]}},
        {"output_names": ("a", "b")},
        {"target_formats": "nope"},
    ],
    ids=["atol", "empty-dataloader", "input-names", "dynamic-axes", "output-names", "format"],
)
def test_existing_workdir_with_override_survives_a_refused_input(workdir, overrides):
    before = _make_existing_workdir(workdir)
    with pytest.raises(UserInputError):
        nav.torch.export(**_kwargs(workdir, override_workdir=True, **overrides))
    assert _snapshot(workdir) == before


def test_existing_workdir_with_override_survives_a_failing_model(workdir, raising_model):
    before = _make_existing_workdir(workdir)
    with pytest.raises(ModelNavigatorError):
        nav.torch.export(**_kwargs(workdir, override_workdir=True, model=raising_model))
    assert _snapshot(workdir) == before


def test_workdir_that_is_a_file(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(UserInputError, match=r"`workdir`"):
        nav.torch.export(**_kwargs(target))
    assert target.read_text() == "x"


# ------------------------------------------------------------------------------------------------
# Importing model_navigator imports no framework
# ------------------------------------------------------------------------------------------------


def test_import_model_navigator_imports_no_framework():
    code = textwrap.dedent(
        """
        import sys
        import model_navigator as nav
        nav.Format.ONNX, nav.ProfilerConfig(), nav.PackageDescriptor, nav.save, nav.load, nav.profile
        nav.torch  # the attribute alone must not import torch either
        heavy = ("torch", "tensorflow", "jax", "jaxlib", "keras", "flax", "onnx", "onnxruntime", "tensorrt")
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=helpers.repo_env(), cwd=REPO_ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing model_navigator imported: {out.stdout.strip()}"
