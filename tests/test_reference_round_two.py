"""Code written for the reference (Export API v0.3) runs unchanged, round two: a source model whose
outputs hold NaN leaves a workspace instead of raising; input_names rename dict samples in
TensorFlow and JAX; inputs whose batch axes disagree are kept whole; a loaded package's workdir has
no navigator.log of the exporting run; JAX folders carry the reference's names. Written the way the
reference's own tests are: defaults, its argument names, assertions on the files and statuses."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import helpers
import numpy as np
import pytest
import yaml

import model_navigator as nav
from model_navigator.core.serialization import to_plain


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
        assert "holds NaN" in path["reason"] and "dataloader item 0, position 0" in path["reason"], path["reason"]
    assert not any(package.get_formats_status().values())
    assert package.get_formats_performance() == {}
    assert package.get_status(format=nav.Format.ONNX) is False
    assert package.get_model(format=nav.Format.ONNX) is None  # as the reference: no model file, None
    with pytest.raises(nav.NoRuntimeQualifiesError):
        package.get_best()


def test_torch_nan_outputs_leave_a_workspace_and_export_nothing(tmp_path):
    torch = pytest.importorskip("torch")
    dataloader = [torch.full((2, 3), float("nan")) for _ in range(3)]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match="allow_nonfinite_outputs=True"):
        package = nav.torch.export(
            model=torch.nn.Identity(), dataloader=dataloader, workdir=workdir, override_workdir=True
        )
    _assert_nothing_exported(package, workdir)
    assert package.get_status(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.TRACE) is False


def test_torch_nan_inputs_with_finite_outputs_keep_working(tmp_path):
    torch = pytest.importorskip("torch")

    class IgnoresInput(torch.nn.Module):
        def forward(self, x):
            return torch.zeros_like(x[:, :1]).nan_to_num() + 1.0

    dataloader = [torch.full((2, 3), float("nan")) for _ in range(3)]
    package = nav.torch.export(
        model=IgnoresInput(),
        dataloader=dataloader,
        workdir=tmp_path / "wd",
        target_formats=(nav.Format.TORCHSCRIPT,),
        run_profiling=False,
        verbose=False,
    )
    assert package.get_status(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.TRACE) is True


@pytest.mark.slow  # an export with its worker process
def test_onnx_source_nan_outputs_leave_a_workspace_and_export_nothing(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "model.onnx"))
    dataloader = [np.full((2, 3), np.nan, np.float32) for _ in range(3)]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match="allow_nonfinite_outputs=True"):
        package = nav.onnx.export(
            model=str(tmp_path / "model.onnx"), dataloader=dataloader, workdir=workdir, override_workdir=True
        )
    _assert_nothing_exported(package, workdir)


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
        package = nav.jax.export(
            model=predict, model_params=params, dataloader=dataloader, workdir=workdir, override_workdir=True
        )
    _assert_nothing_exported(package, workdir)


# (2) input_names rename dict samples by position, in TensorFlow and JAX as in PyTorch ------------------
def _onnx_input_names(path) -> list:
    import onnx

    return [i.name for i in onnx.load(str(path)).graph.input]


def _savedmodel_input_names(path) -> list:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return sorted(signature.structured_input_signature[1])


@pytest.mark.slow
def test_tensorflow_input_names_rename_dict_samples_by_position(tmp_path):
    tf = pytest.importorskip("tensorflow")
    x = tf.keras.layers.Input((3,), name="x")
    y = tf.keras.layers.Input((3,), name="y")
    model = tf.keras.Model({"x": x, "y": y}, tf.keras.layers.Lambda(lambda t: t[0] + 2.0 * t[1])([x, y]))
    dataloader = [{"x": tf.random.uniform([2, 3]), "y": tf.random.uniform([2, 3])} for _ in range(4)]
    workdir = tmp_path / "navigator_workdir"
    package = nav.tensorflow.export(
        model=model, dataloader=dataloader, workdir=workdir, override_workdir=True, input_names=("input_x", "input_y")
    )
    assert [m.name for m in package.status.inputs] == ["input_x", "input_y"]
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL) is True
    assert package.get_status(format=nav.Format.ONNX) is True
    assert _savedmodel_input_names(workdir / "tf-savedmodel" / "model.savedmodel") == ["input_x", "input_y"]
    assert _onnx_input_names(workdir / "onnx" / "model.onnx") == ["input_x", "input_y"]
    first = {"input_x": dataloader[0]["x"].numpy(), "input_y": dataloader[0]["y"].numpy()}
    with package.get_runner(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU) as runner:
        out = list(runner.infer(first).values())[0]
    np.testing.assert_allclose(out, first["input_x"] + 2.0 * first["input_y"], rtol=1e-5)


def test_torch_input_names_that_partly_match_the_keys_are_refused_with_both_ways_out(tmp_path):
    torch = pytest.importorskip("torch")

    class TwoInputs(torch.nn.Module):
        def forward(self, x, y):
            return x + y

    dataloader = [{"x": torch.ones(2, 3), "y": torch.ones(2, 3)}]
    said = (
        r"do not match the keys.*same names \(any order\), or names none of which is a key to rename the inputs "
        r"by the keys' position"
    )
    with pytest.raises(nav.UserInputError, match=said):
        nav.torch.export(model=TwoInputs(), dataloader=dataloader, workdir=tmp_path / "wd", input_names=("x", "b"))
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow  # importing TensorFlow takes most of its 20 s
def test_tensorflow_input_names_that_partly_match_the_keys_are_refused(tmp_path):
    tf = pytest.importorskip("tensorflow")
    x = tf.keras.layers.Input((3,), name="x")
    y = tf.keras.layers.Input((3,), name="y")
    model = tf.keras.Model({"x": x, "y": y}, tf.keras.layers.Lambda(lambda t: t[0] + t[1])([x, y]))
    dataloader = [{"x": np.ones((2, 3), np.float32), "y": np.ones((2, 3), np.float32)}]
    with pytest.raises(nav.UserInputError, match=r"do not match the keys"):
        nav.tensorflow.export(model=model, dataloader=dataloader, workdir=tmp_path / "wd", input_names=("x", "b"))
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow  # importing jax and TensorFlow
def test_jax_input_names_that_partly_match_the_keys_are_refused(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    import jax_models

    score, weights = jax_models.two_input_score()
    with pytest.raises(nav.UserInputError, match=r"do not match the keys"):
        nav.jax.export(
            model=score,
            model_params=weights,
            dataloader=jax_models.two_input_dataloader(),
            workdir=tmp_path / "wd",
            input_names=("mask", "ids"),
        )
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow
def test_jax_input_names_rename_dict_samples_by_position(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    import jax_models

    score, weights = jax_models.two_input_score()
    dataloader = jax_models.two_input_dataloader()  # keys mask, tokens: keyword arguments of score()
    workdir = tmp_path / "navigator_workdir"
    package = nav.jax.export(
        model=score,
        model_params=weights,
        dataloader=dataloader,
        workdir=workdir,
        override_workdir=True,
        input_names=("input_mask", "input_tokens"),
    )
    assert [m.name for m in package.status.inputs] == ["input_mask", "input_tokens"]
    assert to_plain(package.status.config.forward_kw_names) == ["mask", "tokens"]
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=False) is True
    saved = next(p for p in workdir.glob("tf-savedmodel*") if (p / "model.savedmodel").is_dir())
    assert _savedmodel_input_names(saved / "model.savedmodel") == ["input_mask", "input_tokens"]
    if importlib.util.find_spec("jax2onnx") is not None:  # the [jax] extra has it where jax >= 0.8.1
        assert package.get_status(format=nav.Format.ONNX) is True
        assert _onnx_input_names(workdir / "onnx-jax2onnx" / "model.onnx") == ["input_mask", "input_tokens"]


# (3) inputs whose batch axes disagree: each dataloader item is one sample ---------------------------
def test_torch_inputs_with_uneven_batch_axes_export_as_whole_samples(tmp_path):
    torch = pytest.importorskip("torch")

    class TwoInputs(torch.nn.Module):
        def forward(self, x, y):
            return x.sum() + y.sum()

    dataloader = [{"x": torch.randn(1), "y": torch.randn(2)} for _ in range(5)]
    workdir = tmp_path / "navigator_workdir"
    said = (
        r"x: 1, y: 2.*kept whole as one sample.*batch_dim=None.*no batch axis is made dynamic and correctness is "
        r"not checked on rebuilt batches"
    )
    with pytest.warns(UserWarning, match=said) as record:
        package = nav.torch.export(
            model=TwoInputs(),
            dataloader=dataloader,
            workdir=workdir,
            override_workdir=True,
            target_formats=(nav.Format.TORCHSCRIPT,),
        )
    assert len([w for w in record if "disagree on the batch size" in str(w.message)]) == 1  # warned once
    assert package.get_status(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.SCRIPT) is True
    assert package.get_status(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.TRACE) is True
    status = yaml.safe_load((workdir / "status.yaml").read_text())
    assert status["config"]["batch_dim"] is None
    assert status["config"]["dynamic_axes"] == {}
    correctness = status["paths"]["torchscript-trace"]["runtimes"]["CPUExecutionProvider"]["correctness"]
    assert correctness["batch_sizes"] == [1] and correctness["sample_count"] == 5  # each item whole, no rebuilt batch
    assert status["dataloader"]["sample_count"] == 5
    assert [i["shape"] for i in status["inputs"]] == [[1], [2]]
    assert len(list((workdir / "model_input" / "correctness").glob("*.npz"))) == 5
    assert {"torchscript-script", "torchscript-trace"} <= {p.name for p in workdir.iterdir()}


@pytest.mark.slow  # an export with its worker process
def test_onnx_source_inputs_with_uneven_batch_axes_export_as_whole_samples(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["y"], ["s"], keepdims=0), helper.make_node("Add", ["x", "s"], ["z"])],
        "two",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "two.onnx"))
    rng = np.random.default_rng(0)
    dataloader = [
        {"x": rng.standard_normal(1).astype(np.float32), "y": rng.standard_normal(2).astype(np.float32)}
        for _ in range(4)
    ]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match=r"x: 1, y: 2.*kept whole as one sample"):
        package = nav.onnx.export(
            model=str(tmp_path / "two.onnx"),
            dataloader=dataloader,
            workdir=workdir,
            override_workdir=True,
            run_profiling=False,
        )
    assert package.status.config.batch_dim is None
    assert package.get_status(format=nav.Format.ONNX) is True
    assert len(list((workdir / "model_input" / "correctness").glob("*.npz"))) == 4


@pytest.mark.slow  # importing TensorFlow
def test_tensorflow_inputs_with_uneven_batch_axes_export_as_whole_samples(tmp_path):
    tf = pytest.importorskip("tensorflow")
    x = tf.keras.layers.Input(batch_shape=(1,), name="x")
    y = tf.keras.layers.Input(batch_shape=(2,), name="y")
    model = tf.keras.Model({"x": x, "y": y}, tf.keras.layers.Lambda(lambda t: t[0] * 2.0 + tf.reduce_sum(t[1]))([x, y]))
    dataloader = [{"x": tf.random.normal([1]), "y": tf.random.normal([2])} for _ in range(5)]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match=r"x: 1, y: 2.*kept whole as one sample.*batch_dim=None") as record:
        package = nav.tensorflow.export(
            model=model, dataloader=dataloader, workdir=workdir, override_workdir=True, run_profiling=False
        )
    assert len([w for w in record if "disagree on the batch size" in str(w.message)]) == 1  # warned once
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL) is True
    assert package.get_status(format=nav.Format.ONNX) is True
    status = yaml.safe_load((workdir / "status.yaml").read_text())
    assert status["config"]["batch_dim"] is None
    assert [i["shape"] for i in status["inputs"]] == [[1], [2]]  # no dynamic batch axis
    correctness = status["paths"]["onnx"]["runtimes"]["CPUExecutionProvider"]["correctness"]
    assert correctness["batch_sizes"] == [1] and correctness["sample_count"] == 5  # each item whole, no rebuilt batch
    assert len(list((workdir / "model_input" / "correctness").glob("*.npz"))) == 5
    assert {"tf-savedmodel", "onnx"} <= {p.name for p in workdir.iterdir()}


# (4) a loaded workdir's navigator.log is the log of what ran there ----------------------------------
def test_a_loaded_package_has_the_export_log_as_export_log_and_no_navigator_log(tmp_path):
    torch = pytest.importorskip("torch")
    import zipfile

    dataloader = [torch.randn(2, 3) for _ in range(3)]
    package = nav.torch.export(
        model=torch.nn.Linear(3, 2),
        dataloader=dataloader,
        workdir=tmp_path / "wd",
        target_formats=(nav.Format.TORCHSCRIPT,),
        run_profiling=False,
        verbose=False,
    )
    nav.save(package, tmp_path / "model.nav")
    names = zipfile.ZipFile(tmp_path / "model.nav").namelist()
    assert "export.log" in names and "navigator.log" not in names
    loaded = nav.load(tmp_path / "model.nav", workdir=tmp_path / "loaded", retest_conversions=False)
    assert not (loaded.workdir / "navigator.log").exists()
    assert "exporting Linear" in (loaded.workdir / "export.log").read_text()
    # something runs there: then it has its own navigator.log, and a package saved again keeps both logs
    retested = nav.load(tmp_path / "model.nav", workdir=tmp_path / "retested", verbose=False)
    assert (retested.workdir / "navigator.log").is_file()
    nav.save(retested, tmp_path / "again.nav")
    again = nav.load(tmp_path / "again.nav", workdir=tmp_path / "again", retest_conversions=False)
    log = (again.workdir / "export.log").read_text()
    assert "exporting Linear" in log and log.index("exporting Linear") < log.index("correctness")
    assert not (again.workdir / "navigator.log").exists()


def test_a_package_of_the_earlier_version_loads_its_log_as_export_log(tmp_path):
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "linear_v1.nav"
    loaded = nav.load(fixture, workdir=tmp_path / "old", retest_conversions=False, verbose=False)
    assert (loaded.workdir / "export.log").is_file()
    assert not (loaded.workdir / "navigator.log").exists()


# (5) JAX folders carry the reference's names; packages of the earlier naming still load -------------
def test_earlier_jax_keys_map_to_the_reference_names():
    from model_navigator.core.jax_keys import current_jax_key, rename_legacy_jax_keys

    assert current_jax_key("tf-savedmodel-xla-nojit") == "tf-savedmodel-xla"
    assert current_jax_key("tf-savedmodel-noxla-nojit") == "tf-savedmodel"
    assert current_jax_key("onnx-noxla-jit") == "onnx-jit"
    assert current_jax_key("trt-fp16-xla-jit") == "trt-fp16-xla-jit"
    assert current_jax_key("onnx-jax2onnx") == "onnx-jax2onnx"
    old = {"key": "onnx-xla-nojit", "parent": "tf-savedmodel-xla-nojit"}
    data = {"framework": "jax", "paths": {"onnx-xla-nojit": old}}
    assert rename_legacy_jax_keys(data)["paths"] == {"onnx-xla": {"key": "onnx-xla", "parent": "tf-savedmodel-xla"}}
    torch_data = {"framework": "torch", "paths": {"x-xla-nojit": {"key": "x-xla-nojit"}}}
    assert rename_legacy_jax_keys(dict(torch_data)) == torch_data


_OLD_NAMES = {
    "tf-savedmodel-xla": "tf-savedmodel-xla-nojit",
    "tf-savedmodel-xla-jit": "tf-savedmodel-xla-jit",
    "tf-savedmodel": "tf-savedmodel-noxla-nojit",
    "tf-savedmodel-jit": "tf-savedmodel-noxla-jit",
}


def _as_earlier_version(workdir, target) -> None:
    """The workspace as this library's earlier version wrote it: *-xla-nojit / *-noxla-* keys and folders."""
    import shutil

    shutil.copytree(workdir, target)
    text = (target / "status.yaml").read_text()
    for new, old in sorted(_OLD_NAMES.items(), key=lambda item: -len(item[0])):
        if (target / new).is_dir():
            (target / new).rename(target / old)
        text = text.replace(f"{new}/", f"{old}/").replace(f"key: {new}\n", f"key: {old}\n")
        text = text.replace(f"\n  {new}:\n", f"\n  {old}:\n")
    (target / "status.yaml").write_text(text)


@pytest.mark.slow
def test_jax_folders_carry_the_reference_names_and_old_packages_load(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    from model_navigator.frameworks.jax_utils import non_native_supported
    from model_navigator.package.archive_write import write_archive

    def predict(x, params):
        return x @ params["w"]

    params = {"w": np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)}
    dataloader = [np.random.default_rng(i).standard_normal((2, 3)).astype(np.float32) for i in range(3)]
    workdir = tmp_path / "navigator_workdir"
    package = nav.jax.export(
        model=predict, model_params=params, dataloader=dataloader, workdir=workdir, override_workdir=True
    )
    folders = {p.name for p in workdir.iterdir() if p.is_dir()}
    assert {"tf-savedmodel-xla", "tf-savedmodel-xla-jit"} <= folders
    assert not [f for f in folders if "nojit" in f or "noxla" in f]
    status = yaml.safe_load((workdir / "status.yaml").read_text())
    assert status["paths"]["tf-savedmodel-xla"]["status"] == "ok"
    assert status["paths"]["tf-savedmodel-xla-jit"]["status"] == "ok"
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=False) is True
    if not non_native_supported():  # jax >= 0.7.2: the enable_xla=False variants cannot exist
        for key in ("tf-savedmodel", "tf-savedmodel-jit", "onnx", "onnx-jit"):
            assert status["paths"][key]["status"] == "skipped" and key not in folders, key
    for key in ("onnx-xla", "onnx-xla-jit"):  # known impossible: skipped with the reason, never tried
        assert status["paths"][key]["status"] == "skipped" and "XlaCallModule" in status["paths"][key]["reason"]
    assert "tf-savedmodel-xla" in package.get_formats_status()

    _as_earlier_version(workdir, tmp_path / "old_workdir")
    write_archive(tmp_path / "old_workdir", tmp_path / "old.nav")
    loaded = nav.load(tmp_path / "old.nav", workdir=tmp_path / "loaded", verbose=False)
    assert "tf-savedmodel-xla-nojit" not in loaded.status.paths
    assert loaded.get_status(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=False) is True
    assert loaded.status.paths["tf-savedmodel-xla"].model_path == "tf-savedmodel-xla-nojit/model.savedmodel"
    assert loaded.get_model(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=False) is not None
    assert loaded.get_model(format=nav.Format.TF_SAVEDMODEL, enable_xla=False, jit_compile=False) is None
    with loaded.get_runner(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=False) as runner:
        out = list(runner.infer({"input__0": dataloader[0]}).values())[0]
    np.testing.assert_allclose(out, dataloader[0] @ params["w"], rtol=1e-5, atol=1e-6)
    # its path folders keep their old names; `convert --config` of one maps the name
    config = tmp_path / "loaded" / "tf-savedmodel-xla-nojit" / "config.yaml"
    out = subprocess.run(
        [sys.executable, "-m", "model_navigator", "convert", "--config", str(config), "--correctness-only"],
        capture_output=True,
        text=True,
        env=helpers.repo_env(),
        timeout=300,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    assert "tf-savedmodel-xla" in out.stdout


@pytest.mark.slow
def test_jax_inputs_with_uneven_batch_axes_export_as_whole_samples(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")

    def predict(x, y, params):
        return x.sum() * params["scale"] + y.sum()

    params = {"scale": np.float32(2.0)}
    rng = np.random.default_rng(0)
    dataloader = [
        {"x": rng.standard_normal(1).astype(np.float32), "y": rng.standard_normal(2).astype(np.float32)}
        for _ in range(4)
    ]
    workdir = tmp_path / "navigator_workdir"
    with pytest.warns(UserWarning, match=r"x: 1, y: 2.*kept whole"):
        package = nav.jax.export(
            model=predict,
            model_params=params,
            dataloader=dataloader,
            workdir=workdir,
            override_workdir=True,
            run_profiling=False,
        )
    assert to_plain(package.status.config.batch_dim) is None
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=False) is True
