"""Chapter 2: the claims a learner could be misled by, each checked against a computed value or the real library."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from course_utils import tiny
from course_utils.configs import count_lora_params
from course_utils.data import load_split
from course_utils.display import vi_num
from course_utils.figures.ch02 import OVERFIT, decay_factor, upstream_losses
from course_utils.profiles import get_profile
from prose import notebook_prose, page

STEM = "02_qua_khop"
TINY = get_profile("tiny")


@pytest.fixture(scope="module")
def text() -> str:
    return page(STEM)


@pytest.fixture(scope="module")
def tiny_model():
    from course_utils.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(TINY, quantize=False)
    return model.eval(), tokenizer


def test_passes_over_the_corpus(text):
    """"about 30 passes": the pre-training loop's tokens over the corpus' tokens, as the build recorded them."""
    info = json.loads((tiny.tiny_model_dir(verbose=False) / "course_tiny.json").read_text(encoding="utf-8"))
    assert info["pretrain_steps"] == tiny.PRETRAIN_STEPS
    passes = tiny.PRETRAIN_STEPS * tiny.PRETRAIN_BATCH * tiny.SEQ_LEN / info["corpus_tokens"]
    assert set(re.findall(r"khoảng (\d+) lượt", text)) == {str(round(passes))}


def test_the_loss_gap_is_mostly_unseen_text(tiny_model, text):
    """What the page says of the like-for-like comparison: seen vs unseen text is a large gap, near the uniform guess;
    the chat template on the same answer tokens changes the loss by far less."""
    model, tokenizer = tiny_model
    losses = upstream_losses(model, tokenizer, load_split("validation"))
    corpus, plain, chat = (losses[k]["loss"] for k in ("corpus", "answers_plain", "answers_chat"))
    assert losses["answers_plain"]["tokens"] == losses["answers_chat"]["tokens"]
    uniform = math.log(model.config.vocab_size)
    assert plain - corpus > 1 and abs(chat - plain) < (plain - corpus) / 4
    assert plain > uniform - 1
    assert f"ln {vi_num(model.config.vocab_size)} ≈ {vi_num(uniform, 2)}" in text


def test_weight_decay_shrinks_a_and_b_not_w():
    """AdamW's decay acts on the trained LoRA factors only: A and B shrink by (1 - lr*wd), ΔW = (alpha/r)·B·A by its
    square, the frozen W not at all; and transformers' Trainer does put the LoRA factors under decay."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, Trainer

    from course_utils.models import model_path
    from course_utils.train import lora_config

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_path(TINY), dtype=torch.float32)
    peft_model = get_peft_model(model, lora_config(TINY, r=4, lora_alpha=8))
    q = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    torch.nn.init.normal_(q.lora_B["default"].weight)  # B starts at 0: give ΔW something to shrink
    trained = [p for p in peft_model.parameters() if p.requires_grad]
    decayed = set(Trainer.get_decay_parameter_names(None, peft_model))
    assert {n for n, p in peft_model.named_parameters() if p.requires_grad} <= decayed

    lr, wd = OVERFIT["learning_rate"], OVERFIT["weight_decay"]
    w0, a0, b0 = (t.detach().clone() for t in (q.base_layer.weight, q.lora_A["default"].weight,
                                               q.lora_B["default"].weight))
    optimizer = torch.optim.AdamW(trained, lr=lr, weight_decay=wd)
    for p in trained:
        p.grad = torch.zeros_like(p)  # no gradient: only the decay moves the parameters
    optimizer.step()
    factor = decay_factor(lr, wd, 1)
    assert torch.allclose(q.lora_A["default"].weight, a0 * factor)
    assert torch.allclose(q.lora_B["default"].weight, b0 * factor)
    assert torch.equal(q.base_layer.weight, w0)
    delta = q.lora_B["default"].weight @ q.lora_A["default"].weight
    assert torch.allclose(delta, (b0 @ a0) * factor**2, atol=1e-6)


def test_weight_decay_figures_are_paired_right(text):
    """The page gives 1 - f for A and B, and 1 - f² for ΔW (never the reverse), f over the experiment's steps."""
    f = decay_factor(OVERFIT["learning_rate"], OVERFIT["weight_decay"], OVERFIT["steps"])
    assert re.findall(r"mỗi ma trận nhỏ đi khoảng ([\d,]+)%", text) == [vi_num(100 * (1 - f), 1)]
    assert re.findall(r"ΔW, tích của hai ma trận ấy, nhỏ đi khoảng ([\d,]+)%", text) == [vi_num(100 * (1 - f**2), 1)]
    assert f"làm A và B nhỏ đi khoảng {vi_num(100 * (1 - f), 1)}%" in notebook_prose(STEM)


def test_lora_share_of_the_tiny_model(text):
    """The share the page gives for LoRA r=64 on the tiny model is what peft attaches."""
    from peft import get_peft_model

    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import lora_config

    model, _ = load_model_and_tokenizer(TINY, quantize=False)
    n_params = sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(model, lora_config(TINY, r=OVERFIT["lora_r"], lora_alpha=OVERFIT["lora_alpha"]))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert trainable == count_lora_params(model.config, OVERFIT["lora_r"])
    shares = re.findall(r"số tham số LoRA bằng (\d+)% số tham số của chính mô hình tiny", text)
    assert shares == [vi_num(100 * trainable / n_params)]
