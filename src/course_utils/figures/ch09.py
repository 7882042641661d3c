"""Figures of chapter 9 (the QLoRA lab): the measured GPU results (course_utils.results, from benchmarks/results),
the memory plan at the profile's settings, the adapter's size, the T4 speed estimate, the streamed merge's memory.

Without the results files (a package installed from Git, on Colab), only the computed figures are given.
"""

from __future__ import annotations

import json
import statistics

from .. import results, speed
from ..configs import count_lora_params, linear_shapes, parameter_counts, qwen25_7b_config, vistral_7b_config
from ..memory import (CALIBRATION_TOLERANCE, GIB, RESERVE_MARGIN, estimate_training_memory, offloaded_bytes,
                      weight_memory)
from ..profiles import get_profile

MIB = 2**20
COLAB_FREE_RAM_GB = 12.7  # RAM of a free Colab session, as Colab reports it (shared/notes/t4-memory.md)
UNSLOTH_T4_PEAK_RESERVED_GIB = 7.89  # Unsloth's Qwen2.5-7B T4 notebook: max_memory_reserved() / 1024**3
OLD_LAYER_PEAK_FRACTION = 0.56  # the plan's share of one layer's activations before call D3 (git history of memory.py)
OLD_RESERVE_MARGIN = 1.10  # the plan's allocator margin before call E2 (git history of memory.py)
ALPACA_MEAN_TOKENS = (150, 400)  # the range assumed for Unsloth's Alpaca sequences (its token count is not published)


def course_lengths() -> tuple[list[int], list[int]]:
    """Tokens of each training record after the chat template, and of each answer, with the course's tokenizer."""
    from ..data import load_split
    from ..lab import token_lengths
    from ..models import load_tokenizer

    tokenizer = load_tokenizer(get_profile("tiny"))
    records = load_split("train")
    answers = [len(tokenizer(r["output"] + "<|im_end|>", add_special_tokens=False)["input_ids"]) for r in records]
    return token_lengths(tokenizer, records, "alpaca"), answers


def lab_training_flops(padding_free: bool | None = None) -> float:
    """The lab's training on the course data: max_steps x batch x accumulation sequences, each of the mean length,
    or (padding on, the t4 profile's default) of the mean length once padded to the longest of its batch."""
    t4 = get_profile("t4")
    padding_free = t4.padding_free if padding_free is None else padding_free
    lengths, answers = course_lengths()
    n = t4.max_steps * t4.per_device_train_batch_size * t4.gradient_accumulation_steps
    mean = statistics.mean(lengths) if padding_free else speed.padded_length(lengths, t4.per_device_train_batch_size)
    return speed.step_flops(qwen25_7b_config(), [round(mean)] * n, round(statistics.mean(answers) * n))


def fsdp_threshold_billions() -> float:
    """Parameters (billions) at which a model's 4-bit weights alone, at Qwen2.5-7B's bytes per parameter (4-bit
    decoder, 16-bit embeddings, measured 5,2 GiB after loading), reach the T4 budget: beyond, shard with FSDP."""
    q = qwen25_7b_config()
    per_param = weight_memory(q, 4)["total"] / parameter_counts(q)["total"]
    return get_profile("t4").memory_budget_gib * GIB / per_param / 1e9


def figures() -> dict[str, float]:
    t4, q = get_profile("t4"), qwen25_7b_config()
    n_adapter = count_lora_params(q, t4.lora_r, t4.lora_target_modules)
    plan = estimate_training_memory(q, t4)
    per_token = speed.flops_per_token(q, t4.max_length)
    train_flops, free_flops = lab_training_flops(), lab_training_flops(padding_free=True)
    low, high = (speed.t4_effective_rate(q, n) for n in ALPACA_MEAN_TOKENS)
    lengths, answers = course_lengths()
    out, inp = max(linear_shapes(q).values(), key=lambda s: s[0] * s[1])
    f: dict[str, float] = {
        "ngân sách T4 (GiB)": t4.memory_budget_gib,
        "T4: bộ nhớ (GB, nhà sản xuất)": 16,
        "Colab miễn phí: RAM (GB)": COLAB_FREE_RAM_GB,
        "Qwen2.5-7B: từ vựng": q.vocab_size,
        "Vistral-7B: từ vựng": vistral_7b_config().vocab_size,
        "adapter t4: tham số": n_adapter,
        "adapter t4 ở fp32 (MiB)": 4 * n_adapter / MIB,
        "kế hoạch t4, 1024 × 2 (GiB)": plan.total / GIB,
        "kế hoạch: sai số cho phép so với đo (%)": 100 * CALIBRATION_TOLERANCE,
        "kế hoạch: dự phòng cho bộ cấp phát (%)": round(100 * (plan.margin - 1)),
        "kế hoạch: dự phòng khi không có phân đoạn mở rộng (%)": round(100 * (RESERVE_MARGIN - 1)),
        "Qwen2.5-7B: embedding (GiB)": parameter_counts(q)["embed_tokens"] * 2 / GIB,
        "prepare_model_for_kbit_training: embedding + lm_head thêm (GiB)":
            2 * parameter_counts(q)["embed_tokens"] * 2 / GIB,
        "offload t4, 1024 × 2 (GiB RAM)": offloaded_bytes(q, t4) / GIB,
        "offload 2048 × 2 (GiB RAM)": offloaded_bytes(q, t4.replace(max_length=2048)) / GIB,
        "offload: giới hạn RAM của profile t4 (GiB)": t4.offload_budget_gib,
        "bit mỗi trọng số 4-bit": 4 + 8 / 64 + 32 / (64 * 256),
        "Unsloth, notebook T4: đỉnh dự trữ (GiB)": UNSLOTH_T4_PEAK_RESERVED_GIB,
        "Unsloth, notebook T4: giây": speed.UNSLOTH_T4["seconds"],
        "Unsloth, notebook T4: bước": speed.UNSLOTH_T4["steps"],
        "T4: fp16 đỉnh (TFLOPS)": speed.T4_PEAK_TFLOPS,
        "T4: fp16 bền (TFLOPS)": speed.T4_SUSTAINED_TFLOPS,
        "FLOP mỗi token, lớp tuyến tính (GFLOP)": per_token["linear"] / 1e9,
        "FLOP mỗi token trả lời, lm_head (GFLOP)": per_token["lm_head"] / 1e9,
        "tham số ngoài embedding (tỉ)": (parameter_counts(q)["attention"] + parameter_counts(q)["mlp"]) / 1e9,
        "huấn luyện lab: PFLOP": train_flops / 1e15,
        "dữ liệu khóa học: token mỗi câu sau khi đệm": speed.padded_length(lengths, t4.per_device_train_batch_size),
        "padding-free: bớt phép tính của lab (%)": 100 * (1 - free_flops / train_flops),
        "huấn luyện lab padding-free ở tốc độ bền (s)": speed.seconds(free_flops),
        "huấn luyện lab ở tốc độ bền (s)": speed.seconds(train_flops),
        "tốc độ hiệu dụng suy từ Unsloth, thấp (TFLOPS)": low,
        "tốc độ hiệu dụng suy từ Unsloth, cao (TFLOPS)": high,
        "huấn luyện lab ở tốc độ hiệu dụng thấp (s)": speed.seconds(train_flops, low),
        "huấn luyện lab ở tốc độ hiệu dụng cao (s)": speed.seconds(train_flops, high),
        "độ dài Alpaca giả định, thấp": ALPACA_MEAN_TOKENS[0],
        "độ dài Alpaca giả định, cao": ALPACA_MEAN_TOKENS[1],
        "dữ liệu khóa học: token trung bình": statistics.mean(lengths),
        "dữ liệu khóa học: token dài nhất": max(lengths),
        "dữ liệu khóa học: token trả lời trung bình": statistics.mean(answers),
        "trọng số 16-bit để gộp (GiB)": weight_memory(q, 16)["total"] / GIB,
        "trọng số lớn nhất, hàng": out,
        "trọng số lớn nhất, cột": inp,
        "ngưỡng FSDP (tỉ tham số)": fsdp_threshold_billions(),
        "Qwen2.5-7B 4-bit (GiB)": weight_memory(q, 4)["total"] / GIB,
    }
    if results.available():
        r = results.ratios()
        f |= {f"tỉ lệ {k}": v for k, v in r.items()}
        rows = {id(r): r for pair in results.pairs() + results.lever_rows() for r in pair}
        for i, row in enumerate(rows.values()):
            key = (f"#{i} {row['call']} {row['recipe']} {lever_name_of(row)} {row['family_arg']} {row['workload']} "
                   f"{row['max_length']}x{row['batch']}")
            f |= {f"{key}: cấp phát": row["peak_allocated_gib"], f"{key}: dự trữ": row["peak_reserved_gib"],
                  f"{key}: token/s": row["tokens_per_s"]}
        for i, (c, u) in enumerate(results.pairs() + results.lever_rows()):
            key = f"#{i} {c['call']} {lever_name_of(c)} {c['max_length']}x{c['batch']} {c['workload']}"
            f[f"{key}: dự trữ ÷"] = c["peak_reserved_gib"] / u["peak_reserved_gib"]
            f[f"{key}: token/s ÷"] = c["tokens_per_s"] / u["tokens_per_s"]
        a3 = {results.lever_name(c): c for c, _ in results.lever_rows() if c["call"] == "A3"}
        if {"Liger", "Liger + offload"} <= set(a3):  # the call that tried offload on and off
            a, b = a3["Liger"], a3["Liger + offload"]
            f["offload: bớt cấp phát (GiB)"] = a["peak_allocated_gib"] - b["peak_allocated_gib"]
            f["offload: bớt dự trữ (GiB)"] = a["peak_reserved_gib"] - b["peak_reserved_gib"]
            f["offload: chậm đi (%)"] = 100 * (1 - b["tokens_per_s"] / a["tokens_per_s"])
        f["padding-free: loss lệch nhiều nhất (%)"] = results.padding_free_loss_gap()
        fused = results.fused_sum_rows()
        f["tổng LoRA gộp: loss lệch nhiều nhất (%)"] = max(results.max_loss_gap(on, off) for on, off in fused.values())
        f |= {f"{call}: hiện tại ÷ không gộp, token/s": on["tokens_per_s"] / off["tokens_per_s"]
              for call, (on, off) in fused.items()}
        for r in results.edge_rows():
            edge = t4.replace(max_length=r["max_length"], per_device_train_batch_size=r["batch"], lora_dropout=0.0)
            edge_plan = estimate_training_memory(q, edge)
            key = f"biên {r['max_length']}x{r['batch']}"
            f |= {f"{key}: cấp phát": r["peak_allocated_gib"], f"{key}: dự trữ": r["peak_reserved_gib"],
                  f"{key}: kế hoạch (GiB)": edge_plan.total / GIB, f"{key}: cần (GiB)": edge_plan.needed_bytes / GIB,
                  f"{key}: offload (GiB RAM)": edge_plan.offloaded_bytes / GIB,
                  f"{key}: dự trữ ÷ kế hoạch": r["peak_reserved_gib"] * GIB / edge_plan.total,
                  f"{key}: kế hoạch thấp hơn đo (%)": 100 * (1 - edge_plan.total / GIB / r["peak_allocated_gib"]),
                  # the plan of the run's own code (recorded in the row): the calibration before call D3
                  f"{key}: kế hoạch cũ thấp hơn đo (%)": 100 * (1 - r["plan_total_gib"] / r["peak_allocated_gib"])}
        f |= {f"mặt nạ cửa sổ {c['call']} {c['max_length']}x{c['batch']}: token/s ÷": c["tokens_per_s"] / u["tokens_per_s"]
              for c, u in results.window_mask_pairs()}
        for r in results.load("peers")["runs"]:  # call E2: Mistral 4096 x 1 with cuDNN's attention, no Unsloth row
            if r.get("call") == "E2" and r["recipe"] == "course" and r["levers"].get("sdpa_cudnn"):
                f["E2 Mistral 4096x1 cuDNN: token/s"] = r["tokens_per_s"]
        for name in results.LAB_GPU:  # the lab end to end on the GPU: Qwen shape (call E3), Vistral shape (F2)
            lab = results.lab_gpu(name)
            tag = "" if name == "t4" else " Vistral"
            for run in lab["runs"]:
                key = f"lab GPU{tag} {run['label']}"
                f |= {f"{key}: cấp phát": run["peak_allocated_gib"], f"{key}: dự trữ": run["peak_reserved_gib"],
                      f"{key}: giây": run["wall_s"], f"{key}: bước": run["steps"], f"{key}: kế hoạch": run["plan_gib"]}
            first, resumed = lab["runs"]
            f[f"lab GPU{tag}: đỉnh lần tiếp tục − lần đầu (GiB)"] = (resumed["peak_allocated_gib"]
                                                                    - first["peak_allocated_gib"])
            f[f"lab GPU{tag}: đỉnh ÷ kế hoạch, lần đầu"] = first["peak_allocated_gib"] / first["plan_gib"]
            f[f"lab GPU{tag}: đỉnh ÷ kế hoạch, lần tiếp tục"] = resumed["peak_allocated_gib"] / resumed["plan_gib"]
        f["Vistral-7B: embedding (GiB)"] = parameter_counts(vistral_7b_config())["embed_tokens"] * 2 / GIB
        f["kế hoạch cũ: phần activation một lớp (%)"] = 100 * OLD_LAYER_PEAK_FRACTION
        f["kế hoạch trước E2: dự phòng (%)"] = round(100 * (OLD_RESERVE_MARGIN - 1))
        edges = sorted(r["max_length"] for r in results.edge_rows() if r["batch"] == 2)
        f["biên: bước giữa hai độ dài cuối (token)"] = edges[-1] - edges[-2]
        f["hiệu chỉnh trước D3: token mỗi batch lớn nhất"] = max(
            r["max_length"] * r["batch"] for r in results.load("peers")["runs"]
            if r["recipe"] == "course" and r.get("status") == "ok" and r["call"] < "D3")
        f |= {f"D1 (offload chờ) {c['workload']} {c['max_length']}x{c['batch']}: token/s ÷": c["tokens_per_s"] / u["tokens_per_s"]
              for c, u in results.waiting_offload_pairs()}
        f |= {f"công thức trước: tỉ lệ {k}": v for k, v in results.ratios(results.earlier_levers()).items()}
        f |= {"công thức trước: số dòng": len(results.pairs(results.earlier_levers()))}
        for i, c in enumerate(results.pairs(results.earlier_levers())):
            key = f"#{i} công thức trước {c[0]['call']} {c[0]['workload']} {c[0]['max_length']}x{c[0]['batch']}"
            f[f"{key}: dự trữ ÷"] = c[0]["peak_reserved_gib"] / c[1]["peak_reserved_gib"]
            f[f"{key}: token/s ÷"] = c[0]["tokens_per_s"] / c[1]["tokens_per_s"]
            f |= {f"{key}: {w}: {k}": r[k] for w, r in (("khóa học", c[0]), ("Unsloth", c[1]))
                  for k in ("peak_allocated_gib", "peak_reserved_gib", "tokens_per_s")}
        f |= {f"bước đo C1: {k}": v for k, v in results.profile_facts("C1").items()}
        for i, x in enumerate(results.profiled_rows()):
            key = f"#{i} bước đo {x['row']['call']} {x['name']} {x['row']['workload']}"
            f |= {f"{key}: {k}": x[k] for k in ("wall_s", "gpu_busy_s", "busy_share", "kernels", "syncs",
                                               "cudnn_attention_cpu_s")}
        for x in results.profiled_rows():  # call E1, the current recipe: attention, NF4 dequant, named syncs
            r = x["row"]
            if r["call"] == "E1":
                who = "Unsloth" if r["recipe"] == "unsloth" else "khóa học"
                prof = r["profile"]
                key = f"bước đo E1 {r['family_arg']} {who}"
                f[f"{key}: attention (ms)"] = results._gpu_ms(prof, "cudnn" if who == "Unsloth" else "flash")
                f[f"{key}: giải lượng tử (ms)"] = results._gpu_ms(prof, "_nf4_dequant" if who == "Unsloth"
                                                                  else "kDequantize")
                f[f"{key}: đồng bộ có tên"] = sum(s["count"] for s in prof.get("sync_sources", []))
        for x in results.busy_pairs():  # the current recipe's profiled steps (E1, F2): GPU busy, course vs Unsloth
            r = x["row"]
            key = f"GPU bận {r['call']} {r['family_arg']} {r['max_length']}x{r['batch']}"
            f |= {f"{key}: {k}": x[k] for k in ("busy_course_s", "busy_unsloth_s", "attention_course_s",
                                               "attention_unsloth_s", "busy_ratio", "busy_ratio_without_attention")}
            f[f"{key}: bước đo, GPU bận (%)"] = 100 * x["busy_course_s"] / r["profile"]["wall_s"]
        f["trạng thái AdamW 8-bit của adapter t4 (MB)"] = estimate_training_memory(q, get_profile("t4")).parts[
            "optimizer"] / 1e6
        # peft's LoRA passes over the outputs, at the shape of call B3 (Qwen2.5-7B 2048 x 2, x 4 accumulation)
        c, u = next((c, u) for c, u in results.pairs(results.earlier_levers()) if c["call"] == "B3")
        step_tokens = c["max_length"] * c["batch"] * c["gradient_accumulation_steps"]
        extra = speed.lora_extra_bytes_per_token(q) * step_tokens
        t4_compute = speed.seconds(speed.step_flops(q, [c["max_length"]] * (c["batch"] * c["gradient_accumulation_steps"]),
                                                    step_tokens))
        f |= {"LoRA của peft: thêm mỗi token (MB)": speed.lora_extra_bytes_per_token(q) / 1e6,
              "LoRA của peft: thêm mỗi bước B3 (GB)": extra / 1e9,
              "H200: băng thông (TB/s)": speed.H200_BANDWIDTH_GBS / 1000,
              "T4: băng thông (GB/s)": speed.T4_BANDWIDTH_GBS,
              "H200 ÷ T4: băng thông (lần)": speed.H200_BANDWIDTH_GBS / speed.T4_BANDWIDTH_GBS,
              "LoRA của peft: giây mỗi bước trên H200": extra / (speed.H200_BANDWIDTH_GBS * 1e9),
              "B3: chênh lệch mỗi bước (s)": step_tokens / c["tokens_per_s"] - step_tokens / u["tokens_per_s"],
              "LoRA của peft: giây mỗi bước trên T4": extra / (speed.T4_BANDWIDTH_GBS * 1e9),
              "T4: tính toán mỗi bước B3 ở tốc độ bền (s)": t4_compute,
              "LoRA của peft: phần của bước trên T4 (%)":
                  100 * extra / (speed.T4_BANDWIDTH_GBS * 1e9) / t4_compute}
        f |= {f"hai lần chạy giống nhau, {k}: nhanh ÷ chậm": v for k, v in results.repeat_spread().items()}
        f |= {f"hai lần chạy giống nhau, {k}: chênh (%)": 100 * (v - 1) for k, v in results.repeat_spread().items()}
        for r in results.load("t4_memory")["runs"]:
            if r["recipe"].startswith("textbook") and "peak_allocated_gib" in r:
                key = f"{r['recipe']} {r['max_length']}x{r['batch']}"
                f |= {f"{key}: cấp phát": r["peak_allocated_gib"], f"{key}: dự trữ": r["peak_reserved_gib"]}
        smol = results.smollm2()
        f |= {"SmolLM2: bước": smol["steps"], "SmolLM2: scale": smol["scale"], "SmolLM2: activation lớn nhất": smol["peak"],
              "fp16: lớn nhất": smol["fp16_max"], "SmolLM2: khoảng cách tới tràn (lần)": smol["headroom"]}
        k = results.sm75()
        f |= {"sm_75: biến thể kernel": len(k["kernels"]), "sm_75: kernel": len(k["names"])}
        merge = json.loads((results.RESULTS / "merge_memory.json").read_text(encoding="utf-8"))
        f |= {"gộp tiny: đỉnh RAM (MiB)": merge["tiny"]["peak_bytes"] / MIB,
              "gộp SmolLM2: đỉnh RAM (MiB)": merge["smollm2"]["peak_bytes"] / MIB,
              "gộp SmolLM2: trọng số (MiB)": merge["smollm2"]["base_weight_bytes"] / MIB,
              "gộp 7B: đỉnh RAM ước lượng (GiB)": merge["qwen2.5-7b_estimate"]["peak_bytes"] / GIB,
              "gộp 7B: mảnh ra (GiB)": merge["qwen2.5-7b_estimate"]["shard_bytes"] / GIB}
    return f


def lever_name_of(row: dict) -> str:
    from course_utils import results

    return results.lever_name(row) if row["recipe"] == "course" else row["recipe"]
