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


LEVER_NAMES = {"use_liger_kernel": "Liger", "offload_activations": "offload", "padding_free": "không đệm",
               "compile_layers": "biên dịch", "expandable_segments": "phân đoạn mở rộng",
               "lora_fused_sum": "tổng LoRA gộp", "empty_cache_before_backward": "xả bộ đệm trước backward"}
# compile levers tried and removed: session B's (texts) and call C1's (True: each layer's forward inside the
# checkpoint, which compiled no graph on the GPU stack, chapter 9)
COMPILE_KINDS = {"layers": "biên dịch cả lớp", "blocks": "biên dịch từng khối",
                 True: "biên dịch lớp (không có hiệu lực: không đồ thị nào được biên dịch)"}


def profile_levers() -> dict:
    """The t4 profile's lever settings: what "the course recipe" means in the tables."""
    from .profiles import LEVERS, get_profile

    t4 = get_profile("t4")
    return {k: getattr(t4, k) for k in LEVERS}


def earlier_levers() -> dict:
    """The recipe of calls A and B and C1 (Liger + offload), before call C2 added SDPA without cuDNN and AdamW 8-bit."""
    from .profiles import LEVER_DEFAULTS

    return {**LEVER_DEFAULTS, "use_liger_kernel": True, "offload_activations": True}


def _is_profile_recipe(row: dict, recipe: dict | None = None) -> bool:
    from .profiles import LEVER_DEFAULTS

    levers = {**LEVER_DEFAULTS, **row.get("levers", {})}  # a lever a row does not name did not exist yet
    # a lever tried and since removed (compile_layers) was not the recipe either
    return all(levers[k] == v for k, v in (recipe or profile_levers()).items()) and not any(
        v for k, v in levers.items() if k not in LEVER_DEFAULTS)


def _unsloth_of(row: dict, runs: list[dict]) -> dict | None:
    key = ("call", "family_arg", "workload", "max_length", "batch")
    return next((u for u in runs if u["recipe"] == "unsloth" and all(u.get(k) == row.get(k) for k in key)), None)


def _ok_runs() -> list[dict]:
    return [r for r in load("peers")["runs"] if r.get("status") == "ok"]


def pairs(recipe: dict | None = None) -> list[tuple[dict, dict]]:
    """(course row, Unsloth row) of the same call, family, workload and shape; the course row with the t4 profile's
    levers (or those of `recipe`, e.g. earlier_levers())."""
    runs = _ok_runs()
    out = []
    for c in runs:
        u = _unsloth_of(c, runs) if c["recipe"] == "course" and _is_profile_recipe(c, recipe) else None
        if u is not None:
            out.append((c, u))
    return out


def peers_table() -> str:
    rows = ["| lần gọi | công thức của khóa học | mô hình, dữ liệu | max_length × batch | khóa học: đỉnh cấp phát / dự trữ (GiB), token/s | "
            "Unsloth: đỉnh cấp phát / dự trữ (GiB), token/s | dự trữ khóa học ÷ Unsloth | token/s khóa học ÷ Unsloth |",
            "|---|---|---|---|---|---|---|---|"]
    for c, u in pairs() + pairs(earlier_levers()):
        rows.append(
            f"| {c['call']} | {lever_name(c)} | {FAMILY[c['family_arg']]}, {WORKLOAD[c['workload']]} | {c['max_length']} × {c['batch']} | "
            f"{_gib(c['peak_allocated_gib'])} / {_gib(c['peak_reserved_gib'])}, {vi_num(c['tokens_per_s'])} | "
            f"{_gib(u['peak_allocated_gib'])} / {_gib(u['peak_reserved_gib'])}, {vi_num(u['tokens_per_s'])} | "
            f"{vi_num(c['peak_reserved_gib'] / u['peak_reserved_gib'], 2)} | "
            f"{vi_num(c['tokens_per_s'] / u['tokens_per_s'], 2)} |")
    return "\n".join(rows)


def lever_name(row: dict) -> str:
    """The levers of a course row, in the chapter's words."""
    levers = row["levers"]
    names = []
    for k, n in LEVER_NAMES.items():
        if not (v := levers.get(k)):
            continue
        if k == "compile_layers":
            n = COMPILE_KINDS.get(v, n)
        elif k == "offload_activations" and levers.get("offload_waits"):
            n = "offload chờ từng bản sao"  # before compat.offload_without_waiting (call D1)
        names.append(n)
    if levers.get("sdpa_cudnn") is False:
        names.append("SDPA không cuDNN")
    if levers.get("window_mask"):
        names.append("mặt nạ cửa sổ trượt")  # before compat.causal_skip_at_window (call D3)
    if levers.get("optim", "paged_adamw_8bit") != "paged_adamw_8bit":
        names.append(levers["optim"])
    return " + ".join(names) or "không đòn bẩy nào"


def lever_rows() -> list[tuple[dict, dict]]:
    """(course row, Unsloth row of its call) at the two shapes where levers were tried: Qwen2.5-7B, random tokens
    2048 x 2 and the course data 1024 x 2."""
    runs = _ok_runs()
    tried = {("random", 2048, 2), ("course-data", 1024, 2)}
    out = []
    for c in runs:
        if c["recipe"] == "course" and c["family_arg"] == "qwen" and (c["workload"], c["max_length"], c["batch"]) in tried:
            u = _unsloth_of(c, runs)
            if u is not None:
                out.append((c, u))
    return out


def levers_table() -> str:
    rows = ["| lần gọi | dữ liệu, max_length × batch | đòn bẩy | đỉnh cấp phát / dự trữ (GiB) | token/s | "
            "token/s ÷ Unsloth cùng lần gọi |", "|---|---|---|---|---|---|"]
    for c, u in lever_rows():
        rows.append(f"| {c['call']} | {WORKLOAD[c['workload']]}, {c['max_length']} × {c['batch']} | "
                    f"{lever_name(c)} | {_gib(c['peak_allocated_gib'])} / {_gib(c['peak_reserved_gib'])} | "
                    f"{vi_num(c['tokens_per_s'])} | {vi_num(c['tokens_per_s'] / u['tokens_per_s'], 2)} |")
    return "\n".join(rows)


def fused_sum_rows() -> dict[str, tuple[dict, dict]]:
    """Per call (D1, D2): (row with the fused LoRA sum and expandable segments, row without), Qwen2.5-7B 2048 x 2."""
    out = {}
    for call in ("D1", "D2"):
        rows = [c for c, _ in lever_rows() if c["call"] == call and c["workload"] == "random"]
        on = next(r for r in rows if r["levers"].get("lora_fused_sum"))
        off = next(r for r in rows if not r["levers"].get("lora_fused_sum"))
        out[call] = (on, off)
    return out


def waiting_offload_pairs() -> list[tuple[dict, dict]]:
    """(course row, Unsloth row) of call D1: the t4 profile's levers, but offload copies that made the CPU wait."""
    waiting = {**profile_levers(), "offload_waits": True}
    runs = _ok_runs()
    return [(c, u) for c in runs if c["call"] == "D1" and c["recipe"] == "course"
            and all(c["levers"].get(k) == v for k, v in waiting.items()) and (u := _unsloth_of(c, runs))]


def window_mask_pairs() -> list[tuple[dict, dict]]:
    """(course row, Unsloth row) where SDPA got the sliding window's explicit mask: Mistral at 4096 tokens, call D3,
    before compat.causal_skip_at_window."""
    runs = _ok_runs()
    return [(c, u) for c in runs if c["recipe"] == "course" and c["levers"].get("window_mask")
            and (u := _unsloth_of(c, runs))]


def edge_rows() -> list[dict]:
    """Course rows at the memory plan's edge that ran or ran out of memory (Qwen2.5-7B shape, 8192 tokens and up)."""
    return [r for r in load("peers")["runs"] if r["recipe"] == "course" and r["family_arg"] == "qwen"
            and r["max_length"] >= 8192 and r.get("status") in ("ok", "oom")]


LAB_GPU = {"t4": "lab_gpu", "t4-vistral": "lab_gpu_vistral"}


def lab_gpu(profile: str = "t4") -> dict:
    """benchmarks/lab_gpu.py: the lab end to end under the cap (a fresh run, then a resumed one), profile t4 (random
    Qwen2.5-7B shape, call E3) or t4-vistral (random Mistral/Vistral shape, call F2)."""
    return load(LAB_GPU[profile])


def max_loss_gap(a: dict, b: dict) -> float:
    """Largest relative difference (%) between two rows' per-step losses."""
    return 100 * max(abs(x - y) / x for x, y in zip(a["losses"], b["losses"], strict=True))


def padding_free_loss_gap() -> float:
    """Largest relative difference (%) between the per-step losses of the course data padded and padding-free, in
    the call that ran both (B2)."""
    b2 = [r for r in _ok_runs() if r["call"] == "B2" and r["recipe"] == "course"]
    padded = next(r for r in b2 if not r["levers"]["padding_free"])
    free = next(r for r in b2 if r["levers"]["padding_free"] and not r["levers"].get("compile_layers"))
    return 100 * max(abs(a - b) / a for a, b in zip(padded["losses"], free["losses"], strict=True))


def repeat_spread() -> dict[str, float]:
    """The same course configuration run twice in one call: the faster run's tokens/s over the slower's, largest
    per workload (how far apart two identical runs landed)."""
    groups: dict[tuple, list[float]] = {}
    for r in _ok_runs():
        if r["recipe"] == "course":
            key = (r["call"], r["family_arg"], r["workload"], r["max_length"], r["batch"],
                   json.dumps(r.get("levers", {}), sort_keys=True))
            groups.setdefault(key, []).append(r["tokens_per_s"])
    out: dict[str, float] = {}
    for key, speeds in groups.items():
        if len(speeds) > 1:
            out[key[2]] = max(out.get(key[2], 1.0), max(speeds) / min(speeds))
    return out


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


def _cpu_ms(profile: dict, part: str) -> float:
    return sum(op["ms"] for op in profile["top_cpu_self"] if part in op["name"])


def _gpu_ms(profile: dict, part: str) -> float:
    return sum(k["ms"] for k in profile["top_kernels"] if part in k["name"])


def profiled_rows() -> list[dict]:
    """The rows with a step under torch.profiler (peers.py --profile), as the chapter's table shows them."""
    out = []
    for r in _ok_runs():
        if "profile" not in r:
            continue
        p = r["profile"]
        out.append({"row": r, "name": "Unsloth" if r["recipe"] == "unsloth" else lever_name(r),
                    "wall_s": p["wall_s"], "gpu_busy_s": p["gpu_busy_s"], "busy_share": p["gpu_busy_s"] / p["wall_s"],
                    "kernels": p["kernels"], "syncs": p["syncs"],
                    "cudnn_attention_cpu_s": _cpu_ms(p, "_cudnn_attention") / 1e3,
                    "stream_sync_cpu_s": _cpu_ms(p, "cudaStreamSynchronize") / 1e3})
    return out


# attention kernels in a profile: PyTorch's FlashAttention (the course on the H200), cuDNN's (Unsloth there)
ATTENTION_KERNELS = ("pytorch_flash", "cudnn_generated_fort_native_sdpa")


def busy_pairs() -> list[dict]:
    """The current recipe's profiled rows with Unsloth's of the same call and shape: GPU busy seconds per step, and
    the attention kernels' share of it (neither runs on a T4, whose SDPA takes its memory-efficient kernel)."""
    rows = [x for x in profiled_rows() if x["row"]["workload"] == "random"]
    key = ("call", "family_arg", "max_length", "batch")
    out = []
    for c in rows:
        if c["row"]["recipe"] != "course" or not _is_profile_recipe(c["row"]):
            continue
        u = next((u for u in rows if u["row"]["recipe"] == "unsloth"
                  and all(u["row"][k] == c["row"][k] for k in key)), None)
        if u is None:
            continue
        att = [sum(_gpu_ms(x["row"]["profile"], a) for a in ATTENTION_KERNELS) / 1e3 for x in (c, u)]
        out.append({"row": c["row"], "busy_course_s": c["gpu_busy_s"], "busy_unsloth_s": u["gpu_busy_s"],
                    "attention_course_s": att[0], "attention_unsloth_s": att[1],
                    "busy_ratio": u["gpu_busy_s"] / c["gpu_busy_s"],
                    "busy_ratio_without_attention": (u["gpu_busy_s"] - att[1]) / (c["gpu_busy_s"] - att[0])})
    return out


def profile_facts(call: str = "C1") -> dict[str, float]:
    """The figures chapter 9 quotes from the profiled steps of call C1 (the recipe of then and Unsloth, Qwen2.5-7B)."""
    rows = {(x["row"]["recipe"], x["row"]["workload"]): x for x in profiled_rows()
            if x["row"]["call"] == call
            and (x["row"]["recipe"] == "unsloth" or _is_profile_recipe(x["row"], earlier_levers()))}
    c, u = rows[("course", "random")], rows[("unsloth", "random")]
    cp, up = c["row"]["profile"], u["row"]["profile"]
    d = rows[("course", "course-data")]
    return {"busy_course_s": c["gpu_busy_s"], "busy_unsloth_s": u["gpu_busy_s"],
            "busy_ratio": u["gpu_busy_s"] / c["gpu_busy_s"],  # the speed ratio if the GPU were the only limit
            # every add kernel (the LoRA sums and the residual ones); the unary ones are peft's multiply by alpha/r
            "add_ms": _gpu_ms(cp, "CUDAFunctor_add"), "scale_ms": _gpu_ms(cp, "AUnaryFunctor"),
            "copies_ms": _gpu_ms(cp, "Memcpy DtoD"), "dequant_course_ms": _gpu_ms(cp, "kDequantizeBlockwise"),
            "dequant_unsloth_ms": _gpu_ms(up, "_nf4_dequant_kernel"),
            "syncs_course": c["syncs"], "syncs_unsloth": u["syncs"],
            "stream_syncs": next(op["count"] for op in cp["top_cpu_self"] if op["name"] == "cudaStreamSynchronize"),
            "offload_copies": next(k["count"] for k in cp["top_kernels"] if k["name"].startswith("Memcpy DtoH")),
            "stream_sync_cpu_s": c["stream_sync_cpu_s"],
            "data_busy_s": d["gpu_busy_s"], "data_wall_s": d["wall_s"], "data_busy_share": d["busy_share"],
            "data_cudnn_cpu_s": d["cudnn_attention_cpu_s"]}


def profile_table() -> str:
    rows = ["| lần gọi | dữ liệu, max_length × batch | công thức | bước đo (giây) | GPU bận (giây) | GPU bận ÷ bước | "
            "kernel | lần đồng bộ CPU–GPU | CPU trong attention cuDNN (giây) |", "|---|---|---|---|---|---|---|---|---|"]
    for x in profiled_rows():
        r = x["row"]
        rows.append(f"| {r['call']} | {WORKLOAD[r['workload']]}, {r['max_length']} × {r['batch']} | {x['name']} | "
                    f"{vi_num(x['wall_s'], 2)} | {vi_num(x['gpu_busy_s'], 2)} | {vi_num(x['busy_share'], 2)} | "
                    f"{vi_num(x['kernels'])} | {x['syncs']} | {vi_num(x['cudnn_attention_cpu_s'], 2)} |")
    return "\n".join(rows)


def chapter_blocks() -> dict[str, str]:
    """The tables chapter 9 contains as rendered here."""
    return {"peers": peers_table(), "levers": levers_table(), "textbook": textbook_table(), "profile": profile_table()}


def ratios(recipe: dict | None = None) -> dict[str, float]:
    """Course ÷ Unsloth, over the measured pairs: reserved memory and tokens/s, lowest and highest."""
    r = [(c["peak_reserved_gib"] / u["peak_reserved_gib"], c["tokens_per_s"] / u["tokens_per_s"])
         for c, u in pairs(recipe)]
    return {"reserved_min": min(x for x, _ in r), "reserved_max": max(x for x, _ in r),
            "speed_min": min(y for _, y in r), "speed_max": max(y for _, y in r),
            "speed_median": statistics.median(y for _, y in r)}
