"""Checkers of the LoRA and QLoRA chapter (notebook 06)."""

from __future__ import annotations

from . import check_choice, check_number, check_tensor, report, unanswered


def check_gate_proj_params(answer) -> bool:
    """bt-06-1: LoRA parameters of Qwen2.5-7B's gate_proj at r = 16 in one decoder layer."""
    from ..configs import linear_shapes, qwen25_7b_config

    out_features, in_features = linear_shapes(qwen25_7b_config())["gate_proj"]
    return check_number(answer, 16 * (in_features + out_features),
                        hint="A có r·in tham số, B có out·r tham số; cộng hai phần, không nhân in với out.")


def make_layer(seed: int = 0):
    """bt-06-2: a LoRALinear (8 -> 5, r = 2, alpha = 4) with a non-zero B, and an input x of 3 tokens."""
    import torch
    from torch import nn

    from ..lora import LoRALinear

    torch.manual_seed(seed)
    layer = LoRALinear(nn.Linear(8, 5), r=2, alpha=4)
    with torch.no_grad():
        layer.lora_B.normal_(std=0.5)
    return layer, torch.randn(3, 8)


def check_lora_output(answer, layer, x) -> bool:
    """bt-06-2: the output of the layer computed by hand."""
    import torch

    with torch.no_grad():
        expected = layer(x)
    return check_tensor(answer, expected,
                        hint="y = x Wᵀ + b + s · (x Aᵀ) Bᵀ; đừng quên bias của lớp gốc và hệ số s = layer.scaling.")


def check_merge_4bit(answer) -> bool:
    """bt-06-3: what peft 0.21.2 does when merging into a bitsandbytes 4-bit base."""
    return check_choice(answer, {"b", "d"},
                        hint="chạy lại phần 'Giữ adapter riêng, hay gộp vào nền 4-bit?': xem kiểu lớp sau khi gộp, "
                             "bộ nhớ, và sai số của ΔW.",
                        praise="peft giải lượng tử hóa, cộng ΔW rồi lượng tử hóa lại: bộ nhớ không tăng, "
                               "nhưng ΔW bị làm tròn.")


def check_ffn_last_layers(answer) -> bool:
    """bt-06-4: r = 4 on gate/up/down_proj of the tiny model's last two decoder layers."""
    from transformers import AutoConfig

    from ..configs import linear_shapes
    from ..tiny import tiny_model_dir

    shapes = linear_shapes(AutoConfig.from_pretrained(tiny_model_dir(verbose=False)))
    expected = 2 * sum(4 * (shapes[n][0] + shapes[n][1]) for n in ("gate_proj", "up_proj", "down_proj"))
    return check_number(answer, expected,
                        hint="mỗi lớp (out, in) có r·(in + out) tham số; ba lớp FFN, nhân với 2 lớp decoder.")


def check_dora_extra(answer) -> bool:
    """bt-06-5: the parameters DoRA adds to LoRA on every linear layer of Qwen2.5-7B (one per output, per layer)."""
    from ..configs import linear_shapes, qwen25_7b_config

    qwen = qwen25_7b_config()
    shapes = linear_shapes(qwen)
    expected = sum(out for out, _ in shapes.values()) * qwen.num_hidden_layers
    if unanswered(answer):
        return False
    if isinstance(answer, (int, float)) and answer == sum(inp for _, inp in shapes.values()) * qwen.num_hidden_layers:
        return report(False, "m có một số cho mỗi **đầu ra** (mỗi hàng của W), không phải mỗi đầu vào.")
    return check_number(answer, expected, rel_tol=0,
                        hint="mỗi lớp tuyến tính (out, in) thêm out tham số; cộng 7 lớp rồi nhân với số lớp decoder.",
                        praise="Ít hơn nhiều so với phần LoRA, nhưng mỗi bước phải tính thêm chuẩn của W + sBA.")
