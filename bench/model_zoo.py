"""Model-zoo benchmark: real architectures (random weights, tiny configs, no downloads) exported the way a
new user would, plus the evidence for default correctness tolerances.

    cd /work/wt19 && PYTHONPATH=. python bench/model_zoo.py                 # every model, ~10-15 min on 2 cores
    PYTHONPATH=. python bench/model_zoo.py --models bert resnet18           # a subset (results merged by name)
    PYTHONPATH=. python bench/model_zoo.py --threads 1                      # torch on 1 thread (shared cores)
    PYTHONPATH=. python bench/model_zoo.py --model bert --out /tmp/b.json   # one model in this process

What it does
    Every model runs in its own process (this script with `--model NAME`), started by the parent with
    `os.wait4` so the parent gets that process tree's peak RSS. The child builds the model from its
    constructor / config with a fixed seed, calls `nav.torch.export` / `nav.tensorflow.export` /
    `nav.jax.export` with the library's default formats and runtimes (OpenVINO included when
    installed), `sample_count=8` and a light profiler (batch 1, windows of 20 requests, at most 4), and
    records per path and runtime: status, reason (first 200 characters), max abs / rel error per output
    as the package recorded them, p50 latency at batch 1; plus wall time, peak memory and the load
    average (on a shared machine the latencies are only indicative: the profiler runs while other
    processes compete for the cores).

Tolerance evidence
    For every path and runtime whose correctness is ok, the child re-runs the runner from
    `package.get_runner(...)` on the workspace's correctness samples (`model_input/correctness/*.npz`,
    compared with `model_output/correctness/*.npz`, loaded with `allow_pickle=False`), at batch 1 and on
    the first 3 samples rebuilt to the dataloader's batch size (as the correctness step does), and per
    output computes: max abs error, max rel error (|a-b|/|b|, b != 0), max |reference|, and for each rtol
    in RTOLS the smallest atol that passes under Polygraphy's rule (an element fails only when it
    exceeds BOTH atol and rtol): the max abs error over the elements whose rel error exceeds that rtol
    (a reference of 0 with a difference counts as infinitely relative, as model-navigator's compare does),
    0 when there is none.
    A path+runtime counts as *wrong* (listed apart, kept out of the evidence) when its max abs error is
    above WRONG_NORMALISED times max(1, max |reference|) of that output: correct fp32 paths on these tiny
    models sit 3-6 orders of magnitude below that, a trace that baked in a branch or a shape sits at it.

Models (transformers ones get dict samples {"input_ids": ..., "attention_mask": ...} as users pass them)
    bert, distilbert, gpt2 (use_cache=False), t5, bart, wav2vec2, whisper (encoder-decoder with
    decoder_input_ids): transformers `XxxConfig(...)` + `XxxModel(config)`; resnet18 (BasicBlocks),
    mobilenetv3 (inverted residuals, depthwise convs, squeeze-excite, hardswish), vit (patch conv, cls
    token, pre-norm blocks): hand-built torch (torchvision must not be installed); lstm (embedding +
    2-layer LSTM over token ids of varying length); keras_cnn (tf.keras functional CNN with BatchNorm
    and a depthwise conv); flax_cnn (flax.linen residual CNN through nav.jax.export); branchy: a
    negative control, not an architecture (a branch on the input's values that tracing bakes in),
    so the table of wrong paths shows what a wrong export's errors look like.

Results
    bench/results/model_zoo.json (everything), bench/results/model_zoo.md (zoo table),
    bench/results/tolerance_evidence.md (evidence table and the worst case per family).
    Workspaces go to bench/results/tmp/ (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TMP = RESULTS / "tmp" / "model_zoo"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SAMPLE_COUNT = 8
RTOLS: Tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2)
WRONG_NORMALISED = 1e-2
BATCHED_SAMPLES = 3
REASON_CHARS = 200
MODEL_TIMEOUT_S = 420
PROFILER = dict(
    batch_sizes=(1,), measurement_request_count=15, max_trials=3, stability_percentage=30, warmup_requests=3
)


# ------------------------------------------------------------------------------------------------
# Models: each builder returns (framework, model, dataloader, export kwargs); model params for JAX
# travel in the kwargs as `model_params`.
# ------------------------------------------------------------------------------------------------

Built = Tuple[str, Any, List[Any], Dict[str, Any]]


def _seed(seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)


def _text_batches(
    vocab: int, seq_lens: Tuple[int, ...] = (8, 12, 16), batch: int = 2, token_types: bool = False
) -> List[Dict[str, Any]]:
    """Dicts of int64 torch tensors, one batch per sequence length; the last rows padded (mask 0)."""
    import torch

    g = torch.Generator().manual_seed(0)
    batches = []
    for length in seq_lens:
        ids = torch.randint(4, vocab, (batch, length), generator=g)
        mask = torch.ones(batch, length, dtype=torch.int64)
        mask[-1, length - 3 :] = 0  # padding on the last row
        ids[-1, length - 3 :] = 0
        item: Dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if token_types:
            tt = torch.zeros(batch, length, dtype=torch.int64)
            tt[:, length // 2 :] = 1
            item["token_type_ids"] = tt
        batches.append(item)
    return batches


def build_bert() -> Built:
    import transformers

    _seed()
    config = transformers.BertConfig(
        vocab_size=500,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = transformers.BertModel(config).eval()
    return "torch", model, _text_batches(500, token_types=True), {}


def build_distilbert() -> Built:
    import transformers

    _seed()
    config = transformers.DistilBertConfig(
        vocab_size=500, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64
    )
    model = transformers.DistilBertModel(config).eval()
    return "torch", model, _text_batches(500), {}


def build_gpt2() -> Built:
    import transformers

    _seed()
    config = transformers.GPT2Config(
        vocab_size=500, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=1, eos_token_id=2, use_cache=False
    )
    model = transformers.GPT2Model(config).eval()
    return "torch", model, _text_batches(500), {}


def _seq2seq_batches(vocab: int, decoder_start: int) -> List[Dict[str, Any]]:
    import torch

    g = torch.Generator().manual_seed(1)
    batches = _text_batches(vocab)
    for item, dec_len in zip(batches, (4, 6, 5), strict=True):
        dec = torch.randint(4, vocab, (2, dec_len), generator=g)
        dec[:, 0] = decoder_start
        item["decoder_input_ids"] = dec
    return batches


def build_t5() -> Built:
    import transformers

    _seed()
    config = transformers.T5Config(
        vocab_size=500,
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        use_cache=False,
    )
    model = transformers.T5Model(config).eval()
    return "torch", model, _seq2seq_batches(500, 0), {}


def build_bart() -> Built:
    import transformers

    _seed()
    config = transformers.BartConfig(
        vocab_size=500,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        use_cache=False,
    )
    model = transformers.BartModel(config).eval()
    return "torch", model, _seq2seq_batches(500, 2), {}


def build_wav2vec2() -> Built:
    import torch
    import transformers

    _seed()
    config = transformers.Wav2Vec2Config(
        vocab_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 2, 2),
        conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        mask_time_prob=0.0,
    )
    model = transformers.Wav2Vec2Model(config).eval()
    g = torch.Generator().manual_seed(0)
    batches = [{"input_values": torch.randn(2, n, generator=g)} for n in (1600, 2000, 2400)]
    return "torch", model, batches, {}


def build_whisper() -> Built:
    import torch
    import transformers

    _seed()
    config = transformers.WhisperConfig(
        vocab_size=200,
        num_mel_bins=16,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=50,
        max_target_positions=32,
        decoder_start_token_id=1,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        use_cache=False,
    )
    model = transformers.WhisperModel(config).eval()
    g = torch.Generator().manual_seed(0)
    batches = []
    for dec_len in (3, 5, 4):
        dec = torch.randint(3, 200, (2, dec_len), generator=g)
        dec[:, 0] = 1
        # Whisper's encoder takes exactly 2 * max_source_positions frames
        batches.append({"input_features": torch.randn(2, 16, 100, generator=g), "decoder_input_ids": dec})
    return "torch", model, batches, {}


def _randomize_bn(module: Any) -> None:
    """Non-trivial running statistics and affine params so eval BatchNorm really normalises."""
    import torch

    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _image_batches(size: int, batches: int = 3, batch: int = 2) -> List[Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    return [torch.randn(batch, 3, size, size, generator=g) for _ in range(batches)]


def build_resnet18() -> Built:
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.down is None else self.down(x)
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        """torchvision's resnet18 layout (2-2-2-2 BasicBlocks, stem conv 7x7/2 + maxpool) at 1/4 width."""

        def __init__(self, width: int = 16, classes: int = 10) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            )
            layers, cin = [], width
            for i, cout in enumerate((width, width * 2, width * 4, width * 8)):
                layers += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))

    _seed()
    model = ResNet18()
    _randomize_bn(model)
    return "torch", model.eval(), _image_batches(64), {}


def build_mobilenetv3() -> Built:
    import torch
    from torch import nn

    class SqueezeExcite(nn.Module):
        def __init__(self, channels: int, squeeze: int) -> None:
            super().__init__()
            self.fc1 = nn.Conv2d(channels, squeeze, 1)
            self.fc2 = nn.Conv2d(squeeze, channels, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, expand: int, cout: int, kernel: int, stride: int, se: bool, hs: bool) -> None:
            super().__init__()
            act = nn.Hardswish if hs else nn.ReLU
            layers: List[nn.Module] = []
            if expand != cin:
                layers += [nn.Conv2d(cin, expand, 1, bias=False), nn.BatchNorm2d(expand), act()]
            layers += [
                nn.Conv2d(expand, expand, kernel, stride, kernel // 2, groups=expand, bias=False),
                nn.BatchNorm2d(expand),
                act(),
            ]
            if se:
                layers.append(SqueezeExcite(expand, max(8, expand // 4)))
            layers += [nn.Conv2d(expand, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.block(x)
            return out + x if self.residual else out

    class MobileNetV3Small(nn.Module):
        """MobileNetV3-Small's block table (kernel, expand, out, SE, hardswish, stride), half width."""

        SPEC = (
            (3, 16, 8, True, False, 2),
            (3, 36, 12, False, False, 2),
            (3, 44, 12, False, False, 1),
            (5, 48, 20, True, True, 2),
            (5, 120, 20, True, True, 1),
            (5, 60, 24, True, True, 1),
            (5, 144, 48, True, True, 2),
            (5, 288, 48, True, True, 1),
        )

        def __init__(self, classes: int = 10) -> None:
            super().__init__()
            layers: List[nn.Module] = [nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish()]
            cin = 8
            for k, e, c, se, hs, s in self.SPEC:
                layers.append(InvertedResidual(cin, e, c, k, s, se, hs))
                cin = c
            layers += [nn.Conv2d(cin, 288, 1, bias=False), nn.BatchNorm2d(288), nn.Hardswish()]
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Linear(288, 512), nn.Hardswish(), nn.Linear(512, classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    _seed()
    model = MobileNetV3Small()
    _randomize_bn(model)
    return "torch", model.eval(), _image_batches(64), {}


def build_vit() -> Built:
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, dim: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, c = x.shape
            qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
            out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
            x = x + self.proj(out)
            return x + self.mlp(self.norm2(x))

    class ViT(nn.Module):
        """timm's ViT layout (patch conv, cls token, learned positions, pre-norm blocks, cls head)."""

        def __init__(
            self, image: int = 32, patch: int = 4, dim: int = 64, depth: int = 4, heads: int = 4, classes: int = 10
        ) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, dim, patch, patch)
            self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
            self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            return self.head(self.norm(self.blocks(x))[:, 0])

    _seed()
    return "torch", ViT().eval(), _image_batches(32), {}


def build_lstm() -> Built:
    import torch
    from torch import nn

    class LSTMClassifier(nn.Module):
        def __init__(self, vocab: int = 300, dim: int = 32, hidden: int = 48, classes: int = 5) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.lstm = nn.LSTM(dim, hidden, num_layers=2, batch_first=True)
            self.head = nn.Linear(hidden, classes)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(self.embed(tokens))
            return self.head(out[:, -1])

    _seed()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 300, (2, n), generator=g) for n in (8, 12, 16)]
    return "torch", LSTMClassifier().eval(), batches, {}


def build_keras_cnn() -> Built:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    inp = tf.keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(16, 1)(y)
    x = layers.Add()([x, y])
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10)(x)
    model = tf.keras.Model(inp, x)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # non-trivial BatchNorm statistics
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.75, 1.25, gamma.shape).astype(np.float32),
                    rng.normal(0, 0.1, beta.shape).astype(np.float32),
                    rng.normal(0, 0.1, mean.shape).astype(np.float32),
                    rng.uniform(0.75, 1.25, var.shape).astype(np.float32),
                ]
            )
    data = np.random.default_rng(0)
    batches = [data.standard_normal((2, 32, 32, 3)).astype(np.float32) for _ in range(3)]
    return "tensorflow", model, batches, {}


def build_flax_cnn() -> Built:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class ResBlock(nn.Module):
        channels: int

        @nn.compact
        def __call__(self, x: Any) -> Any:
            y = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(self.channels, (3, 3), use_bias=False)(x)))
            y = nn.BatchNorm(use_running_average=True)(nn.Conv(self.channels, (3, 3), use_bias=False)(y))
            return nn.relu(x + y)

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x: Any) -> Any:
            x = nn.relu(nn.Conv(16, (3, 3), strides=(2, 2))(x))
            x = ResBlock(16)(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
            x = nn.relu(nn.Conv(32, (3, 3))(x))
            x = ResBlock(32)(x)
            return nn.Dense(10)(jnp.mean(x, axis=(1, 2)))

    model = CNN()
    variables = model.init(jax.random.PRNGKey(0), jnp.ones((1, 32, 32, 3), jnp.float32))
    rng = np.random.default_rng(1)
    stats = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.uniform(0.75, 1.25, a.shape).astype(np.float32)), variables["batch_stats"]
    )
    variables = {"params": variables["params"], "batch_stats": stats}

    def predict(image: Any, params: Any) -> Any:
        return model.apply(params, image)

    data = np.random.default_rng(0)
    batches = [data.standard_normal((2, 32, 32, 3)).astype(np.float32) for _ in range(3)]
    return "jax", predict, batches, {"model_params": variables}


def build_branchy() -> Built:
    """Negative control, not an architecture: forward() branches on the input's values, so every
    tracing exporter (TorchScript trace, the TorchScript-based ONNX exporter) bakes in the branch of
    its example and is wrong on the samples that take the other one; scripting keeps the branch."""
    import torch
    from torch import nn

    class BranchOnInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc(x)
            if bool(x.mean() > 0):
                return torch.tanh(h)
            return 2 * h + 1

    _seed()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(2, 16, generator=g) + offset for offset in (1.0, -1.0, 1.0, -1.0)]
    return "torch", BranchOnInput().eval(), batches, {}


MODELS: Dict[str, Tuple[Callable[[], Built], str]] = {
    "bert": (
        build_bert,
        "transformers BertModel, 2 layers, hidden 32, vocab 500; input_ids/attention_mask/token_type_ids",
    ),
    "distilbert": (build_distilbert, "transformers DistilBertModel, 2 layers, dim 32"),
    "gpt2": (build_gpt2, "transformers GPT2Model, 2 layers, n_embd 32, use_cache=False"),
    "t5": (build_t5, "transformers T5Model, 2+2 layers, d_model 32; decoder_input_ids"),
    "bart": (build_bart, "transformers BartModel, 2+2 layers, d_model 32; decoder_input_ids"),
    "wav2vec2": (build_wav2vec2, "transformers Wav2Vec2Model, 3 conv + 2 layers, hidden 32; 1600-2400 samples"),
    "whisper": (build_whisper, "transformers WhisperModel, 2+2 layers, d_model 32, 16 mel x 100 frames"),
    "resnet18": (build_resnet18, "hand-built ResNet-18 (2-2-2-2 BasicBlocks, width 16), 3x64x64"),
    "mobilenetv3": (build_mobilenetv3, "hand-built MobileNetV3-Small (SE, hardswish, depthwise), 3x64x64"),
    "vit": (build_vit, "hand-built ViT (patch 4, dim 64, 4 blocks, 4 heads), 3x32x32"),
    "lstm": (build_lstm, "Embedding + 2-layer LSTM (hidden 48) + Linear over token ids, length 8-16"),
    "keras_cnn": (build_keras_cnn, "tf.keras functional CNN (BatchNorm, depthwise, residual add), 32x32x3"),
    "flax_cnn": (build_flax_cnn, "flax.linen residual CNN with BatchNorm via nav.jax.export, 32x32x3"),
    "branchy": (
        build_branchy,
        "negative control (not an architecture): Linear + a branch on the input's mean; tracing bakes one branch in",
    ),
}


# ------------------------------------------------------------------------------------------------
# One model (child process)
# ------------------------------------------------------------------------------------------------


def _short(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def _load_npz_dir(folder: Path) -> List[Dict[str, np.ndarray]]:
    files = sorted(folder.glob("*.npz"), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
    out = []
    for f in files:
        with np.load(f, allow_pickle=False) as data:
            out.append({k: data[k] for k in data.files})
    return out


def output_evidence(actual: np.ndarray, expected: np.ndarray) -> Dict[str, Any]:
    """Per-element errors of one output reduced to the numbers that decide a tolerance."""
    a = np.asarray(actual).astype(np.float64)
    b = np.asarray(expected).astype(np.float64)
    finite = np.isfinite(a) & np.isfinite(b)
    absdiff = np.where(finite, np.abs(a - b), 0.0)
    absref = np.abs(np.where(finite, b, 0.0))
    rel = np.divide(absdiff, absref, out=np.zeros_like(absdiff), where=absref > 0)
    strict_rel = np.where((absref == 0) & (absdiff > 0), np.inf, rel)
    ev: Dict[str, Any] = {
        "max_abs_error": float(absdiff.max()) if absdiff.size else 0.0,
        "max_rel_error": float(rel.max()) if rel.size else 0.0,
        "max_abs_reference": float(absref.max()) if absref.size else 0.0,
        "elements": int(absdiff.size),
        "nonfinite_mismatch": int((~finite & ~(np.isnan(a) & np.isnan(b))).sum()),
    }
    for rtol in RTOLS:
        over = strict_rel > rtol
        ev[f"atol_at_rtol_{rtol:g}"] = float(absdiff[over].max()) if over.any() else 0.0
    return ev


def _merge_evidence(old: Optional[Dict[str, Any]], new: Dict[str, Any]) -> Dict[str, Any]:
    if old is None:
        return dict(new)
    merged = {}
    for key, value in new.items():
        merged[key] = old[key] + value if key in ("elements", "nonfinite_mismatch") else max(old[key], value)
    return merged


def tolerance_evidence(
    package: Any, path: Any, runtime: Any, workdir: Path, batch_dim: Optional[int], batch: int, output_names: List[str]
) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Re-run the path's runner on the correctness samples (batch 1, then rebuilt batches):
    {"all": {output: evidence}, "bs1": ..., "batched": ...}. A rebuilt batch is compared with the
    batch-1 reference repeated, so "batched" also holds the source model's own batch dependence
    (kernels that reduce in another order at another batch size)."""
    inputs = _load_npz_dir(workdir / "model_input" / "correctness")
    outputs = _load_npz_dir(workdir / "model_output" / "correctness")
    kwargs: Dict[str, Any] = {"format": path.format, "runtime": runtime, **path.selectors}
    if path.jit_type is not None:
        kwargs["jit_type"] = path.jit_type
    if path.precision is not None:
        kwargs["precision"] = path.precision
    runner = package.get_runner(**kwargs)
    if runner.name.split(":")[0] != path.key:
        raise RuntimeError(f"get_runner({kwargs}) gave {runner.name}, not {path.key}")
    evidence: Dict[str, Dict[str, Dict[str, Any]]] = {"all": {}, "bs1": {}, "batched": {}}
    with runner:
        pairs = [(x, y, 1) for x, y in zip(inputs, outputs, strict=True)]
        if batch_dim is not None and batch > 1:
            pairs += [
                (
                    {k: np.repeat(v, batch, axis=batch_dim) for k, v in x.items()},
                    {k: np.repeat(v, batch, axis=batch_dim) if v.ndim > batch_dim else v for k, v in y.items()},
                    batch,
                )
                for x, y in zip(inputs[:BATCHED_SAMPLES], outputs[:BATCHED_SAMPLES], strict=True)
            ]
        for sample, expected, size in pairs:
            actual = runner.infer(sample, check_inputs=False)
            for name in output_names:
                ev = output_evidence(actual[name], expected[name])
                for part in ("all", "bs1" if size == 1 else "batched"):
                    evidence[part][name] = _merge_evidence(evidence[part].get(name), ev)
    return evidence


def recompute_evidence(name: str, record: Dict[str, Any]) -> Dict[str, Any]:
    """`--evidence-only`: the evidence again from the model's existing workspace (no export)."""
    from model_navigator.package.descriptor import PackageDescriptor

    workdir = TMP / name / "navigator_workdir"
    # Build the model (not used) so its classes are imported: a transformers model's .pt2 names its
    # ModelOutput class as a pytree node, and torch.export.load fails in a process where that class
    # was never defined ("Deserializing transformers.modeling_outputs.... in pytree is not registered").
    MODELS[name][0]()
    package = PackageDescriptor.from_workdir(workdir)
    status = package.status
    batch = int(status.dataloader.get("batch_size", 1))
    for entry in record.get("paths", []):
        path = status.paths[entry["path"]]
        for rt in entry["runtimes"]:
            if "evidence" not in rt and "evidence_error" not in rt:
                continue
            rt.pop("evidence_error", None)
            try:
                _store_evidence(
                    rt,
                    tolerance_evidence(
                        package,
                        path,
                        next(r for r in path.runtimes if r.value == rt["runtime"]),
                        workdir,
                        status.config.batch_dim,
                        batch if batch > 1 else 2,
                        [m.name for m in status.outputs],
                    ),
                )
            except Exception as e:
                rt["evidence_error"] = _short(f"{type(e).__name__}: {e}")
    return record


def _store_evidence(rt: Dict[str, Any], evidence: Dict[str, Dict[str, Dict[str, Any]]]) -> None:
    rt["evidence"] = evidence["all"]
    rt["evidence_bs1"] = evidence["bs1"]
    rt["evidence_batched"] = evidence["batched"]


def export_one(name: str, workdir: Path) -> Tuple[Any, str, float]:
    import model_navigator as nav

    builder, _ = MODELS[name]
    framework, model, dataloader, kwargs = builder()
    common = dict(
        workdir=workdir,
        override_workdir=True,
        sample_count=SAMPLE_COUNT,
        model_name=name,
        profiler_config=nav.ProfilerConfig(**PROFILER),
        verbose=False,
        disable_git_info=True,
    )
    start = time.perf_counter()
    if framework == "torch":
        package = nav.torch.export(model=model, dataloader=dataloader, **common, **kwargs)
    elif framework == "tensorflow":
        package = nav.tensorflow.export(model=model, dataloader=dataloader, **common, **kwargs)
    else:
        params = kwargs.pop("model_params")
        package = nav.jax.export(model=model, model_params=params, dataloader=dataloader, **common, **kwargs)
    return package, framework, time.perf_counter() - start


def run_model(name: str) -> Dict[str, Any]:
    """Export one model and collect its results (runs in the child process)."""
    workdir = TMP / name / "navigator_workdir"
    workdir.parent.mkdir(parents=True, exist_ok=True)
    record: Dict[str, Any] = {
        "model": name,
        "description": MODELS[name][1],
        "load_average_at_start": list(os.getloadavg()),
    }
    try:
        package, framework, export_s = export_one(name, workdir)
    except Exception as e:  # the export call itself raised: nothing to collect
        record.update(
            framework=None,
            export_error=_short(f"{type(e).__name__}: {e}"),
            traceback=traceback.format_exc()[-2000:],
            paths=[],
        )
        return record
    status = package.status
    record.update(
        framework=framework,
        export_s=round(export_s, 2),
        inputs=[{"name": m.name, "shape": list(m.shape), "dtype": m.dtype} for m in status.inputs],
        outputs=[{"name": m.name, "shape": list(m.shape), "dtype": m.dtype} for m in status.outputs],
    )
    output_names = [m.name for m in status.outputs]
    batch_dim = status.config.batch_dim
    batch = int(status.dataloader.get("batch_size", 1))
    batch = batch if batch > 1 else 2
    paths = []
    for key, path in status.paths.items():
        entry: Dict[str, Any] = {
            "path": key,
            "format": path.format.value,
            "jit_type": path.jit_type.value if path.jit_type else None,
            "status": path.status.value,
            "reason": _short(path.reason),
            "source": path.format.value in ("torch", "tensorflow", "jax"),
            "runtimes": [],
        }
        for runtime, result in path.runtimes.items():
            corr, perf = result.correctness, result.performance
            rt: Dict[str, Any] = {
                "runtime": runtime.value,
                "correctness": corr.status.value if corr else None,
                "correctness_reason": _short(corr.reason) if corr else None,
                "errors": {
                    n: {"max_abs": e.max_abs_error, "max_rel": e.max_rel_error}
                    for n, e in (corr.per_output.items() if corr else [])
                },
                "checked_batch_sizes": list(corr.batch_sizes) if corr else [],
                "profiling": perf.status.value if perf else None,
                "profiling_reason": _short(perf.reason) if perf else None,
                "p50_ms_bs1": None,
                "stable": None,
            }
            for p in perf.results if perf else []:
                if p.batch_size == 1:
                    rt["p50_ms_bs1"], rt["stable"] = p.p50_ms, p.stable
            if path.ok and not entry["source"] and corr is not None and corr.status.value == "ok":
                try:
                    _store_evidence(
                        rt, tolerance_evidence(package, path, runtime, workdir, batch_dim, batch, output_names)
                    )
                except Exception as e:
                    rt["evidence_error"] = _short(f"{type(e).__name__}: {e}")
            entry["runtimes"].append(rt)
        paths.append(entry)
    record["paths"] = paths
    return record


def child(name: str, out: Path, evidence_only: bool = False) -> None:
    start = time.perf_counter()
    if evidence_only:
        record = recompute_evidence(name, json.loads(out.read_text()))
        out.write_text(json.dumps(record, indent=1, default=str))
        return
    record = run_model(name)
    try:  # stop model-navigator's worker so its peak RSS is in RUSAGE_CHILDREN
        from model_navigator.steps.worker import shutdown_workers

        shutdown_workers()
    except Exception:
        pass
    record["child_wall_s"] = round(time.perf_counter() - start, 2)
    record["load_average_at_end"] = list(os.getloadavg())
    record["peak_rss_self_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    record["peak_rss_children_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    out.write_text(json.dumps(record, indent=1, default=str))


# ------------------------------------------------------------------------------------------------
# Parent: one process per model, then the tables
# ------------------------------------------------------------------------------------------------


def run_child(name: str, timeout_s: float, threads: Optional[int] = None) -> Dict[str, Any]:
    out = TMP / f"{name}.json"
    log = TMP / f"{name}.log"
    out.unlink(missing_ok=True)
    TMP.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--model", name, "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads (the model process and its worker)
    start = time.perf_counter()
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        _, wstatus, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(wstatus)
    wall = time.perf_counter() - start
    if out.is_file():
        record = json.loads(out.read_text())
    else:
        tail = log.read_text(errors="replace")[-1500:]
        record = {
            "model": name,
            "description": MODELS[name][1],
            "framework": None,
            "paths": [],
            "export_error": "timed out after %.0f s" % timeout_s
            if timed_out.is_set()
            else f"process exited with {proc.returncode}: {_short(tail[-400:])}",
            "log_tail": tail,
        }
    record["wall_s"] = round(wall, 1)
    record["returncode"] = proc.returncode
    # wait4: the child's own peak RSS or that of its largest reaped descendant, whichever is larger
    record["peak_rss_tree_mib"] = round(usage.ru_maxrss / 1024, 1)
    return record


def _fmt(value: Optional[float], spec: str = ".1e") -> str:
    return "-" if value is None else format(value, spec)


def classify(record: Dict[str, Any]) -> None:
    """Mark every runtime with evidence as correct or wrong (see WRONG_NORMALISED)."""
    for path in record.get("paths", []):
        for rt in path["runtimes"]:
            ev = rt.get("evidence")
            if not ev:
                continue
            limit = {n: WRONG_NORMALISED * max(1.0, e["max_abs_reference"]) for n, e in ev.items()}
            wrong = [n for n, e in ev.items() if e["max_abs_error"] > limit[n] or e["nonfinite_mismatch"]]
            rt["verdict"] = "wrong" if wrong else "correct"
            rt["wrong_outputs"] = wrong


def family(framework: str, path: Dict[str, Any], runtime: str) -> str:
    fmt = path["format"]
    if runtime == "OpenVINO":
        return "OpenVINO (ONNX)"
    if fmt == "torchscript":
        return f"TorchScript {path['jit_type']}"
    if fmt == "torch-exportedprogram":
        return "ExportedProgram"
    if fmt == "onnx":
        return "ONNX Runtime CPU (torch.onnx)" if framework == "torch" else "ONNX Runtime CPU (tf2onnx)"
    if fmt == "tf-savedmodel":
        return "TF SavedModel (Keras)" if framework == "tensorflow" else "TF SavedModel (jax2tf)"
    return f"{fmt} on {runtime}"


def zoo_table(records: Dict[str, Dict[str, Any]]) -> str:
    lines = [
        "| model | path | runtime | status | max abs err | max rel err | p50 ms bs1 | reason |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, rec in records.items():
        if rec.get("export_error"):
            lines.append(f"| {name} | (export call) | - | error | - | - | - | {_cell(rec['export_error'])} |")
            continue
        skipped = [p["path"] for p in rec["paths"] if p["status"] == "skipped"]
        for path in rec["paths"]:
            if path["status"] == "skipped":
                continue
            if not path["runtimes"]:
                lines.append(
                    f"| {name} | {path['path']} | - | {path['status']} | - | - | - | {_cell(path['reason'])} |"
                )
                continue
            for rt in path["runtimes"]:
                if path["source"]:
                    st = "source"
                elif path["status"] != "ok":
                    st = path["status"]
                else:
                    st = rt["correctness"] or "not run"
                    if rt.get("verdict") == "wrong":
                        st += " (WRONG)"
                errs = rt["errors"]
                abs_e = max((e["max_abs"] for e in errs.values()), default=None)
                rel_e = max((e["max_rel"] for e in errs.values()), default=None)
                p50 = _fmt(rt["p50_ms_bs1"], ".3f") + ("" if rt["stable"] in (None, True) else " ~")
                reason = (
                    path["reason"]
                    if path["status"] != "ok"
                    else (rt["correctness_reason"] or rt.get("profiling_reason") or rt.get("evidence_error"))
                )
                lines.append(
                    f"| {name} | {path['path']} | {rt['runtime']} | {st} | {_fmt(abs_e)} | {_fmt(rel_e)} | "
                    f"{p50} | {_cell(reason)} |"
                )
        if skipped:
            reasons = sorted({_cell(p["reason"]) for p in rec["paths"] if p["status"] == "skipped"})
            lines.append(f"| {name} | {', '.join(skipped)} | - | skipped | - | - | - | {'; '.join(reasons)} |")
    return "\n".join(lines)


def _cell(text: Optional[str]) -> str:
    return "" if not text else str(text).replace("|", "\\|").replace("\n", " ")


def evidence_rows(records: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per model/path/runtime, the worst output of each figure."""
    rows = []
    for name, rec in records.items():
        for path in rec.get("paths", []):
            for rt in path["runtimes"]:
                ev = rt.get("evidence")
                if not ev:
                    continue
                worst = {k: max(e[k] for e in ev.values()) for k in next(iter(ev.values())) if k != "elements"}
                worst_norm = max(e["max_abs_error"] / max(e["max_abs_reference"], 1e-30) for e in ev.values())
                bs1 = rt.get("evidence_bs1") or {}
                rows.append(
                    {
                        "model": name,
                        "path": path["path"],
                        "runtime": rt["runtime"],
                        "max_abs_error_bs1": max((e["max_abs_error"] for e in bs1.values()), default=None),
                        "max_rel_error_bs1": max((e["max_rel_error"] for e in bs1.values()), default=None),
                        "family": family(rec["framework"], path, rt["runtime"]),
                        "verdict": rt["verdict"],
                        "outputs": len(ev),
                        "worst_output_abs": max(ev, key=lambda n: ev[n]["max_abs_error"]),
                        "max_abs_over_max_ref": worst_norm,
                        **worst,
                    }
                )
    return rows


def evidence_table(rows: List[Dict[str, Any]], verdict: str) -> str:
    cols = "".join(f" atol@rtol {r:g} |" for r in RTOLS)
    lines = [
        f"| model | path | runtime | outputs | max abs err | max rel err | max abs err, batch 1 only | "
        f"max \\|ref\\| | abs/max\\|ref\\| |{cols}",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(RTOLS),
    ]
    for r in rows:
        if r["verdict"] != verdict:
            continue
        atols = "".join(f" {_fmt(r[f'atol_at_rtol_{t:g}'])} |" for t in RTOLS)
        lines.append(
            f"| {r['model']} | {r['path']} | {r['runtime']} | {r['outputs']} | {_fmt(r['max_abs_error'])} | "
            f"{_fmt(r['max_rel_error'])} | {_fmt(r['max_abs_error_bs1'])} | "
            f"{_fmt(r['max_abs_reference'], '.2g')} | "
            f"{_fmt(r['max_abs_over_max_ref'])} |{atols}"
        )
    return "\n".join(lines)


def family_summary(rows: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    summary: Dict[str, Dict[str, Any]] = {}
    keys = ["max_abs_error", "max_rel_error", "max_abs_error_bs1", "max_abs_over_max_ref"] + [
        f"atol_at_rtol_{t:g}" for t in RTOLS
    ]
    for r in rows:
        if r["verdict"] != "correct":
            continue
        s = summary.setdefault(r["family"], {"runs": 0, "models": set(), **{k: (0.0, "") for k in keys}})
        s["runs"] += 1
        s["models"].add(r["model"])
        for k in keys:
            if (r[k] or 0.0) > s[k][0]:  # the model that set the worst value; none while it is 0
                s[k] = (r[k], r["model"])
    for s in summary.values():
        s["models"] = sorted(s["models"])
    return dict(sorted(summary.items()))


def summary_table(summary: Dict[str, Dict[str, Any]]) -> str:
    cols = "".join(f" atol@rtol {r:g} |" for r in RTOLS)
    lines = [
        f"| family (fp32, CPU) | runs | max abs err | max rel err | max abs err, batch 1 only | "
        f"abs/max\\|ref\\| |{cols}",
        "| --- | ---: | --- | --- | --- | --- |" + " --- |" * len(RTOLS),
    ]
    for fam, s in summary.items():

        def cell(k: str, s: Dict[str, Any] = s) -> str:
            value, model = s[k]
            return f"{_fmt(value)} ({model})" if model else _fmt(value)

        atols = "".join(f" {cell(f'atol_at_rtol_{t:g}')} |" for t in RTOLS)
        lines.append(
            f"| {fam} | {s['runs']} | {cell('max_abs_error')} | {cell('max_rel_error')} | "
            f"{cell('max_abs_error_bs1')} | {cell('max_abs_over_max_ref')} |{atols}"
        )
    return "\n".join(lines)


def environment() -> Dict[str, Any]:
    versions = {}
    import importlib.metadata as metadata

    for dist in (
        "torch",
        "transformers",
        "onnx",
        "onnxruntime",
        "openvino",
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "tf2onnx",
        "jax",
        "flax",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "load_average_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "versions": versions,
    }


def write_results(records: Dict[str, Dict[str, Any]], meta: Dict[str, Any]) -> None:
    for rec in records.values():
        classify(rec)
    rows = evidence_rows(records)
    summary = family_summary(rows)
    wrong = [r for r in rows if r["verdict"] == "wrong"]
    data = {
        **meta,
        "sample_count": SAMPLE_COUNT,
        "profiler": PROFILER,
        "rtols": RTOLS,
        "wrong_normalised_threshold": WRONG_NORMALISED,
        "models": records,
        "tolerance_evidence": rows,
        "family_worst_case": summary,
        "wrong_paths": wrong,
    }
    (RESULTS / "model_zoo.json").write_text(json.dumps(data, indent=1, default=str) + "\n")

    total = sum(r.get("wall_s", 0) for r in records.values())
    head = [
        f"# Model zoo ({datetime.date.today().isoformat()})",
        "",
        f"{meta['environment']['machine']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["environment"]["versions"].items() if v),
        "",
        f"Each model in its own process, library defaults for formats and runtimes, sample_count "
        f"{SAMPLE_COUNT}, profiler {PROFILER}, OMP_NUM_THREADS {meta.get('omp_num_threads') or 'unset'} "
        f"(torch's threads; ONNX Runtime, OpenVINO and TensorFlow at their defaults). Latencies are indicative "
        f"only: the 2 cores were shared with other work (load average per model below). "
        f"Errors are what the package recorded (batch 1 and the "
        f"rebuilt batch; no tolerance given, so 'ok' means no structural mismatch). '~': unstable "
        f"profile. WRONG: max abs error > {WRONG_NORMALISED:g} x max(1, max |ref|).",
        "",
        "| model | description | framework | wall s | export s | peak RSS MiB (model process) | "
        "peak RSS MiB (largest in tree) | load avg (1 min) at start |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rec in records.items():
        head.append(
            f"| {name} | {rec['description']} | {rec.get('framework') or '-'} | {rec.get('wall_s', '-')} | "
            f"{rec.get('export_s', '-')} | {rec.get('peak_rss_self_mib', '-')} | "
            f"{rec.get('peak_rss_tree_mib', '-')} | "
            f"{_fmt((rec.get('load_average_at_start') or [None])[0], '.1f')} |"
        )
    head += [
        "",
        f"Total wall time of the model processes: {total:.0f} s ({meta.get('run_wall_s', 0):.0f} s for the whole run).",
        "",
        zoo_table(records),
        "",
    ]
    (RESULTS / "model_zoo.md").write_text("\n".join(head))

    ev = [
        f"# Tolerance evidence ({datetime.date.today().isoformat()})",
        "",
        "Per model, path and runtime whose correctness is ok, the worst output: re-run of the runner on the "
        f"{SAMPLE_COUNT} correctness samples at batch 1 and 3 of them rebuilt to the dataloader's batch. "
        "`atol@rtol r`: the smallest atol that passes when an element fails only if it exceeds both atol "
        "and rtol (= max abs error over the elements whose rel error > r; a zero reference with a "
        "difference counts as infinitely relative). `abs/max|ref|`: max abs error over max |reference|. "
        "`max abs err, batch 1 only`: the same over the batch-1 comparisons; the rest comes from the rebuilt "
        "batches, compared with the batch-1 reference repeated, so it includes the source model's own batch "
        "dependence (kernels that reduce in another order at another batch size).",
        "",
        "## Correct paths",
        "",
        evidence_table(rows, "correct"),
        "",
        "## Worst case per family (correct paths only; the model in brackets)",
        "",
        summary_table(summary),
        "",
        f"## Wrong paths (max abs error > {WRONG_NORMALISED:g} x max(1, max |ref|)), kept out of the evidence",
        "",
    ]
    ev.append(evidence_table(rows, "wrong") if wrong else "None.")
    ev.append("")
    (RESULTS / "tolerance_evidence.md").write_text("\n".join(ev))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=sorted(MODELS), help="run one model in this process (what the parent starts per model)"
    )
    parser.add_argument("--out", type=Path, help="with --model: where to write its JSON record")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=sorted(MODELS),
        default=list(MODELS),
        help="models to run, each in its own process (default: all)",
    )
    parser.add_argument("--timeout", type=float, default=MODEL_TIMEOUT_S, help="seconds per model process")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for the model processes (torch's threads; ONNX Runtime, OpenVINO and "
        "TensorFlow keep their defaults). On a shared machine 1 keeps torch's OpenMP threads from "
        "spinning against other processes, which inflates p50 latencies 10-100x. Default: unset",
    )
    parser.add_argument("--tables-only", action="store_true", help="rewrite the Markdown from model_zoo.json")
    parser.add_argument(
        "--evidence-only",
        action="store_true",
        help="recompute the tolerance evidence from the "
        "workspaces of the last run (bench/results/tmp/), each model in its own process, no export",
    )
    args = parser.parse_args()

    if args.model:
        child(args.model, args.out or TMP / f"{args.model}.json", args.evidence_only)
        return
    previous: Dict[str, Any] = {}
    if (RESULTS / "model_zoo.json").is_file():
        previous = json.loads((RESULTS / "model_zoo.json").read_text())
    if args.evidence_only:
        for name in args.models:
            if name not in previous.get("models", {}):
                continue
            out = TMP / f"{name}.evidence.json"
            out.write_text(json.dumps(previous["models"][name], default=str))
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--model", name, "--evidence-only", "--out", str(out)],
                env=env,
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            if done.returncode != 0:
                print(f"{name}: evidence failed: {done.stderr[-800:]}", flush=True)
                continue
            previous["models"][name]["paths"] = json.loads(out.read_text())["paths"]
            print(f"{name}: evidence recomputed", flush=True)
        previous["evidence_recomputed"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        args.tables_only = True
    if args.tables_only:
        meta = {
            k: previous[k]
            for k in ("environment", "run_wall_s", "run_started", "omp_num_threads", "evidence_recomputed")
            if k in previous
        }
        write_results(previous["models"], meta)
        return
    records: Dict[str, Dict[str, Any]] = dict(previous.get("models", {})) if args.models != list(MODELS) else {}
    meta = {
        "environment": environment(),
        "run_started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "omp_num_threads": args.threads,
    }
    start = time.perf_counter()
    for name in args.models:
        rec = run_child(name, args.timeout, args.threads)
        records[name] = rec
        print(f"{name}: {rec['wall_s']} s, {rec.get('export_error') or 'exported'}", flush=True)
    meta["run_wall_s"] = round(time.perf_counter() - start, 1)
    if args.models != list(MODELS):
        meta["note"] = f"last run: {args.models}; other models from earlier runs"
    records = {n: records[n] for n in MODELS if n in records}
    write_results(records, meta)
    print(f"wrote {RESULTS / 'model_zoo.json'}, model_zoo.md, tolerance_evidence.md in {meta['run_wall_s']} s")


if __name__ == "__main__":
    main()
