"""Code written for the reference (Export API v0.3) runs unchanged: the framework runtime aliases,
derived formats pulling in the formats they are made from, get_model for an absent path."""

from __future__ import annotations

import models
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import model_navigator as nav  # noqa: E402
from model_navigator.core.enums import RuntimeProvider, StepStatus  # noqa: E402
from model_navigator.core.serialization import to_plain  # noqa: E402


@pytest.fixture(scope="module")
def trt_only(tmp_path_factory):
    """target_formats=(TENSORRT, TORCH_TRT) alone, as the reference's tests ask for them."""
    return nav.torch.export(
        model=models.linear_model(),
        dataloader=models.linear_dataloader(batches=2, random=True),
        workdir=tmp_path_factory.mktemp("compat") / "wd",
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_formats=(nav.Format.TENSORRT, nav.Format.TORCH_TRT),
    )


def test_derived_formats_pull_in_the_formats_they_are_made_from(trt_only):
    paths = trt_only.status.paths
    assert paths["onnx"].status == StepStatus.OK  # trt plans are made from it
    assert paths["torchscript-script"].status == StepStatus.OK  # torch-trt is made from TorchScript
    assert paths["torchscript-trace"].status == StepStatus.OK
    assert "torch-exportedprogram" not in paths  # not asked for, not made from
    assert to_plain(trt_only.status.config.target_formats) == ["torchscript", "onnx", "trt", "torch-trt"]


def test_the_reference_framework_runtime_names_are_accepted(trt_only):
    assert nav.RuntimeProvider.PYT.value == "PyTorchExecutionProvider"
    assert nav.RuntimeProvider.TF.value == "TensorFlowExecutionProvider"
    assert (
        trt_only.get_status(
            format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.SCRIPT, runtime_provider=nav.RuntimeProvider.PYT
        )
        is True
    )
    trt_only.set_verified(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.TRACE, runtime=nav.RuntimeProvider.PYT)
    trace = trt_only.status.paths["torchscript-trace"]
    assert trace.runtimes[RuntimeProvider.CPU].verified  # one spelling in status.yaml
    assert RuntimeProvider.PYT not in trace.runtimes
    assert "PyTorchExecutionProvider" not in (trt_only.workdir / "status.yaml").read_text()
    runner = trt_only.get_runner(format=nav.Format.TORCHSCRIPT, jit_type="script", runtime="PyTorchExecutionProvider")
    x = models.linear_dataloader(batches=1)[0]
    with runner:
        out = runner.infer({"input__0": x.numpy()})
    with torch.inference_mode():
        expected = models.linear_model()(x)  # the exported model: the factory is seeded
    assert list(out) == ["output__0"]
    np.testing.assert_allclose(out["output__0"], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_runtimes_argument_takes_the_framework_alias(workdir):
    package = nav.torch.export(
        model=models.linear_model(),
        dataloader=models.linear_dataloader(batches=2),
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_formats=("torchscript",),
        jit_options=("trace",),
        runtimes=(nav.RuntimeProvider.PYT,),
    )
    assert to_plain(package.status.config.runtimes) == ["CPUExecutionProvider"]
    assert list(package.status.paths["torchscript-trace"].runtimes) == [RuntimeProvider.CPU]


def test_get_model_returns_none_for_a_format_not_in_the_package(trt_only):
    assert trt_only.get_model(format=nav.Format.TORCH_EXPORTEDPROGRAM) is None
    assert trt_only.get_model(format=nav.Format.TF_SAVEDMODEL) is None
    assert trt_only.get_model(format=nav.Format.ONNX) is not None
    with pytest.raises(nav.UserInputError, match="No path matches"):
        trt_only.get_runner(format=nav.Format.TORCH_EXPORTEDPROGRAM)


@pytest.mark.slow
def test_input_names_rename_dict_samples_by_position(workdir):
    model = models.token_model()
    # dict keys as forward() names them; input_names name the model's inputs by the keys' position
    dataloader = [
        {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]} for b in models.token_dataloader()
    ]
    package = nav.torch.export(
        model=model,
        dataloader=dataloader,
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        input_names=("ids", "mask"),
        runtimes=("CPUExecutionProvider",),
    )
    assert [m.name for m in package.status.inputs] == ["ids", "mask"]
    assert to_plain(package.status.config.forward_kw_names) == ["input_ids", "attention_mask"]
    for key, path in package.status.paths.items():
        if path.status == StepStatus.SKIPPED or key == "torch":
            continue
        assert path.status == StepStatus.OK, (key, path.reason)
        assert path.runtimes[RuntimeProvider.CPU].correctness.status == StepStatus.OK, key
    import onnx

    assert [i.name for i in onnx.load(str(workdir / "onnx" / "model.onnx")).graph.input] == ["ids", "mask"]
    runner = package.get_runner(format=nav.Format.TORCHSCRIPT, jit_type="trace")
    sample = {k: v.numpy() for k, v in dataloader[0].items()}
    with runner:
        out = runner.infer({"ids": sample["input_ids"], "mask": sample["attention_mask"]})
    with torch.inference_mode():
        expected = model(**dataloader[0])
    assert list(out) == list(expected) == ["logits", "pooled"]  # the model's own output dict
    for name, value in expected.items():
        np.testing.assert_allclose(out[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_input_names_of_another_length_than_the_dict_samples_are_refused(workdir):
    with pytest.raises(nav.UserInputError, match=r"`input_names` has 1 names \('ids',\) but the dataloader's dict"):
        nav.torch.export(
            model=models.token_model(),
            dataloader=models.token_dataloader(),
            workdir=workdir,
            input_names=("ids",),
            verbose=False,
        )
