"""Figures of chapter 7 (rank and alpha): the scaling factors of each rule for Qwen2.5-7B, the lab's LoRA size, and
the tiny-model sweep, read from its committed results (course_utils/data/sweep_rank_alpha.jsonl)."""

from __future__ import annotations

import math

from ..configs import count_lora_params, parameter_counts, qwen25_7b_config
from ..profiles import get_profile
from ..sweep import (BASE_LR, FULL_LRS, FULL_RANKS, SCALINGS, at_lr, base_loss, best_per_cell, load_results, scaling_of,
                     seed_spread)

# QLoRA's reference code (github.com/artidoro/qlora, qlora.py, TrainingArguments defaults):
# lora_r = 64, lora_alpha = 16
QLORA_CODE_R, QLORA_CODE_ALPHA = 64, 16
# the LoRA ranks of QLoRA's appendix figure on r (LLaMA-7B on Alpaca, LoRA on all layers, 3 seeds per setting),
# behind "LoRA r is unrelated to final performance if LoRA is used on all layers" (Dettmers et al., 2023)
QLORA_RANKS_TESTED = (8, 16, 32, 64)
TABLE_RANKS = (8, 16, 64)  # the page's table, plus r = hidden


def tiny_config():
    """The config of the course's tiny model (read from its directory, no weights loaded)."""
    from transformers import AutoConfig

    from ..tiny import tiny_model_dir

    return AutoConfig.from_pretrained(tiny_model_dir(verbose=False))


def sweep_findings(rows) -> dict[str, float]:
    """The numbers the chapter quotes from the sweep (losses: mean over the seeds)."""
    best, fixed = best_per_cell(rows), at_lr(rows, BASE_LR)
    top = max(FULL_RANKS)
    spread_fixed = {r: max(fixed[(n, r)] for n in SCALINGS) - min(fixed[(n, r)] for n in SCALINGS) for r in FULL_RANKS}
    spread_tuned = {r: max(best[(n, r)][1] for n in SCALINGS) - min(best[(n, r)][1] for n in SCALINGS)
                    for r in FULL_RANKS}
    by_rank = {r: min(best[(n, r)][1] for n in SCALINGS) for r in FULL_RANKS}
    return {
        "quét: tốc độ học lớn nhất của lưới, đơn vị 10^-2": 100 * max(FULL_LRS),
        "quét: loss kiểm định trước khi huấn luyện": base_loss(rows),
        f"quét: r = {top}, α = 16, tốc độ học của profile tiny": fixed[("alpha = 16", top)],
        f"quét: r = {top}, α = 2r, tốc độ học của profile tiny": fixed[("alpha = 2r", top)],
        f"quét: r = {top}, α = 16, tốc độ học tốt nhất": best[("alpha = 16", top)][1],
        f"quét: r = {top}, α = 2r, tốc độ học tốt nhất": best[("alpha = 2r", top)][1],
        "quét: chênh lệch nhỏ nhất giữa 5 quy tắc ở một tốc độ học": min(spread_fixed.values()),
        "quét: chênh lệch lớn nhất giữa 5 quy tắc khi dò tốc độ học": max(spread_tuned.values()),
        "quét: chênh lệch nhỏ nhất giữa 3 hạt giống của một ô": min(seed_spread(rows).values()),
        "quét: chênh lệch lớn nhất giữa 3 hạt giống của một ô": max(seed_spread(rows).values()),
        **{f"quét: loss tốt nhất ở r = {r}": v for r, v in by_rank.items()},
    }


def figures() -> dict[str, float]:
    qwen, tiny, t4 = qwen25_7b_config(), tiny_config(), get_profile("t4")
    h = qwen.hidden_size
    f: dict[str, float] = {"Qwen2.5-7B: hidden_size h": h, "√h": math.sqrt(h)}
    for name in SCALINGS:
        for r in (*TABLE_RANKS, h):
            f[f"s của '{name}' ở r = {r}"] = scaling_of(name, r, h)
    f["r = 16: s của α = √h (rsLoRA) / s của α = 2r"] = (scaling_of("alpha = √hidden, rsLoRA", 16, h)
                                                         / scaling_of("alpha = 2r", 16, h))
    f["mã của QLoRA: α/r"] = QLORA_CODE_ALPHA / QLORA_CODE_R
    lab = count_lora_params(qwen, t4.lora_r, t4.lora_target_modules)
    f["profile t4: tham số LoRA huấn luyện được"] = lab
    f["profile t4: phần trăm tham số của Qwen2.5-7B"] = 100 * lab / parameter_counts(qwen)["total"]
    f["mô hình tiny: triệu tham số"] = parameter_counts(tiny)["total"] / 1e6
    f |= sweep_findings(load_results())
    return f
