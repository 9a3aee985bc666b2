"""Runners for the TensorFlow formats: a SavedModel (and TF-TRT's, which is one) through its
`serving_default` signature, and the user's own Keras model / tf.Module."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.tensor import TensorMetadata
from model_navigator.frameworks.tensorflow_utils import (
    SIGNATURE_KEY,
    call_model,
    device_name,
    flatten_outputs,
    import_tensorflow,
    tf_quiet,
    to_numpy,
)
from model_navigator.runners.base import NavigatorRunner, RunnerArgs, SourceRunner


class TensorFlowSavedModelRunner(NavigatorRunner):
    """Loads a SavedModel and calls its serving signature with keyword tensors on the runner's
    device (CPU, or the GPU when TensorFlow sees one)."""

    def __init__(
        self,
        model_path: Path,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        device: str = "cpu",
        name: Optional[str] = None,
        signature: str = SIGNATURE_KEY,
    ):
        super().__init__(input_metadata, output_metadata, device, name or "tf-savedmodel")
        self.model_path = Path(model_path)
        self.signature = signature
        self._loaded: Any = None
        self._fn: Any = None

    def _load(self) -> None:
        tf = import_tensorflow()
        with tf_quiet("tf.saved_model.load"), tf.device(device_name(self.device)):
            self._loaded = tf.saved_model.load(str(self.model_path))
        signatures = self._loaded.signatures
        if self.signature not in signatures:
            raise RuntimeError(f"{self.model_path} has no signature {self.signature!r}; it has {list(signatures)}")
        self._fn = signatures[self.signature]
        self._tf = tf

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        tf = self._tf
        with tf.device(device_name(self.device)):
            feed = {n: tf.convert_to_tensor(feed_dict[n]) for n in self.input_names}
            out = self._fn(**feed)
        missing = [n for n in self.output_names if n not in out]
        if missing:
            raise RuntimeError(f"{self.name}: the signature returned {sorted(out)}, missing outputs {missing}")
        return OrderedDict((n, to_numpy(out[n])) for n in self.output_names)

    def _unload(self) -> None:
        self._fn = None
        self._loaded = None


class TensorFlowSourceRunner(SourceRunner):
    """The user's Keras model (training=False) or tf.Module's tf.function, called as export() did
    (only in the process that holds the model)."""

    def __init__(
        self,
        model: Any,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        device: str = "cpu",
        keyword: bool = False,
        name: Optional[str] = None,
        kw_names: Optional[Sequence[str]] = None,
    ):
        super().__init__(input_metadata, output_metadata, device, name or "tensorflow-source")
        self.model = model
        self.keyword = keyword
        self.kw_names = tuple(kw_names) if kw_names else None  # the model's names of renamed dict inputs

    def _load(self) -> None:
        self._tf = import_tensorflow()

    def call(self, feed_dict: Dict[str, np.ndarray]) -> Any:
        tf = self._tf
        with tf.device(device_name(self.device)):
            inputs = [tf.convert_to_tensor(feed_dict[n]) for n in self.input_names]
            return call_model(self.model, inputs, self.kw_names or self.input_names, self.keyword)

    def flatten(self, output: Any) -> Tuple[List[np.ndarray], List[str]]:
        tensors, names = flatten_outputs(output)
        return [to_numpy(t) for t in tensors], names


# Factories and loader named by the TensorFlow formats' declarations (core/formats.py) ----------
def savedmodel_runner(model_path: Path, a: RunnerArgs) -> NavigatorRunner:
    return TensorFlowSavedModelRunner(model_path, a.inputs, a.outputs, device=a.device, name=a.name)


def tensorflow_source_runner(model: Any, a: RunnerArgs) -> NavigatorRunner:
    return TensorFlowSourceRunner(
        model, a.inputs, a.outputs, device=a.device, keyword=a.keyword, name=a.name, kw_names=a.kw_names
    )


def load_savedmodel(model_path: Path) -> Any:
    tf = import_tensorflow()
    with tf_quiet("tf.saved_model.load"):
        return tf.saved_model.load(str(model_path))
