"""Export Hugging Face transformers models with a few lines.

    from model_navigator.contrib.huggingface import dataloader_from_tokenizer, export_hf_model

    dataloader = dataloader_from_tokenizer(tokenizer, ["a first text", "a second, longer text"], batch_size=2)
    package = export_hf_model(model, dataloader, target_formats=("onnx", "torchscript"))

- `dataloader_from_tokenizer` / `dummy_dataloader` (random token ids from an input spec, no
  tokenizer needed; `input_spec_from_config` builds the spec from a model config) give a list of
  dicts of torch tensors, with varying sequence lengths;
- `ModelOutputWrapper` calls the model with keyword inputs under a real signature (so tracers and
  exporters name the inputs) and unwraps its `ModelOutput` into a dict of named tensors, dropping
  None;
- `export_arguments` gives nav.torch.export's input_names, output_names and dynamic_axes (batch and
  sequence axes, found by running the model);
- `export_hf_model` puts them together on nav.torch.export.

Nothing here imports transformers: models, configs and tokenizers are used through their public
attributes, so any transformers version the model runs with works. torch is imported when a
function that needs it is called.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "dataloader_from_tokenizer": "dataloaders",
    "dummy_dataloader": "dataloaders",
    "input_spec_from_config": "dataloaders",
    "ModelOutputWrapper": "wrapper",
    "unwrap_model_output": "wrapper",
    "export_arguments": "export",
    "export_hf_model": "export",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
