"""Every computed number of book/04_causal_lm.md, recomputed and found in the page as written."""

from __future__ import annotations

import re
import unicodedata

import pytest

from course_utils.attention import causal_mask
from course_utils.configs import qwen25_7b_config
from course_utils.display import vi_num
from course_utils.profiles import get_profile

STEM = "04_causal_lm"  # the `raw` and `page` fixtures (conftest.py) read book/<STEM>.md
EXAMPLE = "Mô hình ngôn ngữ dự đoán từ tiếp theo."


@pytest.fixture(scope="module")
def example_tokens() -> list[str]:
    from course_utils.models import load_tokenizer

    tokenizer = load_tokenizer(get_profile("tiny"))
    return [tokenizer.decode([i]).strip() for i in tokenizer(EXAMPLE)["input_ids"]]


def test_page_is_nfc(raw):
    assert unicodedata.normalize("NFC", raw) == raw


def test_example_sentence(page, raw, example_tokens):
    n = len(example_tokens)
    assert f'câu "{EXAMPLE}" thành {n} token, nên một lượt truyền xuôi cho {n - 1} dự đoán' in page
    rows = [line for line in raw.splitlines() if re.match(r"\| \d+ \|", line)]
    assert rows, "không thấy bảng ví dụ"
    for row in rows:
        pos, context, target = (cell.strip() for cell in row.strip("|").split("|"))
        t = int(pos)
        assert context == " ".join(example_tokens[: t + 1])
        assert target == example_tokens[t + 1]
    assert int(rows[-1].split("|")[1]) == n - 2  # the table ends with the last prediction


def test_logits_memory(page):
    vocab = qwen25_7b_config().vocab_size
    n = get_profile("t4").max_length
    values = n * vocab
    assert (f"Với từ vựng {vi_num(vocab)} token của Qwen2.5-7B, một chuỗi {vi_num(n)} token cho "
            f"{vi_num(values)} giá trị logits, tức {vi_num(values * 4 / 2**20)} MiB ở fp32") in page


def test_mask_matrix_block(raw):
    block = re.search(r"```text\n(.*?)```", raw, re.S).group(1)
    rows = re.findall(r"\[([01, ]+)\]", block)
    m = causal_mask(len(rows))
    assert [[int(v) for v in r.split(",")] for r in rows] == m.int().tolist()


def test_mask_count(page):
    n = get_profile("t4").max_length
    allowed = int(causal_mask(n).sum())
    assert f"Với chuỗi {vi_num(n)} token, mặt nạ cho phép {vi_num(allowed)} trong số {vi_num(n * n)} cặp" in page


def test_no_unchecked_large_numbers(page):
    n = get_profile("t4").max_length
    vocab = qwen25_7b_config().vocab_size
    checked = {vi_num(x) for x in (n, vocab, n * vocab, int(causal_mask(n).sum()), n * n)}
    found = set(re.findall(r"(?<![\d.,])\d{1,3}(?:\.\d{3})+(?![\d,])", page))
    assert found <= checked, f"số chưa được kiểm tra: {sorted(found - checked)}"


def test_names_are_right(page):
    from peft import TaskType

    assert f"`TaskType.{TaskType.CAUSAL_LM.value}`" in page
    assert f"`TaskType.{TaskType.SEQ_2_SEQ_LM.value}`" in page
    assert "CASUAL_LM" not in page.upper()
    assert '`"qwen2"`' in page and qwen25_7b_config().model_type == "qwen2"
    assert '`"mistral"`' in page
