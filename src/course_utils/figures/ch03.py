"""Figures of chapter 3 (attention and the FFN): shapes and parameter counts from the configs, SiLU's minimum."""

from __future__ import annotations

import math

from ..attention import silu_minimum
from ..configs import count_lora_params, head_dim, linear_shapes, parameter_counts, qwen25_7b_config, vistral_7b_config
from ..profiles import get_profile


def tiny_config():
    """The config of the course's tiny model (read from its directory, no weights loaded)."""
    from transformers import AutoConfig

    from ..tiny import tiny_model_dir

    return AutoConfig.from_pretrained(tiny_model_dir(verbose=False))


def percent(part: int, whole: int) -> float:
    return 100 * part / whole


def non_embedding(counts: dict[str, int]) -> int:
    return counts["total"] - counts["embed_tokens"] - counts["lm_head"]


def kv_values_per_token(config, kv_heads: int | None = None) -> int:
    """Values of K and V stored per token and per layer: one K and one V vector per key/value head."""
    heads = config.num_key_value_heads if kv_heads is None else kv_heads
    return 2 * heads * head_dim(config)


def figures() -> dict[str, float]:
    qwen, vistral, tiny = qwen25_7b_config(), vistral_7b_config(), tiny_config()
    d_k = head_dim(qwen)
    f: dict[str, float] = {
        "Qwen2.5-7B: số khối decoder": qwen.num_hidden_layers,
        "Qwen2.5-7B: hidden_size d": qwen.hidden_size,
        "Qwen2.5-7B: số đầu query": qwen.num_attention_heads,
        "Qwen2.5-7B: d_k": d_k,
        "√d_k": math.sqrt(d_k),
        "Qwen2.5-7B: số đầu key/value": qwen.num_key_value_heads,
        "Qwen2.5-7B: số đầu query mỗi nhóm": qwen.num_attention_heads // qwen.num_key_value_heads,
        "Qwen2.5-7B: số hàng của k_proj": linear_shapes(qwen)["k_proj"][0],
        # quoted to correct it: the hidden size often copied for "Qwen 7B" is Mistral-7B's (and Llama-2-7B's)
        "Vistral-7B (Mistral-7B): hidden_size": vistral.hidden_size,
        "Qwen2.5-7B: rope_theta": qwen.rope_parameters["rope_theta"],
        "mô hình tiny: số đầu query": tiny.num_attention_heads,
        "mô hình tiny: số đầu key/value": tiny.num_key_value_heads,
    }
    gqa, mha = kv_values_per_token(qwen), kv_values_per_token(qwen, qwen.num_attention_heads)
    fp16_layers = 2 * qwen.num_hidden_layers  # 2 bytes a value, every layer
    f |= {
        "KV cache: giá trị mỗi token, mỗi lớp (GQA)": gqa,
        "KV cache: giá trị mỗi token, mỗi lớp (không GQA)": mha,
        "KV cache: lần nhỏ đi nhờ GQA": mha // gqa,
        "KV cache fp16, mọi lớp (GQA), KiB mỗi token": gqa * fp16_layers // 1024,
        "KV cache fp16, mọi lớp (không GQA), KiB mỗi token": mha * fp16_layers // 1024,
    }
    z_min, silu_min = silu_minimum()
    f |= {  # the page writes the minus sign itself
        "SiLU: đáy tại z ≈ (trị tuyệt đối)": -z_min,
        "SiLU: giá trị nhỏ nhất ≈ (trị tuyệt đối)": -silu_min,
    }
    counts = {name: parameter_counts(c) for name, c in (("Qwen2.5-7B", qwen), ("Vistral-7B", vistral),
                                                       ("mô hình tiny", tiny))}
    q = counts["Qwen2.5-7B"]
    f |= {
        "Qwen2.5-7B: intermediate_size d_ff": qwen.intermediate_size,
        "Qwen2.5-7B: d_ff / d": qwen.intermediate_size / qwen.hidden_size,
        "Vistral-7B: d_ff / d": vistral.intermediate_size / vistral.hidden_size,
        "Qwen2.5-7B: tham số một lớp FFN": q["mlp"] // qwen.num_hidden_layers,
        "Qwen2.5-7B: tham số một lớp attention": q["attention"] // qwen.num_hidden_layers,
    }
    for name, c in counts.items():
        emb = c["embed_tokens"] + c["lm_head"]
        f |= {
            f"{name}: tổng số tham số": c["total"],
            f"{name}: embed_tokens + lm_head": emb,
            f"{name}: embed_tokens + lm_head (%)": percent(emb, c["total"]),
            f"{name}: attention": c["attention"],
            f"{name}: attention (%)": percent(c["attention"], c["total"]),
            f"{name}: MLP": c["mlp"],
            f"{name}: MLP (%)": percent(c["mlp"], c["total"]),
            f"{name}: MLP trên tổng ngoài embedding (%)": percent(c["mlp"], non_embedding(c)),
            f"{name}: attention trên tổng ngoài embedding (%)": percent(c["attention"], non_embedding(c)),
        }
    r = get_profile("t4").lora_r
    lora_attn = count_lora_params(qwen, r, ("q_proj", "k_proj", "v_proj", "o_proj"))
    lora_all = count_lora_params(qwen, r, "all-linear")
    f |= {
        "LoRA: r của profile t4": r,
        "LoRA r trên q_proj, v_proj (Qwen2.5-7B)": count_lora_params(qwen, r, ("q_proj", "v_proj")),
        "LoRA r trên mọi lớp tuyến tính (Qwen2.5-7B)": lora_all,
        "LoRA all-linear: phần ở MLP (%)": percent(lora_all - lora_attn, lora_all),
    }
    return f
