"""course_utils.attention against torch and transformers (the checkers of chapters 3 and 4: test_exercises_03/04)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import Qwen2Config
from transformers.models.qwen2 import modeling_qwen2 as hf

from course_utils.attention import (
    apply_rope,
    attention_weights,
    causal_mask,
    classic_ffn,
    merge_heads,
    qwen2_self_attention,
    repeat_kv,
    rope_cos_sin,
    scaled_dot_product_attention,
    silu_minimum,
    split_heads,
    swiglu_ffn,
)

ATOL = 1e-5


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


# ---- scaled dot-product attention against torch SDPA -------------------------------------------------

SHAPES = [  # (batch dims, L, S, E, Ev)
    ((), 1, 1, 4, 4),
    ((), 5, 5, 8, 8),
    ((2,), 3, 7, 16, 5),
    ((2, 3), 7, 9, 16, 16),
    ((1, 4), 12, 12, 32, 32),
]


@pytest.mark.parametrize("batch, L, S, E, Ev", SHAPES)
@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_matches_torch(batch, L, S, E, Ev, masked):
    g = torch.Generator().manual_seed(L * 100 + S)
    q = torch.randn(*batch, L, E, generator=g)
    k = torch.randn(*batch, S, E, generator=g)
    v = torch.randn(*batch, S, Ev, generator=g)
    mask = None
    if masked:
        mask = torch.rand(L, S, generator=g) > 0.4
        mask[:, 0] = True
    ours = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0)
    assert ours.shape == ref.shape
    assert max_diff(ours, ref) < ATOL


def test_sdpa_float_mask_and_scale_match_torch():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=g) for _ in range(3))
    additive = torch.randn(6, 6, generator=g)
    ours = scaled_dot_product_attention(q, k, v, additive, scale=0.3)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, scale=0.3)
    assert max_diff(ours, ref) < ATOL


def test_fully_masked_row_gives_zeros_like_torch():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 4, 8, generator=g) for _ in range(3))
    mask = causal_mask(4)
    mask[2] = False  # query 2 may attend to nothing
    ours = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not torch.isnan(ours).any()
    assert torch.equal(ours[..., 2, :], torch.zeros_like(ours[..., 2, :]))
    assert max_diff(ours, ref) < ATOL


def test_attention_weights_are_distributions_zero_where_masked():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(3, 6, 8, generator=g), torch.randn(3, 6, 8, generator=g)
    mask = torch.rand(6, 6, generator=g) > 0.5
    mask[:, 3] = True
    w = attention_weights(q, k, mask)
    assert torch.allclose(w.sum(-1), torch.ones(3, 6), atol=1e-6)
    assert (w[..., ~mask] == 0).all()
    unmasked = attention_weights(q, k)
    assert torch.allclose(unmasked, torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, -1))


@pytest.mark.parametrize("heads, kv_heads", [(4, 2), (4, 1), (28, 4), (6, 6)])
def test_gqa_expanded_heads_match_torch(heads, kv_heads):
    g = torch.Generator().manual_seed(heads)
    n_rep = heads // kv_heads
    q = torch.randn(2, heads, 5, 8, generator=g)
    k, v = torch.randn(2, kv_heads, 5, 8, generator=g), torch.randn(2, kv_heads, 5, 8, generator=g)
    ours = scaled_dot_product_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), causal_mask(5))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    assert max_diff(ours, ref) < ATOL
    assert torch.equal(repeat_kv(k, n_rep), hf.repeat_kv(k, n_rep))
    # query head h uses key/value head h // n_rep
    h = heads - 1
    assert torch.allclose(ours[:, h], scaled_dot_product_attention(q[:, h], k[:, h // n_rep], v[:, h // n_rep],
                                                                   causal_mask(5)), atol=ATOL)


def test_split_and_merge_heads_are_inverse():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(heads[:, 1], x[..., 4:8])  # head 1 is the second slice of the hidden vector
    assert torch.equal(merge_heads(heads), x)


# ---- causal mask ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 5, 64])
def test_causal_mask_properties(n):
    m = causal_mask(n)
    assert m.dtype == torch.bool and m.shape == (n, n)
    assert m.diagonal().all()  # a position attends to itself
    assert not m.triu(diagonal=1).any()  # never to a later position
    assert m[-1].all()  # the last position sees everything
    assert m.sum().item() == n * (n + 1) // 2
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    assert torch.equal(m, j <= i)


def test_causal_mask_matches_torch_is_causal():
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 3, 9, 16, generator=g) for _ in range(3))
    ours = scaled_dot_product_attention(q, k, v, causal_mask(9))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert max_diff(ours, ref) < ATOL


# ---- RoPE and a Qwen2 attention layer against transformers -------------------------------------------

def small_qwen2_config(**changes) -> Qwen2Config:
    settings = dict(vocab_size=64, hidden_size=48, intermediate_size=96, num_hidden_layers=1,
                    num_attention_heads=6, num_key_value_heads=2, rope_theta=500.0)
    settings.update(changes)
    config = Qwen2Config(**settings)
    config._attn_implementation = "sdpa"
    return config


def test_rope_matches_transformers():
    config = small_qwen2_config()
    head_dim = config.hidden_size // config.num_attention_heads
    positions = torch.arange(11)
    cos, sin = rope_cos_sin(positions, head_dim, config.rope_parameters["rope_theta"])
    x = torch.randn(1, 11, head_dim)
    ref_cos, ref_sin = hf.Qwen2RotaryEmbedding(config)(x, positions[None])
    assert max_diff(cos, ref_cos[0]) < 1e-6 and max_diff(sin, ref_sin[0]) < 1e-6
    q, k = torch.randn(1, 6, 11, head_dim), torch.randn(1, 2, 11, head_dim)
    ref_q, ref_k = hf.apply_rotary_pos_emb(q, k, ref_cos, ref_sin)
    assert max_diff(apply_rope(q, cos, sin), ref_q) < ATOL
    assert max_diff(apply_rope(k, cos, sin), ref_k) < ATOL


def test_rope_keeps_norms_and_depends_on_distance_only():
    cos, sin = rope_cos_sin(torch.arange(20), 16, 10000.0)
    q, k = torch.randn(16), torch.randn(16)
    rq, rk = apply_rope(q.expand(20, 16), cos, sin), apply_rope(k.expand(20, 16), cos, sin)
    assert torch.allclose(rq.norm(dim=-1), q.norm().expand(20), atol=1e-5)
    assert torch.allclose(rq[7] @ rk[2], rq[19] @ rk[14], atol=1e-4)  # both 5 apart
    assert not torch.allclose(rq[7] @ rk[2], rq[7] @ rk[6], atol=1e-3)  # 5 apart vs 1 apart


@pytest.mark.parametrize("heads, kv_heads", [(6, 2), (6, 6), (4, 1)])
def test_qwen2_self_attention_matches_transformers(heads, kv_heads):
    torch.manual_seed(heads * 10 + kv_heads)
    config = small_qwen2_config(num_attention_heads=heads, num_key_value_heads=kv_heads,
                                hidden_size=8 * heads)
    attn = hf.Qwen2Attention(config, layer_idx=0).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.2)  # biases too, so that they matter
        n = 10
        x = torch.randn(2, n, config.hidden_size)
        position_embeddings = hf.Qwen2RotaryEmbedding(config)(x, torch.arange(n)[None])
        additive = torch.zeros(n, n).masked_fill(~causal_mask(n), float("-inf"))[None, None]
        ref, _ = attn(hidden_states=x, position_embeddings=position_embeddings, attention_mask=additive)
        ours = qwen2_self_attention(x, attn, config.rope_parameters["rope_theta"], causal_mask(n))
    assert max_diff(ours, ref) < ATOL
    # without a mask the early positions would see later tokens: the results must differ
    with torch.no_grad():
        unmasked = qwen2_self_attention(x, attn, config.rope_parameters["rope_theta"])
    assert max_diff(unmasked[:, 0], ref[:, 0]) > 1e-4


def test_swiglu_matches_qwen2_mlp():
    torch.manual_seed(5)
    config = small_qwen2_config()
    mlp = hf.Qwen2MLP(config)
    x = torch.randn(3, 7, config.hidden_size)
    with torch.no_grad():
        ours = swiglu_ffn(x, mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight)
        assert max_diff(ours, mlp(x)) < ATOL


@pytest.mark.parametrize("activation, module", [(F.relu, torch.nn.ReLU()), (F.gelu, torch.nn.GELU())])
def test_classic_ffn_matches_sequential(activation, module):
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Linear(16, 64), module, torch.nn.Linear(64, 16))
    x = torch.randn(4, 16)
    with torch.no_grad():
        ours = classic_ffn(x, net[0].weight, net[0].bias, net[2].weight, net[2].bias, activation=activation)
        assert max_diff(ours, net(x)) < ATOL


def test_silu_minimum_matches_torch_silu():
    z_min, value = silu_minimum()
    grid = torch.linspace(-6, 6, 120_001, dtype=torch.float64)
    silu = F.silu(grid)
    assert abs(grid[silu.argmin()].item() - z_min) < 1e-3
    assert abs(silu.min().item() - value) < 1e-8
    assert value < 0 < F.silu(torch.tensor(10.0)).item() - 9.99  # dips below 0 and is unbounded above, unlike a gate
