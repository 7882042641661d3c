"""Figures of chapter 8 (ROUGE for Vietnamese): every score the page and the notebook quote, recomputed with
rouge_vi and with rouge-score's default tokenizer, on the same sentences and the course's test split."""

from __future__ import annotations

import unicodedata

import inspect

from ..data import load_split
from ..metrics import bootstrap_ci, rouge_vi, vi_tokenize

# the sentence pairs of the chapter (prediction, reference)
REFERENCE = "tinh chỉnh giúp mô hình trả lời đúng"
PARAPHRASE = "mô hình trả lời đúng hơn nhờ tinh chỉnh"
NEGATION = ("LoRA cập nhật trọng số gốc.", "LoRA không cập nhật trọng số gốc.")
WRONG_PLACE = ("Thủ đô của Việt Nam là Đà Nẵng.", "Thủ đô của Việt Nam là Hà Nội.")
LSUM = ("Trọng số gốc không đổi.\nLoRA chỉ học hai ma trận.", "LoRA học hai ma trận nhỏ.\nTrọng số gốc được giữ nguyên.")
ONE_TONE = ("tôi bạn hàng", "tôi bán hàng")
NFD_SENTENCE = "Tinh chỉnh giúp mô hình trả lời đúng bằng tiếng Việt."
TONE_PLACEMENT = ("Hoá học", "hóa học")
SYLLABLES = ("Sinh viên thích tính toán trên máy.", "Học sinh thích học máy tính.")
WORDS = ("Sinh_viên thích tính_toán trên máy.", "Học_sinh thích học máy_tính.")
TRUE_FALSE_PREFIX = "Câu sau đúng hay sai"


def default_rouge(predictions, references) -> dict[str, float]:
    """Mean F1 with rouge-score's default tokenizer (the pitfall the chapter shows)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])
    scores = [scorer.score(r, p) for p, r in zip(predictions, references)]
    return {t: sum(s[t].fmeasure for s in scores) / len(scores) for t in scores[0]}


def word_tokenize(text: str) -> list[str]:
    """Tokens of a hand-segmented text: "_" joins the syllables of a word (as the notebook's word_tokenize)."""
    import re

    return re.findall(r"\w+", unicodedata.normalize("NFC", text.lower()))


def unrelated_test_pairs() -> tuple[list[str], list[str]]:
    """Each test answer against the reference of the next question: unrelated pairs."""
    refs = [r["output"] for r in load_split("test")]
    return refs[1:] + refs[:1], refs


def figures() -> dict[str, float]:
    worked = rouge_vi([PARAPHRASE], [REFERENCE])
    lsum = rouge_vi([LSUM[0]], [LSUM[1]])
    one_tone = rouge_vi([ONE_TONE[0]], [ONE_TONE[1]])
    nfd_default = default_rouge([unicodedata.normalize("NFD", NFD_SENTENCE)], [NFD_SENTENCE])
    preds, refs = unrelated_test_pairs()
    unrelated_default, unrelated_vi = default_rouge(preds, refs)["rouge1"], rouge_vi(preds, refs)["rouge1"]
    negation, wrong_place = rouge_vi([NEGATION[0]], [NEGATION[1]]), rouge_vi([WRONG_PLACE[0]], [WRONG_PLACE[1]])
    reversed_ref = rouge_vi([" ".join(reversed(REFERENCE.split()))], [REFERENCE])
    tf_refs = [r["output"] for r in load_split("test") if r["instruction"].startswith(TRUE_FALSE_PREFIX)]
    defaults = {k: p.default for k, p in inspect.signature(bootstrap_ci).parameters.items()}
    tf_accuracy = sum(vi_tokenize(r)[0] == "sai" for r in tf_refs) / len(tf_refs)  # the answer "Sai." each time
    return {
        "ví dụ tính tay: ROUGE-1 F1": worked["rouge1"],
        "ví dụ tính tay: ROUGE-2 F1": worked["rouge2"],
        "ví dụ tính tay: ROUGE-L F1": worked["rougeL"],
        "ví dụ nhiều câu: ROUGE-L F1": lsum["rougeL"],
        "ví dụ nhiều câu: ROUGE-Lsum F1": lsum["rougeLsum"],
        "'tôi bạn hàng' / 'tôi bán hàng': ROUGE-1 (rouge_vi)": one_tone["rouge1"],
        "cùng câu NFD / NFC: ROUGE-1 (bộ tách mặc định)": nfd_default["rouge1"],
        "cặp không liên quan (tập kiểm tra): ROUGE-1, bộ tách mặc định": unrelated_default,
        "cặp không liên quan (tập kiểm tra): ROUGE-1, rouge_vi": unrelated_vi,
        "'Hoá học' / 'hóa học': ROUGE-1": rouge_vi([TONE_PLACEMENT[0]], [TONE_PLACEMENT[1]])["rouge1"],
        "theo âm tiết: ROUGE-1": rouge_vi([SYLLABLES[0]], [SYLLABLES[1]])["rouge1"],
        "theo từ: ROUGE-1": rouge_vi([WORDS[0]], [WORDS[1]], tokenize=word_tokenize)["rouge1"],
        "thiếu 'không': ROUGE-1": negation["rouge1"],
        "thiếu 'không': ROUGE-L": negation["rougeL"],
        "sai địa danh: ROUGE-1": wrong_place["rouge1"],
        "sai địa danh: ROUGE-L": wrong_place["rougeL"],
        "đảo ngược thứ tự: ROUGE-1": reversed_ref["rouge1"],
        "đảo ngược thứ tự: ROUGE-L": reversed_ref["rougeL"],
        "'Sai.' cho mọi câu đúng/sai: phán quyết đúng (%)": 100 * tf_accuracy,
        "'Sai.' cho mọi câu đúng/sai: ROUGE-1 trung bình": rouge_vi(["Sai."] * len(tf_refs), tf_refs)["rouge1"],
        "bootstrap: số lần rút mặc định": defaults["n_resamples"],
        "bootstrap: mức tin cậy mặc định (%)": round(100 * defaults["confidence"]),
    }
