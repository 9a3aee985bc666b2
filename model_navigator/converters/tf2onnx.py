"""SavedModel -> ONNX with tf2onnx (the conversion step's producer for the TensorFlow `onnx` path).

This is what `python -m tf2onnx.convert --saved-model DIR --signature_def serving_default
--opset N --output model.onnx` does, through the same tf2onnx functions, with two additions:
ops tf2onnx has no handler for fail the conversion (tf2onnx itself only logs them and writes a
model no runtime can load), and the ONNX input/output names must equal the export's names.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from model_navigator.frameworks.tensorflow_utils import SIGNATURE_KEY, import_tensorflow, tf_quiet
from model_navigator.paths.base import ProduceRequest


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# Why tf2onnx fails on some ops, added to its own message.
_OP_HINTS = {
    "XlaCallModule": "XlaCallModule holds StableHLO serialized by jax2tf's native serialization (enable_xla=True, "
    "and every conversion with jax >= 0.7.2), which tf2onnx cannot translate: only "
    "enable_xla=False SavedModels (jax <= 0.7.1) are plain TensorFlow ops",
    "StatefulPartitionedCall": "a call of a function tf2onnx did not inline, such as a tf.function(jit_compile=True) "
    "(kept as a call for XLA); the same model saved with jit_compile=False converts",
}


def _failed_ops(messages: List[str]) -> List[str]:
    """Op types of the nodes tf2onnx logged as failed ('... convert failed for name: ... op: "X"')."""
    import re

    ops = []
    for message in messages:
        if "convert failed for name" in message:
            match = re.search(r'\bop: "([^"]+)"', message)
            if match and match.group(1) not in ops:
                ops.append(match.group(1))
    return ops


def _check_converted(messages: List[str], model_proto: Any, status: Any) -> None:
    """Refuse what tf2onnx made when it said an op is not supported, or when the ONNX graph's input and
    output names are not the SavedModel signature's (the runners feed and read them by name)."""
    unsupported = [m for m in messages if "is not supported" in m]
    if unsupported:
        ops = sorted({m.split(": ", 1)[1].split("]", 1)[0] for m in unsupported if ": " in m and "]" in m})
        hints = "".join(f"; {_OP_HINTS[op]}" for op in ops if op in _OP_HINTS)
        raise RuntimeError(
            f"tf2onnx has no ONNX conversion for the TensorFlow op(s) {', '.join(ops) or '?'}: "
            + "; ".join(unsupported)
            + hints
        )
    expected_in = [m.name for m in status.inputs]
    expected_out = [m.name for m in status.outputs]
    got_in = [i.name for i in model_proto.graph.input]
    got_out = [o.name for o in model_proto.graph.output]
    if sorted(got_in) != sorted(expected_in) or sorted(got_out) != sorted(expected_out):
        raise RuntimeError(
            f"tf2onnx named the ONNX inputs {got_in} and outputs {got_out}; expected inputs {expected_in} "
            f"and outputs {expected_out} (the SavedModel signature's names)"
        )


def convert_savedmodel_to_onnx(request: ProduceRequest) -> Dict[str, Any]:
    status, config = request.status, request.config
    parent_artifact_path, out_path = request.parent_path, request.out_path
    tf = import_tensorflow()
    with tf_quiet("tf2onnx"):
        import tf2onnx
        from tf2onnx import tf_loader
        from tf2onnx.convert import _convert_common

        opset = int(config.opset)
        collect = _Collect()
        tf2onnx_logger = logging.getLogger("tf2onnx")
        tf2onnx_logger.addHandler(collect)
        try:
            graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
                str(parent_artifact_path),
                None,
                None,
                tag=["serve"],
                signatures=[SIGNATURE_KEY],
                return_initialized_tables=True,
                return_tensors_to_rename=True,
            )
            with tf.device("/cpu:0"):
                try:
                    model_proto, _ = _convert_common(
                        graph_def,
                        name=str(parent_artifact_path),
                        continue_on_error=False,
                        opset=opset,
                        input_names=inputs,
                        output_names=outputs,
                        tensors_to_rename=renames,
                        initialized_tables=tables,
                        output_path=None,
                    )
                except Exception as e:
                    failed = _failed_ops(collect.messages)
                    if not failed:
                        raise
                    hints = "".join(f"; {_OP_HINTS[op]}" for op in failed if op in _OP_HINTS)
                    raise RuntimeError(
                        f"tf2onnx could not convert the TensorFlow op(s) {', '.join(failed)}: "
                        f"{type(e).__name__}: {e}{hints}"
                    ) from e
        finally:
            tf2onnx_logger.removeHandler(collect)
    _check_converted(collect.messages, model_proto, status)
    import onnx

    onnx.checker.check_model(model_proto)
    from model_navigator.core.diskspace import written_in_staging

    with written_in_staging(out_path) as staged:  # never half a model.onnx under its final name
        onnx.save(model_proto, str(staged))
    return {"opset": opset, "converter": "tf2onnx", "tf2onnx_version": tf2onnx.__version__}
