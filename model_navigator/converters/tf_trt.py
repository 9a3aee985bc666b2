"""SavedModel -> TF-TRT SavedModel (the conversion step's producer for `tf-trt-fp32` / `tf-trt-fp16`).

TensorFlow's own TensorRT integration (tensorflow.python.compiler.tensorrt.trt_convert): the
SavedModel's `serving_default` signature is converted with dynamic shapes, TensorRT engines are
built for the conversion samples at every batch size the correctness and profiling steps use,
and the result is saved as a SavedModel with the same signature. Reachable
only with a CUDA GPU (the path declares it) and a TensorFlow built with CUDA and TensorRT
(tftrt_unavailable says which is missing; the path is skipped with that reason).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

from model_navigator.core.enums import TensorRTPrecision
from model_navigator.frameworks.tensorflow_utils import SIGNATURE_KEY, gpu_available, import_tensorflow, tf_quiet
from model_navigator.paths.base import ProduceRequest


def _build_batches(workspace: Any, status: Any, config: Any) -> List[Dict[str, Any]]:
    """Conversion samples at every batch size later steps run (engine_batch_sizes), so the
    engines' shape profiles cover them."""
    from model_navigator.converters.tensorrt import engine_batch_sizes
    from model_navigator.core.samples import build_batch, load_sample_dir

    samples = load_sample_dir(workspace.input_dir("conversion"))
    if not samples:
        raise FileNotFoundError(f"no conversion samples in {workspace.input_dir('conversion')}")
    if config.batch_dim is None:
        return samples
    return [
        build_batch(sample, size, config.batch_dim) for size in engine_batch_sizes(config, status) for sample in samples
    ]


def tftrt_unavailable(spec: Any = None) -> Optional[str]:
    """Why this TensorFlow cannot run TF-TRT, or None: it needs a CUDA build that sees a GPU and was
    built with TensorRT, which pip's TensorFlow is not since 2.18 (TensorRT support was disabled)."""
    tf = import_tensorflow()
    if not tf.test.is_built_with_cuda():
        return f"TF-TRT needs a TensorFlow build with CUDA; TensorFlow {tf.__version__} has none (tensorflow-cpu)"
    if not gpu_available():
        return "TF-TRT needs a CUDA GPU that TensorFlow can see; tf.config lists none"
    from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils

    if not _pywrap_py_utils.is_tensorrt_enabled():
        return (
            f"TensorFlow {tf.__version__} was built without TensorRT (pip builds since 2.18 are); TF-TRT needs "
            f"TensorFlow <= 2.17 with TensorRT 8 libraries, or an NGC TensorFlow container"
        )
    return None


def convert_savedmodel_to_tftrt(request: ProduceRequest) -> Dict[str, Any]:
    workspace, status, config = request.workspace, request.status, request.config
    spec, parent_artifact_path, out_path = request.spec, request.parent_path, request.out_path
    tf = import_tensorflow()
    reason = tftrt_unavailable(spec)
    if reason is not None:
        raise RuntimeError(reason)
    with tf_quiet("TF-TRT"):
        from tensorflow.python.compiler.tensorrt import trt_convert as trtc

        fp16 = spec.precision == TensorRTPrecision.FP16
        precision = trtc.TrtPrecisionMode.FP16 if fp16 else trtc.TrtPrecisionMode.FP32
        params: Dict[str, Any] = {
            "precision_mode": precision,
            "minimum_segment_size": int(config.minimum_segment_size),
        }
        if config.max_workspace_size is not None:
            params["max_workspace_size_bytes"] = int(config.max_workspace_size)
        converter = trtc.TrtGraphConverterV2(
            input_saved_model_dir=str(parent_artifact_path),
            input_saved_model_tags=["serve"],
            input_saved_model_signature_key=SIGNATURE_KEY,
            use_dynamic_shape=True,
            dynamic_shape_profile_strategy=trtc.PROFILE_STRATEGY_RANGE,
            **params,
        )
        converter.convert()
        batches = _build_batches(workspace, status, config)
        names = [m.name for m in status.inputs]

        def input_fn() -> Iterator[Dict[str, Any]]:
            for batch in batches:  # dicts: the signature takes keyword inputs
                yield {name: tf.constant(batch[name]) for name in names}

        converter.build(input_fn=input_fn)
        converter.save(str(out_path))
    return {
        "precision_mode": str(precision),
        "minimum_segment_size": int(config.minimum_segment_size),
        "max_workspace_size": config.max_workspace_size,
    }
