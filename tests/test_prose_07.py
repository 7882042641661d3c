"""Every computed number of chapter 7 (page and notebook prose) is recomputed and found as written.

The sweep's qualitative findings are asserted by the notebook itself, on the results it has just computed.
"""

from __future__ import annotations

import math

import pytest

from course_utils.configs import parameter_counts, qwen25_7b_config
from course_utils.display import vi_num
from course_utils.configs import count_lora_params
from course_utils.lora import (FULL_RANKS, REDUCED_RANKS, SCALINGS, adam_delta_w, distinct_runs,
                               scaling_of)
from course_utils.profiles import get_profile

from prose import chapter
QWEN = qwen25_7b_config()
H = QWEN.hidden_size
T4, TINY = get_profile("t4"), get_profile("tiny")
SWEEP_LR, HIGH_LR, SWEEP_STEPS = 2e-3, 1e-2, 16


_ch = chapter("07_rank_alpha")
page, source, notebook_prose, in_page, in_notebook = (_ch.page, _ch.source, _ch.notebook_prose, _ch.in_page,
                                                       _ch.in_notebook)


def fmt(x: float) -> str:
    """An integer as is, else 2 decimals, or 2 significant digits below 0.1."""
    if abs(x - round(x)) < 1e-9:
        return vi_num(round(x))
    if x >= 0.1:
        return vi_num(x, 2)
    return vi_num(x, 1 - math.floor(math.log10(x)))


ROW_LABELS = {
    "alpha = r": r"$\alpha = r$",
    "alpha = 2r": r"$\alpha = 2r$",
    "alpha = 16": r"$\alpha = 16$ cố định",
    "rsLoRA, alpha = 16": r"rsLoRA, $\alpha = 16$",
    "alpha = √hidden, rsLoRA": r"$\alpha = \sqrt{h}$ kèm rsLoRA",
}


@pytest.mark.parametrize("name", list(SCALINGS))
def test_scaling_table(name):
    cells = " | ".join(fmt(scaling_of(name, r, H)) for r in (8, 16, 64, H))
    in_page(f"| {ROW_LABELS[name]} | {cells} |")
    in_page(f"| quy tắc | r = 8 | r = 16 | r = 64 | r = {vi_num(H)} |")


def test_sqrt_hidden_numbers():
    s16 = scaling_of("alpha = √hidden, rsLoRA", 16, H)
    ratio = s16 / scaling_of("alpha = 2r", 16, H)
    in_page(f"$h = {vi_num(H)}$, $\\sqrt{{h}} = {vi_num(math.sqrt(H), 2).replace(',', '{,}')}$",
            f"$\\sqrt{{{vi_num(H)}}} = {vi_num(math.sqrt(H), 2).replace(',', '{,}')}$",
            f"$s = {vi_num(s16, 2).replace(',', '{,}')}$, gấp khoảng {vi_num(ratio, 1)} lần $s = 2$")
    in_notebook(f"gấp khoảng {vi_num(ratio, 1)} lần")


def test_qlora_code_ratio():
    in_page(f"$\\alpha/r = {vi_num(16 / 64, 2).replace(',', '{,}')}$")


def _toy():
    from course_utils.lora import toy_regression

    return toy_regression()


def test_equivalence_as_stated():
    """The notebook's experiment (same seed, k = 4, eps 1e-16) and the bound the page states."""
    W, A0, X, Y = _toy()
    k = 4.0
    ref = adam_delta_w(W, A0, X, Y, 16, 1e-2, 60)
    same = adam_delta_w(W, A0 / math.sqrt(k), X, Y, k * 16, 1e-2 / math.sqrt(k), 60)
    scale = max(d.abs().max().item() for d in ref)
    assert max((a - b).abs().max().item() for a, b in zip(ref, same)) / scale < 1e-9
    in_page("float64, $\\epsilon = 10^{-16}$, $k = 4$", "sai khác tương đối dưới $10^{-9}$")
    assert "k, alpha, lr, steps = 4.0, 16, 1e-2, 60" in source()


def test_sweep_settings():
    from course_utils.data import load_split
    from course_utils.models import load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(TINY, quantize=False)
    millions = vi_num(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    n_val = len(load_split("validation"))
    assert TINY.learning_rate == SWEEP_LR
    in_page(f"mô hình tiny ({millions} triệu tham số, số chiều ẩn {model.config.hidden_size})",
            f"một mô hình {millions} triệu tham số", f"loss trên {n_val} mẫu",
            f"$2 \\cdot 10^{{-3}}$, {SWEEP_STEPS} bước, batch 8 chuỗi 128 token",
            "$r \\in \\{" + ", ".join(map(str, REDUCED_RANKS)) + "\\}$",
            "$r \\in \\{" + ", ".join(map(str, FULL_RANKS)) + "\\}$",
            f"gấp {round(HIGH_LR / SWEEP_LR)} lần")
    in_notebook(f"một mô hình {millions} triệu tham số", f"({n_val} mẫu)", f"{SWEEP_STEPS} bước",
                f"gấp {round(HIGH_LR / SWEEP_LR)} lần phép quét",
                f"{len(distinct_runs(FULL_RANKS))} lần huấn luyện thay vì {len(distinct_runs(REDUCED_RANKS))}",
                f"Mặc định nó chạy {len(REDUCED_RANKS)} giá trị của r", f"đủ {len(FULL_RANKS)} giá trị")
    src = source()
    assert f"steps={SWEEP_STEPS}, lr=2e-3" in src and "lr=1e-2" in src


def test_lab_recommendation():
    n = count_lora_params(QWEN, T4.lora_r, T4.lora_target_modules)
    total = parameter_counts(QWEN)["total"]
    s = T4.lora_alpha / T4.lora_r
    in_page(f"$r = {T4.lora_r}$, $\\alpha = {T4.lora_alpha}$ ($s = {s:g}$) trên mọi lớp tuyến tính "
            f'(`target_modules="{T4.lora_target_modules}"`)',
            f"tức {vi_num(n)} tham số huấn luyện được, {vi_num(100 * n / total, 2)}% của Qwen2.5-7B",
            "tốc độ học của profile `t4`, $2 \\cdot 10^{-4}$",
            f"tăng $r$ từ {T4.lora_r} lên 64 là nhân cỡ bước lên {64 // T4.lora_r} lần")
    assert T4.learning_rate == 2e-4 and T4.lora_alpha == 2 * T4.lora_r
