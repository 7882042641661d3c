"""The course recipe side by side with its peers, in one GPU run, on identical data under the same memory cap.

Rows ("recipes"), each run in its own process:
- "course": course_utils.train.build_trainer with the t4 profile as the lab uses it (`--set` changes profile fields);
- "unsloth": Unsloth (its own stack: PEER_PYTHONPATH) FastLanguageModel, use_gradient_checkpointing="unsloth",
  fp16, 8-bit AdamW, loss on the answers with its train_on_responses_only for the course data;
- "trl-t4": TRL's T4 notebook levers on plain SFTTrainer (use_liger_kernel, activation_offloading);
- "textbook": prepare_model_for_kbit_training + SFTTrainer defaults (adapters cast back to fp32 so that it runs).
Common: the 7B shape with random fp16 weights (Qwen2.5-7B, or Mistral-7B with Vistral's vocabulary), NF4 with
double quantization and fp16 compute, LoRA r=16 alpha=32 on the 7 projections, dropout 0, batch x 4
accumulation, `--steps` optimizer steps (`--data-steps` on the course data; the first not timed), cap = the t4
profile's budget.
Workloads: "random" (full-length random tokens at each shape) and "course-data" (the course's training split through
each trainer's own collator: real lengths, padding or padding-free, answers only in the loss).

    COURSE_PYTHONPATH=... PEER_PYTHONPATH=... python benchmarks/peers.py --families qwen --shapes 1024x2,2048x2

Results: benchmarks/results/peers.json (versions of both stacks, the device); `python benchmarks/report.py` renders
the side-by-side table that chapter 9 shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import t4_memory as tm  # noqa: E402

ROOT = tm.ROOT
RECIPES = ("course", "unsloth", "trl-t4", "textbook")
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ACCUMULATION = 4
PEER_DEFAULTS = dict(lora_r=16, lora_alpha=32, lora_dropout=0.0)  # what every row shares


def course_row(model_dir: str, recipe: str, length: int, batch: int, steps: int, workload: str, changes: dict,
               base: str) -> dict:
    changes = {**PEER_DEFAULTS, **changes}
    if recipe == "trl-t4":
        changes = {**changes, "use_liger_kernel": True, "sft": {"activation_offloading": True}}
    r = tm.course_run(model_dir, length, batch, steps, changes, workload, base,
                      "textbook-fp32" if recipe == "textbook" else "course")
    r["recipe"] = recipe
    return r


def unsloth_row(model_dir: str, length: int, batch: int, steps: int, workload: str) -> dict:
    """Unsloth's own recipe (run with its own stack on the path)."""
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    from unsloth import FastLanguageModel  # noqa: I001 - first, before transformers and TRL
    from unsloth.chat_templates import train_on_responses_only
    import torch
    from trl import SFTConfig, SFTTrainer

    cap = tm.cap_memory()
    result = {"recipe": "unsloth", "workload": workload, "max_length": length, "batch": batch, "steps": steps,
              "cap_gib": cap, "gradient_accumulation_steps": ACCUMULATION, "versions": tm.versions()}
    t0 = time.time()
    model, tokenizer = FastLanguageModel.from_pretrained(model_name=model_dir, max_seq_length=length,
                                                         dtype=torch.float16, load_in_4bit=True)
    model = FastLanguageModel.get_peft_model(model, r=PEER_DEFAULTS["lora_r"], lora_alpha=PEER_DEFAULTS["lora_alpha"],
                                             lora_dropout=0, target_modules=PROJECTIONS, bias="none",
                                             use_gradient_checkpointing="unsloth", random_state=3407)
    result["load_s"] = time.time() - t0
    result["family"] = model.config.model_type
    n = steps * batch * ACCUMULATION
    data = tm.workload_data(workload, model.config.vocab_size, n, length)
    extra = {}
    if workload == "course-data":
        from datasets import Dataset

        from course_utils.data import alpaca_to_messages

        texts = [tokenizer.apply_chat_template(alpaca_to_messages(r), tokenize=False) for r in data]
        data, extra = Dataset.from_dict({"text": texts}), {"dataset_text_field": "text"}
    args = SFTConfig(output_dir="/tmp/bench-unsloth", per_device_train_batch_size=batch,
                     gradient_accumulation_steps=ACCUMULATION, max_steps=steps, learning_rate=2e-4, warmup_steps=0,
                     fp16=True, bf16=False, optim="adamw_8bit", logging_steps=1, report_to="none",
                     save_strategy="no", max_length=length, packing=False, dataset_num_proc=1, disable_tqdm=True,
                     include_num_input_tokens_seen="non_padding", **extra)
    times, tokens = [], []

    def train():
        trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=data, args=args,
                             callbacks=[tm.timing_callback(times, tokens)])
        if workload == "course-data":
            trainer = train_on_responses_only(trainer, instruction_part="<|im_start|>user\n",
                                              response_part="<|im_start|>assistant\n")
        result["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        trainer.train()
        return trainer

    return tm.measure(result, train, times, tokens)


def child(a) -> None:
    recipe, length, batch, steps, result_path = a.child
    changes = json.loads(a.set)
    if recipe == "unsloth":
        r = unsloth_row(a.model_dir, int(length), int(batch), int(steps), a.workload)
    else:
        r = course_row(a.model_dir, recipe, int(length), int(batch), int(steps), a.workload, changes, a.base)
    r["family_arg"] = a.family
    Path(result_path).write_text(json.dumps(r, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/peers.json"))
    ap.add_argument("--families", default="qwen,mistral")
    ap.add_argument("--shapes", default="1024x2,2048x2,4096x1")
    ap.add_argument("--data-shapes", default="1024x2", help="shapes of the course-data workload")
    ap.add_argument("--recipes", default="course,unsloth")
    ap.add_argument("--workloads", default="random,course-data")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--data-steps", type=int, default=12,
                    help="steps of the course-data workload: its short steps vary a lot, time more of them")
    ap.add_argument("--set", default="{}", help="profile changes of the course row, as JSON; unset levers keep the "
                    "t4 profile's value (say false to turn one off)")
    ap.add_argument("--base", default="t4", help="profile the course rows start from (tiny: the CPU test)")
    ap.add_argument("--model-dir", default=None, help="use this model directory (the CPU test) instead of building")
    ap.add_argument("--budget-s", type=float, default=None, help="start no run after this many seconds")
    ap.add_argument("--tag", default=None, help="a label of this call (rows of one call are compared together)")
    ap.add_argument("--profile", action="store_true", help="run each row's last step under torch.profiler (that "
                    "step is not timed): GPU busy time, kernel launches, top kernels, in the row's `profile`")
    ap.add_argument("--family", default="qwen")
    ap.add_argument("--workload", default="random")
    ap.add_argument("--child", nargs=5, metavar=("RECIPE", "LEN", "BATCH", "STEPS", "RESULT"))
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    t0 = time.time()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(out.read_text()) if out.exists() else {"runs": []}
    report.update(device=tm.device_name(), versions={"course": tm.versions()}, steps=a.steps,
                  what=__doc__.split("\n\n")[0])
    stacks = {"course": os.environ.get("COURSE_PYTHONPATH"), "unsloth": os.environ.get("PEER_PYTHONPATH")}
    for family in a.families.split(","):
        model_dir = Path(a.model_dir or f"/tmp/{family}-7b-random")
        if not (model_dir / "config.json").exists():
            tm.make_random_model(model_dir, family)
        for workload in a.workloads.split(","):
            shapes = a.shapes if workload == "random" else a.data_shapes
            for shape in shapes.split(","):
                length, batch = (int(x) for x in shape.split("x"))
                steps = a.steps if workload == "random" else a.data_steps
                for recipe in a.recipes.split(","):
                    if a.budget_s and time.time() - t0 > a.budget_s:
                        tm.log(f"budget reached: {recipe} {family} {shape} {workload} not run")
                        continue
                    result_path = f"/tmp/peer-{recipe}-{family}-{workload}-{shape}.json"
                    path = stacks["unsloth" if recipe == "unsloth" else "course"]
                    env = {"PYTHONPATH": path} if path else {}
                    if a.profile:
                        env["BENCH_PROFILE"] = "1"
                    r = tm.spawn([__file__, "--model-dir", str(model_dir), "--set", a.set, "--base", a.base,
                                  "--family", family, "--workload", workload,
                                  "--child", recipe, str(length), str(batch), str(steps), result_path],
                                 result_path, env=env or None)
                    r.update(recipe=recipe, family_arg=family, workload=workload, max_length=length, batch=batch,
                             set=json.loads(a.set) if recipe == "course" else {}, session=a.tag)
                    report["runs"].append(r)
                    out.write_text(json.dumps(report, indent=2) + "\n")
                    tm.log(f"{recipe:8s} {family:7s} {workload:11s} {shape:7s} {r.get('status')}: peak alloc "
                           f"{r.get('peak_allocated_gib', 0):.2f} GiB, reserved {r.get('peak_reserved_gib', 0):.2f} GiB, "
                           f"{r.get('tokens_per_s', 0):,.0f} tok/s, {r.get('wall_s', 0):.0f} s {r.get('error', '')[:300]}")
    tm.log(f"results: {out}")


if __name__ == "__main__":
    main()
