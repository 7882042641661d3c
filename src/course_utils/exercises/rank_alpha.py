"""Checkers of the rank and alpha chapter (notebook 07)."""

from __future__ import annotations

import math

from . import check_choice, check_number, report


def check_sqrt_hidden(answer) -> bool:
    """bt-07-1: s of alpha = sqrt(hidden) with rsLoRA for Qwen2.5-7B at r = 16, and its ratio to alpha = 2r."""
    from ..configs import qwen25_7b_config
    from ..lora import scaling_of

    try:
        s, ratio = answer
    except (TypeError, ValueError):
        return report(False, "cần một cặp (s, ratio).")
    hidden = qwen25_7b_config().hidden_size
    expected = scaling_of("alpha = √hidden, rsLoRA", 16, hidden)
    hint = "rsLoRA chia alpha cho √r: s = √h / √r; với α = 2r thì s = 2r / r."
    if not math.isclose(float(s), expected, rel_tol=1e-4):
        return report(False, f"s chưa đúng. {hint}")
    return check_number(ratio, expected / scaling_of("alpha = 2r", 16, hidden), rel_tol=1e-4, hint=hint)


def check_equivalent_run(answer) -> bool:
    """bt-07-2: (factor on A0, learning rate) that keep delta W's trajectory when alpha goes from 16 to 64."""
    from ..lora import adam_delta_w, toy_regression

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


def make_batches():
    """bt-07-3: the tiny model, the sweep's batches and the validation loss before training."""
    from ..lora import mean_loss, sweep_data

    model, train_batches, eval_batches = sweep_data()
    return model, train_batches, eval_batches, mean_loss(model, eval_batches)


def check_high_lr(answer) -> bool:
    """bt-07-3: the rules that still train at r = 64 with a learning rate of 1e-2."""
    return check_choice(answer, {"alpha = 16"},
                        hint="ở r = 64, α = 2r và rsLoRA với α = 16 có cùng s = 2, tức s·r = 128, gấp 8 lần "
                             "α = 16 (s·r = 16): so loss của hai lần chạy với loss trước khi huấn luyện.",
                        praise="Với tốc độ học lớn, s·r lớn làm việc học mất ổn định: alpha và tốc độ học "
                               "phải được chọn cùng nhau.")


PAPERS = {"a": "biderman", "b": "hu", "c": "rslora", "d": "qlora", "e": "illusion"}


def check_papers(answer) -> bool:
    """bt-07-4: which paper made which claim."""
    if not isinstance(answer, dict):
        return report(False, 'cần một dict, ví dụ {"a": "hu", ...}.')
    given = {str(k).strip().lower(): str(v).strip().lower() for k, v in answer.items()}
    wrong = sorted(k for k in PAPERS if given.get(k) != PAPERS[k])
    return report(not wrong, f"xem lại các câu {', '.join(wrong)} (bảng ở mục 7.3 của chương).")
