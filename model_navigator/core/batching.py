"""The batch sizes later steps run a model at: the correctness check's and the profiler's.

Below the steps and the converters alike: a TensorRT or TF-TRT engine is built to accept every
batch size the correctness and profiling steps will feed it (converters.tensorrt.engine_batch_sizes).
"""

from __future__ import annotations

from typing import List, Optional

from model_navigator.core.config import ProfilerConfig
from model_navigator.core.status import NavigatorStatus


def default_check_batch_sizes(status: NavigatorStatus) -> List[int]:
    """1 plus the dataloader's batch size (2 when that is 1); only 1 when the model takes no batch."""
    if status.config.batch_dim is None:
        return [1]
    batch = int(status.dataloader.get("batch_size", 1))
    return [1, batch if batch > 1 else 2]


def select_batch_sizes(config: ProfilerConfig, dataloader_batch_size: int, batch_dim: Optional[int]) -> List[int]:
    """Batch sizes: [1] without a batch dim, else config.batch_sizes, a power-of-two sweep or (1, dataloader's)."""
    if batch_dim is None:
        return [1]
    if config.batch_sizes is not None:
        return sorted(set(int(b) for b in config.batch_sizes))
    if config.max_batch_size is not None:
        sizes = []
        size = 1
        while size <= config.max_batch_size:
            sizes.append(size)
            size *= 2
        if sizes[-1] != config.max_batch_size:
            sizes.append(int(config.max_batch_size))
        return sizes
    return sorted({1, max(1, int(dataloader_batch_size))})
