"""Chapter 5: the claims a learner could be misled by, each checked against a computed value or the library."""

from __future__ import annotations

import re

import pytest
import torch

from course_utils.configs import parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.display import vi_num
from course_utils.figures.ch05 import four_bit_errors, grad_scaler_defaults
from course_utils.memory import GIB, weight_memory
from course_utils.quant import NF4_LEVELS, NF4_OFFSET, expected_absmax, nf4_bin_probabilities
import prose
from prose import page, page_path

STEM = "05_luong_tu_hoa"
QWEN, VISTRAL = qwen25_7b_config(), vistral_7b_config()


@pytest.fixture(scope="module")
def text() -> str:
    return page(STEM)


def table_row(label: str) -> list[str]:
    return prose.table_row(STEM, label)


def test_nf4_table_is_bitsandbytes_levels(text):
    """The 16 levels as printed (two rows of 8), 7 negative, an exact 0, 8 positive, divided by Φ⁻¹(δ) = 1,848."""
    raw = page_path(STEM).read_text(encoding="utf-8")
    rows = [line for line in raw.splitlines() if line.startswith("| mức |")]
    printed = [cell.strip() for row in rows for cell in row.strip("|").split("|")[1:]]
    assert printed == [vi_num(float(v), 3) for v in NF4_LEVELS]
    assert (NF4_LEVELS < 0).sum() == 7 and (NF4_LEVELS > 0).sum() == 8 and (NF4_LEVELS == 0).sum() == 1
    span = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(NF4_OFFSET, dtype=torch.float64)).item()
    assert f"\\Phi^{{-1}}(\\delta) = {vi_num(span, 3)}" in text


def test_nf4_bins_are_only_roughly_equal(text):
    """The page's range of bin probabilities is the computed one, and it is not 1/16 each."""
    p = nf4_bin_probabilities()
    lo, hi = vi_num(100 * p.min().item(), 2), vi_num(100 * p.max().item(), 2)
    assert re.search(rf"từ {lo}% đến {hi}%", text)
    assert lo != hi != vi_num(100 / 16, 2)


def test_block_absmax_is_larger_than_the_assumed_quantile(text):
    """E[max|x|] of 64 N(0, 1) samples (2,60) is quoted and exceeds Φ⁻¹(δ); not the 2,4 of a one-sided maximum."""
    e64 = expected_absmax(64)
    span = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(NF4_OFFSET, dtype=torch.float64)).item()
    assert e64 > span + 0.5
    assert re.search(rf"64 giá trị N\(0, 1\) trung bình là {vi_num(e64, 2)} độ lệch chuẩn", text)
    assert "2,4 " not in text and "2,41" not in text  # E[max x] (signed) of 64 samples, the common slip


def test_four_bit_errors_and_their_order(text):
    e = four_bit_errors()
    assert e["nf4"] < e["int4"] < e["fp4"]
    found = re.search(r"là ([\d,]+)% với NF4, ([\d,]+)% với absmax int4 .*? và ([\d,]+)% với FP4", text)
    assert found and list(found.groups()) == [vi_num(100 * e[k], 2) for k in ("nf4", "int4", "fp4")]


@pytest.mark.parametrize("name,cfg", [("Qwen2.5-7B", QWEN), ("Vistral-7B", VISTRAL)])
def test_memory_table_is_computed_and_keeps_embeddings_16_bit(name, cfg):
    w4 = weight_memory(cfg, 4)
    expected = [vi_num(weight_memory(cfg, b)["total"] / GIB, 2) + " GiB" for b in (16, 8, 4)]
    expected.append(vi_num((w4["embed_tokens"] + w4["lm_head"]) / GIB, 2) + " GiB")
    assert table_row(name) == expected
    assert w4["total"] > 0.5 * parameter_counts(cfg)["total"]  # more than "every parameter at half a byte"


def test_bitsandbytes_defaults_as_written():
    from transformers import BitsAndBytesConfig

    c = BitsAndBytesConfig(load_in_4bit=True)
    assert table_row("`bnb_4bit_quant_type`")[0] == f'`"{c.bnb_4bit_quant_type}"`'
    assert table_row("`bnb_4bit_use_double_quant`")[0] == f"`{c.bnb_4bit_use_double_quant}`"
    assert table_row("`bnb_4bit_compute_dtype`")[0] == f"`{c.bnb_4bit_compute_dtype}`"
    assert table_row("`llm_int8_threshold`")[0] == f"`{c.llm_int8_threshold}`"


def test_fp16_range_and_grad_scaler_defaults(text):
    """fp16's largest value as printed, a bf16 value above it becomes inf in fp16, GradScaler's defaults as written."""
    fp16_max = torch.finfo(torch.float16).max
    assert table_row("fp16")[2] == vi_num(int(fp16_max))
    above = torch.tensor(1.07 * fp16_max).to(torch.bfloat16)
    assert torch.isfinite(above) and torch.isinf(above.to(torch.float16))
    d = grad_scaler_defaults()
    assert f"$2^{{16}}$ = {vi_num(int(d['init_scale']))}" in text and d["init_scale"] == 2**16
    assert re.search(rf"sau {vi_num(d['growth_interval'])} bước liên tiếp không tràn", text)
    assert re.search(rf"nhân \$S\$ với {vi_num(d['backoff_factor'], 1)} \(`backoff_factor`\)", text)
    assert re.search(rf"nhân \$S\$ với {vi_num(d['growth_factor'])} \(`growth_factor`\)", text)
