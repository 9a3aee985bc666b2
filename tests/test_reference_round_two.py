"""Code written for the reference (Export API v0.3) runs unchanged, round two: a source model whose
outputs hold NaN leaves a workspace instead of raising; input_names rename dict samples in
TensorFlow and JAX; inputs whose batch axes disagree are kept whole; a loaded package's workdir has
no navigator.log of the exporting run; JAX folders carry the reference's names. Written the way the
reference's own tests are: defaults, its argument names, assertions on the files and statuses."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import model_navigator as nav
from model_navigator.core.enums import StepStatus


def _assert_nothing_exported(package, workdir) -> None:
    """What the reference leaves for NaN outputs: status.yaml, navigator.log, the input samples,
    an empty model_output/ and no format folders; nothing certified."""
    assert (workdir / "status.yaml").is_file()
    assert (workdir / "navigator.log").is_file()
    assert list((workdir / "model_input" / "correctness").glob("*.npz"))
    assert (workdir / "model_output").is_dir()
    assert not [p for p in (workdir / "model_output").rglob("*") if p.is_file()]
    folders = {p.name for p in workdir.iterdir() if p.is_dir()}
    assert folders == {"model_input", "model_output"}, folders
    status = yaml.safe_load((workdir / "status.yaml").read_text())
    assert status["runs"][-1]["outcome"] == "failed"
    assert "NaN" in status["runs"][-1]["reason"]
    paths = {k: v for k, v in status["paths"].items()}
    assert len(paths) > 1
    for key, path in paths.items():
        assert path["status"] == "failed", key
        assert "holds NaN" in path["reason"] and "sample 0" in path["reason"], path["reason"]
    assert not any(package.get_formats_status().values())
    assert package.get_formats_performance() == {}
    assert package.get_status(format=nav.Format.ONNX) is False
    with pytest.raises(nav.NoRuntimeQualifiesError):
        package.get_best()


def test_torch_nan_outputs_leave_a_workspace_and_export_nothing(tmp_path):
    torch = pytest.importorskip("torch")
    dataloader = [torch.full((2, 3), float("nan")) for _ in range(3)]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match="allow_nonfinite_outputs=True"):
        package = nav.torch.export(model=torch.nn.Identity(), dataloader=dataloader, workdir=workdir,
                                   override_workdir=True)
    _assert_nothing_exported(package, workdir)
    assert package.get_status(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.TRACE) is False


def test_torch_nan_inputs_with_finite_outputs_keep_working(tmp_path):
    torch = pytest.importorskip("torch")

    class IgnoresInput(torch.nn.Module):
        def forward(self, x):
            return torch.zeros_like(x[:, :1]).nan_to_num() + 1.0

    dataloader = [torch.full((2, 3), float("nan")) for _ in range(3)]
    package = nav.torch.export(model=IgnoresInput(), dataloader=dataloader, workdir=tmp_path / "wd",
                               target_formats=(nav.Format.TORCHSCRIPT,), run_profiling=False, verbose=False)
    assert package.get_status(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.TRACE) is True


@pytest.mark.slow
def test_tensorflow_nan_outputs_leave_a_workspace_and_export_nothing(tmp_path):
    tf = pytest.importorskip("tensorflow")
    inp = tf.keras.layers.Input((3,))
    model = tf.keras.Model(inp, tf.keras.layers.Lambda(lambda x: x)(inp))
    dataloader = [tf.fill([2, 3], float("nan")) for _ in range(3)]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match="allow_nonfinite_outputs=True"):
        package = nav.tensorflow.export(model=model, dataloader=dataloader, workdir=workdir, override_workdir=True)
    _assert_nothing_exported(package, workdir)
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL) is False


@pytest.mark.slow
def test_jax_nan_outputs_leave_a_workspace_and_export_nothing(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")

    def predict(x, params):
        return x * params["scale"]

    params = {"scale": np.ones((3,), np.float32)}
    dataloader = [np.full((2, 3), np.nan, np.float32) for _ in range(3)]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match="allow_nonfinite_outputs=True"):
        package = nav.jax.export(model=predict, model_params=params, dataloader=dataloader, workdir=workdir,
                                 override_workdir=True)
    _assert_nothing_exported(package, workdir)
