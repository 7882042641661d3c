"""Run profiles: everything one run needs, in one frozen dataclass."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .errors import CourseError

# the hub ids of the course's two 7B models (their configs: course_utils.configs)
QWEN25_7B = "Qwen/Qwen2.5-7B-Instruct"
VISTRAL_7B = "Viet-Mistral/Vistral-7B-Chat"

TINY_MODEL_ID = "course-tiny"  # resolved to a local directory by course_utils.tiny
# What PyTorch can use of a T4's 16 GB on Colab (about 15 GiB visible, less CUDA's own share): the one source
# of the budget for the memory plan, the benchmarks (their cap) and the chapters.
T4_BUDGET_GIB = 14.5
# the profile fields that are speed and memory levers (benchmarks/peers.py records them with each course row)
LEVERS = ("use_liger_kernel", "offload_activations", "padding_free", "expandable_segments", "sdpa_cudnn", "optim",
          "lora_fused_sum")


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
    # "auto": decided from the tokenizer's chat template (course_utils.templates.loss_strategy);
    # or "assistant_only" / "completion_only"
    loss_on: str = "auto"
    validation_share: float = 0.1  # your own data without a validation file: a seeded 90/10 split
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
    # speed and memory levers measured in benchmarks/peers.py (chapter 9 says what each does)
    use_liger_kernel: bool = False  # Liger's fused Triton kernels (RMSNorm, SwiGLU, RoPE): GPU only
    offload_activations: bool = False  # checkpointed layer inputs kept in pinned CPU memory
    # pinned CPU memory the offload may take: free Colab has about 12,7 GB of RAM for everything (a rule of thumb:
    # about half, the rest for Python, loading and the data)
    offload_budget_gib: float | None = 6.0
    # the sequences of a batch laid end to end, no padding (SDPA keeps them apart by their position_ids): less
    # compute where a batch's lengths differ; on the benchmark GPU its effect was within the noise (chapter 9)
    padding_free: bool = False
    # PyTorch's allocator grows one mapped segment instead of caching blocks of fixed sizes: less memory reserved
    # beyond what is allocated (fragmentation); GPU only
    expandable_segments: bool = False
    # let PyTorch's SDPA pick its cuDNN attention (newer GPUs than a T4): on the benchmark GPU it builds a plan for
    # each new sequence length, milliseconds of CPU per call on real, varied lengths
    sdpa_cudnn: bool = True
    # LoRA's W x + s * B (A x) as one torch.addmm instead of peft's clone, multiply and add
    # (course_utils.lora.fuse_lora_sum): fewer passes over each layer's output
    lora_fused_sum: bool = False
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
    memory_budget_gib: float | None = T4_BUDGET_GIB

    def __post_init__(self):
        positive = ("max_length", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                    "eval_steps", "logging_steps", "save_steps", "lora_r", "eval_max_new_tokens")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ProfileError(f"{name} phải là số nguyên dương, không phải {value!r}. Hãy đặt {name} ≥ 1.")
        if not self.learning_rate > 0:
            raise ProfileError(f"learning_rate phải dương, không phải {self.learning_rate!r} (ví dụ 2e-4).")
        if not isinstance(self.n_eval_examples, int) or self.n_eval_examples < 0:
            raise ProfileError(f"n_eval_examples phải là số nguyên ≥ 0, không phải {self.n_eval_examples!r}.")
        if self.loss_on not in ("auto", "assistant_only", "completion_only"):
            raise ProfileError(f'loss_on phải là "auto", "assistant_only" hoặc "completion_only", không phải '
                               f'"{self.loss_on}".')
        if not 0 < self.validation_share < 1:
            raise ProfileError(f"validation_share phải nằm giữa 0 và 1, không phải {self.validation_share!r}.")

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (the profile itself is frozen)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ProfileError(f"Profile không có trường {unknown}. Các trường: "
                               f"{', '.join(f.name for f in dataclasses.fields(self))}.")
        return dataclasses.replace(self, **changes)

    def with_settings(self, settings: list[str]) -> "Profile":
        """A copy with fields changed from "name=value" texts (the command line's --set), typed like the field."""
        changes = {}
        for item in settings:
            name, sep, text = item.partition("=")
            field = next((f for f in dataclasses.fields(self) if f.name == name.strip()), None)
            if not sep or field is None:
                raise ProfileError(f'"{item}" không phải dạng tên=giá_trị của một trường profile (ví dụ '
                                   "lora_dropout=0). Các trường: " + ", ".join(f.name for f in dataclasses.fields(self)))
            current = getattr(self, field.name)
            text = text.strip()
            try:
                if isinstance(current, bool):
                    if text.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(text)
                    value = text.lower() in ("true", "1")
                elif isinstance(current, int):
                    value = int(text)
                elif isinstance(current, float):
                    value = float(text)
                else:
                    value = None if text.lower() == "none" else text
            except ValueError:
                raise ProfileError(f'{field.name}={text}: cần một giá trị kiểu {type(current).__name__}.') from None
            changes[field.name] = value
        return self.replace(**changes)

    @property
    def is_tiny(self) -> bool:
        return self.model_id == TINY_MODEL_ID


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="Mô hình tiny: một Qwen2 rất nhỏ dựng ngoại tuyến, chạy trên CPU (CI, máy không có GPU)",
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
        lora_fused_sum=True,  # as the t4 profiles: CI trains, evaluates, generates and saves through it
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
        model_id=QWEN25_7B,
        needs_gpu=True,
        use_liger_kernel=True,  # benchmarks/peers.py: less memory and faster than without (chapter 9)
        offload_activations=True,
        sdpa_cudnn=False,  # call C2: the course data as fast as Unsloth (chapter 9)
        optim="adamw_8bit",  # measured with the line above, as one recipe (the LoRA states are small: no paging)
        lora_fused_sum=True,
        expandable_segments=True,
    ),
    "t4-vistral": Profile(
        name="t4-vistral",
        description="Vistral-7B-Chat (Mistral-7B cho tiếng Việt), QLoRA trên một GPU T4 của Colab",
        model_id=VISTRAL_7B,
        needs_gpu=True,
        gated=True,
        use_liger_kernel=True,
        offload_activations=True,
        sdpa_cudnn=False,
        optim="adamw_8bit",
        lora_fused_sum=True,
        expandable_segments=True,
    ),
}


# what a lever was before it existed (rows recorded earlier do not name it): the field's default
LEVER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Profile) if f.name in LEVERS}


class ProfileError(CourseError):
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
