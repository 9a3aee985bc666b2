"""Small torch models for the reduced-precision tests (built here, random weights) and task metrics
named as "precision_models:..." by those tests."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np


def cnn() -> Any:
    """Three conv blocks and a classifier head (10 class scores): convolutions, where dynamic int8 is slow."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10),
    ).eval()


def cnn_data(count: int = 24) -> List[Any]:
    import torch

    torch.manual_seed(1)
    return [torch.randn(1, 3, 48, 48) for _ in range(count)]


def transformer_block() -> Any:
    """One Transformer encoder layer (MatMul-heavy: where dynamic int8 pays)."""
    import torch

    torch.manual_seed(0)
    return torch.nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=256, dropout=0.0,
                                            batch_first=True).eval()


def transformer_data(count: int = 24) -> List[Any]:
    import torch

    torch.manual_seed(1)
    return [torch.randn(1, 16, 64) for _ in range(count)]


def outlier_model() -> Any:
    """A model int8 breaks: one hidden channel carries activations 1000x the others (and a weight
    1000x smaller after it, so every channel matters to the output). Per-tensor int8 activations
    then have a step of ~1000/127 and the other channels round to zero."""
    import torch

    torch.manual_seed(0)
    first, second = torch.nn.Linear(32, 32), torch.nn.Linear(32, 8)
    scale = torch.ones(32)
    scale[0] = 1000.0
    with torch.no_grad():
        first.weight.mul_(scale[:, None])
        first.bias.mul_(scale)
        second.weight.div_(scale[None, :])
    return torch.nn.Sequential(first, torch.nn.ReLU(), second).eval()


def outlier_data(count: int = 24) -> List[Any]:
    import torch

    torch.manual_seed(1)
    return [torch.randn(1, 32) for _ in range(count)]


def top1_metric(outputs: Dict[str, np.ndarray], reference: Dict[str, np.ndarray]) -> Tuple[float, bool]:
    """A task metric: top-1 agreement of the class scores, passed at >= 90%."""
    name = next(iter(reference))
    score = float(np.mean(outputs[name].argmax(axis=-1) == reference[name].argmax(axis=-1)))
    return score, score >= 0.9


def strict_metric(outputs: Dict[str, np.ndarray], reference: Dict[str, np.ndarray]) -> Tuple[float, bool]:
    """A task metric no quantized model passes: relative L2 error below 1e-6."""
    name = next(iter(reference))
    score = float(np.linalg.norm(outputs[name] - reference[name]) / np.linalg.norm(reference[name]))
    return score, score < 1e-6
