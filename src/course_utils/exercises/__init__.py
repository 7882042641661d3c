"""Exercise checkers: they answer in Vietnamese, right or what to look at, and return True/False.

Each chapter has its module (course_utils.exercises.<chapter>) built on the primitives here.
A solution cell asserts its checker: `assert check_...(answer)`.
"""

from __future__ import annotations

import math

OK = "✅ Đúng rồi!"
NOT_YET = "❌ Chưa đúng."
NO_ANSWER = "✏️ Chưa có câu trả lời: thay `...` bằng câu trả lời của bạn rồi chạy lại ô này."


def unanswered(answer) -> bool:
    """True (and says so) while the exercise cell still holds its placeholder `...`."""
    if answer is Ellipsis:
        print(NO_ANSWER)
        return True
    return False


def report(ok: bool, hint: str = "", praise: str = "") -> bool:
    """Print the verdict (with a hint when wrong, a remark when right) and return it."""
    if ok:
        print(OK + (f" {praise}" if praise else ""))
    else:
        print(NOT_YET + (f" Gợi ý: {hint}" if hint else ""))
    return ok


def check_number(answer, expected: float, *, rel_tol: float = 1e-6, abs_tol: float = 0.0,
                 hint: str = "", praise: str = "") -> bool:
    """A number close enough to the expected one."""
    if unanswered(answer):
        return False
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return report(False, f"cần một con số, nhận được {type(answer).__name__}. {hint}".strip())
    ok = math.isclose(value, float(expected), rel_tol=rel_tol, abs_tol=abs_tol)
    return report(ok, hint, praise)


def check_tensor(answer, expected, *, atol: float = 1e-5, rtol: float = 1e-5, hint: str = "",
                 praise: str = "") -> bool:
    """A tensor of the expected shape whose values are close to the expected ones."""
    import torch

    if unanswered(answer):
        return False
    if not isinstance(answer, torch.Tensor):
        return report(False, f"cần một torch.Tensor, nhận được {type(answer).__name__}.")
    if tuple(answer.shape) != tuple(expected.shape):
        return report(False, f"kích thước (shape) là {tuple(answer.shape)}, cần {tuple(expected.shape)}. {hint}".strip())
    ok = torch.allclose(answer.detach().float().cpu(), expected.detach().float().cpu(), atol=atol, rtol=rtol)
    if not ok:
        diff = (answer.detach().float().cpu() - expected.detach().float().cpu()).abs().max().item()
        return report(False, f"sai khác lớn nhất {diff:.3g}. {hint}".strip())
    return report(True, praise=praise)


def check_choice(answer, correct, *, hint: str = "", praise: str = "") -> bool:
    """A choice (a letter, a word, a set of options) equal to the correct one; case and spaces ignored."""
    def norm(x):
        if isinstance(x, (set, frozenset, list, tuple)):
            return frozenset(norm(v) for v in x)
        return str(x).strip().lower()

    if unanswered(answer):
        return False
    return report(norm(answer) == norm(correct), hint, praise)
