"""Every computed number of chapter 5 (page and notebook prose) is recomputed here and found as written."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch

from course_utils.configs import parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.display import vi_num
from course_utils.memory import GIB, bits_per_param_4bit, weight_memory
from course_utils.profiles import get_profile
from course_utils.quant import NF4_LEVELS, NF4_OFFSET, absmax_dequantize, absmax_quantize

from prose import chapter


_ch = chapter("05_luong_tu_hoa")
page, source, notebook_prose, in_page, in_notebook = (_ch.page, _ch.source, _ch.notebook_prose, _ch.in_page,
                                                       _ch.in_notebook)


def gib(x: float) -> str:
    return vi_num(x / GIB, 2)


def billions(x: float) -> str:
    return vi_num(x / 1e9, 2)


QWEN, VISTRAL = qwen25_7b_config(), vistral_7b_config()


def test_sixteen_bit_qwen():
    total = parameter_counts(QWEN)["total"]
    in_page(vi_num(total), f"{billions(total * 2)} GB, tức {gib(weight_memory(QWEN, 16)['total'])} GiB")
    in_page(f"ngân sách {vi_num(get_profile('t4').memory_budget_gib, 1)} GiB")


def test_configurations():
    q = parameter_counts(QWEN)
    non_embedding = q["total"] - q["embed_tokens"] - q["lm_head"]
    in_page(f"hidden {vi_num(QWEN.hidden_size)}, intermediate {vi_num(QWEN.intermediate_size)}, "
            f"{QWEN.num_hidden_layers} lớp, {QWEN.num_attention_heads} đầu attention và "
            f"{QWEN.num_key_value_heads} đầu key/value")
    in_page(f"mỗi đầu {QWEN.hidden_size // QWEN.num_attention_heads} chiều",
            f"từ điển {vi_num(QWEN.vocab_size)} token",
            f"tổng {billions(q['total'])} tỉ tham số, trong đó {billions(non_embedding)} tỉ không phải embedding")
    assert not QWEN.tie_word_embeddings
    v = parameter_counts(VISTRAL)
    in_page(f"hidden {vi_num(VISTRAL.hidden_size)}, intermediate {vi_num(VISTRAL.intermediate_size)}, "
            f"{VISTRAL.num_hidden_layers} lớp, {VISTRAL.num_attention_heads} đầu attention, "
            f"{VISTRAL.num_key_value_heads} đầu key/value, từ điển {vi_num(VISTRAL.vocab_size)} token, "
            f"tổng {billions(v['total'])} tỉ tham số")


def test_memory_table():
    for name, cfg in (("Qwen2.5-7B", QWEN), ("Vistral-7B", VISTRAL)):
        cells = [gib(weight_memory(cfg, bits)["total"]) + " GiB" for bits in (16, 8, 4)]
        w4 = weight_memory(cfg, 4)
        cells.append(gib(w4["embed_tokens"] + w4["lm_head"]) + " GiB")
        in_page(f"| {name} | " + " | ".join(cells) + " |")


def test_why_not_half_a_byte_per_parameter():
    total = parameter_counts(QWEN)["total"]
    w4 = weight_memory(QWEN, 4)
    share = (w4["embed_tokens"] + w4["lm_head"]) / w4["total"]
    in_page(f"{billions(total)} tỉ × 0,5 byte = {billions(total * 0.5)} GB ({gib(total * 0.5)} GiB)",
            f"chỉ chiếm {gib(w4['linear'])} GiB",
            f"token chiếm {gib(w4['embed_tokens'] + w4['lm_head'])} GiB, tức {vi_num(100 * share)}% bộ nhớ",
            f"con số tính được {gib(w4['total'])} GiB",
            "3,81 GB.")
    assert billions(total * 0.5) == "3,81"
    in_notebook(f"chiếm {vi_num(100 * share)}% bộ nhớ")
    for name, cfg in (("Qwen2.5-7B", QWEN), ("Vistral-7B", VISTRAL)):
        drop = 1 - weight_memory(cfg, 4)["total"] / weight_memory(cfg, 16)["total"]
        in_page(f"{name} giảm {vi_num(100 * drop)}%")


def test_bits_per_parameter():
    assert bits_per_param_4bit(False) == 4 + 32 / 64
    constants = bits_per_param_4bit(True) - 4
    saving = (bits_per_param_4bit(False) - 4) - constants
    in_page(f"4 + 32/64 = {vi_num(bits_per_param_4bit(False), 1)} bit",
            f"= {vi_num(bits_per_param_4bit(True), 3).replace(',', '{,}')} \\text{{ bit mỗi tham số}}",
            f"giảm từ 0,5 xuống {vi_num(constants, 3)} bit, tiết kiệm {vi_num(saving, 3)} bit",
            f"32/64 = {vi_num(32 / 64, 1)} bit thêm")
    in_notebook(f"4 + 32/64 = {vi_num(bits_per_param_4bit(False), 1)} bit",
                f"≈ {vi_num(bits_per_param_4bit(True), 3)} bit", f"32/64 = {vi_num(32 / 64, 1)} bit")


def test_double_quant_savings():
    saving = (bits_per_param_4bit(False) - bits_per_param_4bit(True)) / 8  # bytes per parameter
    in_page(f"65 tỉ × {vi_num(saving * 8, 3)} / 8 byte là {billions(65e9 * saving)} GB")
    dq = weight_memory(QWEN, 4, double_quant=False)["total"] - weight_memory(QWEN, 4)["total"]
    in_page(f"tiết kiệm là {billions(dq)} GB ({gib(dq)} GiB)")
    q = parameter_counts(QWEN)
    in_page(f"chỉ {billions(q['total'] - q['embed_tokens'] - q['lm_head'])} tỉ tham số của các lớp tuyến tính")


def test_nf4_table_and_quantile():
    from course_utils.quant import nf4_levels

    assert torch.equal(nf4_levels(), NF4_LEVELS)
    values = [vi_num(float(v), 4) for v in NF4_LEVELS]
    in_page("| mức | " + " | ".join(values[:8]) + " |", "| mức | " + " | ".join(values[8:]) + " |")
    in_page(f"\\delta = {vi_num(NF4_OFFSET, 7).replace(',', '{,}')}")
    in_notebook(f"offset = {NF4_OFFSET}")
    quantile = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(NF4_OFFSET, dtype=torch.float64))
    in_page(f"\\Phi^{{-1}}(\\delta) = {vi_num(float(quantile), 3).replace(',', '{,}')}")
    assert (NF4_LEVELS < 0).sum() == 7 and (NF4_LEVELS > 0).sum() == 8
    in_page("8 mức dương và 7 mức âm", f"{len(NF4_LEVELS) - 1} điểm giữa", "63 giá trị cùng khối")


@lru_cache
def four_bit_errors() -> dict[str, float]:
    """The notebook's comparison: N(0, 1) 1024 x 1024, seed 0, blocks of 64."""
    bnb = pytest.importorskip("bitsandbytes.functional")
    x = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
    rel = lambda x_hat: ((x - x_hat).norm() / x.norm()).item()  # noqa: E731
    errors = {}
    for kind in ("nf4", "fp4"):
        packed, state = bnb.quantize_4bit(x, blocksize=64, quant_type=kind)
        errors[kind] = rel(bnb.dequantize_4bit(packed, state, quant_type=kind))
    q, a = absmax_quantize(x.reshape(-1, 64), bits=4, dim=-1)
    errors["int4"] = rel(absmax_dequantize(q, a, bits=4).reshape(x.shape))
    packed, state = bnb.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
    errors["nf4_dq"] = rel(bnb.dequantize_4bit(packed, state, quant_type="nf4"))
    stored = packed.nbytes + state.absmax.nbytes + state.state2.absmax.nbytes + state.offset.nbytes
    errors["dq_bits"] = stored * 8 / x.numel()
    errors["offset_bytes"] = state.offset.nbytes
    errors["code_bytes"] = state.code.nbytes
    errors["nested_code_bytes"] = state.state2.code.nbytes
    return errors


def test_nf4_fp4_int4_errors():
    e = four_bit_errors()
    in_page(f"là {vi_num(100 * e['nf4'], 2)}% với NF4, {vi_num(100 * e['int4'], 2)}% với absmax int4",
            f"{vi_num(100 * e['fp4'], 2)}% với FP4")
    assert e["nf4"] < e["int4"] < e["fp4"]


def test_double_quant_bytes_and_error():
    e = four_bit_errors()
    in_page(f"được {vi_num(e['dq_bits'], 6)} bit mỗi tham số; phần chênh so với "
            f"{vi_num(bits_per_param_4bit(True), 6)} là đúng {e['offset_bytes']} byte của `offset`")
    assert e["code_bytes"] == 64 and e["nested_code_bytes"] == 1024
    in_page(f"({e['code_bytes']} byte cho NF4, 1 KiB cho bảng 8-bit)")
    in_page(f"{vi_num(100 * e['nf4'], 3)}% không có lượng tử hóa kép, {vi_num(100 * e['nf4_dq'], 3)}% khi có")


def test_silu_minimum():
    grid = torch.linspace(-5, 5, 200_001, dtype=torch.float64)
    minimum = torch.nn.functional.silu(grid).min().item()
    in_notebook(f"khoảng −{vi_num(-minimum, 2)}")


def test_notebook_vocabulary_and_exercise_count():
    in_notebook(f"từ điển {vi_num(QWEN.vocab_size)} token")
    source = _ch.notebook_path.read_text(encoding="utf-8")
    n_exercises = source.count("{exercise-start}")
    assert n_exercises >= 3 and n_exercises == source.count("{solution-start}")
    in_page(f"Bài tập ({n_exercises} bài, có lời giải ẩn)")
