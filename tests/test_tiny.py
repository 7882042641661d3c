"""The tiny model: offline, deterministic, loads in 4 bits, chat template with generation markers, trains."""

import json
import subprocess
import sys

import torch


def test_builds_offline_in_a_fresh_cache_and_the_same_bytes(tmp_path, tiny_dir):
    """A fresh build (a separate process, hub off, empty cache) gives the bytes of the shared cache's build: the one
    extra build of a CI run (the shared cache is the other)."""
    code = ("import time; t=time.time(); from course_utils.tiny import tiny_model_dir; "
            "d = tiny_model_dir(verbose=False); print(d); print(time.time()-t)")
    env = {"COURSE_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    built = tmp_path / out.stdout.split()[0].split("/")[-1]
    assert str(built).startswith(str(tmp_path)) and built.name == tiny_dir.name  # same recipe, same cache key
    assert (built / "tokenizer_config.json").exists()
    for name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"):
        assert (built / name).read_bytes() == (tiny_dir / name).read_bytes(), name


def test_size_and_architecture(tiny_dir):
    info = json.loads((tiny_dir / "course_tiny.json").read_text())
    assert 1_000_000 <= info["parameters"] <= 5_000_000
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["num_key_value_heads"] < config["num_attention_heads"]


def test_loads_with_and_without_4bit(monkeypatch):
    import bitsandbytes as bnb

    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = load_model_and_tokenizer(get_profile("tiny"))
    linear4 = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linear4) == 7 * model.config.num_hidden_layers
    assert linear4[0].weight.quant_state.quant_type == "nf4"
    plain, _ = load_model_and_tokenizer(get_profile("tiny"), quantize=False)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in plain.modules())
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


def test_chat_template_marks_the_assistant_answer(tiny_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    messages = [{"role": "user", "content": "Xin chào"}, {"role": "assistant", "content": "Chào bạn"}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == "<|im_start|>user\nXin chào<|im_end|>\n<|im_start|>assistant\nChào bạn<|im_end|>\n"
    out = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    answer = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(answer) == "Chào bạn<|im_end|>"  # the answer and its end token, nothing else
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_tokenizer_normalises_to_nfc(tiny_dir):
    import unicodedata

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    s = "Lượng tử hóa tiếng Việt"
    assert tok(unicodedata.normalize("NFD", s))["input_ids"] == tok(s)["input_ids"]
    assert tok.decode(tok(s)["input_ids"]) == s


def test_a_training_step_lowers_the_loss():
    from course_utils.data import load_split, to_training_dataset
    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model, tok = load_model_and_tokenizer(get_profile("tiny"))
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    texts = [tok.apply_chat_template(m, tokenize=False) for m in to_training_dataset(load_split("train")[:8])["messages"]]
    batch = tok(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    losses = []
    model.train()
    for _ in range(5):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses
