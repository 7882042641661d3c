"""The GPU measurements of benchmarks/results/, rendered as chapter 9 shows them (one place for tables and figures).

`python benchmarks/report.py` prints `chapter_blocks()`; chapter 9 contains each block as printed (a test checks it),
and course_utils.figures.ch09 takes the numbers of its prose from here. The results files live in the repository
(benchmarks/results); where the package is installed without them (Colab), `available()` is False.
"""

from __future__ import annotations

import json
import statistics
from functools import lru_cache
from pathlib import Path

from .display import vi_num

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
FAMILY = {"qwen": "Qwen2.5-7B", "mistral": "Mistral/Vistral-7B"}
WORKLOAD = {"random": "token ngẫu nhiên, đủ độ dài", "course-data": "dữ liệu của khóa học"}


def available() -> bool:
    return (RESULTS / "peers.json").exists()


@lru_cache
def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def _gib(x: float) -> str:
    return vi_num(x, 2)


def pairs() -> list[tuple[dict, dict]]:
    """(course row, Unsloth row) of the same call, family, workload and shape; the course row with the profile's
    levers (Liger and offload)."""
    runs = [r for r in load("peers")["runs"] if r.get("status") == "ok"]
    out = []
    for c in runs:
        if c["recipe"] != "course" or not c.get("set", {}).get("offload_activations"):
            continue
        for u in runs:
            key = ("call", "family_arg", "workload", "max_length", "batch")
            if u["recipe"] == "unsloth" and all(u.get(k) == c.get(k) for k in key):
                out.append((c, u))
    return out


def peers_table() -> str:
    rows = ["| mô hình, dữ liệu | max_length × batch | khóa học: đỉnh cấp phát / dự trữ (GiB), token/s | "
            "Unsloth: đỉnh cấp phát / dự trữ (GiB), token/s | dự trữ khóa học ÷ Unsloth | token/s khóa học ÷ Unsloth |",
            "|---|---|---|---|---|---|"]
    for c, u in pairs():
        rows.append(
            f"| {FAMILY[c['family_arg']]}, {WORKLOAD[c['workload']]} | {c['max_length']} × {c['batch']} | "
            f"{_gib(c['peak_allocated_gib'])} / {_gib(c['peak_reserved_gib'])}, {vi_num(c['tokens_per_s'])} | "
            f"{_gib(u['peak_allocated_gib'])} / {_gib(u['peak_reserved_gib'])}, {vi_num(u['tokens_per_s'])} | "
            f"{vi_num(c['peak_reserved_gib'] / u['peak_reserved_gib'], 2)} | "
            f"{vi_num(c['tokens_per_s'] / u['tokens_per_s'], 2)} |")
    return "\n".join(rows)


def lever_rows() -> list[dict]:
    """The course rows at Qwen2.5-7B 2048 x 2 (random tokens) of the call that tried the levers one by one."""
    runs = load("peers")["runs"]
    return [r for r in runs if r["recipe"] == "course" and r.get("status") == "ok" and r["family_arg"] == "qwen"
            and r["workload"] == "random" and (r["max_length"], r["batch"]) == (2048, 2)]


def lever_name(settings: dict) -> str:
    names = [n for k, n in (("use_liger_kernel", "Liger"), ("offload_activations", "offload")) if settings.get(k)]
    return " + ".join(names) or "không đòn bẩy nào"


def levers_table() -> str:
    rows = ["| công thức của khóa học, Qwen2.5-7B 2048 × 2 | đỉnh cấp phát (GiB) | đỉnh dự trữ (GiB) | token/s |",
            "|---|---|---|---|"]
    for r in lever_rows():
        rows.append(f"| {lever_name(r['set'])} | {_gib(r['peak_allocated_gib'])} | {_gib(r['peak_reserved_gib'])} | "
                    f"{vi_num(r['tokens_per_s'])} |")
    return "\n".join(rows)


def textbook_table() -> str:
    """The usual tutorial recipe, as it is and with its adapters cast back to fp32 (t4_memory.json)."""
    rows = ["| công thức | max_length × batch | kết quả | đỉnh cấp phát (GiB) | đỉnh dự trữ (GiB) |", "|---|---|---|---|---|"]
    names = {"textbook": "phổ biến", "textbook-fp32": "phổ biến + sửa fp32"}
    for r in load("t4_memory")["runs"]:
        if r["recipe"] not in names or "peak_allocated_gib" not in r:
            continue
        result = "lỗi GradScaler/bf16" if "BFloat16" in r.get("error", "") else "chạy được" if r["status"] == "ok" \
            else r["status"]
        rows.append(f"| {names[r['recipe']]} | {r['max_length']} × {r['batch']} | {result} | "
                    f"{_gib(r['peak_allocated_gib'])} | {_gib(r['peak_reserved_gib'])} |")
    return "\n".join(rows)


def smollm2() -> dict:
    """The fp16 run of SmolLM2's real weights: both variants finite?, the largest hidden state and its share of fp16's max."""
    runs = {r["variant"]: r for r in load("smollm2_fp16")["runs"]}
    peak = max(max(r["hidden_peaks_before"] + r["hidden_peaks_after"]) for r in runs.values())
    fp16_max = runs["course"]["fp16_max"]
    return {"runs": runs, "peak": peak, "fp16_max": fp16_max, "headroom": fp16_max / peak,
            "steps": runs["course"]["steps"], "scale": runs["course"]["scaler_scales"][-1]}


def sm75() -> dict:
    data = load("sm75")
    kernels = data["triton"]["kernels"]
    return {"kernels": kernels, "ok": all(k["ok"] and k["fits_t4_shared"] for k in kernels),
            "names": sorted({f"{k['module']}.{k['kernel']}" for k in kernels}),
            "bnb": data["bitsandbytes"]["sass_archs"], "torch_archs": data["triton"]["torch_arch_list"]}


def chapter_blocks() -> dict[str, str]:
    """The tables chapter 9 contains as rendered here."""
    return {"peers": peers_table(), "levers": levers_table(), "textbook": textbook_table()}


def ratios() -> dict[str, float]:
    """Course ÷ Unsloth, over the measured pairs: reserved memory and tokens/s, lowest and highest."""
    r = [(c["peak_reserved_gib"] / u["peak_reserved_gib"], c["tokens_per_s"] / u["tokens_per_s"]) for c, u in pairs()]
    return {"reserved_min": min(x for x, _ in r), "reserved_max": max(x for x, _ in r),
            "speed_min": min(y for _, y in r), "speed_max": max(y for _, y in r),
            "speed_median": statistics.median(y for _, y in r)}
