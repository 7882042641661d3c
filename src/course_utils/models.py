"""One loader for every profile, and greedy generation with the chat template."""

from __future__ import annotations

import torch

from .env import check_gpu, get_hf_token
from .profiles import Profile


def model_path(profile: Profile) -> str:
    """The hub id, or the local directory of the tiny model (built on first use)."""
    if profile.is_tiny:
        from .tiny import tiny_model_dir

        return str(tiny_model_dir())
    return profile.model_id


def bnb_config(profile: Profile):
    """The 4-bit quantization settings of a profile (NF4, double quantization, compute in profile.dtype)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=profile.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=profile.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, profile.dtype),
    )


def load_tokenizer(profile: Profile, token: str | None = None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path(profile), token=token)
    if tokenizer.pad_token is None:  # Mistral-family tokenizers have none
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(profile: Profile, quantize: bool = True, token: str | None = None):
    """Load model and tokenizer with `from_pretrained`, the same call for the tiny directory and a hub id.

    quantize=True loads the linear layers in 4 bits (bitsandbytes Linear4bit); the rest
    (embeddings, lm_head, norms) in profile.dtype.
    """
    from transformers import AutoModelForCausalLM

    check_gpu(profile)
    if profile.is_tiny:
        quiet_progress_bars()  # a tiny model loads in a second: the bars would only clutter the pages
    if token is None:
        token = get_hf_token(profile)
    kwargs = {"dtype": getattr(torch, profile.dtype), "token": token}
    if quantize and profile.load_in_4bit:
        kwargs["quantization_config"] = bnb_config(profile)
    if profile.needs_gpu:
        kwargs["device_map"] = {"": 0}
    tokenizer = load_tokenizer(profile, token=token)
    model = AutoModelForCausalLM.from_pretrained(model_path(profile), **kwargs)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if not profile.needs_gpu:
        keep_cpu_4bit_trainable(model)
    return model, tokenizer


def quiet_progress_bars() -> None:
    """Hide the progress bars of transformers (weight loading) and datasets (TRL's tokenization)."""
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def keep_cpu_4bit_trainable(model) -> None:
    """Stop bitsandbytes (0.50) from repacking 4-bit weights for bf16 CPU inference in eval mode.

    On a CPU with AVX512-BF16, Linear4bit.forward in eval mode converts its weight to a packed
    inference layout and never converts it back: training after an evaluation then fails
    ("a view of a leaf Variable ... in-place operation"), and eval runs in bf16 instead of fp32.
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def describe_model(model) -> dict:
    """Parameter count, 4-bit layer count and memory footprint of a loaded model."""
    import bitsandbytes as bnb

    n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    # a Linear4bit stores two 4-bit values per byte: count elements of its weight, not bytes
    n_params = 0
    for m in model.modules():
        for p in m.parameters(recurse=False):
            n_params += p.numel() * (2 if isinstance(m, bnb.nn.Linear4bit) and p is m.weight else 1)
    return {
        "parameters": n_params,
        "linear4bit_layers": n4,
        "footprint_bytes": model.get_memory_footprint(),
        "device": str(next(model.parameters()).device),
    }


def as_messages(prompt, system: str | None = None) -> list[dict]:
    """A prompt string (or a list of messages already) as chat messages."""
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = list(prompt)
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}] + messages
    return messages


@torch.no_grad()
def generate_answers(model, tokenizer, prompts, max_new_tokens: int = 64, batch_size: int = 8,
                     system: str | None = None) -> list[str]:
    """Greedy answers to prompts (strings or message lists), formatted with the chat template."""
    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only: pad on the left so that answers start together
    answers: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = [as_messages(p, system) for p in prompts[start : start + batch_size]]
            texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in chunk]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            new = out[:, enc["input_ids"].shape[1] :]
            answers.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return answers
