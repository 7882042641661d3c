"""The QLoRA lab, headless: the same steps as notebooks/09_qlora_lab, for a terminal or a teacher's server.

    python -m course_utils.lab --profile tiny          # CPU, the offline tiny model (about a minute)
    python -m course_utils.lab --profile t4            # Qwen2.5-7B-Instruct on a T4-class GPU
    python -m course_utils.lab --profile t4-vistral    # Vistral-7B-Chat (gated: needs HF_TOKEN)

Outputs, in --output-dir (default: course_utils.train.default_output_dir):
checkpoints (resumed if present), adapter/, loss_curve.png, answers.csv, summary.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import time
from pathlib import Path

import torch

from .data import load_split
from .env import get_hf_token
from .memory import check_plan, estimate_training_memory
from .metrics import evaluate_answers
from .models import load_model_and_tokenizer, model_path
from .profiles import PROFILES, Profile, get_profile
from .train import build_trainer, default_output_dir, plot_losses, train_with_resume


def memory_plan(profile: Profile, token: str | None = None):
    """(config, plan) from the model's config alone; raises MemoryPlanError before anything is loaded."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path(profile), token=token)
    plan = estimate_training_memory(config, profile)
    check_plan(plan, profile, config)
    return config, plan


def evaluate(model, tokenizer, profile: Profile, records):
    """ROUGE (Vietnamese syllables) of the greedy answers to the first profile.n_eval_examples records."""
    return evaluate_answers(model, tokenizer, records[: profile.n_eval_examples],
                            max_new_tokens=profile.eval_max_new_tokens)


def reload_with_adapter(profile: Profile, adapter_dir: str | Path, token: str | None = None):
    """A fresh 4-bit base with the saved adapter on top, not merged (what inference uses)."""
    from peft import PeftModel

    base, tokenizer = load_model_and_tokenizer(profile, token=token)
    return PeftModel.from_pretrained(base, str(adapter_dir)), tokenizer


def free_memory() -> None:
    """Collect what is no longer referenced and return GPU memory to the driver.

    Delete your own references first (`del trainer, model`): memory held by a name is not freed.
    """
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run(profile: Profile, output_dir: str | Path | None = None, fresh: bool = False) -> dict:
    """Plan, load, evaluate, train (resuming), evaluate, save, reload: the whole lab. Returns a summary."""
    t0 = time.time()
    free_memory()  # leftovers of an earlier run in this process
    output_dir = Path(output_dir or default_output_dir(profile))
    if fresh and output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    token = get_hf_token(profile)
    config, plan = memory_plan(profile, token)
    print(plan.table())

    model, tokenizer = load_model_and_tokenizer(profile, token=token)
    train, validation, test = load_split("train"), load_split("validation"), load_split("test")
    before_table, before = evaluate(model, tokenizer, profile, test)

    trainer = build_trainer(model, tokenizer, train, validation, profile, output_dir,
                            disable_tqdm=profile.is_tiny)
    resumed = train_with_resume(trainer)
    if resumed:
        print(f"Đã tiếp tục từ checkpoint {resumed}")
    history = trainer.state.log_history
    ax = plot_losses(history, title=f"{profile.model_id} ({profile.name})")
    ax.figure.savefig(output_dir / "loss_curve.png", dpi=120, bbox_inches="tight")

    after_table, after = evaluate(trainer.model, tokenizer, profile, test)
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))

    steps = trainer.state.global_step
    del trainer, model
    free_memory()
    reloaded, tokenizer = reload_with_adapter(profile, adapter_dir, token)
    reloaded_table, _ = evaluate(reloaded, tokenizer, profile, test)
    same = reloaded_table["answer"].tolist() == after_table["answer"].tolist()

    answers = before_table[["prompt", "reference"]].copy()
    answers["before"], answers["after"] = before_table["answer"], after_table["answer"]
    answers["reloaded"] = reloaded_table["answer"]
    answers.to_csv(output_dir / "answers.csv", index=False)
    evals = [r for r in history if "eval_loss" in r]
    summary = {
        "profile": profile.name, "model": profile.model_id, "output_dir": str(output_dir),
        "plan_gib": plan.total / 2**30, "steps": steps,
        "eval_loss_first": evals[0]["eval_loss"], "eval_loss_last": evals[-1]["eval_loss"],
        "rouge_before": before, "rouge_after": after, "reloaded_answers_identical": same,
        "seconds": time.time() - t0,
    }
    (output_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="QLoRA lab of the course (headless).")
    ap.add_argument("--profile", choices=sorted(PROFILES), default=None,
                    help="default: $COURSE_PROFILE, else t4 with a GPU, else tiny")
    ap.add_argument("--output-dir", default=None)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--model-id", default=None, help="another hub id or a local directory of the same family")
    ap.add_argument("--fresh", action="store_true", help="delete earlier checkpoints first")
    a = ap.parse_args(argv)
    profile = get_profile(a.profile)
    changes = {k: v for k, v in (("max_steps", a.max_steps), ("model_id", a.model_id)) if v is not None}
    if changes:
        profile = profile.replace(**changes)
    summary = run(profile, a.output_dir, fresh=a.fresh)
    print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
