"""The one function that builds the QLoRA trainer, for the notebooks, the command line and the benchmark."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch
from transformers import TrainerCallback

from .errors import CourseError
from .profiles import Profile


def lora_config(profile: Profile, **overrides):
    """peft LoraConfig of a profile: r, alpha, dropout and targets (all linear layers by default)."""
    from peft import LoraConfig, TaskType

    kwargs = dict(
        r=profile.lora_r,
        lora_alpha=profile.lora_alpha,
        lora_dropout=profile.lora_dropout,
        target_modules=profile.lora_target_modules if isinstance(profile.lora_target_modules, str)
        else list(profile.lora_target_modules),
        bias="none",
        task_type=TaskType.CAUSAL_LM,
    )
    kwargs.update(overrides)
    return LoraConfig(**kwargs)


def check_optim(profile: Profile) -> None:
    """Refuse an optimizer name transformers does not know, in words a learner can act on."""
    from transformers.training_args import OptimizerNames

    names = [o.value for o in OptimizerNames]
    if profile.optim not in names:
        raise CourseError(f'optim="{profile.optim}" không phải tên một bộ tối ưu mà transformers biết. Hãy dùng '
                          '"adamw_8bit" (như profile t4), "paged_adamw_8bit" hoặc "adamw_torch" (trên CPU), ví dụ '
                          "--set optim=adamw_8bit. Các tên hợp lệ: " + ", ".join(names) + ".")


def sft_config(profile: Profile, output_dir: str | Path, loss_on: str | None = None, evaluate: bool = True,
               **overrides):
    """TRL SFTConfig of a profile. fp16 with a GradScaler on a T4 (no bf16), packing off.

    loss_on: "assistant_only" or "completion_only" (default: the profile's; "auto" is resolved by build_trainer).
    evaluate=False: no validation set, so no evaluation at all.
    """
    from trl import SFTConfig

    check_optim(profile)
    loss_on = loss_on or profile.loss_on
    # reentrant checkpointing: the same memory, and faster on the benchmark's GPU; but DistributedDataParallel
    # (several processes) needs the non-reentrant form ("Expected to mark a variable ready only once")
    checkpointing_kwargs = {"use_reentrant": int(os.environ.get("WORLD_SIZE", "1")) == 1}
    if profile.offload_activations and torch.cuda.is_available():  # pinned host memory needs an accelerator
        from .compat import CompatNotice, offload_without_waiting

        checkpointing_kwargs["offload"] = True  # transformers 5.23: layer inputs kept in pinned CPU memory
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CompatNotice)  # a torch with the fix: nothing to do
            offload_without_waiting()
    kwargs = dict(
        output_dir=str(output_dir),
        # padding-free: TRL does not truncate then (build_trainer does, to the same max_length)
        max_length=None if profile.padding_free else profile.max_length,
        padding_free=profile.padding_free,
        packing=False,  # the default packing strategy needs FlashAttention, which a T4 lacks
        assistant_only_loss=loss_on == "assistant_only",
        completion_only_loss=True if loss_on == "completion_only" else None,
        per_device_train_batch_size=profile.per_device_train_batch_size,
        per_device_eval_batch_size=profile.per_device_train_batch_size,
        gradient_accumulation_steps=profile.gradient_accumulation_steps,
        max_steps=profile.max_steps,
        learning_rate=profile.learning_rate,
        lr_scheduler_type=profile.lr_scheduler_type,
        warmup_steps=profile.warmup_steps,
        weight_decay=profile.weight_decay,
        optim=profile.optim,
        fp16=profile.fp16,
        bf16=False,  # SFTConfig's default is `not fp16`: say it explicitly, a T4 has no bf16
        # gradient checkpointing (renamed activation checkpointing in transformers 5.23)
        activation_checkpointing=profile.gradient_checkpointing,
        activation_checkpointing_kwargs=checkpointing_kwargs,
        use_liger_kernel=profile.use_liger_kernel,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=profile.eval_steps,
        eval_on_start=evaluate,  # the validation loss before any training: the start of the curve
        logging_steps=profile.logging_steps,
        save_strategy="steps",
        save_steps=profile.save_steps,
        save_total_limit=2,
        prediction_loss_only=True,
        report_to="none",
        seed=profile.seed,
        data_seed=profile.seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


class StopOnNaN(TrainerCallback):
    """Stop with a Vietnamese error that says what to do when a logged loss is not finite."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise FloatingPointError(
                    f"{key} = {value} ở bước {state.global_step}: quá trình huấn luyện đã hỏng (NaN/inf). "
                    "Hãy: giảm learning_rate (ví dụ một nửa), kiểm tra dữ liệu có câu trả lời rỗng không, "
                    "giữ trọng số LoRA ở fp32 (build_trainer làm sẵn), rồi chạy lại từ đầu hoặc từ checkpoint "
                    "trước đó. Với Qwen2 ở fp16 lỗi này đã được báo cáo (QwenLM/Qwen2 issue 670).")


class ReleaseOptimOverrides(TrainerCallback):
    """At the end of training, drop bitsandbytes' global references to the model's embeddings
    (course_utils.compat.release_optim_overrides says why)."""

    def on_train_end(self, args, state, control, model=None, **kwargs):
        from .compat import release_optim_overrides

        if model is not None:
            release_optim_overrides(model)


def resolve_loss(profile: Profile, tokenizer):
    """How the loss is kept to the answers: from the profile, or ("auto") from the tokenizer's chat template."""
    from .templates import LossStrategy, loss_strategy

    if profile.loss_on == "auto":
        return loss_strategy(tokenizer)
    return LossStrategy(profile.loss_on, f'đặt sẵn trong profile "{profile.name}" (loss_on="{profile.loss_on}").')


def build_trainer(model, tokenizer, train_data, eval_data, profile: Profile, output_dir: str | Path,
                  callbacks=None, fmt: str = "alpaca", lora_overrides: dict | None = None, **sft_overrides):
    """SFTTrainer for QLoRA on `model` (already loaded, 4-bit or not) with the profile's settings.

    train_data/eval_data: records of format `fmt` (alpaca, sharegpt, messages; converted with course_utils.data)
    or ready datasets.Dataset; eval_data may be None (no evaluation).
    """
    from trl import SFTTrainer

    from .compat import adapters_to_fp32
    from .data import to_training_dataset

    loss = resolve_loss(profile, tokenizer)
    if isinstance(train_data, list):
        train_data = to_training_dataset(train_data, loss_on=loss.loss_on, fmt=fmt)
    if isinstance(eval_data, list):
        eval_data = to_training_dataset(eval_data, loss_on=loss.loss_on, fmt=fmt)
    if profile.prepare_model_for_kbit_training:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=profile.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": True})
    trainer = SFTTrainer(
        model=model,
        args=sft_config(profile, output_dir, loss_on=loss.loss_on, evaluate=eval_data is not None, **sft_overrides),
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        peft_config=lora_config(profile, **(lora_overrides or {})),
        callbacks=[StopOnNaN(), ReleaseOptimOverrides(), *(callbacks or [])],
    )
    adapters_to_fp32(trainer.model)
    if profile.lora_fused_sum:
        from .lora import fuse_lora_sum

        fuse_lora_sum(trainer.model)
    if profile.padding_free:
        trainer.train_dataset = truncate_tokenized(trainer.train_dataset, profile.max_length)
        if trainer.eval_dataset is not None:
            trainer.eval_dataset = truncate_tokenized(trainer.eval_dataset, profile.max_length)
    for name, dataset in (("huấn luyện", trainer.train_dataset), ("kiểm định", trainer.eval_dataset)):
        if dataset is not None and len(dataset) == 0:
            raise no_answer_left(name, profile.max_length)
    trainer.loss_strategy = loss
    return trainer


def no_answer_left(name: str, max_length: int, suggest: int | None = None) -> CourseError:
    """The error of a set whose every answer max_length cuts away (TRL then drops every record)."""
    return CourseError(
        f"Tập {name} không còn bản ghi nào: với max_length={max_length}, câu trả lời của mọi bản ghi bị cắt mất "
        "(phần trước câu trả lời đã dài hơn max_length), nên không còn gì để tính loss. Hãy tăng max_length "
        f"(ví dụ --max-length {suggest or 2 * max_length}) hoặc rút ngắn phần câu hỏi.")


def truncate_tokenized(dataset, max_length: int):
    """Cut a tokenized dataset's sequences to max_length, then drop those left with no label to learn: what TRL
    does itself when not padding-free (trl/trainer/sft_trainer.py, "Truncate to max_length")."""
    if all(len(ids) <= max_length for ids in dataset["input_ids"]):
        return dataset
    dataset = dataset.map(lambda row: {"input_ids": row["input_ids"][:max_length],
                                       "labels": row["labels"][:max_length]})
    return dataset.filter(lambda row: any(label != -100 for label in row["labels"]))


def default_output_dir(profile: Profile) -> Path:
    """Google Drive when mounted on Colab (survives a disconnect), else ./outputs/<profile>."""
    drive = Path("/content/drive/MyDrive")
    base = drive / "tinh-chinh-llm" if drive.is_dir() else Path(os.environ.get("COURSE_OUTPUTS", "outputs"))
    return base / profile.name


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest checkpoint-* folder in output_dir, to resume from; None when there is none."""
    from transformers.trainer_utils import get_last_checkpoint

    output_dir = Path(output_dir)
    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def train_with_resume(trainer) -> str | None:
    """trainer.train(), resumed from the newest checkpoint in its output_dir; returns that checkpoint or None.

    A run whose checkpoint already reached max_steps is loaded (adapter weights and log history), not trained
    again (course_utils.compat.finished_checkpoint_state says why).
    """
    import os

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from .compat import finished_checkpoint_state

    checkpoint = last_checkpoint(trainer.args.output_dir)
    if checkpoint is None:
        trainer.train()
        return None
    state = finished_checkpoint_state(trainer, checkpoint)
    if state is not None:
        set_peft_model_state_dict(trainer.model, load_file(os.path.join(checkpoint, "adapter_model.safetensors")))
        trainer.state = state
        return checkpoint
    trainer.args.eval_on_start = False  # already evaluated at step 0 in the interrupted run
    trainer.train(resume_from_checkpoint=checkpoint)
    return checkpoint


def loss_history(log_history: list[dict]) -> dict[str, list]:
    """Train and validation losses by step, from trainer.state.log_history."""
    out = {"train_step": [], "train_loss": [], "eval_step": [], "eval_loss": []}
    for row in log_history:
        if "loss" in row:
            out["train_step"].append(row["step"])
            out["train_loss"].append(row["loss"])
        if "eval_loss" in row:
            out["eval_step"].append(row["step"])
            out["eval_loss"].append(row["eval_loss"])
    return out


def plot_losses(log_history: list[dict], ax=None, title: str | None = None):
    """Plot training and validation loss against the step."""
    import matplotlib.pyplot as plt

    h = loss_history(log_history)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(h["train_step"], h["train_loss"], label="loss huấn luyện (train)")
    ax.plot(h["eval_step"], h["eval_loss"], "o-", label="loss kiểm định (validation)")
    ax.set_xlabel("bước (step)")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
