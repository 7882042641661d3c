"""Run under `accelerate launch`: each process writes the ids of the first training batch it gets from build_trainer."""

import json
import sys

from accelerate import PartialState

from course_utils.compat import cpu_processes_use_gloo
from course_utils.data import load_split
from course_utils.models import load_model_and_tokenizer
from course_utils.profiles import get_profile
from course_utils.train import build_trainer

out = sys.argv[1]
cpu_processes_use_gloo()
profile = get_profile("tiny").replace(per_device_train_batch_size=4, max_steps=1)
model, tok = load_model_and_tokenizer(profile)
trainer = build_trainer(model, tok, load_split("train"), None, profile, f"{out}/trainer", disable_tqdm=True)
batch = next(iter(trainer.get_train_dataloader()))
rows = [ids[mask.bool()].tolist() for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]
state = PartialState()
with open(f"{out}/rank{state.process_index}.json", "w") as f:
    json.dump({"rank": state.process_index, "world": state.num_processes, "rows": rows}, f)
