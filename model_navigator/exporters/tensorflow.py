"""Export producer that needs the user's Keras model / tf.Module: the TensorFlow SavedModel.

The SavedModel holds one signature, `serving_default`, whose inputs are the export's input names
(dynamic batch and every dynamic axis as None) and whose outputs are a dict output name -> tensor,
so every runtime after it (the SavedModel runner, tf2onnx's ONNX, TF-TRT) speaks the same names.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from model_navigator.core.diskspace import written_in_staging
from model_navigator.frameworks.tensorflow_utils import (
    SIGNATURE_KEY,
    call_model,
    flatten_outputs,
    import_tensorflow,
    tf_quiet,
)
from model_navigator.paths.base import ExportContext, PathSpec, ProduceRequest


@dataclass
class TensorFlowExportContext(ExportContext):
    """What the SavedModel export needs: the model and the signature's names, shapes and dtypes."""

    model: Any
    input_names: Tuple[str, ...]
    input_shapes: Tuple[Tuple[Optional[int], ...], ...]  # None marks a dynamic axis
    input_dtypes: Tuple[str, ...]
    output_names: Tuple[str, ...]
    keyword: bool
    kw_names: Optional[Tuple[str, ...]] = None  # dict samples: the model's own input names, in input order
    device: str = "cpu"

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """TensorFlow's device scope; first, TensorFlow's start-up lines into the log now open."""
        from model_navigator.frameworks.tensorflow_utils import device_name, flush_pending

        flush_pending()
        with import_tensorflow().device(device_name(self.device)):
            yield

    def write_reproduce(self, workspace: Any, spec: PathSpec) -> None:
        write_export_reproduce(workspace, spec)


def serving_function(ctx: TensorFlowExportContext) -> Any:
    """The tf.function the SavedModel serves: named inputs in, dict of named outputs out."""
    tf = import_tensorflow()
    specs = [
        tf.TensorSpec(shape=list(shape), dtype=tf.as_dtype(dtype), name=name)
        for name, shape, dtype in zip(ctx.input_names, ctx.input_shapes, ctx.input_dtypes, strict=True)
    ]
    model, keyword, output_names = ctx.model, ctx.keyword, ctx.output_names
    names = ctx.kw_names or ctx.input_names  # input_names may have renamed the model's dict inputs

    @tf.function(input_signature=specs)
    def serve(*inputs):
        tensors, _ = flatten_outputs(call_model(model, inputs, names, keyword))
        if len(tensors) != len(output_names):
            raise ValueError(
                f"the model returned {len(tensors)} outputs while tracing, expected {len(output_names)} {output_names}"
            )
        return {name: tf.identity(t) for name, t in zip(output_names, tensors, strict=True)}

    return serve


def export_savedmodel(request: ProduceRequest) -> Dict[str, Any]:
    """tf.saved_model.save of the model with the `serving_default` signature."""
    ctx, out_path = request.context, request.out_path
    tf = import_tensorflow()
    out_path = Path(out_path)
    if out_path.exists():
        shutil.rmtree(out_path)
    with tf_quiet("tf.saved_model.save"):
        serve = serving_function(ctx)
        concrete = serve.get_concrete_function()
        holder = tf.Module()
        holder.model = ctx.model  # tracks the variables the signature uses
        holder.serve = serve
        with written_in_staging(out_path) as staged:  # never half a SavedModel under its final name
            tf.saved_model.save(holder, str(staged), signatures={SIGNATURE_KEY: concrete})
    return {"signature": SIGNATURE_KEY}


def context_from_status(model: Any, workspace: Any, status: Any) -> TensorFlowExportContext:
    """The export context from status.yaml (reproduce_export.py, `convert --model`)."""
    return make_context(model, status.config, status.inputs, status.outputs)


def make_context(model: Any, config: Any, inputs: Sequence[Any], outputs: Sequence[Any]) -> TensorFlowExportContext:
    """The export context of `model` under `config`, tensors described by `inputs`/`outputs` (TensorMetadata)."""
    return TensorFlowExportContext(
        model=model,
        input_names=tuple(m.name for m in inputs),
        input_shapes=tuple(tuple(None if d < 0 else int(d) for d in m.shape) for m in inputs),
        input_dtypes=tuple(m.dtype for m in inputs),
        output_names=tuple(m.name for m in outputs),
        keyword=bool(config.forward_kw_names),
        kw_names=tuple(config.forward_kw_names or ()) or None,
        device=config.target_device,
    )


_EXPORT_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce the export of path `{path}`.

Export needs your model object: implement get_model() below, then run from the workspace root:
    bash {path}/reproduce_export.sh
"""
import sys

from model_navigator.exporters.tensorflow import reproduce_export_main


def get_model():
    raise NotImplementedError(
        "Please implement get_model() to return your Keras model or tf.Module to reproduce the export.")


if __name__ == "__main__":
    sys.exit(reproduce_export_main(get_model, sys.argv[1:]))
'''


def write_export_reproduce(workspace: Any, spec: PathSpec) -> None:
    """Write <path>/reproduce_export.py (needs only get_model()) and its .sh."""
    from model_navigator.exporters import reproduce

    reproduce.write_export_reproduce(workspace, spec, _EXPORT_TEMPLATE)


def reproduce_export_main(get_model: Any, argv: List[str]) -> int:
    """Entry of reproduce_export.py: export the path again from get_model() with the recorded settings."""
    from model_navigator.core.enums import Framework
    from model_navigator.exporters.reproduce import run_reproduce_export

    return run_reproduce_export(
        Framework.TENSORFLOW, lambda workspace, status: context_from_status(get_model(), workspace, status), argv
    )
