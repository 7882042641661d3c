"""The lab chapter's table of measurements and its T4 estimate, from benchmarks/results/t4_memory.json.

    python benchmarks/report.py    # prints the Markdown that book/09_qlora_lab.md contains (a test checks it)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from course_utils.display import vi_num  # noqa: E402

# Vendor datasheets (dense, without sparsity): H100 SXM5 and Tesla T4.
H100 = {"fp16_tflops": 989.0, "bandwidth_tb_s": 3.35}
T4 = {"fp16_tflops": 65.0, "bandwidth_tb_s": 0.32}
RECIPES = {"course": "của khóa học", "textbook": "phổ biến", "textbook-fp32": "phổ biến + sửa fp32"}


def load() -> dict:
    return json.loads((ROOT / "benchmarks/results/t4_memory.json").read_text(encoding="utf-8"))


def result_text(run: dict) -> str:
    if run["status"] == "ok":
        return "chạy được"
    if "BFloat16" in run.get("error", ""):
        return "lỗi GradScaler/bf16"
    return "hết bộ nhớ" if run["status"] == "oom" else run["status"]


def table(data: dict) -> str:
    rows = ["| công thức | max_length × batch | kết quả | đỉnh cấp phát (GiB) | đỉnh dự trữ (GiB) | kế hoạch (GiB) | token/s |",
            "|---|---|---|---|---|---|---|"]
    for r in data["runs"]:
        tps = vi_num(r["tokens_per_s"]) if r.get("tokens_per_s") else "–"
        rows.append(f"| {RECIPES[r['recipe']]} | {r['max_length']} × {r['batch']} | {result_text(r)} | "
                    f"{vi_num(r['peak_allocated_gib'], 2)} | {vi_num(r['peak_reserved_gib'], 2)} | "
                    f"{vi_num(r['plan_total_gib'], 2)} | {tps} |")
    return "\n".join(rows)


def t4_estimate(data: dict) -> dict:
    """T4 tokens/s from the measured H100 tokens/s at 1024 x 2, scaled by fp16 compute and by memory bandwidth."""
    runs = [r for r in data["runs"] if r["recipe"] == "course" and (r["max_length"], r["batch"]) == (1024, 2)]
    measured = sum(r["tokens_per_s"] for r in runs) / len(runs)
    compute = H100["fp16_tflops"] / T4["fp16_tflops"]
    bandwidth = H100["bandwidth_tb_s"] / T4["bandwidth_tb_s"]
    low, high = measured / compute, measured / bandwidth
    step_tokens = 1024 * 2 * 4  # one optimizer step of the t4 profile at full length
    return {"measured": measured, "runs": len(runs), "compute_ratio": compute, "bandwidth_ratio": bandwidth,
            "t4_low": low, "t4_high": high, "step_s_low": step_tokens / high, "step_s_high": step_tokens / low}


def estimate_text(data: dict) -> str:
    e = t4_estimate(data)
    return (f"Trung bình {e['runs']} lần đo ở 1024 × 2 trên H100: {vi_num(e['measured'])} token/s. "
            f"Chia cho tỉ lệ sức tính fp16 H100/T4 ({vi_num(e['compute_ratio'], 1)} lần) và tỉ lệ băng thông bộ nhớ "
            f"({vi_num(e['bandwidth_ratio'], 1)} lần): T4 vào khoảng {vi_num(e['t4_low'])}–{vi_num(e['t4_high'])} "
            f"token/s, tức {vi_num(e['step_s_low'])}–{vi_num(e['step_s_high'])} giây cho một bước tối ưu "
            f"đủ độ dài (2 × 4 chuỗi 1.024 token).")


def main() -> None:
    data = load()
    print(table(data))
    print()
    print(estimate_text(data))


if __name__ == "__main__":
    main()
