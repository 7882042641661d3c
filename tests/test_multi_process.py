"""The lab on two processes with accelerate (gloo, CPU): what runs on Kaggle's 2 x T4, tested without GPUs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_2 = ROOT / "src/course_utils/accelerate/cpu-2proc.yaml"
# the same global batch: 2 processes x 4 sequences, or 1 process x 8; no dropout, so that the runs can agree
COMMON = ["--profile", "tiny", "--save-steps", "4", "--set", "lora_dropout=0", "--set", "eval_steps=4",
          "--set", "logging_steps=1", "--set", "n_eval_examples=2", "--set", "eval_max_new_tokens=6"]


def launch(args, processes: int = 2):
    if processes == 1:
        cmd = [sys.executable, "-m", "course_utils.lab", *args]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2), "-m", "course_utils.lab",
               *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_dir):
    base = tmp_path_factory.mktemp("ddp")
    launch([*COMMON, "--max-steps", "4", "--batch-size", "4", "--output-dir", str(base / "two")])
    launch([*COMMON, "--max-steps", "4", "--batch-size", "8", "--output-dir", str(base / "one")], processes=1)
    return base


def summary(path):
    return json.loads((path / "summary.json").read_text(encoding="utf-8"))


def test_two_processes_train_like_one_at_the_same_global_batch(runs):
    two, one = summary(runs / "two"), summary(runs / "one")
    assert two["steps"] == one["steps"] == 4 and len(two["train_loss"]) == 4
    # each step's loss, averaged over the two processes' halves of the batch, is the one-process loss of the whole
    # batch: the same examples, the same gradient (the loss is normalised by the tokens of all processes)
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert two["train_loss"][-1] < two["train_loss"][0]
    adapters = list((runs / "two").glob("**/adapter_model.safetensors"))
    assert sorted(p.parent.name for p in adapters) == ["adapter", "checkpoint-4"]  # one adapter, one checkpoint


def test_the_processes_train_on_different_shards(runs):
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2),
                    str(ROOT / "tests/ddp_first_batches.py"), str(runs)], check=True, capture_output=True, timeout=600)
    ranks = [json.loads((runs / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    first, second = ({tuple(row) for row in r["rows"]} for r in ranks)
    assert len(first) == len(second) == 4 and not first & second


def test_resuming_on_two_processes(runs):
    out = launch([*COMMON, "--max-steps", "6", "--batch-size", "4", "--output-dir", str(runs / "two")])
    again = summary(runs / "two")
    assert again["steps"] == 6 and again["resumed_from"].endswith("checkpoint-4")
    assert out.stdout.count("Đã tiếp tục từ checkpoint") == 1  # said once, by the main process
    assert "Kế hoạch cho mỗi GPU (2 tiến trình" in out.stdout  # the memory plan speaks per process
