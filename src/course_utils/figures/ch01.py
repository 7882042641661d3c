"""Figures of chapter 1 (introduction): Qwen2.5-7B counted from its config, training memory, TRL's logits tiles,
the course dataset, and a few numbers quoted from the literature (each with its source)."""

from __future__ import annotations

# ---- quoted from the literature or a datasheet -----------------------------------------------------------------
# Qwen Team, "Qwen2.5 Technical Report" (2024, arXiv:2412.15115): pre-training data grown from 7T to 18T tokens
QWEN25_PRETRAIN_TRILLION_TOKENS = 18
T4_MEMORY_GB = 16  # NVIDIA T4 datasheet: 16 GB GDDR6
LIMA_EXAMPLES = 1000  # Zhou et al. 2023, "LIMA: Less Is More for Alignment": 1,000 curated prompts and responses
LIMA_VS_GPT4_PCT = 43  # same paper, abstract: LIMA equivalent or preferred to GPT-4 in 43% of cases
# max_length covering "95-99%" of the samples: a rule of thumb, said so on the page (no paper behind it)
COVERAGE_RULE_OF_THUMB_PCT = (95, 99)


def naive_logits_bytes(config, batch: int, length: int) -> int:
    """Bytes of the fp32 logits a plain `model(input_ids, labels=...)` holds: transformers' loss upcasts them."""
    return batch * length * config.vocab_size * 4


def absmax_share() -> float:
    """Share of bitsandbytes' 8-bit Adam state taken by its fp32 absmax: one per block of 256 values, per state."""
    block, states = 256, 2
    per_param = states * 1 + states * 4 / block
    return (states * 4 / block) / per_param


def library_constant(module: str, name: str):
    """A module-level constant of an installed library, read from its source without importing it
    (importing trl.trainer takes seconds; the figures must stay cheap)."""
    import ast
    import importlib.util
    from pathlib import Path

    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{module} không còn hằng số {name}: kiểm tra lại phiên bản thư viện.")


def figures() -> dict:
    from ..configs import count_lora_params, parameter_counts, qwen25_7b_config, vistral_7b_config
    from ..data import SPLITS, load_split
    from ..memory import GIB, estimate_training_memory, weight_memory
    from ..profiles import get_profile

    cfg = qwen25_7b_config()
    counts = parameter_counts(cfg)
    # the plain recipe: chapter 9 adds two memory levers (Liger, offload) on top of it
    t4 = get_profile("t4").replace(use_liger_kernel=False, offload_activations=False)
    tiny = get_profile("tiny")
    n_lora = count_lora_params(cfg, t4.lora_r, "all-linear")
    f = {
        "tham số của Qwen2.5-7B": counts["total"],
        "tham số MLP": counts["mlp"],
        "MLP (% tham số)": round(100 * counts["mlp"] / counts["total"]),
        "kích thước ẩn": cfg.hidden_size,
        "từ vựng của Qwen2.5-7B": cfg.vocab_size,
        "token tiền huấn luyện của Qwen2.5 (nghìn tỉ)": QWEN25_PRETRAIN_TRILLION_TOKENS,
        "tham số LoRA r=16, mọi lớp tuyến tính": n_lora,
        "LoRA (% tham số)": 100 * n_lora / counts["total"],
        "từ vựng của Vistral-7B-Chat": vistral_7b_config().vocab_size,
    }
    for bits in (16, 8, 4):
        f[f"trọng số {bits} bit (GiB)"] = weight_memory(cfg, bits=bits)["total"] / GIB
    w4 = weight_memory(cfg, bits=4)
    f["embedding + lm_head ở 4 bit (% trọng số)"] = round(100 * (w4["embed_tokens"] + w4["lm_head"]) / w4["total"])
    f["tinh chỉnh toàn bộ, 16 byte mỗi tham số (GiB)"] = counts["total"] * 16 / GIB
    f["absmax của Adam 8-bit (% trạng thái)"] = 100 * absmax_share()

    # logits: what a plain forward holds, and TRL's tiles
    f["max_length của profile t4"] = t4.max_length
    f["logits fp32 mỗi chuỗi (MiB)"] = naive_logits_bytes(cfg, 1, t4.max_length) / 2**20
    f["logits fp32 cả batch (MiB)"] = naive_logits_bytes(cfg, t4.per_device_train_batch_size, t4.max_length) / 2**20
    f["khối token của TRL"] = library_constant("trl.kernels.chunked_logprob", "TOKEN_CHUNK_SIZE")
    f["khối từ vựng của TRL"] = library_constant("trl.trainer.utils", "_CHUNKED_LOGPROB_CHUNK_SIZE")

    # the memory table of the t4 profile
    f["ngân sách T4 (GiB)"] = t4.memory_budget_gib
    f["bộ nhớ của T4 (GB)"] = T4_MEMORY_GB
    f["dư cho bộ cấp phát (%)"] = round(100 * (estimate_training_memory(cfg, t4).margin - 1))
    for method in ("full", "lora", "qlora"):
        plan = estimate_training_memory(cfg, t4, method=method)
        for part, value in plan.parts.items():
            f[f"{method}: {part} (GiB)"] = value / GIB
        f[f"{method}: tổng (GiB)"] = plan.total / GIB
        f[f"{method}: cần (GiB)"] = plan.needed_bytes / GIB
    for length in (512, 1024, 2048, 4096):
        plan = estimate_training_memory(cfg, t4.replace(max_length=length), method="qlora")
        f[f"activation QLoRA, max_length {length} (GiB)"] = plan.parts["activations"] / GIB
    for method in ("full", "qlora"):
        fp32 = estimate_training_memory(cfg, t4.replace(optim="adamw_torch"), method=method).parts["optimizer"]
        int8 = estimate_training_memory(cfg, t4, method=method).parts["optimizer"]
        f[f"{method}: bộ tối ưu 8-bit tiết kiệm (GiB)"] = (fp32 - int8) / GIB
    f["tốc độ học của profile t4"] = t4.learning_rate
    f["tốc độ học của profile tiny"] = tiny.learning_rate

    # the course dataset
    for split in SPLITS:
        records = load_split(split)
        f[f"bản ghi {split}"] = len(records)
        f[f"bản ghi {split} có input"] = sum(bool(r["input"]) for r in records)
    f["LIMA: số cặp hỏi – đáp"] = LIMA_EXAMPLES
    f["LIMA: ngang hoặc hơn GPT-4 (%)"] = LIMA_VS_GPT4_PCT
    f["bao phủ độ dài, cận dưới (%)"], f["bao phủ độ dài, cận trên (%)"] = COVERAGE_RULE_OF_THUMB_PCT
    return f
