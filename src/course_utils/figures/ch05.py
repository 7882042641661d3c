"""Figures of chapter 5 (quantization math, fp16 numerics): memory from the configs, NF4's levels and how evenly they
are used, 4-bit errors on the notebook's N(0, 1) matrix, double quantization, the fp16 range and GradScaler's defaults.

The one measured figure (memory after loading the Qwen2.5-7B shape in 4 bits) is read from the committed benchmark
results; everything else is computed here with the functions the notebook calls.
"""

from __future__ import annotations

import inspect
import json
from functools import lru_cache
from pathlib import Path

from ..attention import silu_minimum
from ..configs import parameter_counts, qwen25_7b_config, vistral_7b_config
from ..memory import GIB, bits_per_param_4bit, weight_memory
from ..profiles import get_profile

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "t4_memory.json"
# Quoted from the course's original notes, to correct them (not computed): "4-bit giảm khoảng 65–70%".
SEED_NOTE_4BIT_DROP_PERCENT = (65, 70)
# The notebook's overflow example: an activation value that is finite in bf16 and inf in fp16.
OVERFLOW_EXAMPLE = 70_000
N_NORMAL = 1024  # the notebook's N(0, 1) matrix is N_NORMAL x N_NORMAL, seed 0, blocks of 64


@lru_cache
def normal_matrix():
    """The notebook's N(0, 1) matrix X (1024 x 1024, seed 0)."""
    import torch

    return torch.randn(N_NORMAL, N_NORMAL, generator=torch.Generator().manual_seed(0))


@lru_cache
def four_bit_errors() -> dict[str, float]:
    """Relative errors ||X - X_hat|| / ||X|| of NF4, FP4 (bitsandbytes) and absmax int4 on X, blocks of 64."""
    import bitsandbytes.functional as bnbF

    from ..quant import absmax_dequantize, absmax_quantize

    x = normal_matrix()

    def rel(x_hat) -> float:
        return ((x - x_hat).norm() / x.norm()).item()

    errors = {}
    for kind in ("nf4", "fp4"):
        packed, state = bnbF.quantize_4bit(x, blocksize=64, quant_type=kind)
        errors[kind] = rel(bnbF.dequantize_4bit(packed, state, quant_type=kind))
    q, a = absmax_quantize(x.reshape(-1, 64), bits=4, dim=-1)
    errors["int4"] = rel(absmax_dequantize(q, a, bits=4).reshape(x.shape))
    packed, state = bnbF.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
    errors["nf4_dq"] = rel(bnbF.dequantize_4bit(packed, state, quant_type="nf4"))
    errors["nested_code_bytes"] = state.state2.code.nbytes
    return errors


def measured_4bit_load_gib() -> float:
    """Allocated GiB after loading the Qwen2.5-7B shape in NF4 on the H100 benchmark (the same in every run)."""
    runs = json.loads(BENCHMARK.read_text(encoding="utf-8"))["runs"]
    values = {round(r["after_load_allocated_gib"], 6) for r in runs if "after_load_allocated_gib" in r}
    assert len(values) == 1, values
    return values.pop()


def grad_scaler_defaults() -> dict[str, float]:
    """torch.amp.GradScaler's defaults, read from its signature."""
    import torch

    params = inspect.signature(torch.amp.GradScaler.__init__).parameters
    return {k: params[k].default for k in ("init_scale", "growth_factor", "backoff_factor", "growth_interval")}


def figures() -> dict[str, float]:
    import torch

    from ..quant import NF4_LEVELS, NF4_OFFSET, expected_absmax, nf4_bin_probabilities, nf4_code_shares

    qwen, vistral = qwen25_7b_config(), vistral_7b_config()
    q, v = parameter_counts(qwen), parameter_counts(vistral)
    budget = get_profile("t4").memory_budget_gib
    f: dict[str, float] = {
        "Qwen2.5-7B: tổng số tham số": q["total"],
        "Qwen2.5-7B: tổng số tham số (tỉ)": q["total"] / 1e9,
        "Qwen2.5-7B: tham số ngoài embedding (tỉ)": (q["total"] - q["embed_tokens"] - q["lm_head"]) / 1e9,
        "Qwen2.5-7B: trọng số 16 bit (GB)": 2 * q["total"] / 1e9,
        "ngân sách bộ nhớ của profile t4 (GiB)": budget,
        "Qwen2.5-7B: hidden_size": qwen.hidden_size,
        "Qwen2.5-7B: intermediate_size": qwen.intermediate_size,
        "Qwen2.5-7B: từ điển (token)": qwen.vocab_size,
        "Vistral-7B: hidden_size": vistral.hidden_size,
        "Vistral-7B: intermediate_size": vistral.intermediate_size,
        "Vistral-7B: từ điển (token)": vistral.vocab_size,
        "Vistral-7B: tổng số tham số (tỉ)": v["total"] / 1e9,
        "SiLU: giá trị nhỏ nhất ≈ (trị tuyệt đối)": -silu_minimum()[1],
    }
    for name, cfg in (("Qwen2.5-7B", qwen), ("Vistral-7B", vistral)):
        for bits in (16, 8, 4):
            f[f"{name}: trọng số {bits} bit (GiB)"] = weight_memory(cfg, bits)["total"] / GIB
        w4 = weight_memory(cfg, 4)
        f[f"{name}: embedding + lm_head 16 bit (GiB)"] = (w4["embed_tokens"] + w4["lm_head"]) / GIB
        f[f"{name}: giảm từ 16 xuống 4 bit (%)"] = 100 * (1 - w4["total"] / weight_memory(cfg, 16)["total"])
    w4 = weight_memory(qwen, 4)
    naive = q["total"] * 0.5  # every parameter in 4 bits: the wrong estimate the page corrects
    f |= {
        "Qwen2.5-7B: mọi tham số 4 bit, ước lượng sai (GB)": naive / 1e9,
        "Qwen2.5-7B: mọi tham số 4 bit, ước lượng sai (GiB)": naive / GIB,
        "Qwen2.5-7B: các lớp tuyến tính ở 4 bit (GiB)": w4["linear"] / GIB,
        "Qwen2.5-7B: embedding + lm_head trong bộ nhớ 4 bit (%)": 100 * (w4["embed_tokens"] + w4["lm_head"]) / w4["total"],
        "đo trên H100: bộ nhớ cấp phát sau khi nạp 4 bit (GiB)": measured_4bit_load_gib(),
        "ghi chú gốc: giảm thấp nhất (%)": SEED_NOTE_4BIT_DROP_PERCENT[0],
        "ghi chú gốc: giảm cao nhất (%)": SEED_NOTE_4BIT_DROP_PERCENT[1],
    }
    # NF4 levels (the page writes the minus sign itself) and the quantile they are divided by
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    for k, level in enumerate(NF4_LEVELS.tolist()):
        f[f"NF4: mức {k} (trị tuyệt đối)"] = abs(level)
    f["Φ⁻¹(δ): mức 1 tính bằng độ lệch chuẩn"] = normal.icdf(torch.tensor(NF4_OFFSET, dtype=torch.float64)).item()
    # how evenly the levels are used
    p = nf4_bin_probabilities()
    shares = nf4_code_shares(normal_matrix())
    f |= {
        "NF4: phần xác suất nhỏ nhất của một mức, theo giả định của cách dựng (%)": 100 * p.min().item(),
        "NF4: phần xác suất lớn nhất của một mức, theo giả định của cách dựng (%)": 100 * p.max().item(),
        "1/16 (%)": 100 / 16,
        "kỳ vọng absmax của 64 mẫu N(0, 1) (độ lệch chuẩn)": expected_absmax(64),
        "X: phần giá trị ở hai mức ngoài cùng (%)": 100 * (shares[0] + shares[15]).item(),
        "1/64: một absmax mỗi khối (%)": 100 / 64,
        "X: phần giá trị ở mức đông nhất (%)": 100 * shares.max().item(),
    }
    # 4-bit errors and double quantization
    e = four_bit_errors()
    dq_saving = bits_per_param_4bit(False) - bits_per_param_4bit(True)
    qwen_dq = weight_memory(qwen, 4, double_quant=False)["total"] - w4["total"]
    f |= {
        "sai số NF4 trên X (%)": 100 * e["nf4"],
        "sai số absmax int4 trên X (%)": 100 * e["int4"],
        "sai số FP4 trên X (%)": 100 * e["fp4"],
        "sai số NF4 có lượng tử hóa kép trên X (%)": 100 * e["nf4_dq"],
        "absmax float32 mỗi khối 64 (bit mỗi tham số)": 32 / 64,
        "NF4 không lượng tử hóa kép (bit mỗi tham số)": bits_per_param_4bit(False),
        "NF4 có lượng tử hóa kép (bit mỗi tham số)": bits_per_param_4bit(True),
        "hằng số sau lượng tử hóa kép (bit mỗi tham số)": bits_per_param_4bit(True) - 4,
        "lượng tử hóa kép tiết kiệm (bit mỗi tham số)": dq_saving,
        "lượng tử hóa kép, mô hình 65B tiết kiệm (GB)": 65e9 * dq_saving / 8 / 1e9,
        "lượng tử hóa kép, Qwen2.5-7B tiết kiệm (GB)": qwen_dq / 1e9,
        "lượng tử hóa kép, Qwen2.5-7B tiết kiệm (GiB)": qwen_dq / GIB,
        "bảng mã 8-bit của absmax (KiB)": e["nested_code_bytes"] / 1024,
    }
    # fp16 numerics
    fp16, bf16, fp32 = (torch.finfo(d) for d in (torch.float16, torch.bfloat16, torch.float32))
    scaler = grad_scaler_defaults()
    f |= {
        "fp16: số lớn nhất": int(fp16.max),
        "fp16: số chuẩn dương nhỏ nhất (× 10⁻⁵)": fp16.smallest_normal * 1e5,
        "fp16: số dương nhỏ nhất 2⁻²⁴ (× 10⁻⁸)": 2.0**-24 * 1e8,
        "bf16: số lớn nhất (× 10³⁸)": bf16.max / 1e38,
        "bf16: số chuẩn dương nhỏ nhất (× 10⁻³⁸)": bf16.smallest_normal * 1e38,
        "fp32: số lớn nhất (× 10³⁸)": fp32.max / 1e38,
        "fp32: số chuẩn dương nhỏ nhất (× 10⁻³⁸)": fp32.smallest_normal * 1e38,
        "ví dụ tràn số: activation hữu hạn ở bf16, inf ở fp16": OVERFLOW_EXAMPLE,
        "256² (tràn ở fp16)": 256**2,
        "GradScaler: init_scale mặc định": int(scaler["init_scale"]),
        "GradScaler: growth_factor mặc định": scaler["growth_factor"],
        "GradScaler: backoff_factor mặc định": scaler["backoff_factor"],
        "GradScaler: growth_interval mặc định": scaler["growth_interval"],
    }
    return f
