"""How long a QLoRA step takes on a T4, estimated from its floating-point operations (no T4 at hand).

A step's work is counted, not timed: with the base frozen and gradient checkpointing on, each token costs, for every
linear layer of N non-embedding weights, 2N FLOPs forward, 2N again when the layer is recomputed during the backward,
and 2N for the gradient of its input (no gradient for the frozen weights: that is what makes it 6N, not the 8N a full
fine-tune with checkpointing would cost); attention adds the score and value products; the LM head, in TRL's fused
form, costs 6·d·V for each scored (answer) token and nothing for the others. Divided by a sustained rate: what a T4
really delivers on large fp16 matrix products, 24 TFLOPS (an NVIDIA forum measurement of cuBLAS fp16 4096³ products:
the T4 lowers its clock to stay within 70 W; its datasheet's 65 TFLOPS is a peak it does not hold). QLoRA adds the
dequantization of every 4-bit weight and many small LoRA products, so the real rate is lower: see t4_effective_rate.
"""

from __future__ import annotations

from .configs import head_dim, parameter_counts

T4_PEAK_TFLOPS = 65.0  # NVIDIA T4 datasheet, fp16 tensor cores (peak)
T4_SUSTAINED_TFLOPS = 24.0  # https://forums.developer.nvidia.com/t/about-gpu-peak-performance/264462 (power-capped)
T4_BANDWIDTH_GBS = 320.0  # NVIDIA T4 datasheet, GDDR6
H200_BANDWIDTH_GBS = 4800.0  # NVIDIA H200 datasheet, HBM3e
# Unsloth's Qwen2.5-7B Alpaca notebook on a Colab T4 (shared/notes/t4-memory.md): 60 steps of 2 x 4 sequences, 462 s
UNSLOTH_T4 = {"steps": 60, "sequences_per_step": 8, "seconds": 462.0}


def flops_per_token(config, seq_len: int, scored: bool = True, checkpointing: bool = True) -> dict[str, float]:
    """FLOPs of one trained token, by part: linear layers, attention, LM head (only if the token is scored)."""
    counts = parameter_counts(config)
    linear = counts["attention"] + counts["mlp"]  # the frozen decoder weights (biases are negligible)
    passes = 3 if checkpointing else 2  # forward, (recompute), input gradient: 2 FLOPs per weight each
    attention = 2 * 2 * config.num_hidden_layers * config.num_attention_heads * head_dim(config) * seq_len / 2
    lm_head = 6 * config.hidden_size * config.vocab_size if scored else 0.0  # forward, recompute, input gradient
    return {"linear": 2 * passes * linear, "attention": (passes + 1) * attention, "lm_head": lm_head}


def step_flops(config, token_lengths: list[int], answer_tokens: int, checkpointing: bool = True) -> float:
    """FLOPs of the sequences of one optimizer step: every token through the decoder, answer tokens through the head."""
    total = 0.0
    for n in token_lengths:
        parts = flops_per_token(config, n, scored=False, checkpointing=checkpointing)
        total += n * (parts["linear"] + parts["attention"])
    head = flops_per_token(config, 1, scored=True)["lm_head"]
    return total + answer_tokens * head


def lora_extra_bytes_per_token(config, target_modules="all-linear", compute_bytes: int = 2) -> int:
    """Memory traffic peft's LoRA layer adds, per token, over adding the LoRA product inside the base product's
    output (what Unsloth's fused LoRA does: out.addmm_(x A, B, alpha=s), reading and writing `out` once).

    peft (lora/bnb.py Linear4bit.forward): result.clone(), lora_B(lora_A(x)) written out, * scaling, result + that:
    8 passes over the output against 2, so 6 extra per forward; twice with checkpointing (forward, recompute),
    plus 2 for the gradient of the scaling in the backward: 14 passes over each targeted layer's output.
    """
    from .configs import linear_shapes, resolve_targets

    shapes = linear_shapes(config)
    width = sum(shapes[t][0] for t in resolve_targets(config, target_modules))
    return 14 * width * compute_bytes * config.num_hidden_layers


def padded_length(lengths: list[int], batch: int) -> float:
    """Mean tokens a sequence costs once padded to the longest of its batch, over random batches of `batch`
    different sequences: E[max of `batch` drawn without replacement] = sum_k L_(k) C(k-1, batch-1) / C(n, batch)."""
    from math import comb

    ordered = sorted(lengths)
    n = len(ordered)
    return sum(length * comb(k - 1, batch - 1) for k, length in enumerate(ordered, start=1)) / comb(n, batch)


def seconds(flops: float, tflops: float = T4_SUSTAINED_TFLOPS) -> float:
    return flops / (tflops * 1e12)


def t4_effective_rate(config, mean_tokens: float, answer_share: float = 1.0) -> float:
    """The TFLOPS that Unsloth's published T4 time implies, if its sequences averaged `mean_tokens` tokens."""
    n = UNSLOTH_T4["steps"] * UNSLOTH_T4["sequences_per_step"]
    lengths = [round(mean_tokens)] * n
    flops = step_flops(config, lengths, int(answer_share * mean_tokens * n))
    return flops / UNSLOTH_T4["seconds"] / 1e12
