"""Every Python snippet of the README runs as written, in a fresh folder and interpreter, on the README's
own example: the PyTorch example (Use), the runtime choice on its package, the ONNX source made from its
ONNX file, the TensorFlow, JAX and Hugging Face examples (the last two given a prelude that makes the
objects the README leaves to you: a tiny BERT and a tokenizer from a local vocab). The serving snippet
needs PyTriton and runs in tests/test_serve.py. A snippet added to the README must be added here."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # helpers, also when imported from test_serve
import helpers  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"

# Section heading -> the test that runs its Python snippet(s).
TORCH_TEST = "test_the_pytorch_example_its_runtime_choice_and_the_onnx_source_run"
COVERED = {
    "Use": TORCH_TEST,
    "Choosing a runtime and serving it with Triton": TORCH_TEST,
    "ONNX models as the source (`nav.onnx.export`)": TORCH_TEST,
    "Serving with PyTriton": "tests/test_serve.py::test_the_readme_serving_snippet_runs_on_the_readme_example",
    "TensorFlow 2": "test_the_tensorflow_example_runs",
    "JAX": "test_the_jax_example_runs",
    "Hugging Face transformers": "test_the_hugging_face_example_runs",
}


def python_snippets() -> Dict[str, List[str]]:
    """Section heading (## or ###, the nearest above) -> its ```python blocks, in README order."""
    snippets: Dict[str, List[str]] = {}
    heading = ""
    for part in re.split(r"(^#{2,3} [^\n]*$|^```python\n.*?^```$)", README.read_text(), flags=re.M | re.S):
        if re.match(r"^#{2,3} ", part):
            heading = part.lstrip("#").strip()
        elif part.startswith("```python"):
            snippets.setdefault(heading, []).append(part[len("```python\n") : -3])
    return snippets


def run_snippet(code: str, cwd: Path, python: str = sys.executable, timeout: int = 900) -> str:
    script = cwd / "snippet.py"
    script.write_text(code)
    result = subprocess.run(
        [python, str(script)], cwd=cwd, env=helpers.repo_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{code}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-6000:]}"
    return result.stdout


def test_every_python_snippet_is_run_by_a_test():
    snippets = python_snippets()
    assert set(snippets) == set(COVERED), set(snippets) ^ set(COVERED)
    assert all(len(blocks) == 1 for blocks in snippets.values()), {k: len(v) for k, v in snippets.items()}


@pytest.mark.slow
def test_the_pytorch_example_its_runtime_choice_and_the_onnx_source_run(tmp_path):
    pytest.importorskip("torch")
    snippets = python_snippets()
    use = snippets["Use"][0]
    choice = snippets["Choosing a runtime and serving it with Triton"][0]
    # the runtime choice works on the package the Use snippet made; a line proves the last statement ran
    run_snippet(use + choice + "print('snippets done', best.path, best.runtime)\n", tmp_path)
    assert (tmp_path / "example_pyt.nav").is_file() and (tmp_path / "example_pyt_workdir" / "status.yaml").is_file()
    assert (tmp_path / "model_repository").is_dir()
    onnx_folder = tmp_path / "onnx_source"
    onnx_folder.mkdir()
    (onnx_folder / "model.onnx").write_bytes((tmp_path / "navigator_workdir" / "onnx" / "model.onnx").read_bytes())
    onnx = snippets["ONNX models as the source (`nav.onnx.export`)"][0]
    out = run_snippet(onnx + "print('onnx status', package.get_status(format=nav.Format.ONNX))\n", onnx_folder)
    assert "onnx status True" in out


@pytest.mark.slow
def test_the_tensorflow_example_runs(tmp_path):
    pytest.importorskip("tensorflow")
    code = python_snippets()["TensorFlow 2"][0]
    out = run_snippet(code + "print('formats', package.get_formats_status())\n", tmp_path)
    assert "'onnx': True" in out and "'tf-savedmodel': True" in out, out


@pytest.mark.slow
def test_the_jax_example_runs(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("flax")
    code = python_snippets()["JAX"][0]
    out = run_snippet(code + "print('formats', package.get_formats_status())\n", tmp_path)
    assert "'onnx-jax2onnx': True" in out and "'tf-savedmodel-xla': True" in out, out


@pytest.mark.slow
def test_the_hugging_face_example_runs(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    del transformers
    prelude = textwrap.dedent("""
        # What the README leaves to you: a model and its tokenizer (here tiny, random, from a local vocab).
        from pathlib import Path
        import transformers
        words = ["a", "first", "second", "somewhat", "longer", "sentence", "short", "one", "more", "to", "batch"]
        Path("vocab").mkdir()
        Path("vocab/vocab.txt").write_text("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ","] + words))
        tokenizer = transformers.BertTokenizerFast.from_pretrained("vocab")
        config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=64)
        model = transformers.BertModel(config).eval()
    """)
    code = python_snippets()["Hugging Face transformers"][0]
    out = run_snippet(prelude + code + "print('formats', package.get_formats_status())\n", tmp_path)
    assert "'onnx': True" in out, out
