"""The lab end to end on a GPU under the t4 budget, as a learner runs it: `course_utils.lab.run` (evaluation before,
training, saving, evaluation after, reloading the adapter), then a second run that resumes from the last checkpoint
and trains two steps more. Records each run's peak memory, time and the summary's checks.

    python benchmarks/lab_gpu.py --family qwen --model-dir /tmp/models/qwen --out OUT/lab_gpu.json   # GPU
    python benchmarks/lab_gpu.py --profile tiny --steps 2 --out /tmp/lab_gpu.json                     # CPU test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from t4_memory import GIB, cap_memory, device_name, log, make_random_model, versions  # noqa: E402

KEPT = ("steps", "resumed_from", "eval_loss_fell", "losses_finite", "reloaded_answers_identical", "seconds",
        "plan_gib", "eval_loss_first", "eval_loss_last")


def one_run(profile, out_dir: Path) -> dict:
    import torch

    from course_utils.lab import run

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    summary = run(profile, out_dir)
    row = {k: summary.get(k) for k in KEPT}
    row["wall_s"] = time.time() - t0
    if torch.cuda.is_available():
        row["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
        row["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
    return row


def main() -> None:
    import torch

    from course_utils.compat import quiet_logs
    from course_utils.profiles import get_profile

    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="t4", help="t4 or t4-vistral on a GPU; tiny for the CPU test")
    ap.add_argument("--family", default="qwen", help="the random 7B shape to build when --model-dir is missing")
    ap.add_argument("--model-dir", default=None, help="a model directory (default: the profile's own model)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/lab_gpu.json"))
    ap.add_argument("--work", default="/tmp/lab-gpu", help="the lab's output folder (checkpoints, adapter)")
    a = ap.parse_args()
    quiet_logs()
    cap = cap_memory()
    profile = get_profile(a.profile)
    if a.model_dir:
        if torch.cuda.is_available() and not (Path(a.model_dir) / "config.json").exists():
            make_random_model(Path(a.model_dir), a.family)
        profile = profile.replace(model_id=a.model_dir)
    work = Path(a.work) / profile.name
    if work.exists():
        import shutil

        shutil.rmtree(work)
    result = {"what": "course_utils.lab.run under the t4 budget: a fresh run, then one that resumes (+2 steps)",
              "device": device_name(), "versions": versions(), "cap_gib": cap, "profile": profile.name,
              "family": a.family if a.model_dir else None, "runs": []}
    for label, steps in (("fresh", a.steps), ("resume", a.steps + 2)):
        try:
            row = one_run(profile.replace(max_steps=steps, save_steps=a.steps), work)
            row["status"] = "ok"
        except Exception as e:  # noqa: BLE001 - a failure is a result too
            row = {"status": "error", "error": f"{type(e).__name__}: {e}"[:600]}
        row.update(label=label, max_steps=steps)
        result["runs"].append(row)
        log(f"lab {profile.name} {label}: {json.dumps(row, ensure_ascii=False)}")
        Path(a.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        if row["status"] != "ok":
            break


if __name__ == "__main__":
    main()
