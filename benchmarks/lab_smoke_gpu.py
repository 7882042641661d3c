# GPU smoke test of course_utils.lab on the Qwen2.5-7B shape with random weights, under a 14.5 GiB cap.
import json, sys, torch
sys.path.insert(0, "benchmarks"); sys.path.insert(0, "src")
from pathlib import Path
import t4_memory
d = Path("/tmp/qwen25-7b-random")
if not (d / "config.json").exists():
    t4_memory.make_random_model(d)
total = torch.cuda.get_device_properties(0).total_memory
torch.cuda.set_per_process_memory_fraction(14.5 * 2**30 / total)
from course_utils.profiles import get_profile
from course_utils import lab
p = get_profile("t4").replace(model_id=str(d), max_steps=8, eval_steps=4, save_steps=4, logging_steps=2,
                              n_eval_examples=8, eval_max_new_tokens=24)
s = lab.run(p, "/tmp/labt4", fresh=True)
s["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
s["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
# a second run must resume from the last checkpoint and train no further
s2 = lab.run(p, "/tmp/labt4")
s["resumed_steps"] = s2["steps"]
print(json.dumps(s, ensure_ascii=False, indent=1))
import shutil, os
out = os.environ["OUT"]
for f in ["summary.json", "loss_curve.png", "answers.csv"]:
    shutil.copy(f"/tmp/labt4/{f}", out)
json.dump(s, open(f"{out}/lab_smoke.json", "w"), ensure_ascii=False, indent=1)
