"""ROUGE that reads Vietnamese: a Unicode-aware tokenizer for rouge-score, and the evaluation of a model's answers.

rouge-score's default tokenizer (the one behind `evaluate.load("rouge")` too) lowercases the text and keeps
only [a-z0-9]: every letter with a diacritic is dropped, so "tiếng Việt" becomes `ti ng vi t` and
"bán hàng" matches "bạn hàng" perfectly. Here rouge-score still does the counting (n-grams, LCS, the
summary-level LCS of rougeLsum); only the tokens change: the syllables given by `vi_tokenize`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from .data import SYSTEM_PROMPT, eval_pairs

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# a token: a letter or digit (any script) then more of them, combining marks left by NFC kept attached;
# "_", punctuation and stray combining marks split and are dropped
_TOKEN_RE = re.compile(r"[^\W_](?:[^\W_]|[\u0300-\u036f])*")
_ROUGE_N_RE = re.compile(r"rouge([1-9])")


def vi_tokenize(text: str) -> list[str]:
    """Syllables of a Vietnamese text, the unit that ROUGE counts here.

    Lowercase, Unicode NFC (so NFD input gives the same tokens), then the runs of letters and digits;
    spaces, newlines, punctuation and "_" separate tokens and are dropped. "Tiếng Việt, năm 2024!"
    gives ["tiếng", "việt", "năm", "2024"].
    """
    text = unicodedata.normalize("NFC", text.lower())
    text = text.replace("ð", "đ")  # Icelandic eth, a common stand-in for "Đ" in converted Vietnamese text
    return _TOKEN_RE.findall(text)


class _Tokenizer:
    """The object rouge-score expects: anything with a `tokenize(text)` method."""

    def __init__(self, tokenize: Callable[[str], list[str]]):
        self.tokenize = tokenize


def rouge_scores(predictions, references, rouge_types=ROUGE_TYPES,
                 tokenize: Callable[[str], list[str]] = vi_tokenize) -> list[dict[str, float]]:
    """F1 of each ROUGE type for each (prediction, reference) pair, computed by rouge-score on `tokenize`'s tokens.

    A reference may be a string or a list of strings; with several references the best one counts (per type,
    as rouge-score's `score_multi`). rougeLsum splits sentences on newlines. When a type has nothing to count
    on either side (both texts without tokens, or both shorter than n for rougeN), rouge-score returns 0;
    here the score is 1.0 if the two texts have the same tokens, else 0.0 (so "Đúng." vs "đúng" scores 1.0
    for rouge2 as well).
    """
    from rouge_score import rouge_scorer

    types = _check_types(rouge_types)
    predictions, references = _check_pairs(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(types), tokenizer=_Tokenizer(tokenize))
    out = []
    for prediction, refs in zip(predictions, references):
        per_ref = [_pair_f1(scorer, prediction, ref, types, tokenize) for ref in refs]
        out.append({t: max(s[t] for s in per_ref) for t in types})
    return out


def rouge_vi(predictions, references, rouge_types=ROUGE_TYPES,
             tokenize: Callable[[str], list[str]] = vi_tokenize) -> dict[str, float]:
    """Mean F1 over the pairs, for each ROUGE type, on Vietnamese syllables; every value lies in [0, 1].

    predictions: list of strings; references: list of the same length, each a string or a list of strings
    (the best reference counts). See `rouge_scores` for the details.
    """
    scores = rouge_scores(predictions, references, rouge_types, tokenize)
    return {t: sum(s[t] for s in scores) / len(scores) for t in scores[0]}


def exact_match(prediction: str, reference, tokenize: Callable[[str], list[str]] = vi_tokenize) -> bool:
    """Same tokens (case, Unicode form, spacing and punctuation ignored); with a list of references, any of them."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    return any(tokenize(prediction) == tokenize(r) for r in refs)


def evaluate_answers(model, tokenizer, records, max_new_tokens: int, rouge_types=ROUGE_TYPES,
                     batch_size: int = 8, system: str | None = SYSTEM_PROMPT, fmt: str = "alpaca"):
    """Answer records (of format `fmt`) with the model (greedy, at most `max_new_tokens` new tokens) and score them.

    The prompt is built as in training (`course_utils.data.eval_pairs`: the conversation up to its last answer,
    Alpaca records with the course's system prompt; pass `system=None` for none); the reference is that last
    answer. An answer cut by the token budget loses recall: compare models with the same budget.

    Returns (table, means):
    - table: a pandas DataFrame, one row per record: prompt, reference, answer, the F1 of each ROUGE type
      (`rouge_vi` on that pair), exact_match, answer_len and reference_len (syllables, `vi_tokenize`);
    - means: the mean of each ROUGE type and of exact_match, and length_ratio = total answer syllables /
      total reference syllables (below 1: answers shorter than the references).
    """
    import pandas as pd

    from .models import generate_answers

    records = list(records)
    if not records:
        raise ValueError("records đang rỗng: hãy truyền vào ít nhất một bản ghi Alpaca, ví dụ load_split(\"test\").")
    pairs = eval_pairs(records, fmt, system)
    prompts = [before for before, _ in pairs]  # the conversation without its last answer
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    references = [reference for _, reference in pairs]
    scores = rouge_scores(answers, references, rouge_types)
    table = pd.DataFrame({
        "prompt": [p[-1]["content"] for p in prompts],
        "reference": references,
        "answer": answers,
        **{t: [s[t] for s in scores] for t in scores[0]},
        "exact_match": [exact_match(a, r) for a, r in zip(answers, references)],
        "answer_len": [len(vi_tokenize(a)) for a in answers],
        "reference_len": [len(vi_tokenize(r)) for r in references],
    })
    means = {t: float(table[t].mean()) for t in scores[0]}
    means["exact_match"] = float(table["exact_match"].mean())
    means["length_ratio"] = float(table["answer_len"].sum() / max(table["reference_len"].sum(), 1))
    return table, means


# ---------------------------------------------------------------- helpers

def _pair_f1(scorer, prediction: str, reference: str, types, tokenize) -> dict[str, float]:
    result = scorer.score(reference, prediction)  # rouge-score takes (target, prediction)
    pred_tokens, ref_tokens = tokenize(prediction), tokenize(reference)
    out = {}
    for t in types:
        m = _ROUGE_N_RE.fullmatch(t)
        n = int(m.group(1)) if m else 1  # rougeL, rougeLsum count single tokens
        if len(pred_tokens) < n and len(ref_tokens) < n:  # nothing to count on either side
            out[t] = float(pred_tokens == ref_tokens)
        else:
            out[t] = float(result[t].fmeasure)
    return out


def _check_types(rouge_types) -> tuple[str, ...]:
    if isinstance(rouge_types, str):
        rouge_types = (rouge_types,)
    types = tuple(dict.fromkeys(rouge_types))
    if not types:
        raise ValueError(f"rouge_types đang rỗng: hãy chọn trong {ROUGE_TYPES}.")
    bad = [t for t in types if t not in ("rougeL", "rougeLsum") and not _ROUGE_N_RE.fullmatch(str(t))]
    if bad:
        raise ValueError(f"Loại ROUGE không hợp lệ: {bad}. Dùng rouge1 … rouge9, rougeL hoặc rougeLsum.")
    return types


def _as_list(values, name: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} phải là một danh sách (mỗi phần tử một văn bản), không phải "
                         f"{type(values).__name__}. Với một cặp duy nhất, hãy bọc nó trong [ ].")
    return list(values)


def _text(value, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} phải là chuỗi, không phải {type(value).__name__}. "
                         "Hãy thay giá trị thiếu (None) bằng chuỗi rỗng \"\" hoặc loại cặp đó ra.")
    return value.replace("\r\n", "\n").replace("\r", "\n")  # rougeLsum splits sentences on "\n"


def _check_pairs(predictions, references) -> tuple[list[str], list[list[str]]]:
    predictions = _as_list(predictions, "predictions")
    references = _as_list(references, "references")
    if len(predictions) != len(references):
        raise ValueError(f"Có {len(predictions)} câu trả lời (predictions) nhưng {len(references)} tham chiếu "
                         "(references). Hai danh sách phải dài bằng nhau: phần tử thứ i của predictions được "
                         "so với phần tử thứ i của references.")
    if not predictions:
        raise ValueError("predictions và references đang rỗng: cần ít nhất một cặp (câu trả lời, tham chiếu).")
    preds = [_text(p, f"predictions[{i}]") for i, p in enumerate(predictions)]
    refs = []
    for i, ref in enumerate(references):
        if isinstance(ref, (str, bytes)) or not isinstance(ref, Iterable):
            refs.append([_text(ref, f"references[{i}] (một chuỗi hoặc một danh sách chuỗi)")])
            continue
        ref = list(ref)
        if not ref:
            raise ValueError(f"references[{i}] là danh sách rỗng: mỗi câu trả lời cần ít nhất một tham chiếu.")
        refs.append([_text(r, f"references[{i}][{j}]") for j, r in enumerate(ref)])
    return preds, refs


# ---------------------------------------------------------------- how sure is a mean score: the bootstrap

def bootstrap_ci(values, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-item scores and its percentile-bootstrap confidence interval.

    Draw the items again with replacement `n_resamples` times and take the mean of each draw; the interval holds
    the central `confidence` share of those means. It measures how much the mean depends on which test items
    happened to be chosen (not the run-to-run spread of training). The same seed gives the same interval.
    """
    import numpy as np

    x = _scores(values, "values")
    means = _resampled_means(x, _check_bootstrap(n_resamples, confidence), seed)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(x.mean()), float(low), float(high)


def paired_bootstrap(before, after, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """How sure is an improvement measured on the same items: {mean_diff, low, high, share_better}.

    before[i] and after[i] are the scores of the same item (e.g. the rouge1 column of evaluate_answers' table,
    before and after fine-tuning). Each resample draws item indices once and uses them for both columns, so an
    item's difficulty cancels out: the interval is that of mean(after - before). share_better is the share of
    resamples whose `after` mean is above their `before` mean.
    """
    import numpy as np

    b, a = _scores(before, "before"), _scores(after, "after")
    if len(a) != len(b):
        raise ValueError(f"before có {len(b)} điểm nhưng after có {len(a)}: phép so cặp cần điểm của cùng các câu, "
                         "cùng thứ tự (phần tử thứ i của hai danh sách là của cùng một câu hỏi). Hãy chấm hai mô hình "
                         "trên cùng các bản ghi.")
    diffs = _resampled_means(a - b, _check_bootstrap(n_resamples, confidence), seed)
    low, high = np.quantile(diffs, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"mean_diff": float((a - b).mean()), "low": float(low), "high": float(high),
            "share_better": float((diffs > 0).mean())}


def _resampled_means(x, n_resamples: int, seed: int):
    """Means of n_resamples draws (with replacement) of len(x) items, drawn in chunks to bound memory."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chunk = max(1, 1_000_000 // len(x))
    means = [x[rng.integers(0, len(x), size=(min(chunk, n_resamples - k), len(x)))].mean(axis=1)
             for k in range(0, n_resamples, chunk)]
    return np.concatenate(means)


def _scores(values, name: str):
    import numpy as np

    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} phải là một dãy điểm số (mỗi câu hỏi một số), ví dụ cột table[\"rouge1\"] của "
                         f"evaluate_answers, không phải {type(values).__name__}.")
    try:
        x = np.asarray(list(values), dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} phải chỉ gồm các con số (mỗi câu hỏi một điểm); hãy truyền cột điểm, không phải "
                         "cột văn bản.") from None
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"{name} đang rỗng hoặc không phải một dãy số: cần ít nhất một điểm, mỗi câu hỏi một số.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} có giá trị NaN hoặc vô cực: hãy loại hoặc chấm lại các câu đó trước.")
    return x


def _check_bootstrap(n_resamples: int, confidence: float) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, float)) or int(n_resamples) != n_resamples \
            or n_resamples < 1:
        raise ValueError(f"n_resamples phải là số nguyên dương (thường 1000 đến 10000), không phải {n_resamples}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence phải nằm giữa 0 và 1 (ví dụ 0.95 cho khoảng 95%), không phải {confidence}.")
    return int(n_resamples)
