"""Figures of chapter 6 (LoRA and QLoRA): LoRA parameter counts from the configs (the Transformer example of the
course notes, Qwen2.5-7B), the adapter's size, DoRA's extra parameters, the 16-bit weights a merge needs.

The notebook's measurements on the tiny model (validation losses of the merge routes) are asserted in the notebook
and described in words on the page: they are not quoted as figures.
"""

from __future__ import annotations

from ..configs import count_lora_params, linear_shapes, parameter_counts, qwen25_7b_config
from ..memory import GIB, estimate_training_memory, weight_memory
from ..profiles import get_profile

# The example of the course notes: one attention head's projection in the original Transformer (Vaswani et al.,
# 2017, section 3.2.2: d_model = 512, h = 8, d_k = d_model / h = 64), with LoRA of rank 8.
D_MODEL, D_K, EXAMPLE_RANK = 512, 64, 8
TARGETS = {
    "q_proj, v_proj": ("q_proj", "v_proj"),
    "attention (q, k, v, o)": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "all-linear": "all-linear",
}
RANKS = (8, 16, 64)


def dora_extra_parameters(config) -> int:
    """Parameters DoRA adds to LoRA on every linear layer: its magnitude vector m, one value per output row."""
    return sum(out for out, _ in linear_shapes(config).values()) * config.num_hidden_layers


def adapter_mib(n_parameters: int) -> float:
    """Size of an adapter of n fp32 parameters, in MiB."""
    return 4 * n_parameters / 2**20


def figures() -> dict[str, float]:
    qwen = qwen25_7b_config()
    total = parameter_counts(qwen)["total"]
    t4 = get_profile("t4")
    full, a, b = D_MODEL * D_K, EXAMPLE_RANK * D_MODEL, D_K * EXAMPLE_RANK
    f: dict[str, float] = {
        "Qwen2.5-7B: tổng số tham số": total,
        "Qwen2.5-7B: tổng số tham số (tỉ)": total / 1e9,
        "ví dụ Transformer gốc: trọng số của W (512 × 64)": full,
        "ví dụ: tham số của A (r = 8)": a,
        "ví dụ: tham số của B (r = 8)": b,
        "ví dụ: tổng A + B": a + b,
        "ví dụ: ít hơn W (%)": 100 * (1 - (a + b) / full),
    }
    for label, targets in TARGETS.items():
        for r in RANKS:
            n = count_lora_params(qwen, r, targets)
            f[f"LoRA {label}, r = {r}: tham số"] = n
            f[f"LoRA {label}, r = {r}: so với mô hình (%)"] = 100 * n / total
    n_adapter = count_lora_params(qwen, t4.lora_r, t4.lora_target_modules)
    f |= {
        "adapter của profile t4 (Qwen2.5-7B): tham số": n_adapter,
        "adapter của profile t4 ở fp32 (MiB)": adapter_mib(n_adapter),
        "DoRA thêm trên mọi lớp tuyến tính (Qwen2.5-7B)": dora_extra_parameters(qwen),
        "Qwen2.5-7B: trọng số 16 bit để gộp (GiB)": weight_memory(qwen, 16)["total"] / GIB,
        "ngân sách bộ nhớ của profile t4 (GiB)": t4.memory_budget_gib,
        "trạng thái AdamW 8-bit của adapter t4 (MB)": estimate_training_memory(qwen, t4).parts["optimizer"] / 1e6,
    }
    return f
