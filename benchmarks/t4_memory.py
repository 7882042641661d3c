"""QLoRA memory and speed of a 7B shape under a T4-sized memory cap (run on a GPU; the per-run path also on a CPU).

Builds the model's configuration in code (Qwen2.5-7B, or Mistral-7B with Vistral's vocabulary) with random fp16
weights, saves it as a local model directory, caps the process at the t4 profile's budget with
torch.cuda.set_per_process_memory_fraction, and trains for a few steps at each max_length x batch:

- "course": the course recipe, `course_utils.train.build_trainer` with the t4 profile as the lab uses it
  (`--set` changes profile fields, e.g. '{"use_liger_kernel": true}');
- "textbook": the usual tutorial recipe (prepare_model_for_kbit_training, then TRL's SFTTrainer with its
  defaults and fp16=True), as is; "textbook-fp32": the same with the adapters cast back to fp32.

Workloads: "random" (full-length random tokens, every token in the loss) or "course-data" (the course's training
split through the trainer's own collator: real lengths, padding, answers only in the loss).
Each run is a fresh process. For each: peak allocated and reserved memory, tokens per second (tokens that are
not padding, steps after the first), whether the loss stayed finite, and the memory plan's estimate.

    python benchmarks/t4_memory.py --out benchmarks/results/t4_memory.json --shapes 1024x2,2048x2
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

SHAPES = [(1024, 2), (2048, 2), (4096, 1)]
RECIPES = ["course", "textbook", "textbook-fp32"]
FAMILIES = ("qwen", "mistral")
GIB = 2**30


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def family_config(family: str):
    from course_utils.configs import qwen25_7b_config, vistral_7b_config

    return {"qwen": qwen25_7b_config, "mistral": vistral_7b_config}[family]()


def make_random_model(path: Path, family: str = "qwen") -> None:
    """A 7B shape with random fp16 weights, saved in 4 GB shards, plus the course's tokenizer (tiny's)."""
    import torch
    from transformers import AutoModelForCausalLM

    from course_utils.tiny import _paragraphs, corpus_text, train_tokenizer

    t0 = time.time()
    config = family_config(family)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config)
    finally:
        torch.set_default_dtype(default)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(path, max_shard_size="4GB")
    train_tokenizer(_paragraphs(corpus_text())).save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    log(f"random {family} model: {n:,} parameters, saved to {path} in {time.time() - t0:.0f} s")


def cap_memory() -> float | None:
    """Cap this process at the t4 profile's budget (a T4 stand-in); None on a CPU."""
    import torch

    from course_utils.profiles import get_profile

    if not torch.cuda.is_available():
        return None
    budget = get_profile("t4").memory_budget_gib
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(budget * GIB / total)
    return budget


def workload_data(workload: str, vocab_size: int, n_sequences: int, max_length: int):
    """The training data of a run: random full-length token ids, or the course's training split."""
    import torch
    from datasets import Dataset

    from course_utils.data import load_split

    if workload == "random":
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab_size, (n_sequences, max_length), generator=g)
        return Dataset.from_dict({"input_ids": ids.tolist()})  # every token in the loss
    if workload == "course-data":
        return load_split("train")
    raise ValueError(f"unknown workload {workload}")


PROFILES: list[dict] = []  # the profiled step of this process (BENCH_PROFILE=1), read by measure()
SYNC_WARNING = "synchronizing CUDA operation"  # torch.cuda.set_sync_debug_mode("warn")'s message


class SyncSources:
    """Count where host-device syncs come from: each warning of torch's sync debug mode, by its Python stack.

    Warnings raised in autograd's backward threads reach Python after the backward, at its caller."""

    def __init__(self, depth: int = 5):
        self.depth, self.counts = depth, {}

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("always", UserWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if SYNC_WARNING not in str(message):
                return shown(message, category, filename, lineno, file, line)
            frames = traceback.extract_stack()[:-1]
            frames = [f for f in frames if "/warnings.py" not in f.filename][-self.depth:]
            key = " <- ".join(f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
            self.counts[key] = self.counts.get(key, 0) + 1

        warnings.showwarning = show
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)

    def top(self, n: int = 12) -> list[dict]:
        return [{"where": k, "count": c} for k, c in sorted(self.counts.items(), key=lambda kv: -kv[1])[:n]]


def timing_callback(times: list, tokens: list):
    """Wall time and non-padding tokens of each optimizer step (CUDA synchronised).

    With BENCH_PROFILE=1 the last step runs under torch.profiler instead of being timed (step_profile)."""
    import os

    import torch
    from transformers import TrainerCallback

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    profiling = os.environ.get("BENCH_PROFILE") == "1"

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            sync()
            self.prof = None
            if profiling and state.global_step == state.max_steps - 1:
                from torch.profiler import ProfilerActivity, profile

                acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
                self.prof = profile(activities=acts)
                self.prof.__enter__()
                if torch.cuda.is_available():  # and name the callers of each host-device sync
                    self.syncs = SyncSources().__enter__()
                    torch.cuda.set_sync_debug_mode("warn")
            self.t, self.seen = time.perf_counter(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kw):
            sync()
            wall = time.perf_counter() - self.t
            if self.prof is not None:
                self.prof.__exit__(None, None, None)
                PROFILES.append(step_profile(self.prof, wall, state.num_input_tokens_seen - self.seen))
                if torch.cuda.is_available():
                    torch.cuda.set_sync_debug_mode(0)
                    self.syncs.__exit__(None, None, None)
                    PROFILES[-1]["sync_sources"] = self.syncs.top()
                return
            times.append(wall)
            tokens.append(state.num_input_tokens_seen - self.seen)

    return Timer()


def step_profile(prof, wall_s: float, n_tokens: int, top: int = 15) -> dict:
    """Where one profiled step went: GPU kernel time (busy = union of kernel intervals) against wall time,
    kernel launches, host syncs and pinned allocations, and the top kernels and CPU ops."""
    from collections import defaultdict

    from torch.autograd import DeviceType

    kernels, cpu_self, intervals = defaultdict(lambda: [0, 0.0]), defaultdict(lambda: [0, 0.0]), []
    for e in prof.events():
        if e.device_type == DeviceType.CUDA:
            k = kernels[e.name[:90]]
            k[0] += 1
            k[1] += e.device_time_total / 1e3
            intervals.append((e.time_range.start, e.time_range.end))
        else:
            c = cpu_self[e.name[:90]]
            c[0] += 1
            c[1] += e.self_cpu_time_total / 1e3
    busy, end = 0.0, float("-inf")
    for a, b in sorted(intervals):  # union of kernel intervals, in microseconds
        if b > end:
            busy += b - max(a, end)
            end = b
    ranked = lambda d: [{"name": n, "count": c, "ms": round(t, 2)}  # noqa: E731
                        for n, (c, t) in sorted(d.items(), key=lambda kv: -kv[1][1])[:top]]
    calls = lambda *names: sum(cpu_self[n][0] for n in names if n in cpu_self)  # noqa: E731
    return {"wall_s": wall_s, "tokens": n_tokens, "gpu_busy_s": busy / 1e6,
            "gpu_kernel_s": sum(t for _, t in kernels.values()) / 1e3, "kernels": sum(c for c, _ in kernels.values()),
            "launches": calls("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx"),
            "syncs": calls("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy"),
            "host_allocs": calls("cudaHostAlloc"), "top_kernels": ranked(kernels), "top_cpu_self": ranked(cpu_self)}


def measure(result: dict, train, times: list, tokens: list) -> dict:
    """Run `train()` and record status, peaks, losses and tokens/s (first step not timed) into result."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        trainer = train()
        result["status"] = "ok"
    except torch.OutOfMemoryError as e:
        trainer = None
        result["status"] = "oom"
        result["error"] = str(e).split("\n")[0][:300]
    except Exception as e:  # noqa: BLE001 - any failure is a result
        trainer = None
        result["status"] = "error"
        result["error"] = f"{type(e).__name__}: {e}"[:500]
        result["where"] = traceback.format_exc().strip().splitlines()[-3][:300]
    if cuda:
        result["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
        result["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
    result["step_times_s"], result["step_tokens"] = times, tokens
    if PROFILES:
        result["profile"] = PROFILES[-1]
    if trainer is not None:
        losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
        result["losses"] = losses
        result["loss_finite"] = bool(losses) and all(math.isfinite(x) for x in losses)
        if len(times) > 1:
            result["tokens_per_s"] = sum(tokens[1:]) / sum(times[1:])
    return result


def course_run(model_dir: str, max_length: int, batch: int, steps: int, changes: dict | None = None,
               workload: str = "random", base: str = "t4", recipe: str = "course") -> dict:
    """One run of the course recipe (or the textbook one) in this process; returns the result."""
    import torch

    from course_utils.compat import adapters_to_fp32
    from course_utils.memory import estimate_training_memory
    from course_utils.models import load_config, load_model_and_tokenizer
    from course_utils.profiles import LEVERS, get_profile
    from course_utils.train import build_trainer

    cap = cap_memory()
    changes = dict(changes or {})
    sft = changes.pop("sft", {})  # SFTConfig overrides (e.g. TRL's activation_offloading), beside profile fields
    settings = dict(model_id=model_dir, max_length=max_length, per_device_train_batch_size=batch, max_steps=steps,
                    warmup_steps=0, logging_steps=1, prepare_model_for_kbit_training=recipe.startswith("textbook"))
    settings.update(changes)
    profile = get_profile(base).replace(**settings)
    config = load_config(profile)
    plan = estimate_training_memory(config, profile)
    result = {"recipe": recipe, "changes": {**changes, **({"sft": sft} if sft else {})}, "workload": workload,
              "levers": {k: getattr(profile, k) for k in LEVERS},
              "versions": versions(), "family": config.model_type,
              "max_length": max_length, "batch": batch, "steps": steps, "cap_gib": cap,
              "gradient_accumulation_steps": profile.gradient_accumulation_steps,
              "plan_total_gib": plan.total / GIB, "plan_needed_gib": plan.needed_bytes / GIB, "plan_fits": plan.fits,
              "plan_parts_gib": {k: v / GIB for k, v in plan.parts.items()}}
    t0 = time.time()
    model, tokenizer = load_model_and_tokenizer(profile)
    result["load_s"] = time.time() - t0
    if torch.cuda.is_available():
        result["after_load_allocated_gib"] = torch.cuda.memory_allocated() / GIB
    n = steps * batch * profile.gradient_accumulation_steps
    data = workload_data(workload, config.vocab_size, n, max_length)
    times, tokens = [], []
    common = dict(save_strategy="no", disable_tqdm=True, include_num_input_tokens_seen="non_padding")
    if workload == "random":
        common["assistant_only_loss"] = False  # pre-tokenized ids: every token is trained

    def train():
        out_dir = f"/tmp/bench-{recipe}-{max_length}x{batch}"
        if recipe == "course":
            trainer = build_trainer(model, tokenizer, data, None, profile, out_dir,
                                    callbacks=[timing_callback(times, tokens)], **common, **sft)
        else:
            from peft import prepare_model_for_kbit_training
            from trl import SFTConfig, SFTTrainer

            from course_utils.train import lora_config

            prepared = prepare_model_for_kbit_training(model)
            cpu = {} if torch.cuda.is_available() else {"bf16": False}  # the CPU test: no mixed precision
            args = SFTConfig(output_dir=out_dir, fp16=torch.cuda.is_available(), max_length=max_length, packing=False,
                             per_device_train_batch_size=batch, max_steps=steps, learning_rate=2e-4,
                             gradient_accumulation_steps=profile.gradient_accumulation_steps,
                             optim="paged_adamw_8bit" if torch.cuda.is_available() else "adamw_torch",
                             logging_steps=1, report_to="none", **cpu, **common)
            train_set = data
            if workload == "course-data":
                from course_utils.data import to_training_dataset

                train_set = to_training_dataset(data, loss_on="completion_only")
            trainer = SFTTrainer(model=prepared, args=args, train_dataset=train_set, processing_class=tokenizer,
                                 peft_config=lora_config(profile), callbacks=[timing_callback(times, tokens)])
            if recipe == "textbook-fp32":
                adapters_to_fp32(trainer.model)
        result["trainable_params"] = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        # not profile fields: whether each copy of the activation offload made the CPU wait (compat), and whether
        # SDPA got an explicit mask for a full batch because of the sliding window (compat.causal_skip_at_window)
        result["levers"]["offload_waits"] = offload_waits(trainer.args)
        window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
        if window:
            from course_utils.compat import window_mask_needed

            result["levers"]["window_mask"] = window_mask_needed(max_length, window)
        trainer.train()
        return trainer

    measure(result, train, times, tokens)
    if "peak_allocated_gib" in result:
        result["plan_error"] = (plan.total / GIB - result["peak_allocated_gib"]) / result["peak_allocated_gib"]
    return result


def offload_waits(args) -> bool:
    """Whether the trainer's activation offload copies to the CPU with a blocking copy (a sync per saved tensor)."""
    from course_utils.compat import offload_copies_wait

    return bool((args.activation_checkpointing_kwargs or {}).get("offload")) and offload_copies_wait()


def spawn(args: list[str], result_path: str, env: dict | None = None, timeout: float = 420) -> dict:
    """Run a child process that writes a JSON result; a crash or a timeout is a result too."""
    import os

    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        stderr, code = proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        stderr, code = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or ""), -9
    if code == 0 and Path(result_path).exists():
        r = json.loads(Path(result_path).read_text())
    else:
        r = {"status": "crashed" if code != -9 else "timeout", "error": stderr[-1500:]}
    r["wall_s"] = time.time() - t0
    return r


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "liger-kernel", "triton",
                 "unsloth", "unsloth_zoo", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/t4_memory.json"))
    ap.add_argument("--family", choices=FAMILIES, default="qwen")
    ap.add_argument("--model-dir", default=None, help="default: /tmp/<family>-7b-random (built when missing)")
    ap.add_argument("--steps", type=int, default=5, help="optimizer steps (each of gradient_accumulation_steps batches)")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--shapes", default=",".join(f"{l}x{b}" for l, b in SHAPES))
    ap.add_argument("--workload", default="random", choices=("random", "course-data"))
    ap.add_argument("--set", default="{}", help='profile changes as JSON, e.g. {"use_liger_kernel": true}')
    ap.add_argument("--base", default="t4", help="the profile the runs start from (tiny: the CPU test)")
    ap.add_argument("--child", nargs=5, metavar=("RECIPE", "LEN", "BATCH", "STEPS", "RESULT"))
    a = ap.parse_args()
    model_dir = Path(a.model_dir or f"/tmp/{a.family}-7b-random")
    if a.child:
        recipe, length, batch, steps, result_path = a.child
        r = course_run(str(model_dir), int(length), int(batch), int(steps), json.loads(a.set), a.workload, a.base,
                       recipe)
        Path(result_path).write_text(json.dumps(r, indent=2))
        return
    if not (model_dir / "config.json").exists():
        make_random_model(model_dir, a.family)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(out.read_text()) if out.exists() else {
        "what": "7B shapes with random fp16 weights, NF4 + double quantization, LoRA on all linear layers, under the "
                "t4 profile's memory cap (torch.cuda.set_per_process_memory_fraction) to stand for a Colab T4",
        "runs": []}
    report.update(device=device_name(), versions=versions())
    for recipe in a.recipes.split(","):
        for shape in a.shapes.split(","):
            length, batch = (int(x) for x in shape.split("x"))
            result_path = f"/tmp/bench-result-{recipe}-{shape}.json"
            r = spawn([__file__, "--model-dir", str(model_dir), "--set", a.set, "--workload", a.workload,
                       "--base", a.base, "--child", recipe, str(length), str(batch), str(a.steps), result_path],
                      result_path)
            r.setdefault("recipe", recipe), r.setdefault("max_length", length), r.setdefault("batch", batch)
            report["runs"].append(r)
            out.write_text(json.dumps(report, indent=2) + "\n")
            log(f"{recipe:14s} {a.set} {shape:7s} {r.get('status')}: peak alloc {r.get('peak_allocated_gib', 0):.2f} "
                f"GiB, reserved {r.get('peak_reserved_gib', 0):.2f} GiB, plan {r.get('plan_total_gib', 0):.2f} GiB, "
                f"{r.get('tokens_per_s', 0):,.0f} tok/s, {r.get('error', '')[:160]}")
    log(f"results: {out}")


if __name__ == "__main__":
    main()
