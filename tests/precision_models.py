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
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1, stride=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, padding=1, stride=2),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 10),
    ).eval()


def cnn_data(count: int = 24) -> List[Any]:
    import torch

    torch.manual_seed(1)
    return [torch.randn(1, 3, 48, 48) for _ in range(count)]


def transformer_block() -> Any:
    """One Transformer encoder block (4-head self-attention and a GELU MLP, post-norm), written out
    with MatMuls: the MatMul-heavy kind of model where dynamic int8 pays."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self, width: int = 64, heads: int = 4):
            super().__init__()
            self.heads = heads
            self.qkv, self.out = torch.nn.Linear(width, 3 * width), torch.nn.Linear(width, width)
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(width, 4 * width), torch.nn.GELU(), torch.nn.Linear(4 * width, width)
            )
            self.norm1, self.norm2 = torch.nn.LayerNorm(width), torch.nn.LayerNorm(width)

        def forward(self, x: Any) -> Any:
            b, t, w = x.shape
            q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            attention = torch.softmax(q @ k.transpose(-1, -2) / (w // self.heads) ** 0.5, dim=-1)
            x = self.norm1(x + self.out((attention @ v).transpose(1, 2).reshape(b, t, w)))
            return self.norm2(x + self.mlp(x))

    torch.manual_seed(0)
    return Block().eval()


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
