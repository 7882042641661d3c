"""Attention from scratch: scaled dot-product attention, masks, RoPE, GQA, and Qwen2's two sub-layers.

Built step by step in chapter 3 (attention and the FFN) and chapter 4 (causal LM and masking).
Shapes follow torch.nn.functional.scaled_dot_product_attention: q (..., L, E), k (..., S, E),
v (..., S, Ev); a boolean mask broadcastable to (..., L, S) where True means "may attend".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def causal_mask(n: int, device=None) -> torch.Tensor:
    """Boolean (n, n) lower-triangular mask: position i may attend to positions j <= i (itself included)."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                      scale: float | None = None) -> torch.Tensor:
    """softmax(q kᵀ / √d_k) over the keys, shape (..., L, S); masked-out weights are exactly 0.

    A boolean mask keeps the positions where it is True; a float mask is added to the scores.
    A query that may attend to nothing gets a row of zeros (as in torch's SDPA).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype != torch.bool:
        return torch.softmax(scores + mask, dim=-1)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return weights.masked_fill(~mask, 0.0)  # also turns the NaN of an all-masked row into zeros


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) · V, with torch's shapes and a True-may-attend mask."""
    return attention_weights(q, k, mask, scale) @ v


def split_heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(batch, n, heads * head_dim) -> (batch, heads, n, head_dim)."""
    b, n, _ = x.shape
    return x.view(b, n, -1, head_dim).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, n, head_dim) -> (batch, n, heads * head_dim): the concatenation of the heads."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """GQA: (batch, kv_heads, n, d) -> (batch, kv_heads * n_rep, n, d), each key/value head repeated
    n_rep times in a row, so that query heads [g * n_rep, (g + 1) * n_rep) share key/value head g."""
    return x.repeat_interleave(n_rep, dim=1)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, shape (n, head_dim): pair (i, i + head_dim/2) turns by
    position * theta^(-2i/head_dim) (the half-split layout of Hugging Face's Llama/Qwen2)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim)
    angles = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x_i, x_{i+d/2}) of the last dimension by its angle: RoPE on queries or keys."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def qwen2_self_attention(x: torch.Tensor, attn, rope_theta: float, mask: torch.Tensor | None = None,
                         positions: torch.Tensor | None = None) -> torch.Tensor:
    """Output of a Qwen2 attention module `attn` on x (batch, n, hidden), from its weights:
    q/k/v projections with bias, RoPE, GQA, scaled dot-product attention, output projection."""
    d = attn.head_dim
    q = split_heads(F.linear(x, attn.q_proj.weight, attn.q_proj.bias), d)  # (b, heads, n, d)
    k = split_heads(F.linear(x, attn.k_proj.weight, attn.k_proj.bias), d)  # (b, kv_heads, n, d)
    v = split_heads(F.linear(x, attn.v_proj.weight, attn.v_proj.bias), d)
    positions = torch.arange(x.shape[1], device=x.device) if positions is None else positions
    cos, sin = rope_cos_sin(positions, d, rope_theta)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    n_rep = q.shape[1] // k.shape[1]
    out = scaled_dot_product_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)
    return F.linear(merge_heads(out), attn.o_proj.weight, attn.o_proj.bias)


def swiglu_ffn(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """Qwen2's FFN: down_proj(SiLU(gate_proj(x)) * up_proj(x)), weights in nn.Linear's (out, in) layout."""
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


def silu_minimum() -> tuple[float, float]:
    """(z, SiLU(z)) at SiLU's lowest point: SiLU(z) = z·σ(z) is not a gate in [0, 1]; it dips below 0 once.

    Its derivative σ(z)·(1 + z·(1 − σ(z))) vanishes where 1 + z·(1 − σ(z)) = 0, found by bisection (float64).
    """
    def sigmoid(z: float) -> float:
        return 1.0 / (1.0 + math.exp(-z))

    def slope_sign(z: float) -> float:
        return 1.0 + z * (1.0 - sigmoid(z))

    lo, hi = -10.0, 0.0  # slope_sign(lo) < 0 < slope_sign(hi)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slope_sign(mid) < 0 else (lo, mid)
    z = (lo + hi) / 2
    return z, z * sigmoid(z)


def classic_ffn(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
                activation=F.relu) -> torch.Tensor:
    """The FFN of the original Transformer: activation(x W1ᵀ + b1) W2ᵀ + b2 (ReLU, or GELU in GPT/BERT)."""
    return F.linear(activation(F.linear(x, w1, b1)), w2, b2)
