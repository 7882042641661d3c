"""Checkers of chapter 8 (ROUGE and Vietnamese-correct evaluation). Expected values are recomputed, never stored."""

from __future__ import annotations

import math

from ..data import load_split
from ..metrics import rouge_vi, vi_tokenize
from . import check_number, report, unanswered

BY_HAND_REFERENCE = "lora chỉ huấn luyện hai ma trận nhỏ"
BY_HAND_PREDICTION = "lora huấn luyện hai ma trận rất nhỏ"
TRUE_FALSE_PREFIX = "Câu sau đúng hay sai"


def _pair(answer, what: str):
    """The two numbers of a pair answer, or None (having said why)."""
    if unanswered(answer):
        return None
    try:
        a, b = (float(x) for x in answer)
    except (TypeError, ValueError):
        report(False, f"cần một cặp hai số {what}, ví dụ answer = (0.5, 0.25).")
        return None
    return a, b


def check_by_hand(answer) -> bool:
    """bt-08-1: (ROUGE-2 F1, ROUGE-L F1) of the pair computed by hand."""
    pair = _pair(answer, "(rouge2_f1, rougeL_f1)")
    if pair is None:
        return False
    expected = rouge_vi([BY_HAND_PREDICTION], [BY_HAND_REFERENCE], ("rouge2", "rougeL"))
    ok2 = math.isclose(pair[0], expected["rouge2"], abs_tol=5e-3)
    okl = math.isclose(pair[1], expected["rougeL"], abs_tol=5e-3)
    hints = []
    if not ok2:
        hints.append("ROUGE-2: liệt kê 7 bigram của mỗi câu rồi đếm các bigram có mặt ở cả hai")
    if not okl:
        hints.append("ROUGE-L: LCS giữ đúng thứ tự nhưng được bỏ qua token ở giữa (\"chỉ\", \"rất\")")
    return report(ok2 and okl, "; ".join(hints) + ".",
                  "ROUGE-2 thấp hơn hẳn ROUGE-L vì mỗi từ chèn thêm làm gãy hai bigram.")


def check_inflation(answer) -> bool:
    """bt-08-2: mean ROUGE-1 of unrelated validation pairs, default tokenizer / rouge_vi."""
    from rouge_score import rouge_scorer

    refs = [r["output"] for r in load_split("validation")]
    preds = refs[1:] + refs[:1]
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    default = sum(scorer.score(r, p)["rouge1"].fmeasure for p, r in zip(preds, refs)) / len(refs)
    expected = default / rouge_vi(preds, refs, "rouge1")["rouge1"]
    return check_number(answer, expected, rel_tol=0.02,
                        hint="chia ROUGE-1 trung bình của bộ tách mặc định cho ROUGE-1 trung bình của rouge_vi, "
                             "trên các cặp (câu i, câu i + 1) của tập validation.",
                        praise="Các mảnh như 't', 'ng', 'nh' trùng nhau ở mọi câu nên điểm bị thổi phồng.")


def check_tone_placement(answer) -> bool:
    """bt-08-3: ROUGE-1 of "Hoá học" (old tone placement) against "hóa học" (new)."""
    expected = rouge_vi(["Hoá học"], ["hóa học"], "rouge1")["rouge1"]
    return check_number(answer, expected, abs_tol=1e-6,
                        hint="NFC không đổi vị trí dấu thanh: so vi_tokenize(\"Hoá học\") với vi_tokenize(\"hóa học\").",
                        praise="Hai kiểu đặt dấu là hai token khác nhau; hãy thống nhất một kiểu trước khi chấm.")


def check_short_answers(answer) -> bool:
    """bt-08-4: (verdict accuracy, mean ROUGE-1) of the constant answer "Sai." on the test true/false items."""
    pair = _pair(answer, "(tỉ_lệ_đúng, rouge1)")
    if pair is None:
        return False
    refs = [r["output"] for r in load_split("test") if r["instruction"].startswith(TRUE_FALSE_PREFIX)]
    accuracy = sum(vi_tokenize(r)[0] == "sai" for r in refs) / len(refs)
    rouge1 = rouge_vi(["Sai."] * len(refs), refs, "rouge1")["rouge1"]
    ok_acc = math.isclose(pair[0], accuracy, abs_tol=1e-3)
    ok_rouge = math.isclose(pair[1], rouge1, abs_tol=1e-3)
    hints = []
    if not ok_acc:
        hints.append(f"tỉ lệ là một số trong [0, 1] trên {len(refs)} câu bắt đầu bằng \"{TRUE_FALSE_PREFIX}\"")
    if not ok_rouge:
        hints.append("ROUGE-1 lấy trung bình rouge_vi([\"Sai.\"] * n, tham_chiếu)[\"rouge1\"]")
    return report(ok_acc and ok_rouge, "; ".join(hints) + ".",
                  "Phán quyết đúng nhưng ROUGE gần 0: chấm câu trả lời ngắn bằng khớp chính xác.")
