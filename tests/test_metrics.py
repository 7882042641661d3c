"""course_utils.metrics: Vietnamese ROUGE on rouge-score, with expected values computed by hand."""

import math
import unicodedata

import pytest
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer

from course_utils.data import load_split
from course_utils.metrics import ROUGE_TYPES, exact_match, evaluate_answers, rouge_scores, rouge_vi, vi_tokenize


def nfd(text):
    return unicodedata.normalize("NFD", text)


def approx(values: dict, expected: dict):
    assert set(values) == set(expected)
    for t, v in expected.items():
        assert math.isclose(values[t], v, abs_tol=1e-12), (t, values[t], v)


# ---------------------------------------------------------------- vi_tokenize

def test_vi_tokenize_keeps_vietnamese_letters_and_drops_punctuation():
    assert vi_tokenize("Tiếng Việt, năm 2024!") == ["tiếng", "việt", "năm", "2024"]
    assert vi_tokenize("ĐẠI HỌC Đà Nẵng") == ["đại", "học", "đà", "nẵng"]
    assert vi_tokenize("  mô   hình\n\nnhỏ\t(4-bit) ") == ["mô", "hình", "nhỏ", "4", "bit"]
    assert vi_tokenize("học_sinh") == ["học", "sinh"]  # "_" splits: syllable level
    assert vi_tokenize("...!?") == [] and vi_tokenize("") == [] and vi_tokenize(" \u0301 ") == []


def test_vi_tokenize_nfd_and_eth_give_the_nfc_tokens():
    text = "Tinh chỉnh giúp mô hình trả lời đúng bằng tiếng Việt. Ở đó, ĐƯỢC."
    assert nfd(text) != text
    assert vi_tokenize(nfd(text)) == vi_tokenize(text)
    assert all(unicodedata.is_normalized("NFC", t) for t in vi_tokenize(nfd(text)))
    assert vi_tokenize("Ðà Nẵng") == ["đà", "nẵng"]  # U+00D0, a look-alike of Đ


# ---------------------------------------------------------------- hand-computed scores

def test_identical_and_disjoint():
    approx(rouge_vi(["mô hình học rất nhanh"], ["mô hình học rất nhanh"]), dict.fromkeys(ROUGE_TYPES, 1.0))
    approx(rouge_vi(["tôi đi chợ"], ["lượng tử hóa bốn bit"]), dict.fromkeys(ROUGE_TYPES, 0.0))


def test_partial_overlap_by_hand():
    # reference 8 syllables, prediction 9; 7 common unigrams, 5 common bigrams (of 7 and 8), LCS 5
    scores = rouge_vi(["Mô hình trả lời đúng hơn nhờ tinh chỉnh."], ["Tinh chỉnh giúp mô hình trả lời đúng."])
    approx(scores, {"rouge1": 2 * 7 / (8 + 9), "rouge2": 2 * 5 / (7 + 8), "rougeL": 2 * 5 / (8 + 9),
                    "rougeLsum": 2 * 5 / (8 + 9)})


def test_precision_recall_differ_by_hand():
    # prediction "tôi bán hàng ở chợ" (5), reference "tôi bán hàng" (3): P = 3/5, R = 1 -> F1 = 0.75
    approx(rouge_vi(["tôi bán hàng ở chợ"], ["tôi bán hàng"], ("rouge1", "rouge2")),
           {"rouge1": 0.75, "rouge2": 2 * (2 / 4) * 1 / (2 / 4 + 1)})


def test_clipped_counts():
    # "mô mô mô" vs "mô hình": 1 common unigram (clipped), P = 1/3, R = 1/2
    approx(rouge_vi(["mô mô mô"], ["mô hình"], "rouge1"), {"rouge1": 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2)})


def test_nfd_uppercase_spacing_punctuation_score_one():
    ref = "Đà Nẵng là thành phố lớn của miền Trung Việt Nam."
    for pred in (nfd(ref), ref.upper(), nfd(ref.upper()), "  đà   nẵng là thành phố lớn\tcủa miền trung việt nam "):
        approx(rouge_vi([pred], [ref]), dict.fromkeys(ROUGE_TYPES, 1.0))
    approx(rouge_vi([ref], [nfd(ref)]), dict.fromkeys(ROUGE_TYPES, 1.0))


def test_multi_reference_best_match_counts():
    refs = ["LoRA đóng băng mô hình nền", "QLoRA lượng tử hóa mô hình nền xuống 4 bit"]
    approx(rouge_vi(["QLoRA lượng tử hóa mô hình nền xuống 4 bit"], [refs]), dict.fromkeys(ROUGE_TYPES, 1.0))
    # a one-element list is the same as the string
    pred = ["mô hình nền được giữ nguyên"]
    assert rouge_vi(pred, [[refs[0]]]) == rouge_vi(pred, [refs[0]])
    # the best reference is chosen per type, so the result dominates each single reference
    both = rouge_vi(pred, [refs])
    for ref in refs:
        single = rouge_vi(pred, [ref])
        assert all(both[t] >= single[t] for t in ROUGE_TYPES)
    # "mô hình nền" (3 syllables) is in both: 2*3/(6+6) with the first reference, 2*3/(6+10) with the second
    assert math.isclose(both["rouge1"], 2 * 3 / (6 + 6))


def test_rouge_lsum_splits_sentences_on_newlines_by_hand():
    ref = "LoRA học hai ma trận nhỏ.\nTrọng số gốc được giữ nguyên."  # 6 + 6 syllables
    pred = "Trọng số gốc không đổi.\nLoRA chỉ học hai ma trận."  # 5 + 6
    scores = rouge_vi([pred], [ref], ("rougeL", "rougeLsum"))
    # rougeL: one sequence, LCS "lora học hai ma trận" = 5; rougeLsum: 5 + 3 ("trọng số gốc") hits
    approx(scores, {"rougeL": 2 * 5 / (11 + 12), "rougeLsum": 2 * 8 / (11 + 12)})
    # the same text on one line: one sentence, rougeLsum = rougeL
    flat = rouge_vi([pred.replace("\n", " ")], [ref.replace("\n", " ")], ("rougeL", "rougeLsum"))
    assert math.isclose(flat["rougeLsum"], flat["rougeL"]) and math.isclose(flat["rougeL"], 10 / 23)
    # Windows line ends, blank lines and NFD do not change the sentences
    assert rouge_vi([nfd(pred.replace("\n", "\r\n\n\n"))], [ref + "\n\n"], "rougeLsum")["rougeLsum"] == \
        pytest.approx(16 / 23)


def test_mean_over_pairs():
    scores = rouge_vi(["tôi bán hàng", "xin chào"], ["tôi bán hàng", "tạm biệt"], ("rouge1",))
    assert scores == {"rouge1": 0.5}
    per_pair = rouge_scores(["tôi bán hàng", "xin chào"], ["tôi bán hàng", "tạm biệt"], ("rouge1",))
    assert per_pair == [{"rouge1": 1.0}, {"rouge1": 0.0}]


# ---------------------------------------------------------------- the pitfall

def test_default_tokenizer_pitfall_ban_hang():
    tokenizer = DefaultTokenizer()  # RougeScorer's tokenizer when given none
    assert tokenizer.tokenize("tôi bán hàng") == tokenizer.tokenize("tôi bạn hàng") == ["t", "i", "b", "n", "h", "ng"]
    assert tokenizer.tokenize("tiếng Việt") == ["ti", "ng", "vi", "t"]
    default = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    assert all(s.fmeasure == 1.0 for s in default.score("tôi bán hàng", "tôi bạn hàng").values())
    scores = rouge_vi(["tôi bạn hàng"], ["tôi bán hàng"])
    approx(scores, {"rouge1": 2 / 3, "rouge2": 0.0, "rougeL": 2 / 3, "rougeLsum": 2 / 3})
    approx(rouge_vi(["bạn hàng"], ["bán hàng"], ("rouge1", "rouge2")), {"rouge1": 0.5, "rouge2": 0.0})


def test_default_tokenizer_pitfall_nfd():
    sentence = "Tinh chỉnh giúp mô hình trả lời đúng bằng tiếng Việt."
    default = rouge_scorer.RougeScorer(["rouge1"])
    assert default.score(sentence, nfd(sentence))["rouge1"].fmeasure < 0.5
    assert rouge_vi([nfd(sentence)], [sentence])["rouge1"] == 1.0


# ---------------------------------------------------------------- edge cases

def test_nothing_to_count():
    # rouge-score returns 0 when neither side has an n-gram; here: 1 if the tokens are the same, else 0
    approx(rouge_vi(["Đúng."], [nfd("đúng")]), dict.fromkeys(ROUGE_TYPES, 1.0))
    approx(rouge_vi(["Có"], ["Không"]), dict.fromkeys(ROUGE_TYPES, 0.0))
    approx(rouge_vi([""], [""]), dict.fromkeys(ROUGE_TYPES, 1.0))
    approx(rouge_vi(["..."], ["!?"]), dict.fromkeys(ROUGE_TYPES, 1.0))
    # an empty (or punctuation-only) answer to a real reference scores 0
    approx(rouge_vi([""], ["xin chào"]), dict.fromkeys(ROUGE_TYPES, 0.0))
    approx(rouge_vi(["?!"], ["xin chào"]), dict.fromkeys(ROUGE_TYPES, 0.0))
    approx(rouge_vi(["xin chào"], [""]), dict.fromkeys(ROUGE_TYPES, 0.0))
    # one syllable against two: rouge1 from P = 1, R = 1/2; no bigram on the prediction side -> rouge2 = 0
    approx(rouge_vi(["xin"], ["xin chào"], ("rouge1", "rouge2")), {"rouge1": 2 / 3, "rouge2": 0.0})


def test_scores_in_unit_interval_and_equal_to_rouge_score_on_the_dataset():
    refs = [r["output"] for r in load_split("test")]
    preds = refs[3:] + refs[:3]
    ours = rouge_scores(preds, refs)

    class Tok:
        def tokenize(self, text):
            return vi_tokenize(text)

    lib = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=Tok())
    for p, r, s in zip(preds, refs, ours):
        expected = lib.score(r, p)
        for t in ROUGE_TYPES:
            assert 0.0 <= s[t] <= 1.0
            assert math.isclose(s[t], expected[t].fmeasure)


@pytest.mark.parametrize("predictions, references, fragment", [
    ([], [], "rỗng"),
    (["a"], ["a", "b"], "dài bằng nhau"),
    ("tôi bán hàng", "tôi bán hàng", "danh sách"),
    ([None], ["a"], "predictions[0]"),
    (["a"], [None], "references[0]"),
    (["a"], [[]], "references[0]"),
    (["a"], [["b", 3]], "references[0][1]"),
])
def test_bad_input_raises_a_clear_value_error(predictions, references, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        rouge_vi(predictions, references)


def test_rouge_types():
    assert set(rouge_vi(["a b"], ["a b"], "rouge2")) == {"rouge2"}
    assert list(rouge_vi(["a b"], ["a b"], ("rougeL", "rouge1", "rougeL"))) == ["rougeL", "rouge1"]
    for bad in ("rouge0", "rouge10", "bleu", ()):
        with pytest.raises(ValueError, match="rouge"):
            rouge_vi(["a"], ["a"], bad)


def test_exact_match():
    assert exact_match("Sai.", nfd("sai"))
    assert exact_match("  ĐÚNG! ", "đúng")
    assert not exact_match("đúng", "đúng vậy")
    assert exact_match("4 bit", ["bốn bit", "4-bit"])


# ---------------------------------------------------------------- evaluate_answers (generation stubbed)

def test_evaluate_answers_table_and_means(monkeypatch):
    import course_utils.models as models
    from course_utils.data import SYSTEM_PROMPT

    records = load_split("test")[:4]
    seen = {}
    canned = [records[0]["output"], nfd(records[1]["output"].upper()), "", "Sai."]

    def fake_generate(model, tokenizer, prompts, max_new_tokens=64, batch_size=8, system=None):
        seen.update(prompts=prompts, max_new_tokens=max_new_tokens)
        return canned

    monkeypatch.setattr(models, "generate_answers", fake_generate)
    table, means = evaluate_answers(None, None, records, max_new_tokens=32)

    assert seen["max_new_tokens"] == 32
    assert seen["prompts"][0][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert all(p[-1]["role"] == "user" for p in seen["prompts"])  # the answer is not in the prompt
    assert list(table["answer"]) == canned and list(table["reference"]) == [r["output"] for r in records]
    assert list(table["rouge1"][:3]) == [1.0, 1.0, 0.0]
    assert list(table["exact_match"]) == [True, True, False, False]
    assert list(table["answer_len"][:3]) == [len(vi_tokenize(records[0]["output"])),
                                              len(vi_tokenize(records[1]["output"])), 0]
    for t in ROUGE_TYPES:
        assert math.isclose(means[t], rouge_vi(canned, [r["output"] for r in records])[t])
    assert means["exact_match"] == 0.5
    assert math.isclose(means["length_ratio"], table["answer_len"].sum() / table["reference_len"].sum())
    with pytest.raises(ValueError, match="rỗng"):
        evaluate_answers(None, None, [], max_new_tokens=8)


# ---------------------------------------------------------------- bootstrap: how sure is a mean score

def test_bootstrap_ci_covers_a_known_mean():
    """On samples from a known distribution, the 95% interval holds the true mean in about 95% of the draws."""
    import numpy as np

    from course_utils.metrics import bootstrap_ci

    rng = np.random.default_rng(123)
    true_mean = 0.3  # Beta(3, 7): skewed and bounded, like per-item ROUGE
    hits = 0
    for trial in range(200):
        sample = rng.beta(3, 7, size=40)
        mean, low, high = bootstrap_ci(sample, n_resamples=1000, seed=trial)
        assert low <= mean <= high and mean == pytest.approx(sample.mean())
        hits += low <= true_mean <= high
    assert 0.88 <= hits / 200 <= 0.99, hits
    # more items, narrower interval; a higher confidence, a wider one
    small, large = rng.beta(3, 7, size=24), rng.beta(3, 7, size=960)
    width = lambda ci: ci[2] - ci[1]  # noqa: E731
    assert width(bootstrap_ci(large)) < 0.3 * width(bootstrap_ci(small))
    assert width(bootstrap_ci(small, confidence=0.99)) > width(bootstrap_ci(small, confidence=0.8))


def test_bootstrap_ci_is_deterministic_and_degenerate_when_constant():
    from course_utils.metrics import bootstrap_ci

    scores = [0.1, 0.5, 0.3, 0.9, 0.2, 0.0, 0.4]
    assert bootstrap_ci(scores, seed=7) == bootstrap_ci(scores, seed=7)
    assert bootstrap_ci(scores, seed=7) != bootstrap_ci(scores, seed=8)
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25, 0.25)
    mean, low, high = bootstrap_ci([True, False, True, True])  # an exact_match column
    assert mean == 0.75 and 0 <= low <= high <= 1


def test_paired_bootstrap_separates_a_clear_gain_from_noise():
    import numpy as np

    from course_utils.metrics import bootstrap_ci, paired_bootstrap

    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0.05, 0.9, size=30)  # items differ much more than the two systems do
    before = difficulty
    after = np.clip(difficulty + 0.03 + rng.normal(0, 0.01, size=30), 0, 1)
    gain = paired_bootstrap(before, after)
    assert set(gain) == {"mean_diff", "low", "high", "share_better"}
    assert 0 < gain["low"] <= gain["mean_diff"] <= gain["high"] and gain["share_better"] == 1.0
    assert gain["mean_diff"] == pytest.approx((after - before).mean())
    # the same two columns compared unpaired: the two intervals overlap, the gain is hidden by the items' spread
    _, _, high_before = bootstrap_ci(before)
    _, low_after, _ = bootstrap_ci(after)
    assert low_after < high_before
    # noise only: the interval of the difference holds 0, and share_better is far from 0 and 1
    noise = paired_bootstrap(before, before + rng.normal(0, 0.05, size=30))
    assert noise["low"] < 0 < noise["high"] and 0.05 < noise["share_better"] < 0.95
    # a loss is a negative difference
    assert paired_bootstrap(after, before)["high"] < 0
    assert paired_bootstrap(before, after, seed=3) == paired_bootstrap(before, after, seed=3)


@pytest.mark.parametrize("call, fragment", [
    (lambda f: f["ci"]([]), "rỗng"),
    (lambda f: f["ci"]("0.5 0.7"), "dãy điểm"),
    (lambda f: f["ci"](["a", "b"]), "con số"),
    (lambda f: f["ci"]([0.1, float("nan")]), "NaN"),
    (lambda f: f["ci"]([0.1, 0.2], n_resamples=0), "n_resamples"),
    (lambda f: f["ci"]([0.1, 0.2], confidence=95), "confidence"),
    (lambda f: f["paired"]([0.1, 0.2], [0.3]), "cùng các câu"),
    (lambda f: f["paired"]([], []), "rỗng"),
])
def test_bootstrap_rejects_bad_input_in_vietnamese(call, fragment):
    from course_utils.metrics import bootstrap_ci, paired_bootstrap

    with pytest.raises(ValueError, match=fragment):
        call({"ci": bootstrap_ci, "paired": paired_bootstrap})
