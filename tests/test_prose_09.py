"""The lab chapter's figures come from the benchmark results, as written."""

import importlib.util
import json

from conftest import ROOT

PAGE = (ROOT / "book/09_qlora_lab.md").read_text(encoding="utf-8")


def _report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks/report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_and_estimate_are_the_benchmark_output():
    report = _report()
    data = report.load()
    assert report.table(data) in PAGE
    assert report.estimate_text(data) in PAGE


def test_numbers_in_the_text():
    from course_utils.display import vi_num

    data = _report().load()
    runs = {(r["recipe"], r["max_length"], r["batch"]): r for r in data["runs"] if not r.get("repeat")}
    course = [r for r in data["runs"] if r["recipe"] == "course"]
    extra = [runs[("textbook-fp32", L, B)]["peak_allocated_gib"] - runs[("course", L, B)]["peak_allocated_gib"]
             for L, B in ((512, 2), (1024, 2), (2048, 1), (2048, 2))]
    assert f"{vi_num(min(extra), 1)}–{vi_num(max(extra), 1)} GiB" in PAGE
    assert max(r["peak_reserved_gib"] for r in course) < 8.1 and "dưới 8,1 GiB" in PAGE
    assert f"{vi_num(runs[('course', 512, 2)]['peak_reserved_gib'], 2)} GiB" in PAGE
    worst = max(abs(r["plan_error"]) for r in data["runs"]) * 100
    assert worst <= 2.6 and "không quá 2,6%" in PAGE
    tps = sorted(r["tokens_per_s"] for r in course if (r["max_length"], r["batch"]) == (1024, 2))
    assert f"{vi_num(tps[0])} và {vi_num(tps[1])} token/s" in PAGE
    smoke = json.loads((ROOT / "benchmarks/results/lab_smoke_gpu.json").read_text(encoding="utf-8"))["runs"][-1]
    assert f"{vi_num(smoke['peak_allocated_gib'], 2)} GiB cấp phát" in PAGE and smoke["peak_reserved_gib"] < 14.5
    assert smoke["reloaded_answers_identical"] and smoke["resumed_steps"] == smoke["steps"] == 8
