"""Exercise checkers of chapter 2 (overfitting): the signal, the best step, weight decay, the generalization gap."""

from __future__ import annotations

import math

from . import check_choice, check_number, report, unanswered

SIGNAL_HINTS = {
    "a": "cả hai cùng giảm là mô hình đang học tốt, chưa quá khớp.",
    "c": "cả hai đứng yên ở mức cao là học chưa đủ (underfitting), ngược với quá khớp.",
    "d": "loss huấn luyện tăng là bất thường (tốc độ học quá lớn?), không phải quá khớp.",
}


def check_overfitting_signal(answer) -> bool:
    """The letter of the overfitting pattern: train loss falls, validation loss turns up."""
    if unanswered(answer):
        return False
    letter = str(answer).strip().lower()
    if letter not in ("a", "b", "c", "d"):
        return report(False, 'chọn một chữ cái: "a", "b", "c" hoặc "d".')
    return check_choice(letter, "b", hint=SIGNAL_HINTS.get(letter, ""),
                        praise="Mô hình tiếp tục khớp dữ liệu huấn luyện nhưng kém dần trên dữ liệu chưa thấy.")


def best_eval_step(log_history: list[dict]) -> int:
    """The step of the lowest eval_loss in a Trainer's log_history (the first one on a tie)."""
    evals = [row for row in log_history if "eval_loss" in row]
    if not evals:
        raise ValueError("log_history không có lần đo kiểm định nào (khóa 'eval_loss').")
    return min(evals, key=lambda row: row["eval_loss"])["step"]


def check_best_step(answer, log_history: list[dict]) -> bool:
    """The step with the lowest validation loss."""
    if unanswered(answer):
        return False
    expected = best_eval_step(log_history)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return report(False, "hãy gán cho step_of_min một số nguyên (một giá trị của khóa 'step').")
    last = max(row["step"] for row in log_history if "eval_loss" in row)
    if answer == last and expected != last:
        return report(False, "đó là lần đo cuối cùng; cần lần đo có eval_loss nhỏ nhất.")
    return check_number(answer, expected, hint="lọc các từ điển có khóa 'eval_loss', rồi lấy 'step' của từ điển "
                        "có eval_loss nhỏ nhất.", praise=f"Sau bước {expected}, loss kiểm định không xuống thấp hơn nữa.")


def check_half_life_steps(answer, lr: float, weight_decay: float) -> bool:
    """Smallest n with (1 - lr * weight_decay) ** n <= 0.5."""
    from ..figures.ch02 import OVERFIT

    if unanswered(answer):
        return False
    factor = 1 - lr * weight_decay
    expected = math.ceil(math.log(0.5) / math.log(factor))
    try:
        n = int(answer)
    except (TypeError, ValueError):
        return report(False, "cần một số nguyên (số bước).")
    if n == expected:
        steps = OVERFIT["steps"]
        return report(True, praise=f"{expected} bước, gấp khoảng {expected // steps} lần {steps} bước của thí nghiệm.")
    if n <= 0:
        return report(False, "số bước phải dương: lấy log hai vế của (1 − lr·wd)^n ≤ 0,5.")
    if factor ** n <= 0.5:
        return report(False, f"với {n} bước trọng số đã nhỏ hơn một nửa, nhưng còn số bước nhỏ hơn cũng thỏa.")
    return report(False, f"(1 − lr·wd)^{n} = {factor ** n:.3f} vẫn lớn hơn 0,5: cần nhiều bước hơn.")


def check_generalization_gap(answer, trainer, seen_dataset, tol: float = 1e-3) -> bool:
    """Final validation loss minus the loss on `seen_dataset` (training examples), for `trainer`'s model."""
    if unanswered(answer):
        return False
    val_loss = trainer.evaluate()["eval_loss"]
    seen_loss = trainer.evaluate(eval_dataset=seen_dataset)["eval_loss"]
    expected = val_loss - seen_loss
    if isinstance(answer, (int, float)) and math.isclose(answer, -expected, abs_tol=tol):
        return report(False, "bạn đã lấy ngược dấu: loss kiểm định trừ loss trên mẫu đã học.")
    return check_number(answer, expected, abs_tol=tol,
                        hint=f"loss kiểm định là {val_loss:.3f}; đo loss trên 16 mẫu huấn luyện rồi lấy hiệu.",
                        praise=f"Trên mẫu đã học loss chỉ {seen_loss:.3f}, trên mẫu chưa thấy {val_loss:.3f}: "
                               "mô hình đã thuộc bài hơn là học được quy luật.")
