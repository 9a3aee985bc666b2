"""model_navigator.contrib.huggingface on a small BERT built from a config (random weights, no hub)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
transformers = pytest.importorskip("transformers")

import model_navigator as nav  # noqa: E402
import helpers  # noqa: E402  (tests/helpers.py)
from model_navigator.contrib.huggingface import (  # noqa: E402
    ModelOutputWrapper,
    dataloader_from_tokenizer,
    dummy_dataloader,
    export_arguments,
    export_hf_model,
    input_spec_from_config,
    unwrap_model_output,
)
from model_navigator.core.status import NavigatorStatus  # noqa: E402
from model_navigator.core.serialization import to_plain  # noqa: E402

WORDS = (
    "the a model navigator exports bert to onnx and torchscript fast small test hello world with "
    "dynamic batch sequence axes"
).split()
TEXTS = [
    "hello world",
    "the model navigator exports bert to onnx",
    "a small test",
    "torchscript and onnx with dynamic batch and sequence axes, fast",
]


@pytest.fixture(scope="module")
def config():
    return transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
    )


@pytest.fixture(scope="module")
def bert(config):
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A WordPiece tokenizer from a vocab file written here (loaded from the local folder only)."""
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", *WORDS]) + "\n")
    return transformers.BertTokenizerFast.from_pretrained(str(folder))


# ------------------------------------------------------------------------------------------------
# Dataloaders
# ------------------------------------------------------------------------------------------------


def test_dataloader_from_tokenizer(tokenizer):
    batches = dataloader_from_tokenizer(tokenizer, TEXTS, batch_size=2)
    assert len(batches) == 2
    for batch, texts in zip(batches, (TEXTS[:2], TEXTS[2:]), strict=True):
        assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
        assert all(isinstance(v, torch.Tensor) and v.dtype == torch.int64 for v in batch.values())
        expected = tokenizer(texts, padding="longest", return_tensors="pt")
        assert torch.equal(batch["input_ids"], expected["input_ids"])
        assert batch["input_ids"].shape[0] == 2
    assert batches[0]["input_ids"].shape[1] != batches[1]["input_ids"].shape[1]  # padded per batch
    assert (batches[0]["input_ids"] != tokenizer.unk_token_id).all()  # the vocab file was read
    fixed = dataloader_from_tokenizer(tokenizer, TEXTS, batch_size=3, max_length=6, pad_to_max_length=True)
    assert [b["input_ids"].shape for b in fixed] == [(3, 6), (1, 6)]
    with pytest.raises(nav.UserInputError, match="texts"):
        dataloader_from_tokenizer(tokenizer, "one string", batch_size=2)
    with pytest.raises(nav.UserInputError, match="batch_size"):
        dataloader_from_tokenizer(tokenizer, TEXTS, batch_size=0)
    with pytest.raises(nav.UserInputError, match="max_length"):
        dataloader_from_tokenizer(tokenizer, TEXTS, pad_to_max_length=True)


def test_dummy_dataloader(config):
    spec = input_spec_from_config(config)
    assert list(spec) == ["input_ids", "attention_mask", "token_type_ids"]
    batches = dummy_dataloader(spec, batches=3, batch_size=4, seq_lens=(5, 11))
    assert [b["input_ids"].shape for b in batches] == [(4, 5), (4, 11), (4, 5)]
    for b in batches:
        assert b["input_ids"].dtype == torch.int64
        assert 0 <= int(b["input_ids"].min()) and int(b["input_ids"].max()) < config.vocab_size
        assert bool((b["attention_mask"] == 1).all())
        assert set(b["token_type_ids"].unique().tolist()) <= {0, 1}
    again = dummy_dataloader(spec, batches=3, batch_size=4, seq_lens=(5, 11))
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(batches, again, strict=True))  # seeded
    floats = dummy_dataloader({"x": (("batch", 3, "sequence"), torch.float16, (-1.0, 1.0))}, batches=1, seq_lens=7)
    assert floats[0]["x"].shape == (2, 3, 7) and floats[0]["x"].dtype == torch.float16
    assert float(floats[0]["x"].abs().max()) <= 1.0
    with pytest.raises(nav.UserInputError, match="range"):
        dummy_dataloader({"x": (("batch",), "int64", (3, 3))})
    with pytest.raises(nav.UserInputError, match="dtype"):
        dummy_dataloader({"x": (("batch",), "int65", (0, 3))})
    with pytest.raises(nav.UserInputError, match="shape entries"):
        dummy_dataloader({"x": (("batch", -1), "int64", (0, 3))})
    assert list(input_spec_from_config(config, ["input_ids"])) == ["input_ids"]


# ------------------------------------------------------------------------------------------------
# Wrapper and export arguments
# ------------------------------------------------------------------------------------------------


def test_wrapper_unwraps_model_output(bert, config):
    batch = dummy_dataloader(input_spec_from_config(config), batches=1, batch_size=2, seq_lens=6)[0]
    wrapper = ModelOutputWrapper(bert)
    assert wrapper.input_names[:3] == ("input_ids", "attention_mask", "token_type_ids")
    import inspect

    assert list(inspect.signature(wrapper.forward).parameters)[:3] == ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad():
        out = wrapper(**batch)
        reference = bert(**batch)
        positional = wrapper(batch["input_ids"], batch["attention_mask"])
    assert list(out) == ["last_hidden_state", "pooler_output"]
    assert torch.equal(out["last_hidden_state"], reference.last_hidden_state)
    assert positional["last_hidden_state"].shape == (2, 6, 32)
    with pytest.raises(TypeError, match="unexpected input"):
        wrapper(input_ids=batch["input_ids"], pixel_values=batch["input_ids"])
    only = ModelOutputWrapper(bert, input_names=("input_ids",), output_names=("pooler_output",))
    with torch.no_grad():
        assert list(only(batch["input_ids"])) == ["pooler_output"]
    hidden = ModelOutputWrapper(bert, model_kwargs={"output_hidden_states": True})
    with torch.no_grad():
        names = list(hidden(**batch))
    assert names[:2] == ["last_hidden_state", "pooler_output"]
    assert names[2:] == [f"hidden_states.{i}" for i in range(config.num_hidden_layers + 1)]
    clone = copy.deepcopy(wrapper)
    assert clone.forward.__self__ is clone and clone.model is not bert
    with pytest.raises(nav.UserInputError, match="identifiers"):
        ModelOutputWrapper(bert, input_names=("input-ids",))


def test_unwrap_model_output():
    t = torch.zeros(1)
    assert list(unwrap_model_output({"a": t, "b": None, "c": (t, t)})) == ["a", "c.0", "c.1"]
    assert list(unwrap_model_output((t, None, t))) == ["output_0", "output_2"]
    with pytest.raises(nav.UserInputError, match="not a tensor"):
        unwrap_model_output({"cache": object()})


def test_export_arguments(bert, config):
    dataloader = dummy_dataloader(input_spec_from_config(config), batches=2, batch_size=2, seq_lens=(5, 9))
    args = export_arguments(bert, dataloader)
    assert args["input_names"] == ("input_ids", "attention_mask", "token_type_ids")
    assert args["output_names"] == ("last_hidden_state", "pooler_output")
    assert args["dynamic_axes"] == {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "sequence"},
        "token_type_ids": {0: "batch", 1: "sequence"},
        "last_hidden_state": {0: "batch", 1: "sequence"},
        "pooler_output": {0: "batch"},
    }
    assert bert.training is False
    # a constant sequence length in the dataloader still gives a dynamic sequence axis
    same = dummy_dataloader(input_spec_from_config(config), batches=2, batch_size=2, seq_lens=(7,))
    assert export_arguments(bert, same)["dynamic_axes"]["last_hidden_state"] == {0: "batch", 1: "sequence"}
    with pytest.raises(nav.UserInputError, match="dicts"):
        export_arguments(bert, [torch.zeros(2, 3)])


@pytest.mark.slow
def test_contrib_does_not_import_transformers():
    code = (
        "import sys, model_navigator.contrib.huggingface as hf\n"
        "hf.dummy_dataloader, hf.ModelOutputWrapper, hf.export_hf_model\n"
        "print('transformers' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=helpers.repo_env(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------
# End to end through nav.torch.export
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("source", ["tokenizer", "dummy"])
def test_export_bert_onnx_and_torchscript_trace(bert, config, tokenizer, tmp_path, source):
    if source == "tokenizer":
        dataloader = dataloader_from_tokenizer(tokenizer, TEXTS, batch_size=2)
    else:
        dataloader = dummy_dataloader(input_spec_from_config(config), batches=2, batch_size=2, seq_lens=(5, 9))
    workdir = tmp_path / "bert_workdir"
    package = export_hf_model(
        bert,
        dataloader,
        workdir=workdir,
        target_formats=("onnx", "torchscript"),
        runtimes=("CPUExecutionProvider",),
        run_profiling=False,
        verbose=False,
    )
    assert package.get_formats_status() == {"torchscript-trace": True, "onnx": True}
    status = NavigatorStatus.load(workdir)
    assert status.model_name == "BertModel"
    assert [m.name for m in status.outputs] == ["last_hidden_state", "pooler_output"]
    assert {m.name: m.shape for m in status.inputs} == {
        n: (-1, -1) for n in ("input_ids", "attention_mask", "token_type_ids")
    }
    assert {m.name: m.shape for m in status.outputs} == {"last_hidden_state": (-1, -1, 32), "pooler_output": (-1, 32)}
    for key in ("torchscript-trace", "onnx"):
        corr = status.paths[key].runtimes[nav.RuntimeProvider.CPU].correctness
        assert corr.status.value == "ok", corr.reason
        assert set(corr.per_output) == {"last_hidden_state", "pooler_output"}
        assert all(e.max_abs_error < 1e-4 for e in corr.per_output.values())
        assert len(corr.batch_sizes) >= 2  # checked on rebuilt batches too

    # the artifacts take another batch size and sequence length than any sample
    ids = torch.randint(0, config.vocab_size, (3, 13), generator=torch.Generator().manual_seed(1))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    with torch.no_grad():
        expected = bert(**inputs)
    for fmt in (nav.Format.ONNX, nav.Format.TORCHSCRIPT):
        runner = package.get_runner(format=fmt, runtime=nav.RuntimeProvider.CPU)
        with runner:
            out = runner.infer({k: v.numpy() for k, v in inputs.items()})
        assert out["last_hidden_state"].shape == (3, 13, 32)
        assert abs(out["last_hidden_state"] - expected.last_hidden_state.numpy()).max() < 1e-4
        assert abs(out["pooler_output"] - expected.pooler_output.numpy()).max() < 1e-4


# ------------------------------------------------------------------------------------------------
# A plain transformers model handed to nav.torch.export with dict samples (no contrib helper)
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_plain_bert_model_with_dict_samples_exports_to_onnx_trace_and_exportedprogram(bert, tmp_path):
    torch.manual_seed(0)
    dataloader = [
        {"input_ids": torch.randint(0, 100, (2, seq)), "attention_mask": torch.ones(2, seq, dtype=torch.long)}
        for seq in (5, 9)
    ]
    package = nav.torch.export(
        model=bert,
        dataloader=dataloader,
        workdir=tmp_path / "wd",
        isolation=False,
        verbose=False,
        run_profiling=False,
        runtimes=("CPUExecutionProvider",),
        target_formats=("torchscript", "torch-exportedprogram", "onnx"),
        jit_options=("trace",),
    )
    for key in ("torchscript-trace", "torch-exportedprogram", "onnx"):
        path = package.status.paths[key]
        assert path.status.value == "ok", (key, path.reason)
        result = path.runtimes[nav.RuntimeProvider.CPU].correctness
        assert result.status.value == "ok", (key, result.reason)


@pytest.mark.slow
def test_a_transformers_exportedprogram_loads_and_passes_in_a_fresh_process(bert, tmp_path):
    """The .pt2 holds flat tensor outputs: a process that never imported transformers' ModelOutput
    classes loads the package, re-tests the path and gets the same outputs."""
    torch.manual_seed(0)
    dataloader = [
        {"input_ids": torch.randint(0, 100, (2, seq)), "attention_mask": torch.ones(2, seq, dtype=torch.long)}
        for seq in (5, 9)
    ]
    package = nav.torch.export(
        model=bert,
        dataloader=dataloader,
        workdir=tmp_path / "wd",
        verbose=False,
        run_profiling=False,
        target_formats=("torch-exportedprogram",),
    )
    assert package.get_status(nav.Format.TORCH_EXPORTEDPROGRAM)
    package.save(tmp_path / "bert.nav")
    code = (
        "import sys, model_navigator as nav\n"
        "p = nav.load(sys.argv[1], workdir=sys.argv[2], verbose=False)\n"
        "assert 'transformers' not in sys.modules, 'the package needs transformers to load'\n"
        "path = p.status.paths['torch-exportedprogram']\n"
        "result = path.runtimes[nav.RuntimeProvider.CPU].correctness\n"
        "print(path.status.value, result.status.value, result.reason)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "bert.nav"), str(tmp_path / "loaded")],
        capture_output=True,
        text=True,
        env=helpers.repo_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:2] == ["ok", "ok"], done.stdout


def _t5_dataloader(encoder_lengths=(6, 9), decoder_lengths=(3, 4)):
    torch.manual_seed(0)
    return [
        {
            "input_ids": torch.randint(0, 100, (2, enc)),
            "attention_mask": torch.ones(2, enc, dtype=torch.long),
            "decoder_input_ids": torch.randint(0, 100, (2, dec)),
        }
        for enc, dec in zip(encoder_lengths, decoder_lengths, strict=True)
    ]


def test_export_arguments_give_an_encoder_decoder_its_own_decoder_length():
    config = transformers.T5Config(
        vocab_size=100, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2
    )
    model = transformers.T5Model(config).eval()
    arguments = export_arguments(model, _t5_dataloader())
    axes = arguments["dynamic_axes"]
    assert axes["decoder_input_ids"] == {0: "batch", 1: "sequence"}
    assert axes["input_ids"] == {0: "batch", 1: "sequence"}
    assert 1 in axes["last_hidden_state"] and 1 in axes["encoder_last_hidden_state"]


def test_export_arguments_do_not_probe_a_feature_axis():
    config = transformers.WhisperConfig(
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=16,
        max_source_positions=50,
        max_target_positions=32,
    )
    model = transformers.WhisperModel(config).eval()
    torch.manual_seed(0)
    dataloader = [
        {"input_features": torch.randn(2, 16, 100), "decoder_input_ids": torch.randint(0, 100, (2, dec))}
        for dec in (3, 5)
    ]
    arguments = export_arguments(model, dataloader)  # shortening the 16 mel bins would make Whisper raise
    assert arguments["dynamic_axes"]["input_features"] == {0: "batch"}
    assert arguments["dynamic_axes"]["decoder_input_ids"] == {0: "batch", 1: "sequence"}


@pytest.mark.slow
def test_given_dynamic_axes_that_leave_a_varying_axis_fixed_are_completed_with_a_warning(tmp_path):
    config = transformers.T5Config(
        vocab_size=100, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2
    )
    model = transformers.T5Model(config).eval()
    with pytest.warns(UserWarning, match=r"dynamic_axes\['decoder_input_ids'\]` leaves axes \[1\] fixed"):
        package = export_hf_model(
            model,
            _t5_dataloader(),
            workdir=tmp_path / "wd",
            isolation=False,
            verbose=False,
            run_profiling=False,
            target_formats=("onnx",),
            runtimes=("CPUExecutionProvider",),
            dynamic_axes={
                "input_ids": {0: "b", 1: "s"},
                "attention_mask": {0: "b", 1: "s"},
                "decoder_input_ids": {0: "b"},
            },
        )
    assert to_plain(package.status.config.dynamic_axes)["decoder_input_ids"] == [0, 1]
    onnx = package.status.paths["onnx"]
    assert onnx.runtimes[nav.RuntimeProvider.CPU].correctness.status.value == "ok", onnx.runtimes
