"""Chapter 3: the claims a learner could be misled by, each checked against a computed value."""

from __future__ import annotations

import math
import re

import pytest

from course_utils.attention import silu_minimum
from course_utils.configs import count_lora_params, head_dim, parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.display import vi_num
from course_utils.figures.ch03 import non_embedding, tiny_config
from course_utils.profiles import get_profile
from prose import page, table_row

STEM = "03_attention_ffn"
QWEN, VISTRAL = qwen25_7b_config(), vistral_7b_config()


@pytest.fixture(scope="module")
def text() -> str:
    return page(STEM)


def test_qwen_d_and_d_k_are_qwen25s(text):
    """d is Qwen2.5-7B's 3.584 (never Mistral/Llama-2's 4.096); d_k is one head's 128, not d."""
    ds = re.findall(r"\$d = ([\d.]+)\$", text)
    assert ds and set(ds) == {vi_num(QWEN.hidden_size)}
    d_ks = re.findall(r"\$d_k = (\d+)\$", text)
    assert d_ks and set(d_ks) == {str(head_dim(QWEN))}
    assert head_dim(QWEN) != QWEN.hidden_size and VISTRAL.hidden_size != QWEN.hidden_size


def test_sqrt_d_k(text):
    pairs = re.findall(r"\\sqrt\{(\d+)\} \\approx ([\d,]+)", text)
    assert pairs
    for n, approx in pairs:
        assert int(n) == head_dim(QWEN) and approx == vi_num(math.sqrt(int(n)), 2)


def test_kv_cache_sizes_and_ratio(text):
    gqa = 2 * QWEN.num_key_value_heads * head_dim(QWEN)
    mha = 2 * QWEN.num_attention_heads * head_dim(QWEN)
    kib = re.findall(r"(\d+) KiB", text)
    assert kib == [str(gqa * 2 * QWEN.num_hidden_layers // 1024), str(mha * 2 * QWEN.num_hidden_layers // 1024)]
    assert set(re.findall(r"nhỏ đi (\d+) lần", text)) == {str(mha // gqa)}


def test_silu_is_not_a_zero_to_one_gate(text):
    """The page gives SiLU's minimum as negative, with the computed value and place."""
    z_min, value = silu_minimum()
    assert value < 0
    negatives = set(re.findall(r"[−-](\d+,\d+)", text))
    assert {vi_num(-value, 2), vi_num(-z_min, 2)} <= negatives




def test_parameter_table_columns_are_the_right_models():
    counts = [parameter_counts(c) for c in (QWEN, VISTRAL, tiny_config())]

    def pct(x: float) -> str:
        return f"{vi_num(100 * x, 1)}%"

    assert table_row(STEM, "tổng số tham số") == [vi_num(c["total"]) for c in counts]
    for label, key in (("attention", "attention"), ("MLP", "mlp")):
        assert table_row(STEM, label) == [f"{vi_num(c[key])} ({pct(c[key] / c['total'])})" for c in counts]
    assert table_row(STEM, "MLP trên tổng ngoài embedding") == [f"**{pct(c['mlp'] / non_embedding(c))}**"
                                                               for c in counts]


def test_ffn_against_attention_and_lora_counts(text):
    per = parameter_counts(QWEN)
    ratio = per["mlp"] / per["attention"]
    assert set(re.findall(r"gần (\d+) lần", text)) == {str(round(ratio))} and abs(ratio - round(ratio)) < 0.1
    r = get_profile("t4").lora_r
    assert set(re.findall(r"\$r = (\d+)\$", text)) == {str(r)}
    assert vi_num(count_lora_params(QWEN, r, ("q_proj", "v_proj"))) in text
    assert vi_num(count_lora_params(QWEN, r, "all-linear")) in text
