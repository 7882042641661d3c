"""Chapter 4: the claims a learner could be misled by, each checked against a computed value or TRL itself."""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import pytest
import torch

from course_utils.attention import causal_mask
from course_utils.configs import qwen25_7b_config
from course_utils.display import vi_num
from course_utils.figures.ch04 import MIB, example_tokens, fused_tile
from course_utils.profiles import get_profile
from prose import page, page_path

STEM = "04_causal_lm"
QWEN = qwen25_7b_config()
N = get_profile("t4").max_length


@pytest.fixture(scope="module")
def text() -> str:
    return page(STEM)


def test_full_logits_memory(text):
    """A plain forward's logits of one max_length sequence: vocab x n values, 4 bytes each in fp32 for the loss."""
    values = N * QWEN.vocab_size
    assert re.findall(r"([\d.]+) giá trị logits", text) == [vi_num(values)]
    assert re.findall(r"(\d+) MiB ở fp32", text) == [vi_num(values * 4 / MIB)]
    assert re.findall(r"fp16[^.]{0,60}?\((\d+) MiB\)", text) == [vi_num(values * 2 / MIB)]


def test_fused_tile_is_trls():
    """The tile the page gives is the one TRL uses (the figures read the vocabulary width from TRL's file)."""
    from trl.kernels.chunked_logprob import TOKEN_CHUNK_SIZE
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

    assert fused_tile() == (TOKEN_CHUNK_SIZE, _CHUNKED_LOGPROB_CHUNK_SIZE)
    tokens, vocab = fused_tile()
    text = page(STEM)
    assert re.findall(r"([\d.]+) token \(`TOKEN_CHUNK_SIZE`\) × ([\d.]+)", text) == [(vi_num(tokens), vi_num(vocab))]
    assert re.findall(r"thành (\d+) ô", text) == [str(math.ceil(QWEN.vocab_size / vocab))]
    assert re.findall(r"(\d+) MiB ở fp16", text) == [vi_num(tokens * vocab * 2 / MIB)]


def test_sft_trainer_adds_the_fused_lm_head():
    """TRL 1.16's SFTTrainer (built the course's way) returns per-token log-probs, no logits, with the same loss."""
    from course_utils.data import load_split
    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import build_trainer
    from trl.kernels.chunked_logprob import _use_triton

    profile = get_profile("tiny")
    model, tokenizer = load_model_and_tokenizer(profile, quantize=False)
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(model, tokenizer, load_split("train")[:4], None, profile, out)
        batch = next(iter(trainer.get_train_dataloader()))
        with torch.no_grad():
            fused = trainer.model(**batch, fused_lm_head=True)
            plain = trainer.model(**batch)
    assert "logits" not in fused.keys() and plain.logits.shape[-1] == model.config.vocab_size
    assert int(fused.label_mask.sum()) == int((batch["labels"][:, 1:] != -100).sum())
    assert abs(fused.loss.item() - plain.loss.item()) < 1e-4
    assert not _use_triton(torch.device("cpu"))  # the page: without Triton every position is scored, in tiles


def test_named_trl_templates_exist(text):
    import trl

    named = re.findall(r"trl/chat_templates/(\w+\.jinja)", text)
    assert named
    for name in named:
        assert (Path(trl.__file__).parent / "chat_templates" / name).exists(), name


def test_mask_count(text):
    assert re.findall(r"cho phép ([\d.]+) trong số ([\d.]+)", text) == [
        (vi_num(int(causal_mask(N).sum())), vi_num(N * N))]


def test_example_sentence_table():
    tokens = example_tokens()
    raw = page_path(STEM).read_text(encoding="utf-8")
    rows = [line for line in raw.splitlines() if re.match(r"\| \d+ \|", line)]
    assert rows
    for row in rows:
        pos, context, target = (cell.strip() for cell in row.strip("|").split("|"))
        t = int(pos)
        assert context == " ".join(tokens[: t + 1]) and target == tokens[t + 1]
    assert int(rows[-1].split("|")[1]) == len(tokens) - 2  # the table ends with the last prediction
    assert re.findall(r"thành (\d+) token, nên một lượt truyền xuôi cho (\d+) dự đoán", page(STEM)) == [
        (str(len(tokens)), str(len(tokens) - 1))]


def test_peft_names():
    from peft import TaskType

    text = page(STEM)
    assert f"`TaskType.{TaskType.CAUSAL_LM.value}`" in text and f"`TaskType.{TaskType.SEQ_2_SEQ_LM.value}`" in text
    assert "CASUAL_LM" not in text.upper()
