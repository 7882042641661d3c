"""Figures of chapter 4 (causal LM): logits memory with and without TRL's fused LM head, causal mask counts."""

from __future__ import annotations

import math

from ..attention import causal_mask
from ..configs import qwen25_7b_config
from ..profiles import get_profile

MIB = 2**20
# Devlin et al. (2019), BERT, section 3.1 "Masked LM": "we mask 15% of all WordPiece tokens in each sequence at random"
BERT_MASKED_PERCENT = 15
# the example sentence of the page's next-token table
EXAMPLE_SENTENCE = "Mô hình ngôn ngữ dự đoán từ tiếp theo."


def fused_tile() -> tuple[int, int]:
    """TRL 1.16's fused LM head tile: (tokens, vocabulary entries), read from TRL itself.

    The vocabulary width is `_CHUNKED_LOGPROB_CHUNK_SIZE` of trl/trainer/utils.py (what add_fused_lm_head passes),
    read from the file: importing that module takes seconds (tests/test_facts_04.py checks it against the import).
    """
    import re
    from importlib.util import find_spec
    from pathlib import Path

    from trl.kernels.chunked_logprob import TOKEN_CHUNK_SIZE

    utils = Path(find_spec("trl").origin).parent / "trainer" / "utils.py"
    vocab = re.search(r"^_CHUNKED_LOGPROB_CHUNK_SIZE = (\d+)$", utils.read_text(encoding="utf-8"), re.M)
    return TOKEN_CHUNK_SIZE, int(vocab.group(1))


def full_logits_values(config, tokens: int) -> int:
    """Values of the logits a plain forward computes for `tokens` positions: one vocabulary-sized row each."""
    return tokens * config.vocab_size


def example_tokens() -> list[str]:
    """The example sentence cut by the tiny model's tokenizer."""
    from ..models import load_tokenizer

    tokenizer = load_tokenizer(get_profile("tiny"))
    return [tokenizer.decode([i]).strip() for i in tokenizer(EXAMPLE_SENTENCE)["input_ids"]]


def figures() -> dict[str, float]:
    qwen, t4 = qwen25_7b_config(), get_profile("t4")
    n = t4.max_length
    values = full_logits_values(qwen, n)
    tile_tokens, tile_vocab = fused_tile()
    n_example = len(example_tokens())
    return {
        "câu ví dụ: số token (bộ tách từ tiny)": n_example,
        "câu ví dụ: số dự đoán có đáp án": n_example - 1,
        "Qwen2.5-7B: vocab_size": qwen.vocab_size,
        "profile t4: max_length": n,
        "logits của một chuỗi max_length: số giá trị": values,
        "logits fp32 (loss của transformers), MiB": values * 4 / MIB,
        "logits fp16 (đầu ra lm_head trên T4), MiB": values * 2 / MIB,
        "TRL: token mỗi ô (TOKEN_CHUNK_SIZE)": tile_tokens,
        "TRL: mục từ vựng mỗi ô": tile_vocab,
        "Qwen2.5-7B: số ô theo chiều từ vựng": math.ceil(qwen.vocab_size / tile_vocab),
        "TRL: ô lớn nhất ở fp16, MiB": tile_tokens * tile_vocab * 2 / MIB,
        "causal mask max_length: cặp được chú ý": int(causal_mask(n).sum()),
        "causal mask max_length: số ô": n * n,
        "BERT: phần trăm token bị che (Devlin và cộng sự, 2019)": BERT_MASKED_PERCENT,
    }
