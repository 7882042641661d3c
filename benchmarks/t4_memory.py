"""QLoRA memory and speed of the Qwen2.5-7B shape under a T4-sized memory cap (run on a GPU).

Builds Qwen2.5-7B's configuration in code with random fp16 weights, saves it as a local model
directory, caps the process at 14.5 GiB with torch.cuda.set_per_process_memory_fraction, and
trains for a few steps on full-length random token sequences at each max_length x batch:

- "course": the course recipe, `course_utils.train.build_trainer` (no prepare_model_for_kbit_training,
  adapters in fp32, gradient checkpointing, paged 8-bit AdamW, fp16 + GradScaler, TRL's fused LM head);
- "textbook": the usual tutorial recipe (prepare_model_for_kbit_training, then TRL's SFTTrainer with its
  defaults and fp16=True), as is;
- "textbook-fp32": the same with the adapters cast back to fp32 after building the trainer, so that
  the fp16 GradScaler can run and its memory can be measured.

Each run is a fresh process (no memory left over from an earlier run). For each: peak allocated and
reserved memory, tokens per second, whether the loss stayed finite, and the memory plan's estimate.

    python benchmarks/t4_memory.py --out benchmarks/results/t4_memory.json
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHAPES = [(512, 2), (1024, 2), (2048, 1), (2048, 2)]
RECIPES = ["course", "textbook", "textbook-fp32"]
CAP_GIB = 14.5
GIB = 2**30


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_random_model(path: Path) -> None:
    """Qwen2.5-7B's shape with random fp16 weights, saved in 4 GB shards, plus a tokenizer."""
    import torch
    from transformers import Qwen2ForCausalLM

    from course_utils.configs import qwen25_7b_config
    from course_utils.tiny import _paragraphs, corpus_text, train_tokenizer

    t0 = time.time()
    config = qwen25_7b_config()
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        with torch.device("cuda"):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(path, max_shard_size="4GB")
    train_tokenizer(_paragraphs(corpus_text())).save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    log(f"random model: {n:,} parameters, saved to {path} in {time.time() - t0:.0f} s")


def child(recipe: str, max_length: int, batch: int, steps: int, model_dir: str, result_path: str,
          changes: dict | None = None) -> None:
    """One run in this process; writes a JSON result."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from course_utils.memory import estimate_training_memory
    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile
    from course_utils.train import build_trainer, trainable_to_fp32

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(CAP_GIB * GIB / total)
    # the t4 profile as the lab uses it (gradient accumulation included), on a local random-weight model
    settings = dict(model_id=model_dir, max_length=max_length, per_device_train_batch_size=batch,
                    max_steps=steps, warmup_steps=0, logging_steps=1,
                    prepare_model_for_kbit_training=recipe.startswith("textbook"))
    settings.update(changes or {})
    trace = settings.pop("torch_profile", False)
    sft_changes = settings.pop("sft", {})  # SFTConfig overrides for the course recipe
    profile = get_profile("t4").replace(**settings)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    plan = estimate_training_memory(config, profile)
    result = {"recipe": recipe, "changes": changes or {}, "max_length": max_length, "batch": batch, "steps": steps,
              "plan_total_gib": plan.total / GIB, "plan_needed_gib": plan.needed_bytes / GIB,
              "plan_fits": plan.fits, "plan_parts_gib": {k: v / GIB for k, v in plan.parts.items()}}

    t0 = time.time()
    model, tokenizer = load_model_and_tokenizer(profile)
    torch.cuda.synchronize()
    result["load_s"] = time.time() - t0
    result["after_load_allocated_gib"] = torch.cuda.memory_allocated() / GIB
    result["after_load_reserved_gib"] = torch.cuda.memory_reserved() / GIB

    accumulation = profile.gradient_accumulation_steps
    result["gradient_accumulation_steps"] = accumulation
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (steps * batch * accumulation, max_length), generator=g)
    data = Dataset.from_dict({"input_ids": ids.tolist()})  # full length, every token in the loss

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            torch.cuda.synchronize()
            if trace and state.global_step == 2:
                self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                               torch.profiler.ProfilerActivity.CUDA])
                self.prof.__enter__()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            if trace and state.global_step == 3:
                self.prof.__exit__(None, None, None)
                ka = self.prof.key_averages()
                print(ka.table(sort_by="self_cpu_time_total", row_limit=25), flush=True)
                print(ka.table(sort_by="self_cuda_time_total", row_limit=15), flush=True)

    out_dir = f"/tmp/bench-{recipe}-{max_length}x{batch}"
    common = dict(eval_strategy="no", save_strategy="no", assistant_only_loss=False, disable_tqdm=True)
    try:
        if recipe == "course":
            trainer = build_trainer(model, tokenizer, data, None, profile, out_dir, callbacks=[Timer()],
                                    **{**common, **sft_changes})
        else:
            from peft import LoraConfig, prepare_model_for_kbit_training
            from trl import SFTConfig, SFTTrainer

            model = prepare_model_for_kbit_training(model)
            args = SFTConfig(output_dir=out_dir, fp16=True, max_length=max_length, packing=False,
                             per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
                             max_steps=steps, learning_rate=2e-4,
                             optim="paged_adamw_8bit", logging_steps=1, report_to="none", **common)
            lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                              task_type="CAUSAL_LM")
            trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                                 peft_config=lora, callbacks=[Timer()])
            if recipe == "textbook-fp32":
                trainable_to_fp32(trainer.model)
        result["trainable_dtypes"] = sorted({str(p.dtype) for p in trainer.model.parameters() if p.requires_grad})
        result["trainable_params"] = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        result["after_build_allocated_gib"] = torch.cuda.memory_allocated() / GIB
        torch.cuda.reset_peak_memory_stats()
        trainer.train()
        result["status"] = "ok"
    except torch.OutOfMemoryError as e:
        result["status"] = "oom"
        result["error"] = str(e).split("\n")[0][:300]
        result["where"] = traceback.format_exc().strip().splitlines()[-3][:300]
    except Exception as e:  # noqa: BLE001 - record any failure, it is a result
        result["status"] = "error"
        result["error"] = f"{type(e).__name__}: {e}"[:500]
        result["where"] = traceback.format_exc().strip().splitlines()[-3][:300]
    result["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
    result["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
    result["step_times_s"] = times
    if result["status"] == "ok":
        losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
        result["losses"] = losses
        result["loss_finite"] = all(math.isfinite(x) for x in losses)
        timed = times[1:]  # the first step includes warm-up (kernel selection, allocator growth)
        result["tokens_per_s"] = batch * max_length * accumulation * len(timed) / sum(timed)
    result["plan_error"] = (plan.total / GIB - result["peak_allocated_gib"]) / result["peak_allocated_gib"]
    Path(result_path).write_text(json.dumps(result, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/t4_memory.json"))
    ap.add_argument("--model-dir", default="/tmp/qwen25-7b-random")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps (each of gradient_accumulation_steps batches)")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--shapes", default=",".join(f"{l}x{b}" for l, b in SHAPES))
    ap.add_argument("--set", default="{}", help='profile changes as JSON, e.g. {"lora_dropout": 0.0}')
    ap.add_argument("--child", nargs=5, metavar=("RECIPE", "LEN", "BATCH", "STEPS", "RESULT"))
    a = ap.parse_args()
    if a.child:
        recipe, length, batch, steps, result_path = a.child
        child(recipe, int(length), int(batch), int(steps), a.model_dir, result_path, json.loads(a.set))
        return

    import torch
    import transformers

    model_dir = Path(a.model_dir)
    if not (model_dir / "config.json").exists():
        make_random_model(model_dir)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import bitsandbytes
    import peft
    import trl

    if out.exists():  # append to the runs of an earlier invocation
        report = json.loads(out.read_text())
        report["runs"] = report.get("runs", [])
    else:
        report = None
    report = report or {
        "what": "Qwen2.5-7B shape, random fp16 weights, NF4 + double quantization, LoRA r=16 alpha=32 all "
                "linear layers, full-length random token sequences, under a 14.5 GiB cap "
                "(torch.cuda.set_per_process_memory_fraction) to stand for a Colab T4",
        "device": torch.cuda.get_device_name(0),
        "cap_gib": CAP_GIB,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "trl": trl.__version__, "bitsandbytes": bitsandbytes.__version__},
        "runs": [],
    }
    for recipe in a.recipes.split(","):
        for shape in a.shapes.split(","):
            length, batch = (int(x) for x in shape.split("x"))
            result_path = f"/tmp/bench-result-{recipe}-{shape}.json"
            t0 = time.time()
            proc = subprocess.run([sys.executable, __file__, "--model-dir", str(model_dir), "--set", a.set, "--child", recipe,
                                   str(length), str(batch), str(a.steps), result_path],
                                  capture_output=True, text=True)
            if proc.returncode == 0 and Path(result_path).exists():
                r = json.loads(Path(result_path).read_text())
            else:
                r = {"recipe": recipe, "max_length": length, "batch": batch, "status": "crashed",
                     "error": proc.stderr[-1500:]}
            r["wall_s"] = time.time() - t0
            report["runs"].append(r)
            out.write_text(json.dumps(report, indent=2) + "\n")
            log(f"{recipe:14s} {a.set} {shape:7s} {r.get('status')}: peak alloc {r.get('peak_allocated_gib', 0):.2f} GiB, "
                f"reserved {r.get('peak_reserved_gib', 0):.2f} GiB, plan {r.get('plan_total_gib', 0):.2f} GiB, "
                f"{r.get('tokens_per_s', 0):,.0f} tok/s, load {r.get('load_s', 0):.0f} s, {r.get('error', '')[:160]}")
    log(f"results: {out}")


if __name__ == "__main__":
    main()
