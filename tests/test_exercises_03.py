"""The exercise checkers of chapter 3: right answers pass, typical wrong answers fail, the placeholder `...` too."""

from __future__ import annotations

import math

import torch

from course_utils.configs import parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.exercises import NO_ANSWER
from course_utils.exercises import attention as ex

QWEN, VISTRAL = qwen25_7b_config(), vistral_7b_config()
D_K = QWEN.hidden_size // QWEN.num_attention_heads


def test_head_dim(capsys):
    assert ex.check_head_dim(D_K)
    assert not ex.check_head_dim(QWEN.hidden_size)  # the hidden size, not one head's
    assert "hidden_size" in capsys.readouterr().out
    assert not ex.check_head_dim(VISTRAL.hidden_size // VISTRAL.num_attention_heads + 1)
    assert not ex.check_head_dim(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_single_query(capsys):
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(8, generator=g), torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    weights = torch.softmax(k @ q / math.sqrt(8), dim=0)
    assert ex.check_single_query(weights @ v, q, k, v)
    assert not ex.check_single_query(weights, q, k, v)  # forgot V
    assert "V" in capsys.readouterr().out
    assert not ex.check_single_query(torch.softmax(k @ q, 0) @ v, q, k, v)  # forgot √d_k
    assert not ex.check_single_query(..., q, k, v)
    assert NO_ANSWER in capsys.readouterr().out


def test_mlp_share(capsys):
    c = parameter_counts(VISTRAL)
    right = c["mlp"] / (c["total"] - c["embed_tokens"] - c["lm_head"])
    assert ex.check_mlp_share(right)
    assert not ex.check_mlp_share(ex.mlp_share_of_non_embedding(QWEN))  # Qwen's share, not Vistral's
    assert not ex.check_mlp_share(c["mlp"] / c["total"])  # embeddings left in the denominator
    assert not ex.check_mlp_share(100 * right)  # a percentage
    assert "phần trăm" in capsys.readouterr().out
    assert not ex.check_mlp_share(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_kv_values_per_token(capsys):
    assert ex.check_kv_values_per_token(2 * QWEN.num_key_value_heads * D_K)
    assert not ex.check_kv_values_per_token(QWEN.num_key_value_heads * D_K)  # K only
    assert not ex.check_kv_values_per_token(2 * QWEN.num_attention_heads * D_K)  # without GQA
    assert "GQA" in capsys.readouterr().out
    assert not ex.check_kv_values_per_token(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_kv_ratio(capsys):
    assert ex.check_kv_ratio(QWEN.num_attention_heads / QWEN.num_key_value_heads)
    assert not ex.check_kv_ratio(QWEN.num_attention_heads)
    assert not ex.check_kv_ratio(QWEN.num_key_value_heads / QWEN.num_attention_heads)  # upside down
    assert not ex.check_kv_ratio(...)
    assert NO_ANSWER in capsys.readouterr().out
