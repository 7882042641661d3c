"""Memory of a model and of its training, computed from the config alone (no weights loaded).

`estimate_training_memory(config, profile)` gives a breakdown in bytes and a verdict against the
profile's budget (profiles.T4_BUDGET_GIB for a T4). Its activation terms were calibrated against the GPU benchmarks
(benchmarks/t4_memory.py and peers.py: 7B shapes under that cap); tests/test_memory.py keeps it within
CALIBRATION_TOLERANCE of every measured course row; see the lab chapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CourseError
from .configs import count_lora_params, head_dim, linear_shapes, parameter_counts, resolve_targets

GIB = 2**30
NF4_BLOCK = 64
DQ_BLOCK = 256
# Peak *reserved* memory runs above peak *allocated* memory (the caching allocator's blocks): the verdict keeps this
# margin over the plan. Measured (benchmarks/results/peers.json, every course row): reserved / plan at most 1.052
# without expandable segments, 1.047 with them; and at batch 2, max_length 17408 ran (1.038) while 18432 ran out of
# memory (plan 14.25 GiB, so any margin above 1.018 refuses it). tests/test_memory.py keeps both true.
RESERVE_MARGIN = 1.06
EXPANDABLE_RESERVE_MARGIN = 1.05  # the profile's expandable_segments: one growing segment, less left unused
# How close the plan must stay to every measured peak of the course recipe (tests/test_memory.py)
CALIBRATION_TOLERANCE = 0.05


class MemoryPlanError(CourseError):
    """The configuration would not fit the budget; the message says what to lower."""


def bits_per_param_4bit(double_quant: bool = True, blocksize: int = NF4_BLOCK, dq_blocksize: int = DQ_BLOCK) -> float:
    """Bits per 4-bit weight with its block constants: 4 + 32/64 = 4.5, or 4 + 8/64 + 32/(64*256) with DQ."""
    if double_quant:
        return 4 + 8 / blocksize + 32 / (blocksize * dq_blocksize)
    return 4 + 32 / blocksize


def weight_memory(config, bits: int = 16, double_quant: bool = True) -> dict[str, int]:
    """Bytes of the weights with the linear layers of the decoder in `bits` (16, 8 or 4).

    Embeddings, lm_head, norms and biases stay 16-bit, as bitsandbytes leaves them in transformers.
    8 bits: LLM.int8 keeps one fp32 scale per output row.
    """
    counts = parameter_counts(config)
    shapes = linear_shapes(config)
    n_layers = config.num_hidden_layers
    linear_params = sum(o * i for o, i in shapes.values()) * n_layers
    other = counts["total"] - linear_params - counts["embed_tokens"] - counts["lm_head"]  # norms and biases
    if bits == 16:
        linear = linear_params * 2
    elif bits == 8:
        linear = linear_params + sum(o for o, _ in shapes.values()) * n_layers * 4
    elif bits == 4:
        linear = round(linear_params * bits_per_param_4bit(double_quant) / 8)
    else:
        raise ValueError("bits phải là 16, 8 hoặc 4.")
    parts = {
        "linear": linear,
        "embed_tokens": counts["embed_tokens"] * 2,
        "lm_head": counts["lm_head"] * 2,
        "norms_and_biases": other * 2,
    }
    parts["total"] = sum(parts.values())
    return parts


LABELS = {
    "weights_4bit": "Trọng số 4-bit (NF4 + hằng số lượng tử hóa)",
    "weights_16bit": "Trọng số giữ nguyên (embedding, lm_head, norm)",
    "weights_frozen": "Trọng số gốc đóng băng (16-bit)",
    "weights": "Trọng số (16-bit)",
    "master_weights": "Bản sao fp32 của trọng số",
    "lora_weights": "Trọng số LoRA (fp32)",
    "gradients": "Gradient",
    "optimizer": "Trạng thái bộ tối ưu",
    "dequant_buffer": "Trọng số giải lượng tử tạm thời (một lớp)",
    "activations": "Activation (có gradient checkpointing)",
    "activations_full": "Activation (không checkpointing)",
    "logits_loss": "Logits và hàm mất mát (phần vượt activation)",
}


@dataclass
class MemoryPlan:
    """A breakdown in bytes and a verdict against a budget."""

    method: str
    parts: dict[str, int]
    budget_bytes: int | None
    tokens: int
    notes: list[str] = field(default_factory=list)
    offloaded_bytes: int = 0  # checkpointed activations kept in pinned CPU memory (offload_activations)
    offload_budget_bytes: int | None = None
    margin: float = RESERVE_MARGIN  # the allocator's margin (EXPANDABLE_RESERVE_MARGIN with expandable segments)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def offload_fits(self) -> bool:
        return self.offload_budget_bytes is None or self.offloaded_bytes <= self.offload_budget_bytes

    @property
    def needed_bytes(self) -> int:
        """Total with the allocator's margin: what must fit in the budget."""
        return int(self.total * self.margin)

    @property
    def fits(self) -> bool:
        return (self.budget_bytes is None or self.needed_bytes <= self.budget_bytes) and self.offload_fits

    def table(self) -> str:
        unit, size = ("GiB", GIB) if self.total >= GIB else ("MiB", 2**20)  # the tiny model fits in MiB
        rows = [f"{LABELS.get(k, k):<48} {v / size:7.2f} {unit}" for k, v in self.parts.items()]
        rows.append(f"{'Tổng (ước lượng đỉnh bộ nhớ cấp phát)':<48} {self.total / size:7.2f} {unit}")
        if self.budget_bytes is not None:
            verdict = "VỪA" if self.needed_bytes <= self.budget_bytes else "KHÔNG VỪA"
            need = f"Cần (thêm {round(100 * (self.margin - 1))}% cho bộ cấp phát) / ngân sách"
            rows.append(f"{need:<48} {self.needed_bytes / GIB:7.2f} / "
                        f"{self.budget_bytes / GIB:.2f} GiB: {verdict}")
        if self.offloaded_bytes:
            limit = "" if self.offload_budget_bytes is None else f" / {self.offload_budget_bytes / GIB:.2f} GiB"
            rows.append(f"{'RAM của CPU cho activation offload':<48} {self.offloaded_bytes / GIB:7.2f}{limit}"
                        f"{'' if self.offload_fits else ': KHÔNG VỪA'}")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()


# With gradient checkpointing two moments compete for the peak, both with the checkpointed layer inputs alive: the
# loss (the LM head's tiles) and the backward of one layer (its activations, recomputed). The plan counts the layer's
# activations in full, and what the loss needs beyond them (usually nothing). Calibrated against the GPU benchmarks:
# within a few percent from 2,048 to 32,768 tokens per batch (benchmarks/peers.py, calls A to D).


def _per_token_bytes(config, profile, compute_bytes: int) -> tuple[int, int]:
    """Bytes per token of (one layer's saved activations, the layer inputs checkpointing keeps on the GPU)."""
    h, i = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * head_dim(config)
    targets = resolve_targets(config, profile.lora_target_modules)
    c = compute_bytes
    if getattr(profile, "prepare_model_for_kbit_training", False):
        c = 4  # norms cast to fp32 make the residual stream, and what follows it, fp32
    drop = profile.lora_dropout > 0
    # inputs of the LoRA branches: a dropout copy (and its mask) of each targeted layer's input
    h_inputs = sum(t in targets for t in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"))
    i_inputs = int("down_proj" in targets)
    layer = (
        h * (8 + 6 * c)  # two RMSNorms (fp32 inside), q, rotary q, attention output, residual
        + kv * 3 * c  # k, v, rotary k
        + i * 7 * c  # gate, up, silu(gate), product, input of down_proj, and their gradients
        + (h * h_inputs + i * i_inputs) * (c + 1) * drop
    )
    if getattr(profile, "use_liger_kernel", False):
        # Liger's fused SwiGLU recomputes silu(gate) * up in its backward, and its RMSNorm keeps no fp32 copies
        layer -= i * 2 * c + h * 8
    # the input of every layer; with offload, about two layers' inputs in flight on the GPU (the rest in CPU memory)
    inputs = (2 if getattr(profile, "offload_activations", False) else config.num_hidden_layers) * h * c
    return layer, inputs


def _activation_bytes(config, profile, tokens: int, compute_bytes: int) -> int:
    """Activations kept for the backward pass, with or without gradient checkpointing."""
    layer, inputs = _per_token_bytes(config, profile, compute_bytes)
    if profile.gradient_checkpointing:
        # the checkpointed layer inputs, plus one layer recomputed during its backward
        return tokens * (inputs + layer)
    return tokens * config.num_hidden_layers * layer


def offloaded_bytes(config, profile, tokens: int | None = None) -> int:
    """Pinned CPU memory that offload_activations takes: every checkpointed layer's input (Colab: ~12,7 GB of RAM)."""
    if not (profile.gradient_checkpointing and getattr(profile, "offload_activations", False)):
        return 0
    tokens = tokens or profile.per_device_train_batch_size * profile.max_length
    import torch

    c = torch.finfo(getattr(torch, profile.dtype)).bits // 8
    return tokens * config.num_hidden_layers * config.hidden_size * c


def _dequant_bytes(config, compute_bytes: int) -> int:
    """bitsandbytes dequantizes one 4-bit weight at a time to the compute dtype: the largest one."""
    return max(o * i for o, i in linear_shapes(config).values()) * compute_bytes


def _logits_bytes(config, profile, tokens: int, compute_bytes: int) -> int:
    """The loss with TRL 1.16's fused LM head (trl/trainer/utils.py add_fused_lm_head, trl/kernels/chunked_logprob.py).

    It scores only the positions whose label is not -100 (the answers), projecting them through lm_head in tiles
    of 4.096 tokens x 32.768 vocabulary entries: the (tokens, vocabulary) logits never exist, and the loss's memory
    grows with the number of answer tokens, not with max_length. Counted here for `tokens` scored positions (the
    worst case, every token an answer token, as in the benchmark's random data): one tile, the fp32 gradient of the
    hidden states and the copy of the scored hidden states.
    """
    tile = min(tokens, 4096) * min(config.vocab_size, 32768) * compute_bytes
    return tile + tokens * config.hidden_size * (4 + compute_bytes)


def estimate_training_memory(model_config, profile, method: str = "qlora", tokens: int | None = None) -> MemoryPlan:
    """Peak memory of one training step, by part, for method "qlora", "lora" or "full".

    tokens defaults to the worst case, per_device_train_batch_size * max_length.
    """
    import torch

    if method not in ("qlora", "lora", "full"):
        raise ValueError('method phải là "qlora", "lora" hoặc "full".')
    tokens = tokens or profile.per_device_train_batch_size * profile.max_length
    c = torch.finfo(getattr(torch, profile.dtype)).bits // 8
    counts = parameter_counts(model_config)
    parts: dict[str, int] = {}
    notes: list[str] = []
    adam_bytes = 2 if "8bit" in profile.optim else 8
    if method == "full":
        n = counts["total"]
        parts["weights"] = n * 2
        parts["master_weights"] = n * 4
        parts["gradients"] = n * 2
        parts["optimizer"] = n * adam_bytes
        notes.append("Huấn luyện toàn bộ với mixed precision: 2 + 4 + 2 byte mỗi tham số, cộng trạng thái Adam.")
    else:
        n_lora = count_lora_params(model_config, profile.lora_r, profile.lora_target_modules)
        if method == "qlora":
            w = weight_memory(model_config, bits=4, double_quant=profile.bnb_4bit_use_double_quant)
            parts["weights_4bit"] = w["linear"]
            # left unquantized, in the profile's dtype (fp16 on a T4; fp32 for the tiny model on a CPU)
            sixteen = (w["embed_tokens"] + w["lm_head"] + w["norms_and_biases"]) * c // 2
            if getattr(profile, "prepare_model_for_kbit_training", False):
                sixteen *= 2  # prepare_model_for_kbit_training casts them to fp32
                notes.append("prepare_model_for_kbit_training đổi embedding, lm_head và norm sang fp32.")
            parts["weights_16bit"] = sixteen
            parts["dequant_buffer"] = _dequant_bytes(model_config, c)
        else:
            parts["weights_frozen"] = weight_memory(model_config, bits=16)["total"]
        parts["lora_weights"] = n_lora * 4
        parts["gradients"] = n_lora * 4
        parts["optimizer"] = n_lora * adam_bytes
    key = "activations" if profile.gradient_checkpointing else "activations_full"
    parts[key] = _activation_bytes(model_config, profile, tokens, c)
    logits = _logits_bytes(model_config, profile, tokens, c)
    if profile.gradient_checkpointing:  # the loss and one layer's backward are not at the peak together
        logits = max(0, logits - tokens * _per_token_bytes(model_config, profile, c)[0])
    parts["logits_loss"] = logits
    budget = None if profile.memory_budget_gib is None else int(profile.memory_budget_gib * GIB)
    cpu_budget = getattr(profile, "offload_budget_gib", None)
    return MemoryPlan(method=method, parts=parts, budget_bytes=budget, tokens=tokens, notes=notes,
                      offloaded_bytes=offloaded_bytes(model_config, profile, tokens),
                      offload_budget_bytes=None if cpu_budget is None else int(cpu_budget * GIB),
                      margin=EXPANDABLE_RESERVE_MARGIN if getattr(profile, "expandable_segments", False)
                      else RESERVE_MARGIN)


def check_plan(plan: MemoryPlan, profile, model_config=None) -> None:
    """Raise MemoryPlanError, in Vietnamese and with what to lower, when the plan does not fit."""
    if plan.fits:
        return
    hint = ""
    if model_config is not None:
        for length in sorted({profile.max_length * 3 // 4, *(profile.max_length >> k for k in range(1, 7))}, reverse=True):
            if 128 <= length < profile.max_length and estimate_training_memory(
                    model_config, profile.replace(max_length=length), plan.method).fits:
                hint = f" Với batch {profile.per_device_train_batch_size}, max_length={length} thì vừa."
                break
    where = (f"Cấu hình này cần khoảng {plan.needed_bytes / GIB:.1f} GiB, vượt ngân sách "
             f"{plan.budget_bytes / GIB:.1f} GiB của profile \"{profile.name}\"" if plan.budget_bytes is not None
             and plan.needed_bytes > plan.budget_bytes else
             f"Activation offload cần khoảng {plan.offloaded_bytes / GIB:.1f} GiB RAM của CPU, vượt "
             f"{plan.offload_budget_bytes / GIB:.1f} GiB (offload_budget_gib) của profile \"{profile.name}\"")
    raise MemoryPlanError(
        f"{where}, nên không tải mô hình. "
        f"Hãy giảm max_length (đang {profile.max_length}) hoặc per_device_train_batch_size "
        f"(đang {profile.per_device_train_batch_size}) và tăng gradient_accumulation_steps để giữ batch hiệu dụng; "
        f"giữ gradient_checkpointing=True.{hint}\n{plan.table()}"
    )
