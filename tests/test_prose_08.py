"""Every computed number of chapter 8 (book/08_rouge.md and the notebook's prose) is recomputed here
and must appear as written. Whitespace is collapsed and {term} roles are read as their text before
searching, so a line break or a glossary link in the page does not matter."""

import re
import unicodedata
from importlib.metadata import version
from pathlib import Path

import pytest
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer

from course_utils.data import load_split
from course_utils.display import vi_num
from course_utils.metrics import rouge_vi, vi_tokenize

ROOT = Path(__file__).resolve().parents[1]


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def page() -> str:
    text = (ROOT / "book" / "08_rouge.md").read_text(encoding="utf-8")
    return collapse(re.sub(r"\{term\}`([^`<]*)`", r"\1", text))  # a glossary link reads as its text


@pytest.fixture(scope="module")
def notebook_prose() -> str:
    """The markdown cells of the notebook source (py:percent), without the comment marks."""
    source = (ROOT / "notebooks" / "08_rouge.py").read_text(encoding="utf-8")
    cells = re.split(r"^# %%", source, flags=re.M)
    md = [c for c in cells if c.startswith(" [markdown]")]
    return collapse("\n".join(re.sub(r"^# ?", "", line) for c in md for line in c.splitlines()[1:]))


def f1(x: float) -> str:
    return vi_num(x, 2) if x not in (0.0, 1.0) else str(int(x))


def within(text: str, *parts: str):
    for part in parts:
        assert collapse(part) in text, part


REFERENCE = "tinh chỉnh giúp mô hình trả lời đúng"
PREDICTION = "mô hình trả lời đúng hơn nhờ tinh chỉnh"
DEFAULT = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])


def default_rouge(predictions, references):
    scores = [DEFAULT.score(r, p) for p, r in zip(predictions, references)]
    return {t: sum(s[t].fmeasure for s in scores) / len(scores) for t in scores[0]}


def unrelated_test_pairs():
    refs = [r["output"] for r in load_split("test")]
    return refs[1:] + refs[:1], refs


def test_pinned_rouge_score(page):
    assert version("rouge-score") == "0.1.2"
    assert "rouge-score==0.1.2" in (ROOT / "requirements.txt").read_text()
    within(page, "khóa học ghim bản 0.1.2")


def test_worked_example(page, notebook_prose):
    ref, pred = vi_tokenize(REFERENCE), vi_tokenize(PREDICTION)
    assert (len(ref), len(pred)) == (8, 9)
    within(page, f"({len(ref)} âm tiết)", f"({len(pred)} âm tiết)")
    common1 = [t for t in ref if t in pred]
    bigrams = lambda toks: [tuple(toks[i:i + 2]) for i in range(len(toks) - 1)]
    common2 = [b for b in bigrams(ref) if b in bigrams(pred)]
    s = rouge_vi([PREDICTION], [REFERENCE])
    within(page,
           f"| ROUGE-1 | {len(pred)} âm tiết | {len(ref)} âm tiết | {len(common1)}: {', '.join(common1)} | "
           f"$\\frac{{{len(common1)}}}{{{len(pred)}}}$ | $\\frac{{{len(common1)}}}{{{len(ref)}}}$ | {f1(s['rouge1'])} |",
           f"| ROUGE-2 | {len(pred) - 1} bigram | {len(ref) - 1} bigram | {len(common2)}: "
           f"{', '.join(' '.join(b) for b in common2)} | $\\frac{{{len(common2)}}}{{{len(pred) - 1}}}$ | "
           f"$\\frac{{{len(common2)}}}{{{len(ref) - 1}}}$ | {f1(s['rouge2'])} |")
    lcs = round(s["rougeL"] * (len(ref) + len(pred)) / 2)  # F1 = 2 LCS / (m + n)
    assert lcs == 5
    within(page, "LCS là \"mô hình trả lời đúng\", dài 5", f"$P = \\frac{{{lcs}}}{{{len(pred)}}}$",
           f"$R = \\frac{{{lcs}}}{{{len(ref)}}}$ và $F_1$ = {f1(s['rougeL'])}")
    within(notebook_prose, f"ROUGE-1 cho {f1(s['rouge1'])}", f"ROUGE-L chỉ còn {f1(s['rougeL'])}")


def test_rouge_lsum_example(page):
    ref = "LoRA học hai ma trận nhỏ.\nTrọng số gốc được giữ nguyên."
    pred = "Trọng số gốc không đổi.\nLoRA chỉ học hai ma trận."
    within(page, "tham chiếu \"LoRA học hai ma trận nhỏ.\" + xuống dòng + \"Trọng số gốc được giữ nguyên.\"",
           "\"Trọng số gốc không đổi.\" + xuống dòng + \"LoRA chỉ học hai ma trận.\"")
    s = rouge_vi([pred], [ref])
    assert s["rougeLsum"] > s["rougeL"]
    within(page, f"cho $F_1$ = {f1(s['rougeL'])}; ROUGE-Lsum", f"cho $F_1$ = {f1(s['rougeLsum'])}. Đổi thứ tự")
    flat = rouge_vi([pred.replace("\n", " ")], [ref.replace("\n", " ")])
    assert flat["rougeLsum"] == flat["rougeL"]


def test_default_tokenizer_table(page):
    for text in ["tiếng Việt", "tôi bán hàng", "tôi bạn hàng", "Đà Nẵng"]:
        tokens = ", ".join(f"`{t}`" for t in DefaultTokenizer().tokenize(text))
        within(page, f"| {text} | {tokens} |")
    assert DefaultTokenizer().tokenize("ở đó") == []
    within(page, "| ở đó | (không còn gì) |")


def test_pitfall_numbers(page, notebook_prose):
    before = default_rouge(["tôi bạn hàng"], ["tôi bán hàng"])
    assert before["rouge1"] == before["rouge2"] == before["rougeL"] == 1.0
    within(page, "bộ tách mặc định cho ROUGE-1, ROUGE-2, ROUGE-L đều bằng 1")
    after = rouge_vi(["tôi bạn hàng"], ["tôi bán hàng"])
    within(page, f"ROUGE-1 là {f1(after['rouge1'])} và ROUGE-2 là {f1(after['rouge2'])}.")

    sentence = "Tinh chỉnh giúp mô hình trả lời đúng bằng tiếng Việt."
    nfd = unicodedata.normalize("NFD", sentence)
    before = default_rouge([nfd], [sentence])
    within(page, f"ROUGE-1 bằng {f1(before['rouge1'])} và ROUGE-2 bằng {f1(before['rouge2'])}")
    assert before["rouge1"] < 0.5 and rouge_vi([nfd], [sentence])["rouge1"] == 1.0
    within(notebook_prose, "chấm 1 cho hai câu khác nghĩa, chấm dưới 0,5 cho hai câu giống hệt nhau")

    preds, refs = unrelated_test_pairs()
    assert len(refs) == 27
    within(page, f"{len(refs)} câu trả lời mẫu của tập kiểm tra")
    within(notebook_prose, f"Ta thử trên {len(refs)} câu tham chiếu", f"{len(refs)} câu trả lời của tập kiểm tra")
    before, after = default_rouge(preds, refs)["rouge1"], rouge_vi(preds, refs)["rouge1"]
    within(page, f"ROUGE-1 trung bình {f1(before)}, tách đúng chỉ {f1(after)}")
    assert round(before / after) == 4
    within(page, "thổi phồng khoảng bốn lần")
    within(notebook_prose, "ROUGE-1 gấp khoảng bốn lần")


def test_nfc_nfd_facts(page):
    nfc, nfd = "tiếng Việt", unicodedata.normalize("NFD", "tiếng Việt")
    within(page, f"dài {len(nfc)} ký tự ở dạng NFC và {len(nfd)} ký tự ở dạng NFD")
    assert f"U+{ord('ế'):04X}" == "U+1EBF"
    within(page, "ký tự dựng sẵn (U+1EBF)")
    within(page, "(" + " ".join(f"U+{ord(c):04X}" for c in unicodedata.normalize("NFD", "ế")) + ")")
    tone = rouge_vi(["Hoá học"], ["hóa học"])["rouge1"]
    within(page, f"\"Hoá học\" so với \"hóa học\" chỉ được ROUGE-1 bằng {vi_num(tone, 1)}")


def test_syllables_vs_words(page):
    def word_tokenize(text):
        return re.findall(r"\w+", unicodedata.normalize("NFC", text.lower()))

    by_syllable = rouge_vi(["Sinh viên thích tính toán trên máy."], ["Học sinh thích học máy tính."])["rouge1"]
    by_word = rouge_vi(["Sinh_viên thích tính_toán trên máy."], ["Học_sinh thích học máy_tính."],
                       tokenize=word_tokenize)["rouge1"]
    within(page, f"theo âm tiết, ROUGE-1 là {f1(by_syllable)}", f"ROUGE-1 chỉ còn {f1(by_word)}")


def test_limits_table(page, notebook_prose):
    rows = [
        (PREDICTION, REFERENCE),
        ("LoRA cập nhật trọng số gốc.", "LoRA không cập nhật trọng số gốc."),
        ("Thủ đô của Việt Nam là Đà Nẵng.", "Thủ đô của Việt Nam là Hà Nội."),
        (" ".join(reversed(REFERENCE.split())), REFERENCE),
    ]
    for pred, ref in rows:
        s = rouge_vi([pred], [ref])
        rouge_l = vi_num(s["rougeL"], 3) if s["rougeL"] == 0.125 else f1(s["rougeL"])
        within(page, f"| {pred} | {ref} | {f1(s['rouge1'])} | {rouge_l} |")
    negation = rouge_vi([rows[1][0]], [rows[1][1]])["rouge1"]
    assert negation > 0.9
    within(notebook_prose, "câu phủ định ngược nghĩa được ROUGE-1 trên 0,9")
    assert rouge_vi([rows[3][0]], [rows[3][1]])["rouge1"] == 1.0
    within(notebook_prose, "vẫn đạt ROUGE-1 bằng 1")


def test_short_answers(page):
    refs = [r["output"] for r in load_split("test") if r["instruction"].startswith("Câu sau đúng hay sai")]
    verdicts = [vi_tokenize(r)[0] for r in refs]
    assert len(refs) == 3 and set(verdicts) == {"sai"}
    within(page, f"có {len(refs)} câu \"đúng hay sai\"", f"phán quyết đúng cả {len(refs)} câu",
           f"cả {len(refs)} tham chiếu đều là \"Sai\"", "đạt 100%")
    rouge1 = rouge_vi(["Sai."] * len(refs), refs)["rouge1"]
    within(page, f"ROUGE-1 trung bình chỉ khoảng {vi_num(rouge1, 2)}")
