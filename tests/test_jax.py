"""End-to-end nav.jax.export on real JAX, Flax, TensorFlow (tensorflow-cpu, running jax2tf's
SavedModels), tf2onnx and onnxruntime: a Flax MLP with every enable_xla / jit_compile variant, a
Flax CNN with BatchNorm (profiled, saved and loaded back), a two-input function fed dicts with a
shared dynamic sequence axis, the enable_xla=False variant, a T5-like Flax encoder standing in for
the reference's T5 example, the error for a jax without jax2tf, and argument validation.

With jax >= 0.7.2 jax2tf always serializes natively (one XlaCallModule op): enable_xla=False paths
are skipped with the reason, and so are the ONNX paths of the enable_xla=True SavedModels (one
XlaCallModule op, which tf2onnx cannot convert). With
jax <= 0.7.1 the enable_xla=False SavedModel is plain TensorFlow and its ONNX passes; the tests
assert whichever the installed jax gives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("flax")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

import jax_models  # noqa: E402  (tests/jax_models.py)

import model_navigator as nav  # noqa: E402
import helpers  # noqa: E402  (tests/helpers.py)
from model_navigator import UserInputError  # noqa: E402
from model_navigator.core.enums import StepStatus  # noqa: E402
from model_navigator.core.errors import FrameworkMissingError  # noqa: E402
from model_navigator.frameworks.jax_utils import JaxModel, non_native_supported  # noqa: E402

CPU = nav.RuntimeProvider.CPU
NON_NATIVE = non_native_supported()  # jax <= 0.7.1: enable_xla=False still makes plain TF ops
XLA = ("tf-savedmodel-xla", "tf-savedmodel-xla-jit")
NOXLA = ("tf-savedmodel", "tf-savedmodel-jit")

# Every export here asks for target_device="cpu": the CPU paths and runtimes exist on a GPU machine too, so these
# tests run and mean the same there (GPU paths skipped for the CPU target; their own tests are elsewhere).


def _correctness(package, key, runtime=CPU):
    return package.status.paths[key].runtimes[runtime].correctness


def _assert_correct(package, key, atol=1e-4):
    path = package.status.paths[key]
    assert path.status == StepStatus.OK, (key, path.reason)
    result = _correctness(package, key)
    assert result.status == StepStatus.OK, (key, result.reason)
    for name, err in result.per_output.items():
        assert err.max_abs_error < atol, (key, name, err)
    return result


def _assert_noxla_skipped(package, key):
    path = package.status.paths[key]
    assert path.status == StepStatus.SKIPPED, (key, path.status, path.reason)
    assert f"jax {jax.__version__}" in path.reason and "jax<=0.7.1" in path.reason, path.reason
    assert "removed in jax 0.7.2" in path.reason, path.reason
    assert not (package.workdir / key / "model.savedmodel").exists()


# ------------------------------------------------------------------------------------------------
# A Flax MLP with every variant (the defaults: enable_xla and jit_compile both (True, False))
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    predict, params = jax_models.mlp()
    rng = np.random.default_rng(0)
    dataloader = [rng.standard_normal((4, 64)).astype(np.float32) for _ in range(3)]
    package = nav.jax.export(
        predict,
        params,
        dataloader,
        sample_count=6,
        run_profiling=False,
        verbose=False,
        workdir=tmp_path_factory.mktemp("mlp") / "navigator_workdir",
        disable_git_info=True,
        target_device="cpu",
    )
    return package, predict, params


@pytest.mark.slow
def test_mlp_every_variant(mlp):
    package, _, _ = mlp
    paths = package.status.paths
    assert package.status.framework == "jax" and package.status.model_name == "predict"
    for key in XLA:
        result = _assert_correct(package, key)
        assert result.batch_sizes == [1, 4]
        assert paths[key].reported["native_serialization"] is True
        assert paths[key].reported["serialization_platforms"] == ["cpu", "cuda"]
    for key in XLA:  # tf2onnx cannot translate the StableHLO inside XlaCallModule: known, so not tried
        onnx_path = paths[key.replace("tf-savedmodel", "onnx")]
        assert onnx_path.status == StepStatus.SKIPPED
        assert "XlaCallModule" in onnx_path.reason and "onnx-jax2onnx" in onnx_path.reason, onnx_path.reason
        assert not (package.workdir / onnx_path.key).exists()
    if NON_NATIVE:
        for key in NOXLA:
            _assert_correct(package, key)
            assert paths[key].reported["native_serialization"] is False
        _assert_correct(package, "onnx")
    else:
        for key in NOXLA:
            _assert_noxla_skipped(package, key)
        assert "parent path 'tf-savedmodel' skipped" in paths["onnx"].reason
    for key, path in paths.items():
        if key.startswith(("tf-trt-", "trt-")):
            assert path.status == StepStatus.SKIPPED and ("GPU" in path.reason or "tensorrt" in path.reason), key
    direct = {"onnx-jax2onnx", "trt-fp32-jax2onnx", "trt-fp16-jax2onnx"}  # tests/test_jax_onnx.py
    assert set(paths) == {"jax"} | direct | {
        f"{base}{v}"
        for base in ("tf-savedmodel", "onnx", "tf-trt-fp32", "tf-trt-fp16", "trt-fp32", "trt-fp16")
        for v in ("-xla-jit", "-xla", "-jit", "")
    }
    for key in XLA:
        for step in ("export", "correctness"):
            assert (package.workdir / key / f"reproduce_{step}.sh").is_file()
        assert "def get_model_params():" in (package.workdir / key / "reproduce_export.py").read_text()


@pytest.mark.slow
def test_mlp_descriptor_selects_variants_by_flags(mlp):
    package, predict, params = mlp
    batch = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    expected = np.asarray(predict(batch, params))
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=True)
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL, runtime_provider=CPU, enable_xla=True, jit_compile=False)
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL, enable_xla=False) is NON_NATIVE
    assert package.get_status(format=nav.Format.ONNX, enable_xla=True) is False
    for jit in (True, False):
        runner = package.get_runner(format=nav.Format.TF_SAVEDMODEL, runtime=CPU, enable_xla=True, jit_compile=jit)
        with runner:
            assert runner.name.startswith("tf-savedmodel-xla-jit" if jit else "tf-savedmodel-xla")
            out = runner.infer({"input__0": batch})
        np.testing.assert_allclose(out["output__0"], expected, atol=1e-5, rtol=1e-5)
    with package.get_runner(format=nav.Format.JAX, runtime=CPU) as runner:
        np.testing.assert_array_equal(runner.infer({"input__0": batch})["output__0"], expected)
    source = package.get_model(format=nav.Format.JAX)
    assert isinstance(source, JaxModel) and source.predict is predict and source.params is params
    loaded = package.get_model(format=nav.Format.TF_SAVEDMODEL, enable_xla=True, jit_compile=False)
    out = loaded.signatures["serving_default"](input__0=tf.constant(batch))
    np.testing.assert_allclose(out["output__0"].numpy(), expected, atol=1e-5, rtol=1e-5)
    if not NON_NATIVE:  # two successful SavedModels: the selectors must say which
        with pytest.raises(UserInputError, match="tell them apart by jit_type / precision / enable_xla / jit_compile"):
            package.get_runner(format=nav.Format.TF_SAVEDMODEL)


@pytest.mark.slow
def test_mlp_params_are_variables_not_constants(mlp):
    package, _, params = mlp
    params_bytes = sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(params))
    assert params_bytes > 100_000
    for key in XLA:
        folder = package.workdir / key / "model.savedmodel"
        graph = (folder / "saved_model.pb").stat().st_size
        data = sum(f.stat().st_size for f in (folder / "variables").glob("variables.data-*"))
        assert data >= params_bytes, (key, data, params_bytes)
        assert graph < params_bytes / 4, (key, graph, params_bytes)


@pytest.mark.slow
def test_mlp_reproduce_export_needs_model_and_params(mlp, tmp_path):
    import shutil

    from model_navigator.exporters.jax import reproduce_export_main

    package, predict, params = mlp
    root = tmp_path / "copy"
    shutil.copytree(package.workdir, root)
    shutil.rmtree(root / "tf-savedmodel-xla-jit" / "model.savedmodel")
    argv = ["--workdir", str(root), "--path", "tf-savedmodel-xla-jit"]
    assert reproduce_export_main(lambda: predict, lambda: params, argv) == 0
    loaded = tf.saved_model.load(str(root / "tf-savedmodel-xla-jit" / "model.savedmodel"))
    assert list(loaded.signatures["serving_default"].structured_outputs) == ["output__0"]


# ------------------------------------------------------------------------------------------------
# A Flax CNN with BatchNorm: profiled with the default isolation, saved and loaded back
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    predict, variables = jax_models.cnn()
    package = nav.jax.export(
        predict,
        variables,
        jax_models.cnn_dataloader(),
        enable_xla=True,
        sample_count=8,
        workdir=tmp_path_factory.mktemp("cnn") / "navigator_workdir",
        verbose=False,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    return package, predict, variables


@pytest.mark.slow
def test_cnn_correct_and_profiled(cnn):
    package, _, _ = cnn
    assert set(package.status.paths) >= {"tf-savedmodel-xla", "tf-savedmodel-xla-jit", "onnx-xla-jit"}
    # enable_xla=True only
    assert not {"tf-savedmodel", "tf-savedmodel-jit", "onnx", "onnx-jit"} & set(package.status.paths)
    assert {p.name for p in package.workdir.iterdir()} >= {"tf-savedmodel-xla", "tf-savedmodel-xla-jit"}  # folders
    for key in XLA:
        result = _assert_correct(package, key)
        assert result.batch_sizes == [1, 4] and result.sample_count == 8
        perf = package.status.paths[key].runtimes[CPU].performance
        assert perf.status == StepStatus.OK, (key, perf.reason)
        assert [r.batch_size for r in perf.results] == [1, 4] and all(r.p50_ms > 0 for r in perf.results)
    assert package.status.paths["jax"].runtimes[CPU].performance.results[0].p50_ms > 0
    latency = package.get_formats_performance()
    assert latency["tf-savedmodel-xla-CPUExecutionProvider"] > 0
    assert latency["tf-savedmodel-xla-jit-CPUExecutionProvider"] > 0
    assert package.status.inputs[0].shape == (-1, 16, 16, 3)
    assert package.status.outputs[0].shape == (-1, 10)
    path = package.status.paths["tf-savedmodel-xla"]
    assert path.selectors == {"enable_xla": True, "jit_compile": False}
    assert path.reported["polymorphic_shapes"] == {"input__0": "(batch, 16, 16, 3)"}


@pytest.mark.slow
def test_cnn_save_load_round_trip(cnn, tmp_path):
    package, predict, variables = cnn
    package.set_verified(format=nav.Format.TF_SAVEDMODEL, runtime=CPU, enable_xla=True, jit_compile=False)
    nav.save(package, tmp_path / "cnn.nav")
    loaded = nav.load(tmp_path / "cnn.nav", workdir=tmp_path / "loaded", retest_conversions=True, verbose=False)
    for key in XLA:
        _assert_correct(loaded, key)
    assert loaded.status.paths["tf-savedmodel-xla"].runtimes[CPU].verified is True
    assert loaded.status.paths["tf-savedmodel-xla-jit"].runtimes[CPU].verified is False
    assert "XlaCallModule" in loaded.status.paths["onnx-xla"].reason  # still skipped, with the reason
    batch = np.asarray(jax_models.cnn_dataloader()[1])
    with loaded.get_runner(format=nav.Format.TF_SAVEDMODEL, runtime=CPU, enable_xla=True, jit_compile=True) as runner:
        out = runner.infer({"input__0": batch})
    np.testing.assert_allclose(out["output__0"], np.asarray(predict(batch, variables)), atol=1e-4, rtol=1e-4)
    with pytest.raises(UserInputError):
        loaded.get_runner(format=nav.Format.JAX)  # the source function is not in a package


# ------------------------------------------------------------------------------------------------
# Two inputs given as a dict (keyword arguments), a dynamic sequence axis both inputs share
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_inputs_as_dict_with_a_shared_sequence_axis(tmp_path):
    score, weights = jax_models.two_input_score()
    dataloader = jax_models.two_input_dataloader()  # the dict's order differs from score()'s: keyword arguments
    package = nav.jax.export(
        score,
        weights,
        dataloader,
        enable_xla=True,
        jit_compile=(False, True),
        run_profiling=False,
        workdir=tmp_path / "w",
        verbose=False,
        target_device="cpu",
    )
    assert [m.name for m in package.status.inputs] == ["mask", "tokens"]
    assert [m.shape for m in package.status.inputs] == [(-1, -1), (-1, -1, 6)]
    assert [m.name for m in package.status.outputs] == ["pooled", "scores"]
    for key in XLA:
        result = _assert_correct(package, key, atol=1e-5)
        assert set(result.per_output) == {"pooled", "scores"}
        assert package.status.paths[key].reported["polymorphic_shapes"] == {
            "mask": "(batch, d0)",
            "tokens": "(batch, d0, 6)",
        }
    rng = np.random.default_rng(1)
    feed = {"mask": np.ones((3, 11), np.float32), "tokens": rng.standard_normal((3, 11, 6)).astype(np.float32)}
    expected = score(feed["tokens"], feed["mask"], weights)
    with package.get_runner(format=nav.Format.TF_SAVEDMODEL, runtime=CPU, enable_xla=True, jit_compile=True) as runner:
        out = runner.infer(feed)  # a sequence length and batch size no sample had
    for name in ("pooled", "scores"):
        np.testing.assert_allclose(out[name], np.asarray(expected[name]), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# enable_xla=False: plain TensorFlow ops with jax <= 0.7.1, a skipped path with the reason after
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_enable_xla_false_variant(tmp_path):
    predict, params = jax_models.mlp(features=8)
    dataloader = [np.random.default_rng(i).standard_normal((2, 8)).astype(np.float32) for i in range(2)]
    package = nav.jax.export(
        predict,
        params,
        dataloader,
        enable_xla=False,
        jit_compile=False,
        run_profiling=False,
        workdir=tmp_path / "w",
        verbose=False,
        target_device="cpu",
    )
    paths = package.status.paths
    assert not any("-xla-" in key or key.endswith("-jit") for key in paths), sorted(paths)
    if NON_NATIVE:
        _assert_correct(package, "tf-savedmodel")
        assert paths["tf-savedmodel"].reported["native_serialization"] is False
        _assert_correct(package, "onnx")
        assert package.get_status(format=nav.Format.ONNX, runtime_provider=CPU, enable_xla=False, jit_compile=False)
    else:
        _assert_noxla_skipped(package, "tf-savedmodel")
        assert paths["onnx"].status == StepStatus.SKIPPED
        assert package.get_status(format=nav.Format.TF_SAVEDMODEL) is False


# ------------------------------------------------------------------------------------------------
# A T5-like Flax encoder, called as the reference's T5 example calls nav.jax.export
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_t5_like_encoder_as_in_the_reference_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    encode, params = jax_models.t5_encoder()
    dataloader = jax_models.t5_dataloader()

    def call_wrapper(input_ids, attention_mask, params):
        return encode(input_ids=input_ids, attention_mask=attention_mask, params=params)

    desc = nav.jax.export(
        model=call_wrapper,
        model_params=params,
        dataloader=dataloader,
        override_workdir=True,
        profiler_config=helpers.light_profiler(),
        verbose=False,
        target_device="cpu",
    )
    desc.save(Path.cwd() / "t5.nav")
    assert (tmp_path / "t5.nav").is_file()
    assert [(m.name, m.shape, m.dtype) for m in desc.status.inputs] == [
        ("input_ids", (-1, -1), "int64"),
        ("attention_mask", (-1, -1), "int64"),
    ]
    assert [(m.name, m.shape) for m in desc.status.outputs] == [("last_hidden_state", (-1, -1, 32))]
    for key in XLA:
        _assert_correct(desc, key, atol=1e-4)
        assert desc.status.paths[key].runtimes[CPU].performance.status == StepStatus.OK
    assert desc.status.paths["onnx-xla"].status == StepStatus.SKIPPED
    if not NON_NATIVE:
        _assert_noxla_skipped(desc, "tf-savedmodel-jit")
    batch = jax_models.t5_dataloader(lengths=(15,), batch_size=3)[0]
    expected = np.asarray(encode(batch["input_ids"], batch["attention_mask"], params)["last_hidden_state"])
    with desc.get_runner(format=nav.Format.TF_SAVEDMODEL, runtime=CPU, enable_xla=True, jit_compile=False) as runner:
        np.testing.assert_allclose(runner.infer(batch)["last_hidden_state"], expected, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------
# Errors before anything is written; environment
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_missing_jax2tf_names_the_installed_jax(tmp_path, monkeypatch):
    import jax.experimental

    monkeypatch.delattr(jax.experimental, "jax2tf", raising=False)
    monkeypatch.setitem(sys.modules, "jax.experimental.jax2tf", None)
    predict, params = jax_models.mlp(features=8)
    with pytest.raises(FrameworkMissingError) as info:
        nav.jax.export(predict, params, [np.ones((1, 8), np.float32)], workdir=tmp_path / "w", target_device="cpu")
    message = str(info.value)
    assert f"installed jax {jax.__version__}" in message and "jax2tf" in message, message
    assert "0.4" in message and "0.10" in message and "model-navigator[jax]" in message, message
    assert not (tmp_path / "w").exists()


def _mlp_args():
    predict, params = jax_models.mlp(features=8)
    return predict, params, [np.ones((2, 8), np.float32)]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda p, w, d: (lambda x, y, params: x, w, d, {}), "cannot be called as model(input__0, params)"),
        (lambda p, w, d: (p, {"w": "weights"}, d, {}), "leaf ['w'] is str"),
        (lambda p, w, d: (p, w, d, {"enable_xla": "yes"}), "`enable_xla` must be True, False"),
        (lambda p, w, d: (p, w, d, {"jit_compile": ()}), "`jit_compile` must be True, False"),
        (lambda p, w, d: ("predict", w, d, {}), "`model` must be the JAX predict function"),
        (lambda p, w, d: (p, w, d, {"target_formats": "torchscript"}), "do not apply to JAX"),
        (
            lambda p, w, d: (p, w, [{"y": np.ones((1, 8), np.float32)}], {}),
            "cannot be called as model(y=..., params=params)",
        ),
    ],
)
def test_invalid_arguments_fail_before_anything_is_written(tmp_path, change, expected):
    model, params, dataloader, kwargs = change(*_mlp_args())
    with pytest.raises(UserInputError) as info:
        nav.jax.export(model, params, dataloader, workdir=tmp_path / "w", verbose=False, **kwargs, target_device="cpu")
    assert expected in str(info.value), str(info.value)
    assert not (tmp_path / "w").exists()


def test_memory_settings_set_for_the_user_and_jax_imported_lazily():
    env = {
        k: v
        for k, v in helpers.repo_env().items()
        if k not in ("XLA_PYTHON_CLIENT_PREALLOCATE", "TF_FORCE_GPU_ALLOW_GROWTH")
    }
    code = (
        "import os, sys, model_navigator as nav\n"
        "assert 'XLA_PYTHON_CLIENT_PREALLOCATE' not in os.environ\n"
        "nav.jax\n"
        "print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'], os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])\n"
        "print(sorted(m for m in ('jax', 'tensorflow', 'flax') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["false true", "[]"], out.stdout
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "true"  # the user's own choice wins
    out = subprocess.run(
        [sys.executable, "-c", code.replace("assert 'XLA", "# ")], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.stdout.startswith("true true"), (out.stdout, out.stderr[-2000:])
