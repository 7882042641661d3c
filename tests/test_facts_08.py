"""Chapter 8: the claims a learner could be misled by, checked against rouge-score and rouge_vi.

Tables and numbers are read from the page (tests/prose.py) and recomputed; no sentence is pinned.
"""

from __future__ import annotations

import re
from importlib.metadata import version

from rouge_score.tokenizers import DefaultTokenizer

from course_utils.data import load_split
from course_utils.display import vi_num
from course_utils.figures.ch08 import default_rouge, unrelated_test_pairs
from course_utils.metrics import rouge_vi, vi_tokenize
from prose import ROOT, page

STEM = "08_rouge"
NUMBER_WORDS = {2: "hai", 3: "ba", 4: "bốn", 5: "năm", 6: "sáu"}


def as_float(text: str) -> float:
    return float(text.replace(",", "."))


def test_the_quoted_rouge_score_version_is_the_pinned_one():
    quoted = set(re.findall(r"rouge-score`?[^.]{0,80}?\b(\d+\.\d+\.\d+)\b", page(STEM)))
    assert quoted == {version("rouge-score")}
    assert f"rouge-score=={version('rouge-score')}" in (ROOT / "requirements.txt").read_text()


def test_default_tokenizer_table_is_what_rouge_score_does():
    """Every row of the page's table "text | tokens of the default tokenizer" is the library's own output."""
    rows = re.findall(r"\| ([^|`]+?) \| ((?:`[^`]*`(?:, )?)+|\(không còn gì\)) \|", page(STEM))
    assert len(rows) >= 4
    for text, tokens in rows:
        assert DefaultTokenizer().tokenize(text) == re.findall(r"`([^`]*)`", tokens), text
    # the pitfall itself: two different words, the same tokens, ROUGE 1 everywhere
    assert DefaultTokenizer().tokenize("tôi bán hàng") == DefaultTokenizer().tokenize("tôi bạn hàng")


def test_limits_table_scores_are_rouge_vi_of_its_own_rows():
    rows = re.findall(r"\| ([^|$]+?) \| ([^|$]+?) \| (\d(?:,\d+)?) \| (\d(?:,\d+)?) \|", page(STEM))
    assert len(rows) >= 4
    for prediction, reference, rouge1, rouge_l in rows:
        scores = rouge_vi([prediction], [reference])
        for written, value in ((rouge1, scores["rouge1"]), (rouge_l, scores["rougeL"])):
            decimals = len(written.split(",")[1]) if "," in written else 0
            assert written == vi_num(value, decimals), (prediction, written, value)
    # what the table is for: a wrong sentence (a missing "không") scores above a right paraphrase
    by_row = {p: as_float(r1) for p, _, r1, _ in rows}
    assert by_row["LoRA cập nhật trọng số gốc."] > by_row["mô hình trả lời đúng hơn nhờ tinh chỉnh"]


def test_worked_example_counts():
    """The hand-computed table: syllable counts, common unigrams and bigrams, and the LCS length."""
    text = page(STEM)
    reference, prediction = vi_tokenize("tinh chỉnh giúp mô hình trả lời đúng"), vi_tokenize(
        "mô hình trả lời đúng hơn nhờ tinh chỉnh")
    bigrams = lambda toks: [tuple(toks[i:i + 2]) for i in range(len(toks) - 1)]  # noqa: E731
    common = {1: sum(t in prediction for t in reference), 2: sum(b in bigrams(prediction) for b in bigrams(reference))}
    for n, unit in ((1, "âm tiết"), (2, "bigram")):
        row = re.search(rf"\| ROUGE-{n} \| (\d+) {unit} \| (\d+) {unit} \| (\d+):", text)
        assert row, f"ROUGE-{n}"
        assert [int(g) for g in row.groups()] == [len(prediction) - n + 1, len(reference) - n + 1, common[n]]
    lcs = round(rouge_vi([" ".join(prediction)], [" ".join(reference)])["rougeL"] * (len(prediction) + len(reference)) / 2)
    assert re.search(rf"LCS là \"[^\"]+\", dài {lcs}\b", text)


def test_inflation_of_unrelated_pairs():
    """The page pairs the default tokenizer with the inflated score, and names the right multiple."""
    text = page(STEM)
    predictions, references = unrelated_test_pairs()
    default, ours = default_rouge(predictions, references)["rouge1"], rouge_vi(predictions, references)["rouge1"]
    assert default > 2 * ours
    at_default, at_ours = text.find(vi_num(default, 2)), text.find(vi_num(ours, 2))
    assert 0 <= at_default < at_ours < at_default + 80  # "mặc định ... 0,40, tách đúng chỉ 0,10"
    multiple = re.search(r"thổi phồng khoảng (\w+) lần", text)
    assert multiple and multiple.group(1) == NUMBER_WORDS[round(default / ours)]


def test_true_false_items_and_the_naive_baseline():
    """The test split's true/false references all say "Sai": a constant answer gets every verdict right."""
    references = [r["output"] for r in load_split("test") if r["instruction"].startswith("Câu sau đúng hay sai")]
    assert {vi_tokenize(r)[0] for r in references} == {"sai"}
    counts = {int(n) for n in re.findall(r"có (\d+) câu \"đúng hay sai\"", page(STEM))}
    assert counts == {len(references)}


def test_nfc_does_not_fix_tone_placement():
    score = rouge_vi(["Hoá học"], ["hóa học"])["rouge1"]
    assert score == 0.5  # "hoá" and "hóa" stay two different syllables after NFC
    assert re.search(rf"\"Hoá học\" so với \"hóa học\"[^.]{{0,40}}{vi_num(score, 1)}", page(STEM))
