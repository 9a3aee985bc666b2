"""Tiny, deterministic torch models and dataloaders for the tests (each builds in milliseconds).

torch is imported lazily inside the factories, so importing this module stays cheap and does not
pull torch into tests that do not need it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

SEED = 0


def _torch():
    import torch

    return torch


# ------------------------------------------------------------------------------------------------
# Linear 5 -> 7 (the reference's PyTorch example)
# ------------------------------------------------------------------------------------------------


def linear_model() -> Any:
    torch = _torch()
    torch.manual_seed(SEED)
    return torch.nn.Linear(5, 7).eval()


def linear_dataloader(batches: int = 10, batch_size: int = 3, random: bool = False) -> List[Any]:
    """The reference example's dataloader: `batches` tensors of shape (batch_size, 5)."""
    torch = _torch()
    if not random:
        return [torch.full((batch_size, 5), 1.0) for _ in range(batches)]
    generator = torch.Generator().manual_seed(SEED)
    return [torch.randn(batch_size, 5, generator=generator) for _ in range(batches)]


# ------------------------------------------------------------------------------------------------
# Small CNN on 1x3x32x32 images
# ------------------------------------------------------------------------------------------------


def cnn_model() -> Any:
    torch = _torch()
    torch.manual_seed(SEED)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    ).eval()


def cnn_dataloader(batches: int = 3, batch_size: int = 4) -> List[Any]:
    torch = _torch()
    generator = torch.Generator().manual_seed(SEED)
    return [torch.rand(batch_size, 3, 32, 32, generator=generator) for _ in range(batches)]


# ------------------------------------------------------------------------------------------------
# Keyword (dict) inputs of varying sequence length, two named outputs
# ------------------------------------------------------------------------------------------------


def _token_model_class():
    torch = _torch()

    class TokenModel(torch.nn.Module):
        """forward(input_ids, attention_mask) -> {'logits': (B, S, 3), 'pooled': (B, 8)}."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(50, 8)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Dict[str, torch.Tensor]:
            hidden = self.embedding(input_ids)  # (B, S, 8)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            return {"logits": self.head(hidden), "pooled": pooled}

    return TokenModel


def token_model() -> Any:
    torch = _torch()
    torch.manual_seed(SEED)
    return _token_model_class()().eval()


TOKEN_SEQ_LENS = (4, 9, 6, 12, 7)


def token_dataloader(batch_size: int = 2, seq_lens: Tuple[int, ...] = TOKEN_SEQ_LENS) -> List[Dict[str, Any]]:
    """Dict batches {'input_ids', 'attention_mask'} (int64) whose sequence length varies per batch."""
    torch = _torch()
    generator = torch.Generator().manual_seed(SEED)
    batches = []
    for seq in seq_lens:
        ids = torch.randint(0, 50, (batch_size, seq), generator=generator, dtype=torch.int64)
        mask = torch.ones(batch_size, seq, dtype=torch.int64)
        mask[:, seq - 1] = 0  # a padded position, so the mask matters
        batches.append({"attention_mask": mask, "input_ids": ids})  # not forward()'s order on purpose
    return batches


# ------------------------------------------------------------------------------------------------
# A model torch.jit.script cannot compile but tracing (and torch.export) can
# ------------------------------------------------------------------------------------------------


def _script_failing_class():
    torch = _torch()

    class ScriptFailingModel(torch.nn.Module):
        """Uses a Python lambda in forward: TorchScript refuses lambdas; tracing just runs it."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 7)

        def forward(self, x):
            activation = lambda t: torch.relu(t) * 2.0  # noqa: E731  (the point of this model)
            return activation(self.linear(x))

    return ScriptFailingModel


def script_failing_model() -> Any:
    torch = _torch()
    torch.manual_seed(SEED)
    return _script_failing_class()().eval()


# ------------------------------------------------------------------------------------------------
# A model whose traced exports are specialised to the batch size they were traced with
# ------------------------------------------------------------------------------------------------


def _batch_unrolled_class():
    torch = _torch()

    class BatchUnrolledModel(torch.nn.Module):
        """Loops over the batch in Python: eager and TorchScript-script handle any batch size, but a
        tracer unrolls the loop for the traced batch size, so traced exports only work at that size."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 7)

        def forward(self, x):
            rows = [self.linear(x[i]) for i in range(int(x.shape[0]))]
            return torch.stack(rows)

    return BatchUnrolledModel


def batch_unrolled_model() -> Any:
    torch = _torch()
    torch.manual_seed(SEED)
    return _batch_unrolled_class()().eval()


# ------------------------------------------------------------------------------------------------
# Models that fail, or return something odd
# ------------------------------------------------------------------------------------------------


class ModelFailure(RuntimeError):
    pass


FAILING_MODEL_MESSAGE = "tiny model refuses this input: widget count 42 exceeded"


def _raising_class():
    torch = _torch()

    class RaisingModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 7)

        def forward(self, x):
            raise ModelFailure(FAILING_MODEL_MESSAGE)

    return RaisingModel


def raising_model() -> Any:
    return _raising_class()().eval()


def _two_output_class():
    torch = _torch()

    class TwoOutputModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 7)

        def forward(self, x):
            y = self.linear(x)
            return y, y.sum(dim=1, keepdim=True)

    return TwoOutputModel


def two_output_model() -> Any:
    torch = _torch()
    torch.manual_seed(SEED)
    return _two_output_class()().eval()
