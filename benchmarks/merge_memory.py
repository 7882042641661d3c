"""Peak RAM of the streamed merge (course_utils.export.merge_streamed), measured on the CPU, and estimated for 7B.

Each merge runs in its own process, which reports its peak resident memory (ru_maxrss) before and after; the base
is the tiny model (fp32) and SmolLM2-135M-Instruct (bf16, from the tests' cache), the adapter a random LoRA r=16
on every linear layer. The 7B estimate: the process's own baseline + one output shard (max_shard_bytes) + the
largest weight read and merged in fp32 (W, B·A, and W + B·A).

    python benchmarks/merge_memory.py --out benchmarks/results/merge_memory.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
MIB = 2**20


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child(base: str, adapter: str, out: str) -> None:
    import torch  # noqa: F401 - the baseline includes torch and safetensors, as a real merge does

    from course_utils.export import merge_streamed

    before = peak_rss()
    report = merge_streamed(base, adapter, out)
    print(json.dumps({"baseline_bytes": before, "peak_bytes": peak_rss(), "merged": report.merged,
                      "shards": report.shards, "seconds": report.seconds}))


def make_adapter(base: Path, out: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    model.save_pretrained(out)


def estimate_7b(baseline_bytes: int, max_shard_bytes: int = 2 * 2**30) -> dict:
    """Qwen2.5-7B: one output shard + the largest targeted weight (18.944 x 3.584) held three times in fp32."""
    from course_utils.configs import linear_shapes, qwen25_7b_config

    out, inp = max(linear_shapes(qwen25_7b_config()).values(), key=lambda s: s[0] * s[1])
    temporaries = 3 * out * inp * 4
    return {"baseline_bytes": baseline_bytes, "shard_bytes": max_shard_bytes, "temporaries_bytes": temporaries,
            "peak_bytes": baseline_bytes + max_shard_bytes + temporaries}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/merge_memory.json"))
    ap.add_argument("--child", nargs=3, metavar=("BASE", "ADAPTER", "OUT"))
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    from course_utils.tiny import cache_root, tiny_model_dir

    bases = {"tiny": tiny_model_dir(verbose=False), "smollm2": cache_root() / "smollm2-135m-instruct"}
    results = {}
    for name, base in bases.items():
        if not (base / "config.json").exists():
            print(f"{name}: {base} missing (run the tests once to build it)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            make_adapter(base, Path(tmp) / "adapter")
            proc = subprocess.run([sys.executable, __file__, "--child", str(base), f"{tmp}/adapter", f"{tmp}/merged"],
                                  capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["base_weight_bytes"] = sum(p.stat().st_size for p in base.glob("*.safetensors"))
        results[name] = r
        print(name, {k: round(v / MIB) if k.endswith("bytes") else v for k, v in r.items()})
    results["qwen2.5-7b_estimate"] = estimate_7b(results["tiny"]["baseline_bytes"])
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
