"""The headless lab (python -m course_utils.lab) on the tiny profile."""

import json
import subprocess
import sys


def test_lab_cli_runs_the_whole_pipeline(tmp_path, tiny_dir):
    out = tmp_path / "lab"
    code = ("import sys; from course_utils import lab, profiles; "
            "p = profiles.get_profile('tiny').replace(max_steps=6, eval_steps=3, save_steps=3, n_eval_examples=3, "
            "eval_max_new_tokens=8); lab.run(p, sys.argv[1], fresh=True)")
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, capture_output=True, text=True)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["steps"] == 6 and summary["reloaded_answers_identical"] is True
    assert summary["eval_loss_last"] < summary["eval_loss_first"]
    assert (out / "loss_curve.png").stat().st_size > 1000
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    assert set(summary["rouge_before"]) >= {"rouge1", "rouge2", "rougeL", "rougeLsum"}


def test_lab_cli_help():
    out = subprocess.run([sys.executable, "-m", "course_utils.lab", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--profile" in out.stdout and "t4-vistral" in out.stdout
