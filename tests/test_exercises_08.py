"""The exercise checkers of chapter 8: right answers pass, typical wrong answers and the placeholder fail."""

from __future__ import annotations

from rouge_score import rouge_scorer

from course_utils.data import load_split
from course_utils.exercises import rouge as ex
from course_utils.metrics import rouge_vi


def test_by_hand(capsys):
    assert ex.check_by_hand((4 / 7, 7 / 8))
    assert not ex.check_by_hand((7 / 8, 4 / 7))  # the two scores swapped
    assert not ex.check_by_hand((5 / 7, 7 / 8))  # one bigram too many
    assert not ex.check_by_hand(0.5)
    assert not ex.check_by_hand(...)
    out = capsys.readouterr().out
    assert "Đúng rồi" in out and "bigram" in out and "Chưa có câu trả lời" in out


def test_inflation(capsys):
    refs = [r["output"] for r in load_split("validation")]
    preds = refs[1:] + refs[:1]
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    default = sum(scorer.score(r, p)["rouge1"].fmeasure for p, r in zip(preds, refs)) / len(refs)
    ratio = default / rouge_vi(preds, refs, "rouge1")["rouge1"]
    assert ex.check_inflation(ratio)
    assert not ex.check_inflation(1 / ratio)  # rouge_vi divided by the default
    assert not ex.check_inflation(1.0)
    assert not ex.check_inflation("bốn")
    assert not ex.check_inflation(...)
    assert "Gợi ý" in capsys.readouterr().out


def test_tone_placement():
    assert ex.check_tone_placement(0.5)
    assert not ex.check_tone_placement(1.0)  # "NFC makes them equal": it does not
    assert not ex.check_tone_placement(...)


def test_short_answers(capsys):
    refs = [r["output"] for r in load_split("test") if r["instruction"].startswith(ex.TRUE_FALSE_PREFIX)]
    rouge1 = rouge_vi(["Sai."] * len(refs), refs)["rouge1"]
    assert ex.check_short_answers((1.0, rouge1))
    assert not ex.check_short_answers((1.0, 1.0))  # "a right verdict gets ROUGE 1"
    assert not ex.check_short_answers((100, rouge1))  # a percentage instead of a share
    assert not ex.check_short_answers(1.0)
    assert not ex.check_short_answers(...)
    out = capsys.readouterr().out
    assert "Đúng rồi" in out and "[0, 1]" in out
