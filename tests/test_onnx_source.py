"""nav.onnx.export: an ONNX file (made here by torch and by tf2onnx) and a dataloader get the same
checks, profiling, workspace and .nav package as the other frameworks."""

from __future__ import annotations

from pathlib import Path

import helpers
import models
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import model_navigator as nav  # noqa: E402
from model_navigator.core.enums import RuntimeProvider, StepStatus  # noqa: E402

CPU = RuntimeProvider.CPU


def _torch_onnx(path: Path, model, args, input_names, output_names, dynamic_axes=None) -> Path:
    torch.onnx.export(
        model.eval(),
        args,
        str(path),
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=17,
        dynamo=False,
    )
    return path


class TokenClassifier(torch.nn.Module):
    """int64 ids and a float mask, two outputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(models.SEED)
        self.embedding = torch.nn.Embedding(30, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, ids, mask):
        hidden = self.embedding(ids) * mask.unsqueeze(-1)
        return hidden, self.head(hidden.mean(dim=1))


@pytest.fixture(scope="module")
def token_onnx(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("token_onnx")
    return _torch_onnx(
        folder / "tokens.onnx",
        TokenClassifier(),
        (torch.zeros(2, 6, dtype=torch.long), torch.ones(2, 6)),
        ["ids", "mask"],
        ["hidden", "logits"],
        {"ids": {0: "b", 1: "s"}, "mask": {0: "b", 1: "s"}, "hidden": {0: "b", 1: "s"}, "logits": {0: "b"}},
    )


def _token_dataloader(seq_lens=(4, 7, 5)):
    rng = np.random.default_rng(0)
    return [{"ids": rng.integers(0, 30, (2, s), dtype=np.int64), "mask": np.ones((2, s), np.float32)} for s in seq_lens]


@pytest.fixture(scope="module")
def token_package(token_onnx, tmp_path_factory):
    return nav.onnx.export(
        model=token_onnx,
        dataloader=_token_dataloader(),
        workdir=tmp_path_factory.mktemp("t") / "wd",
        profiler_config=helpers.light_profiler(batch_sizes=(1, 2)),
    )


def test_a_torch_made_onnx_with_dict_int64_inputs_is_checked_and_profiled(token_package):
    status = token_package.status
    assert status.framework == "onnx"
    inputs = [(m.name, m.dtype, m.shape) for m in status.inputs]
    assert inputs == [("ids", "int64", (-1, -1)), ("mask", "float32", (-1, -1))]
    assert [m.name for m in status.outputs] == ["hidden", "logits"]
    onnx = status.paths["onnx"]
    assert onnx.status == StepStatus.OK and onnx.reported["opset"] == 17
    result = onnx.runtimes[CPU]
    assert result.correctness.status == StepStatus.OK and result.correctness.batch_sizes == [1, 2]
    assert result.correctness.per_output["logits"].max_abs_error < 1e-6  # the same file on the same runtime
    assert [r.batch_size for r in result.performance.results] == [1, 2]
    source = status.paths["onnx-source"].runtimes[CPU].performance
    assert [r.batch_size for r in source.results] == [1, 2]
    assert token_package.get_status(format=nav.Format.ONNX) is True
    assert token_package.get_best().path == "onnx"
    for key in ("trt-fp32", "trt-fp16"):  # made from the onnx path on a GPU
        assert status.paths[key].status in (StepStatus.SKIPPED, StepStatus.OK)


@pytest.mark.slow
def test_the_reference_quick_start_flow(token_package, tmp_path):
    package_desc = token_package
    onnx_status = package_desc.get_status(format=nav.Format.ONNX)
    assert onnx_status
    onnx_runner = package_desc.get_runner(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU)
    sample = _token_dataloader()[0]
    with onnx_runner:
        out = onnx_runner.infer(sample)
    assert out["logits"].shape == (2, 3)
    package_desc.set_verified(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU)
    nav.save(package_desc, tmp_path / "tokens.nav")
    loaded = nav.load(tmp_path / "tokens.nav", workdir=tmp_path / "loaded")  # re-tests the onnx path
    onnx = loaded.status.paths["onnx"]
    assert onnx.runtimes[CPU].correctness.status == StepStatus.OK and onnx.runtimes[CPU].verified
    assert (tmp_path / "loaded" / "onnx" / "reproduce_export.py").read_text().count(str(package_desc.workdir)) == 0


def test_a_static_batch_model_with_batch_dim_none(tmp_path):
    path = _torch_onnx(tmp_path / "static.onnx", models.linear_model(), (torch.randn(3, 5),), ["x"], ["y"])
    dataloader = [np.random.default_rng(i).random((3, 5), dtype=np.float32) for i in range(3)]
    with pytest.raises(nav.UserInputError, match=r"fixes its batch axis 0 to 3.*batch_dim=None"):
        nav.onnx.export(model=path, dataloader=dataloader, workdir=tmp_path / "wd")
    assert not (tmp_path / "wd").exists()
    package = nav.onnx.export(
        model=path, dataloader=dataloader, workdir=tmp_path / "wd", batch_dim=None, run_profiling=False
    )
    correctness = package.status.paths["onnx"].runtimes[CPU].correctness
    assert correctness.status == StepStatus.OK and correctness.batch_sizes == [1]
    assert package.status.inputs[0].shape == (3, 5)


def test_a_dataloader_that_does_not_fit_the_graph_is_refused_before_any_work(token_onnx, tmp_path):
    workdir = tmp_path / "wd"
    wrong_rank = [{"ids": np.zeros((2, 4, 1), np.int64), "mask": np.ones((2, 4), np.float32)}]
    with pytest.raises(nav.UserInputError, match=r"input 'ids' has shape \(1, 4, 1\).*rank 2 \('\?', '\?'\)"):
        nav.onnx.export(model=token_onnx, dataloader=wrong_rank, workdir=workdir)
    wrong_dtype = [{"ids": np.zeros((2, 4), np.int32), "mask": np.ones((2, 4), np.float32)}]
    with pytest.raises(
        nav.UserInputError,
        match=r"^Dataloader item 0, position 0 in its batch: input 'ids' has dtype "
        r"int32, but the ONNX graph takes int64",
    ):
        nav.onnx.export(model=token_onnx, dataloader=wrong_dtype, workdir=workdir)
    with pytest.raises(nav.UserInputError, match=r"hold \('input_ids', 'mask'\), but the ONNX graph's inputs are"):
        nav.onnx.export(
            model=token_onnx,
            dataloader=[{"input_ids": np.zeros((2, 4), np.int64), "mask": np.ones((2, 4), np.float32)}],
            workdir=workdir,
        )
    with pytest.raises(nav.UserInputError, match=r"hold 1 tensors, but the ONNX graph has 2 inputs"):
        nav.onnx.export(model=token_onnx, dataloader=[(np.zeros((2, 4), np.int64),)], workdir=workdir)
    assert not workdir.exists()


def test_a_broken_file_fails_at_once_with_the_checkers_message(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage that is not a protobuf")
    with pytest.raises(nav.UserInputError, match=r"is not a valid ONNX model"):
        nav.onnx.export(model=broken, dataloader=[np.zeros((1, 5), np.float32)], workdir=tmp_path / "wd")
    with pytest.raises(nav.UserInputError, match=r"is not a file"):
        nav.onnx.export(model=tmp_path / "missing.onnx", dataloader=[np.zeros((1, 5), np.float32)])
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow
def test_a_tf2onnx_made_model(tmp_path):
    tf = pytest.importorskip("tensorflow")
    tf2onnx = pytest.importorskip("tf2onnx")
    values = np.random.default_rng(0).random((5, 4), dtype=np.float32)

    @tf.function(input_signature=[tf.TensorSpec((None, 5), tf.float32, name="features")])
    def predict(features):
        return {"scores": tf.nn.softmax(tf.matmul(features, tf.constant(values)))}

    path = tmp_path / "tf.onnx"
    tf2onnx.convert.from_function(predict, input_signature=predict.input_signature, opset=17, output_path=str(path))
    dataloader = [np.random.default_rng(i).random((2, 5), dtype=np.float32) for i in range(3)]
    package = nav.onnx.export(model=path, dataloader=dataloader, workdir=tmp_path / "wd", run_profiling=False)
    names = [m.name for m in package.status.inputs]
    assert len(names) == 1 and names[0].startswith("features")
    assert package.status.paths["onnx"].runtimes[CPU].correctness.status == StepStatus.OK
