"""Run profiles: everything one run needs, in one frozen dataclass."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

TINY_MODEL_ID = "course-tiny"  # resolved to a local directory by course_utils.tiny


@dataclass(frozen=True)
class Profile:
    """Settings of one run (model, precision, data, LoRA, training, evaluation)."""

    name: str
    description: str
    model_id: str
    needs_gpu: bool
    gated: bool = False
    # precision: dtype of the unquantized modules and of the 4-bit compute
    dtype: str = "float16"
    fp16: bool = True  # fp16 mixed precision with a GradScaler (a T4 has no bf16)
    # 4-bit quantization (bitsandbytes)
    load_in_4bit: bool = True
    bnb_4bit_quant_type: str = "nf4"
    bnb_4bit_use_double_quant: bool = True
    # data
    max_length: int = 1024
    loss_on: str = "assistant_only"  # or "completion_only" (templates without generation markers)
    # training
    per_device_train_batch_size: int = 2
    gradient_accumulation_steps: int = 4
    max_steps: int = 60
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "cosine"
    warmup_steps: int = 5
    weight_decay: float = 0.0
    optim: str = "paged_adamw_8bit"
    gradient_checkpointing: bool = True
    # the textbook step that casts embeddings, lm_head and norms to fp32: off in the course recipe
    prepare_model_for_kbit_training: bool = False
    seed: int = 42
    # LoRA (see the rank/alpha chapter for the choice)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | tuple[str, ...] = "all-linear"
    # evaluation, logging, checkpoints
    eval_steps: int = 10
    logging_steps: int = 5
    save_steps: int = 20
    eval_max_new_tokens: int = 128
    n_eval_examples: int = 24  # test examples scored with ROUGE before/after
    # memory plan: refuse before loading when the estimate exceeds this budget
    memory_budget_gib: float | None = 14.5

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (the profile itself is frozen)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_tiny(self) -> bool:
        return self.model_id == TINY_MODEL_ID


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="Mô hình Qwen2 tí hon dựng ngoại tuyến, chạy trên CPU (CI, máy không có GPU)",
        model_id=TINY_MODEL_ID,
        needs_gpu=False,
        dtype="float32",
        fp16=False,
        max_length=512,  # the longest course record is 497 tiny-tokenizer tokens: none is cut
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_steps=60,
        learning_rate=2e-3,
        warmup_steps=5,
        optim="adamw_torch",
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        eval_steps=10,
        logging_steps=5,
        save_steps=20,
        eval_max_new_tokens=48,
        n_eval_examples=12,
        memory_budget_gib=None,
    ),
    "t4": Profile(
        name="t4",
        description="Qwen2.5-7B-Instruct, QLoRA trên một GPU T4 của Colab (fp16, không có bf16)",
        model_id="Qwen/Qwen2.5-7B-Instruct",
        needs_gpu=True,
    ),
    "t4-vistral": Profile(
        name="t4-vistral",
        description="Vistral-7B-Chat (Mistral-7B cho tiếng Việt), QLoRA trên một GPU T4 của Colab",
        model_id="Viet-Mistral/Vistral-7B-Chat",
        needs_gpu=True,
        gated=True,
        loss_on="completion_only",  # its chat template has no generation markers
    ),
}


class ProfileError(ValueError):
    """An unknown profile name."""


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


def get_profile(name: str | None = None) -> Profile:
    """Pick a profile: `name`, else $COURSE_PROFILE, else "t4" with a CUDA GPU, else "tiny"."""
    chosen = name or os.environ.get("COURSE_PROFILE") or ("t4" if _cuda_available() else "tiny")
    chosen = chosen.strip()
    if chosen not in PROFILES:
        valid = ", ".join(f'"{k}"' for k in PROFILES)
        raise ProfileError(
            f'Không có profile "{chosen}". Các profile hợp lệ: {valid}. '
            "Hãy truyền một trong các tên này cho get_profile() hoặc đặt biến môi trường COURSE_PROFILE."
        )
    return PROFILES[chosen]
