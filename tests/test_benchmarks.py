"""The GPU benchmarks cannot rot silently: each one's per-run path runs here on the tiny model, on the CPU."""

import json
import sys

import pytest

from prose import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import peers  # noqa: E402
import smollm2_fp16_gpu  # noqa: E402
import t4_memory  # noqa: E402


@pytest.mark.parametrize("recipe", ["course", "textbook-fp32"])
def test_t4_memory_runs_a_recipe(tiny_dir, recipe):
    r = t4_memory.course_run(str(tiny_dir), 64, 2, 2, {}, "random", "tiny", recipe)
    assert r["status"] == "ok" and r["loss_finite"] and r["tokens_per_s"] > 0
    assert r["step_tokens"] == [64 * 2] * 2 and r["plan_total_gib"] > 0


def test_peers_runs_the_course_row_on_the_course_data(tiny_dir):
    r = peers.course_row(str(tiny_dir), "course", 128, 2, 2, "course-data", {}, "tiny")
    assert r["status"] == "ok" and r["loss_finite"]
    assert 0 < r["step_tokens"][1] <= 128 * 2  # real lengths, no padding counted
    assert r["changes"]["lora_dropout"] == 0.0  # what every peer row shares


def test_the_fp16_script_records_losses_scales_and_peaks(tiny_dir):
    r = smollm2_fp16_gpu.variant(str(tiny_dir), prepare=False, steps=2, base="tiny")
    assert r["status"] == "ok" and r["loss_finite"] and len(r["losses"]) == 2
    assert len(r["hidden_peaks_after"]) == json.loads((tiny_dir / "config.json").read_text())["num_hidden_layers"] + 1


def test_report_prints_every_chapter_table(capsys):
    import report

    report.main([])
    out = capsys.readouterr().out
    from course_utils.results import chapter_blocks

    assert out.count("<!--") == len(chapter_blocks()) == 4 and "Unsloth" in out


def test_report_merges_a_call_once(tmp_path):
    import report

    call = tmp_path / "peers.json"
    call.write_text(json.dumps({"device": "gpu", "runs": [{"recipe": "course"}, {"recipe": "unsloth"}]}))
    target = tmp_path / "all.json"
    target.write_text(json.dumps({"runs": [{"recipe": "course", "call": 1}]}))
    assert report.merge(call, "b", target) == 2
    runs = json.loads(target.read_text())["runs"]
    assert [r["call"] for r in runs] == [1, "b", "b"]
    with pytest.raises(SystemExit):
        report.merge(call, "b", target)


def test_peers_command_runs_each_workload_in_its_own_process(tiny_dir, tmp_path):
    """The whole command on the CPU: one child process per row, the course data timed over --data-steps."""
    import subprocess

    out = tmp_path / "peers.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/peers.py"), "--model-dir", str(tiny_dir), "--base", "tiny",
                    "--families", "qwen", "--shapes", "64x2", "--data-shapes", "128x2", "--recipes", "course",
                    "--workloads", "random,course-data", "--steps", "3", "--data-steps", "4", "--out", str(out),
                    "--set", '{"padding_free": true}', "--tag", "cpu", "--profile"],
                   check=True, capture_output=True, timeout=300)
    runs = json.loads(out.read_text())["runs"]
    assert [(r["workload"], r["status"], r["steps"]) for r in runs] == [("random", "ok", 3), ("course-data", "ok", 4)]
    assert all(r["levers"]["padding_free"] and r["session"] == "cpu" for r in runs)
    for r in runs:  # the last step ran under the profiler, and is not among the timed ones
        assert len(r["step_times_s"]) == r["steps"] - 1 and r["tokens_per_s"] > 0
        prof = r["profile"]
        assert prof["wall_s"] > 0 and prof["tokens"] > 0 and prof["kernels"] == 0  # a CPU run launches no kernel
        assert any(op["name"].startswith("aten::mm") for op in prof["top_cpu_self"])


def test_sync_sources_name_the_caller_of_each_sync():
    """What peers.py --profile records on a GPU (torch's sync debug warnings), fed here by hand."""
    import warnings

    def item_like():
        warnings.warn(f"called a {t4_memory.SYNC_WARNING}")

    with t4_memory.SyncSources() as syncs:
        for _ in range(3):
            item_like()
        warnings.warn("an unrelated warning")  # passed on, not counted
    (top,) = syncs.top()
    assert top["count"] == 3 and top["where"].split(" <- ")[0].endswith("item_like")
    assert "test_sync_sources_name_the_caller_of_each_sync" in top["where"]


def test_the_lab_gpu_script_runs_and_resumes(tiny_dir, tmp_path):
    """benchmarks/lab_gpu.py on the tiny profile: a fresh lab run, then one that resumes from its last checkpoint."""
    import subprocess

    out = tmp_path / "lab_gpu.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/lab_gpu.py"), "--profile", "tiny", "--steps", "2",
                    "--out", str(out), "--work", str(tmp_path / "work")], check=True, cwd=tmp_path)
    fresh, resumed = json.loads(out.read_text())["runs"]
    assert fresh["status"] == resumed["status"] == "ok"
    assert (fresh["steps"], fresh["resumed_from"]) == (2, None)
    assert resumed["steps"] == 4 and resumed["resumed_from"].endswith("checkpoint-2")
    assert fresh["reloaded_answers_identical"] and resumed["losses_finite"]
