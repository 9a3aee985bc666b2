"""Tiny Flax (flax.linen) models for tests/test_jax.py, built with fixed seeds and random weights:
an MLP, a CNN with BatchNorm, and a T5-like encoder built from a config (no hub download), which
stands in for the reference's FlaxT5Model example (transformers 5 dropped its Flax models)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class MLP(nn.Module):
    hidden: int = 512
    out: int = 4

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.out)(nn.relu(nn.Dense(self.hidden)(x)))


class CNN(nn.Module):
    classes: int = 10

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(8, (3, 3), padding="SAME")(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        x = nn.relu(x)
        x = nn.max_pool(x, window_shape=(2, 2), strides=(2, 2))  # by keyword: jax2onnx 0.17 needs it
        x = nn.relu(nn.Conv(16, (3, 3), padding="VALID")(x))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.classes)(x)


def mlp(features: int = 64) -> Tuple[Any, Any]:
    """(predict(x, params), params) of the MLP."""
    model = MLP()
    params = model.init(jax.random.PRNGKey(0), jnp.ones((1, features), jnp.float32))

    def predict(x, params):
        return model.apply(params, x)

    return predict, params


def cnn() -> Tuple[Any, Any]:
    """(predict(image, params), variables) of the CNN; variables hold params and batch_stats, the
    batch statistics made non-trivial so BatchNorm really normalises."""
    model = CNN()
    variables = model.init(jax.random.PRNGKey(0), jnp.ones((1, 16, 16, 3), jnp.float32))
    stats = variables["batch_stats"]["BatchNorm_0"]
    variables = {
        "params": variables["params"],
        "batch_stats": {"BatchNorm_0": {"mean": stats["mean"] + 0.1, "var": stats["var"] * 1.5}},
    }

    def predict(image, params):
        return model.apply(params, image)

    return predict, variables


def cnn_dataloader(batches: int = 3, batch_size: int = 4) -> List[Any]:
    rng = np.random.default_rng(0)
    return [jnp.asarray(rng.standard_normal((batch_size, 16, 16, 3)).astype(np.float32)) for _ in range(batches)]


def two_input_score() -> Tuple[Any, Any]:
    """score(tokens, mask, params): two inputs sharing a varying sequence axis, a dict of two outputs."""
    weights = {"w": jax.random.normal(jax.random.PRNGKey(1), (6, 5)), "b": jnp.arange(5, dtype=jnp.float32)}

    def score(tokens, mask, params):
        hidden = jnp.tanh(tokens @ params["w"] + params["b"])  # (batch, seq, 5)
        masked = hidden * mask[..., None]
        return {"scores": masked, "pooled": masked.sum(axis=1) / jnp.maximum(mask.sum(axis=1, keepdims=True), 1.0)}

    return score, weights


def two_input_dataloader(lengths: Tuple[int, ...] = (3, 7, 5)) -> List[Dict[str, np.ndarray]]:
    """Dict samples for two_input_score, keys in another order than its parameters (keyword arguments)."""
    rng = np.random.default_rng(0)
    dataloader = []
    for length in lengths:
        mask = (rng.random((2, length)) > 0.2).astype(np.float32)
        dataloader.append({"mask": mask, "tokens": rng.standard_normal((2, length, 6)).astype(np.float32)})
    return dataloader


# ------------------------------------------------------------------------------------------------
# A T5-like encoder: token embedding, T5 relative position buckets as attention bias (computed in
# the first layer, shared by all), pre-norm RMS layer norms without bias, multi-head self-attention
# without scaling (as T5), ReLU feed-forward, final layer norm, dropout-free (inference).
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class T5Config:
    vocab_size: int = 100
    d_model: int = 32
    d_kv: int = 8
    num_heads: int = 4
    d_ff: int = 64
    num_layers: int = 2
    relative_attention_num_buckets: int = 8
    relative_attention_max_distance: int = 20
    layer_norm_epsilon: float = 1e-6


class T5LayerNorm(nn.Module):
    epsilon: float

    @nn.compact
    def __call__(self, x):
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],))
        variance = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        return weight * x * jax.lax.rsqrt(variance + self.epsilon)


def relative_position_bucket(relative_position, num_buckets: int, max_distance: int):
    """T5's bidirectional bucketing: half the buckets per direction, exact for small distances,
    logarithmic up to max_distance."""
    num_buckets //= 2
    bucket = (relative_position > 0).astype(jnp.int32) * num_buckets
    distance = jnp.abs(relative_position)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    large = max_exact + (
        jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).astype(jnp.int32)
    large = jnp.minimum(large, num_buckets - 1)
    return bucket + jnp.where(is_small, distance, large)


def relative_positions(length, iota: bool):
    """memory - context position, (length, length): jnp.arange as Flax T5 writes it, or
    lax.broadcasted_iota (the same values), which jax2onnx converts for a symbolic length."""
    if iota:
        shape = (length, length)
        return jax.lax.broadcasted_iota(jnp.int32, shape, 1) - jax.lax.broadcasted_iota(jnp.int32, shape, 0)
    return jnp.arange(length)[None, :] - jnp.arange(length)[:, None]


class T5SelfAttention(nn.Module):
    config: T5Config
    has_relative_bias: bool
    iota_positions: bool = False

    @nn.compact
    def __call__(self, hidden, mask_bias, position_bias):
        cfg = self.config
        inner = cfg.num_heads * cfg.d_kv
        batch, length = hidden.shape[0], hidden.shape[1]

        def heads(x):
            return x.reshape(batch, length, cfg.num_heads, cfg.d_kv)

        q = heads(nn.Dense(inner, use_bias=False, name="q")(hidden))
        k = heads(nn.Dense(inner, use_bias=False, name="k")(hidden))
        v = heads(nn.Dense(inner, use_bias=False, name="v")(hidden))
        if self.has_relative_bias:
            buckets = relative_position_bucket(
                relative_positions(length, self.iota_positions),
                cfg.relative_attention_num_buckets,
                cfg.relative_attention_max_distance,
            )
            table = nn.Embed(cfg.relative_attention_num_buckets, cfg.num_heads, name="relative_attention_bias")
            position_bias = jnp.transpose(table(buckets), (2, 0, 1))[None]  # (1, heads, q, k)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) + position_bias + mask_bias
        weights = jax.nn.softmax(scores, axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, inner)
        return nn.Dense(cfg.d_model, use_bias=False, name="o")(out), position_bias


class T5Block(nn.Module):
    config: T5Config
    has_relative_bias: bool
    iota_positions: bool = False

    @nn.compact
    def __call__(self, hidden, mask_bias, position_bias):
        cfg = self.config
        normed = T5LayerNorm(cfg.layer_norm_epsilon)(hidden)
        attention = T5SelfAttention(cfg, self.has_relative_bias, self.iota_positions)
        attended, position_bias = attention(normed, mask_bias, position_bias)
        hidden = hidden + attended
        normed = T5LayerNorm(cfg.layer_norm_epsilon)(hidden)
        inner = nn.relu(nn.Dense(cfg.d_ff, use_bias=False, name="wi")(normed))
        ff = nn.Dense(cfg.d_model, use_bias=False, name="wo")(inner)
        return hidden + ff, position_bias


class T5Encoder(nn.Module):
    config: T5Config
    iota_positions: bool = False

    @nn.compact
    def __call__(self, input_ids, attention_mask):
        cfg = self.config
        hidden = nn.Embed(cfg.vocab_size, cfg.d_model, name="shared")(input_ids)
        mask_bias = (1.0 - attention_mask[:, None, None, :].astype(jnp.float32)) * -1e9
        position_bias = None
        for i in range(cfg.num_layers):
            block = T5Block(cfg, has_relative_bias=i == 0, iota_positions=self.iota_positions, name=f"block_{i}")
            hidden, position_bias = block(hidden, mask_bias, position_bias)
        return T5LayerNorm(cfg.layer_norm_epsilon, name="final_layer_norm")(hidden)


def t5_encoder(config: T5Config = T5Config(), iota_positions: bool = False) -> Tuple[Any, Any]:
    """(encode(input_ids, attention_mask, params) -> {"last_hidden_state": ...}, params), random weights;
    iota_positions builds the relative positions with lax.broadcasted_iota (same params and values)."""
    model = T5Encoder(config, iota_positions=iota_positions)
    ids = jnp.ones((1, 4), jnp.int32)
    params = model.init(jax.random.PRNGKey(0), ids, jnp.ones_like(ids))

    def encode(input_ids, attention_mask, params):
        return {"last_hidden_state": model.apply(params, input_ids, attention_mask)}

    return encode, params


def t5_dataloader(
    config: T5Config = T5Config(), lengths=(5, 9, 7, 12), batch_size: int = 2
) -> List[Dict[str, np.ndarray]]:
    """Token batches padded to their longest text, as a tokenizer gives them (int64 numpy)."""
    rng = np.random.default_rng(0)
    batches = []
    for length in lengths:
        ids = rng.integers(1, config.vocab_size, size=(batch_size, length)).astype(np.int64)
        mask = np.ones((batch_size, length), np.int64)
        mask[1:, length - 2 :] = 0  # the second text is shorter: padded
        ids[mask == 0] = 0
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches
