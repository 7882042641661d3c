"""Checkers of the rank and alpha chapter (notebook 07)."""

from __future__ import annotations

import math

from . import check_number, report, unanswered


def check_sqrt_hidden(answer) -> bool:
    """bt-07-1: s of alpha = sqrt(hidden) with rsLoRA for Qwen2.5-7B at r = 16, and its ratio to alpha = 2r."""
    from ..configs import qwen25_7b_config
    from ..sweep import scaling_of

    if unanswered(answer):
        return False
    try:
        s, ratio = (float(v) for v in answer)
    except (TypeError, ValueError):
        return report(False, "cần một cặp số (s, ratio).")
    hidden = qwen25_7b_config().hidden_size
    expected = scaling_of("alpha = √hidden, rsLoRA", 16, hidden)
    hint = "rsLoRA chia alpha cho √r: s = √h / √r; với α = 2r thì s = 2r / r."
    if not math.isclose(s, expected, rel_tol=1e-4):
        return report(False, f"s chưa đúng. {hint}")
    return check_number(ratio, expected / scaling_of("alpha = 2r", 16, hidden), rel_tol=1e-4, hint=hint)


def check_equivalent_run(answer) -> bool:
    """bt-07-2: (factor on A0, learning rate) that keep delta W's trajectory when alpha goes from 16 to 64."""
    from ..lora import adam_delta_w, toy_regression

    if unanswered(answer):
        return False
    try:
        factor, lr = (float(v) for v in answer)
    except (TypeError, ValueError):
        return report(False, "cần một cặp số (a0_factor, lr).")
    W, A0, X, Y = toy_regression(out_features=4, in_features=6, r=2, n=24, seed=1)
    ref = adam_delta_w(W, A0, X, Y, alpha=16, lr=1e-2, steps=40)
    yours = adam_delta_w(W, factor * A0, X, Y, alpha=64, lr=lr, steps=40)
    gap = max((a - b).abs().max().item() for a, b in zip(ref, yours)) / max(d.abs().max().item() for d in ref)
    print(f"Sai khác tương đối lớn nhất của ΔW so với lần chạy gốc: {gap:.1e}")
    return report(gap < 1e-9, "với k = 64/16, cần nhân A0 với 1/√k và chia tốc độ học cho √k.")


BEST_LR_RULE = "alpha = 2r"


def expected_best_lrs(rule: str = BEST_LR_RULE) -> dict[int, float]:
    """bt-07-3: {r: best learning rate} of one rule in the committed sweep (loss averaged over the seeds)."""
    from ..sweep import best_per_cell, load_results

    return {r: lr for (name, r), (lr, _) in sorted(best_per_cell(load_results()).items()) if name == rule}


def check_best_lrs(answer) -> bool:
    """bt-07-3: the best learning rate at each rank for alpha = 2r, read from the committed sweep."""
    if unanswered(answer):
        return False
    expected = expected_best_lrs()
    if not isinstance(answer, dict):
        return report(False, "cần một dict {r: tốc độ học}, ví dụ {1: 0.004, 4: 0.004, ...}.")
    try:
        given = {int(r): float(lr) for r, lr in answer.items()}
    except (TypeError, ValueError):
        return report(False, "khóa là r (số nguyên), giá trị là tốc độ học (số thực).")
    if set(given) != set(expected):
        return report(False, f"cần đúng các rank {sorted(expected)}.")
    wrong = [r for r in expected if not math.isclose(given[r], expected[r], rel_tol=1e-6)]
    return report(not wrong,
                  f"xem lại r = {', '.join(map(str, wrong))}: lấy trung bình loss qua các hạt giống ở mỗi tốc độ "
                  "học, rồi chọn tốc độ học có trung bình nhỏ nhất (best_per_cell làm đúng việc này).",
                  "Với α = 2r, s·r = 2r tăng theo r, và tốc độ học tốt nhất giảm dần: quy tắc alpha và tốc độ học "
                  "phải được chọn cùng nhau.")


PAPERS = {"a": "biderman", "b": "hu", "c": "rslora", "d": "qlora", "e": "illusion", "f": "illusion"}


def check_papers(answer) -> bool:
    """bt-07-4: which paper made which claim."""
    if unanswered(answer):
        return False
    if not isinstance(answer, dict):
        return report(False, 'cần một dict, ví dụ {"a": "hu", ...}.')
    given = {str(k).strip().lower(): str(v).strip().lower() for k, v in answer.items()}
    wrong = sorted(k for k in PAPERS if given.get(k) != PAPERS[k])
    return report(not wrong, f"xem lại các câu {', '.join(wrong)} (bảng các bài báo trong chương).")
