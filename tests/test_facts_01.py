"""Chapter 1: the claims a learner could be misled by, each checked against a computed value or the real library."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

from course_utils.configs import parameter_counts, qwen25_7b_config
from course_utils.data import SPLITS, alpaca_to_messages, load_split
from course_utils.display import vi_num
from course_utils.figures.ch01 import absmax_share, naive_logits_bytes
from course_utils.profiles import get_profile
from prose import notebook_prose, page

STEM = "01_gioi_thieu"
QWEN = qwen25_7b_config()
T4, TINY = get_profile("t4"), get_profile("tiny")


@pytest.fixture(scope="module")
def text() -> str:
    return page(STEM)


@pytest.fixture(scope="module")
def tokenizer():
    from course_utils.models import load_tokenizer

    return load_tokenizer(TINY)


def test_qwen25_config_and_count(text):
    """Hidden size 3.584 for Qwen2.5-7B; 4096 only ever attributed to the other 7B models; the total is what
    transformers itself counts on the real architecture."""
    from transformers import Qwen2ForCausalLM

    sizes = re.findall(r"kích thước ẩn (\d[\d.]*\d)", text)
    assert sizes and sizes[0] == vi_num(QWEN.hidden_size)
    for m in re.finditer(r"kích thước ẩn (\d[\d.]*\d)", text):
        if m.group(1) != vi_num(QWEN.hidden_size):
            assert re.search(r"Llama-2|Mistral|Qwen1", text[m.end():m.end() + 150]), "4096 gắn với Qwen2.5-7B?"
    with torch.device("meta"):
        n_real = sum(p.numel() for p in Qwen2ForCausalLM(QWEN).parameters())
    assert n_real == parameter_counts(QWEN)["total"]
    assert f"có {vi_num(n_real)} tham số" in text


def test_lora_count_is_peft_count(text):
    """The page's LoRA count (r = 16, all linear layers) and its share are what peft attaches."""
    from peft import get_peft_model
    from transformers import Qwen2ForCausalLM

    from course_utils.train import lora_config

    with torch.device("meta"):
        model = Qwen2ForCausalLM(QWEN)
    trainable, _ = get_peft_model(model, lora_config(T4)).get_nb_trainable_parameters()
    total = parameter_counts(QWEN)["total"]
    pairs = re.findall(r"([\d.]+) tham số được huấn luyện, tức ([\d,]+)%", text)
    assert pairs == [(vi_num(trainable), vi_num(100 * trainable / total, 2))]


def test_logits_naive_figure_and_trl_tiles(text):
    """The naive logits figure is batch x length x vocab x 4 bytes of the t4 profile, labelled as the plain forward;
    the tiles are TRL's own constants."""
    from trl.kernels.chunked_logprob import TOKEN_CHUNK_SIZE
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

    per_seq = vi_num(naive_logits_bytes(QWEN, 1, T4.max_length) / 2**20)
    per_batch = vi_num(naive_logits_bytes(QWEN, T4.per_device_train_batch_size, T4.max_length) / 2**20)
    assert re.search(rf"{re.escape(per_seq)} MiB mỗi chuỗi, {re.escape(per_batch)} MiB cả batch", text)
    assert f"{vi_num(TOKEN_CHUNK_SIZE)} token × {vi_num(_CHUNKED_LOGPROB_CHUNK_SIZE)}" in text


@pytest.fixture(scope="module")
def course_trainer(tmp_path_factory):
    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import build_trainer

    model, tok = load_model_and_tokenizer(TINY, quantize=False)
    return build_trainer(model, tok, load_split("train")[:4], None, TINY, tmp_path_factory.mktemp("facts01"),
                         save_strategy="no", report_to="none")


def test_sft_trainer_never_returns_logits(course_trainer):
    """The course's trainer (TRL's SFTTrainer) scores through the fused head: no logits, the same loss."""
    trainer = course_trainer
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    model = trainer.model.eval()
    with torch.no_grad():
        fused = model(**batch, fused_lm_head=True)
        plain = model(**batch)
    assert "logits" not in fused and plain.logits.shape[-1] == model.config.vocab_size
    assert torch.allclose(fused.loss, plain.loss, atol=1e-4)
    assert trainer.args.packing is False  # the page: the course sets packing=False


def test_bfd_packing_keeps_samples_apart_with_sdpa(tokenizer):
    """TRL's default packing passes boundaries as position_ids without attention_mask, and transformers' SDPA path
    builds the block mask from them; an all-ones attention_mask lets packed samples see each other."""
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from course_utils.models import model_path

    assert SFTConfig.__dataclass_fields__["packing_strategy"].default == "bfd"
    model = AutoModelForCausalLM.from_pretrained(model_path(TINY), dtype=torch.float32,
                                                 attn_implementation="sdpa").eval()
    first, second = (tokenizer(r["output"], add_special_tokens=False)["input_ids"][:16] for r in load_split("train")[:2])
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(
        [{"input_ids": first}, {"input_ids": second}])
    assert "attention_mask" not in batch and batch["position_ids"][0, len(first)] == 0
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([second]), use_cache=False).logits[0]
        packed = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits[0, len(first):]
        ones = torch.ones_like(batch["input_ids"])
        mixed = model(input_ids=batch["input_ids"], attention_mask=ones, use_cache=False).logits[0, len(first):]
    assert (packed - alone).abs().max() < 1e-4
    assert (mixed - alone).abs().max() > 0.1


def test_end_of_turn_token_is_in_the_mask(tokenizer):
    """<|im_end|> is the last token the loss trains, with the tiny template and with TRL's Qwen2.5 training template."""
    from course_utils.templates import assistant_mask

    messages = alpaca_to_messages(load_split("train")[0])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids, mask = assistant_mask(tokenizer, messages)
    assert ids[max(i for i, m in enumerate(mask) if m)] == im_end

    trl_dir = Path(importlib.util.find_spec("trl").origin).parent
    qwen_training = (trl_dir / "chat_templates" / "qwen2_5_training.jinja").read_text(encoding="utf-8")
    enc = tokenizer.apply_chat_template(messages, chat_template=qwen_training, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    trained = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert messages[-1]["content"] + "<|im_end|>" in tokenizer.decode(trained)


def test_absmax_share_is_what_bitsandbytes_stores():
    """The share of the 8-bit Adam state taken by absmax, measured on bitsandbytes, is the notebook's figure."""
    import bitsandbytes as bnb

    layer = torch.nn.Linear(1024, 512, bias=False)
    optimizer = bnb.optim.AdamW8bit(layer.parameters(), lr=1e-3)
    layer(torch.randn(2, 1024)).sum().backward()
    optimizer.step()
    state = optimizer.state[layer.weight]
    size = {k: v.numel() * v.element_size() for k, v in state.items() if torch.is_tensor(v)}
    absmax = sum(v for k, v in size.items() if k.startswith("absmax"))
    measured = absmax / (absmax + sum(v for k, v in size.items() if k.startswith("state")))
    assert measured == pytest.approx(absmax_share(), rel=1e-6)
    assert f"khoảng {vi_num(100 * measured, 1)}% của trạng thái" in notebook_prose(STEM)


def test_learning_rates_and_dataset_sizes(text):
    """The page's profile learning rates and split sizes are the course's own."""
    found = dict(re.findall(r"[Pp]rofile `(t4|tiny)` dùng (\d+e-\d+)", text))
    assert {name: float(lr) for name, lr in found.items()} == {"t4": T4.learning_rate, "tiny": TINY.learning_rate}
    sizes = re.search(r"(\d+) bản ghi huấn luyện, (\d+) bản ghi kiểm định và (\d+) bản ghi kiểm tra", text)
    assert sizes and [int(n) for n in sizes.groups()] == [len(load_split(s)) for s in SPLITS]
