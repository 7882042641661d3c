"""Figures of chapter 2 (overfitting): the tiny model's pre-training, the settings of the overfitting experiment
(the notebook runs with exactly these), weight decay on the LoRA factors, and the adapter of Qwen2.5-7B.

`upstream_losses` is the measurement the page describes in words (seen corpus text, unseen text, the same answers
in the chat template); the notebook runs it and asserts what the page says. Its losses are not quoted as figures.
"""

from __future__ import annotations

import json
import math

# The overfitting experiment of notebooks/02_qua_khop: the notebook reads its settings here, so that the page and
# the run cannot disagree.
OVERFIT = {
    "n_train": 100,  # first records of the training split
    "max_length": 80,  # tokens per example
    "n_eval": 16,  # validation records used for the validation loss
    "steps": 48,  # training steps of every run
    "eval_every": 4,  # steps between two validation losses
    "learning_rate": 3e-3,  # constant
    "lora_r": 64,
    "lora_alpha": 128,
    "patience": 3,  # early stopping: evaluations without improvement
    "weight_decay": 0.1,
    "lora_dropout": 0.1,
}


def decay_factor(learning_rate: float, weight_decay: float, steps: int) -> float:
    """What AdamW's decoupled weight decay alone multiplies a trained parameter by after `steps` steps."""
    return (1 - learning_rate * weight_decay) ** steps


def upstream_losses(model, tokenizer, records) -> dict[str, dict]:
    """Mean next-token loss of a (tiny) model on three texts, to compare like with like.

    - "corpus": its pre-training corpus, cut in windows of tiny.SEQ_LEN tokens as in pre-training;
    - "answers_plain": the `output` of each record as plain text, after <|endoftext|> (the paragraph separator of
      pre-training): the same task, on text the model never read;
    - "answers_chat": the same answers after their question in the chat template (no system turn), the loss on the
      answer tokens only: the assistant mask without its <|im_end|>, so that both count the same tokens.
    Each value is {"loss": mean loss, "tokens": tokens scored}.
    """
    import torch

    from .. import tiny
    from ..data import alpaca_to_messages
    from ..templates import assistant_mask

    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def scored(ids, keep):
        """Sum of the next-token losses at the positions `keep` marks, and how many."""
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=x, use_cache=False).logits[0, :-1].float()
        target = x[0, 1:]
        losses = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        keep = torch.tensor(keep[1:], dtype=torch.bool)
        return losses[keep].sum().item(), int(keep.sum())

    corpus_ids = []
    for paragraph in tiny._paragraphs(tiny.corpus_text()):
        corpus_ids += tokenizer(paragraph, add_special_tokens=False)["input_ids"] + [eot]
    n_windows = len(corpus_ids) // tiny.SEQ_LEN
    windows = torch.tensor(corpus_ids[:n_windows * tiny.SEQ_LEN]).view(n_windows, tiny.SEQ_LEN)
    with torch.no_grad():  # all windows in one batch: the same losses as one window at a time, faster
        corpus = model(input_ids=windows, labels=windows, use_cache=False).loss.item()
    result = {"corpus": {"loss": corpus, "tokens": n_windows * (tiny.SEQ_LEN - 1)}}

    plain = chat = (0.0, 0)
    for r in records:
        answer = tokenizer(r["output"], add_special_tokens=False)["input_ids"]
        s, n = scored([eot] + answer, [0] + [1] * len(answer))
        plain = (plain[0] + s, plain[1] + n)
        ids, mask = assistant_mask(tokenizer, alpaca_to_messages(r, system=None))
        s, n = scored(ids, [int(m and i != im_end) for i, m in zip(ids, mask)])
        chat = (chat[0] + s, chat[1] + n)
    result["answers_plain"] = {"loss": plain[0] / plain[1], "tokens": plain[1]}
    result["answers_chat"] = {"loss": chat[0] / chat[1], "tokens": chat[1]}
    return result


def figures() -> dict:
    from transformers import AutoConfig

    from .. import tiny
    from ..configs import count_lora_params, qwen25_7b_config
    from ..data import load_split
    from ..memory import GIB, weight_memory
    from ..profiles import get_profile

    model_dir = tiny.tiny_model_dir(verbose=False)
    info = json.loads((model_dir / "course_tiny.json").read_text(encoding="utf-8"))
    tiny_cfg = AutoConfig.from_pretrained(model_dir)
    tokens_read = info["pretrain_steps"] * tiny.PRETRAIN_BATCH * tiny.SEQ_LEN
    o = OVERFIT
    shrink = decay_factor(o["learning_rate"], o["weight_decay"], o["steps"])
    qwen = qwen25_7b_config()
    n_adapter = count_lora_params(qwen, get_profile("t4").lora_r)
    return {
        "tham số của mô hình tiny": info["parameters"],
        "tham số của mô hình tiny (triệu)": info["parameters"] / 1e6,
        "bước tiền huấn luyện": info["pretrain_steps"],
        "token của kho văn bản": info["corpus_tokens"],
        "token đã đọc khi tiền huấn luyện": tokens_read,
        "số lượt qua kho văn bản": round(tokens_read / info["corpus_tokens"]),
        "từ vựng của mô hình tiny": tiny_cfg.vocab_size,
        "loss khi đoán đều mọi token, ln(từ vựng)": math.log(tiny_cfg.vocab_size),
        "tham số LoRA của bộ điều hợp Qwen2.5-7B, r=16": n_adapter,
        "bộ điều hợp ở fp32 (MiB)": n_adapter * 4 / 2**20,
        "Qwen2.5-7B ở 16 bit (GiB)": weight_memory(qwen, 16)["total"] / GIB,
        "bản ghi huấn luyện của thí nghiệm": o["n_train"],
        "token mỗi mẫu": o["max_length"],
        "bản ghi kiểm định đo loss": o["n_eval"],
        "bước mỗi lần chạy": o["steps"],
        "bước giữa hai lần đo": o["eval_every"],
        "batch của profile tiny": get_profile("tiny").per_device_train_batch_size,
        "hạng LoRA": o["lora_r"],
        "alpha LoRA": o["lora_alpha"],
        "LoRA r=64 so với mô hình tiny (%)": 100 * count_lora_params(tiny_cfg, o["lora_r"]) / info["parameters"],
        "tốc độ học": o["learning_rate"],
        "kiên nhẫn của dừng sớm": o["patience"],
        "weight decay": o["weight_decay"],
        "LoRA dropout (%)": round(100 * o["lora_dropout"]),
        "bản ghi huấn luyện đầy đủ": len(load_split("train")),
        "hệ số của A và B sau các bước": shrink,
        "A và B nhỏ đi (%)": 100 * (1 - shrink),
        "ΔW = (alpha/r)·B·A nhỏ đi (%)": 100 * (1 - shrink**2),
        "một nửa (ngưỡng của bài tập weight decay)": 0.5,
        "bước để A và B nhỏ đi một nửa": math.ceil(math.log(0.5) / math.log(1 - o["learning_rate"] * o["weight_decay"])),
    }
