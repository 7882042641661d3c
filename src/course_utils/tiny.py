"""The course's tiny offline model: a small Qwen2, its own Vietnamese tokenizer, briefly pre-trained.

`tiny_model_dir()` builds it once (about a minute on 2 CPU cores) into a cache directory
($COURSE_CACHE, default ~/.cache/course_utils) and returns the path of a Hugging Face model
directory that `from_pretrained` loads offline. Same versions, same machine: same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import unicodedata
from importlib import resources
from pathlib import Path

RECIPE_VERSION = 1
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOKENIZER_VOCAB = 3000
SEQ_LEN = 128
PRETRAIN_STEPS = 300
PRETRAIN_BATCH = 16
PRETRAIN_LR = 3e-3
BUILD_THREADS = 2  # fixed, so that the float sums (and the bytes) do not depend on the machine's core count

# ChatML like Qwen2.5, with {% generation %} markers around each assistant answer (its <|im_end|>
# included) so that TRL's assistant_only_loss can mask everything else.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def corpus_text() -> str:
    """The Vietnamese pre-training corpus shipped with course_utils (NFC)."""
    raw = resources.files("course_utils").joinpath("data/corpus_vi.txt").read_text(encoding="utf-8")
    return unicodedata.normalize("NFC", raw)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def tiny_config(vocab_size: int):
    """A small Qwen2 configuration, with grouped-query attention like Qwen2.5-7B."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_act="silu",
        max_position_embeddings=1024,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        use_sliding_window=False,
        bos_token_id=None,
        eos_token_id=None,  # set once the tokenizer exists
        pad_token_id=None,
    )


def cache_root() -> Path:
    return Path(os.environ.get("COURSE_CACHE") or Path.home() / ".cache" / "course_utils")


def _build_key() -> str:
    import tokenizers
    import torch
    import transformers

    h = hashlib.sha256()
    for part in (str(RECIPE_VERSION), torch.__version__, transformers.__version__, tokenizers.__version__,
                 CHAT_TEMPLATE, corpus_text()):
        h.update(part.encode("utf-8"))
    return h.hexdigest()[:12]


def tiny_model_dir(rebuild: bool = False, verbose: bool = True) -> Path:
    """Path of the tiny model's directory, built on first use and cached."""
    from filelock import FileLock

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"tiny-qwen2-{_build_key()}"
    with FileLock(str(target) + ".lock"):
        if rebuild and target.exists():
            shutil.rmtree(target)
        if not (target / "model.safetensors").exists():
            tmp = root / f"{target.name}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            build_tiny_model(tmp, verbose=verbose)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
    return target


def train_tokenizer(paragraphs: list[str]):
    """A byte-level BPE tokenizer (NFC normaliser, ChatML special tokens), wrapped for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    # the same pre-tokenization as Qwen2's tokenizer: split on its regex, then map bytes to characters
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(paragraphs, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(out_dir: Path, verbose: bool = True) -> None:
    """Train the tokenizer, pre-train the model on the corpus, save both to out_dir."""
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paragraphs = _paragraphs(corpus_text())
    train_tokenizer(paragraphs).save_pretrained(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)  # the tokenizer exactly as learners will load it

    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids: list[int] = []
    for p in paragraphs:
        ids.extend(tokenizer(p, add_special_tokens=False)["input_ids"])
        ids.append(eot)
    data = torch.tensor(ids, dtype=torch.long)

    config = tiny_config(vocab_size=64 * math.ceil(len(tokenizer) / 64))
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config.pad_token_id = eot

    threads = torch.get_num_threads()
    torch.set_num_threads(BUILD_THREADS)
    try:
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
        final_loss = _pretrain(model, data)
    finally:
        torch.set_num_threads(threads)

    model.generation_config.eos_token_id = [config.eos_token_id, eot]
    model.generation_config.pad_token_id = eot
    model.save_pretrained(out_dir)
    info = {
        "recipe_version": RECIPE_VERSION,
        "parameters": sum(p.numel() for p in model.parameters()),
        "corpus_tokens": len(ids),
        "pretrain_steps": PRETRAIN_STEPS,
        "final_train_loss": round(final_loss, 4),
    }
    (out_dir / "course_tiny.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if verbose:
        print(f"Đã dựng mô hình tiny ({info['parameters']:,} tham số) trong {time.time() - t0:.0f} s: {out_dir}")


def _pretrain(model, data) -> float:
    """Next-token pre-training on random windows of the corpus (a plain loop: not the lesson here).

    Returns the mean loss of the last 20 steps.
    """
    import torch

    g = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = 20
    model.train()
    losses = []
    for step in range(PRETRAIN_STEPS):
        lr_scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / PRETRAIN_STEPS))
        for group in opt.param_groups:
            group["lr"] = PRETRAIN_LR * max(lr_scale, 0.05)
        starts = torch.randint(0, len(data) - SEQ_LEN - 1, (PRETRAIN_BATCH,), generator=g)
        batch = torch.stack([data[s : s + SEQ_LEN] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return sum(losses[-20:]) / 20
