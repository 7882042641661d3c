"""Every computed number of chapter 1 (page and notebook prose) is recomputed here and found as written."""

from __future__ import annotations

from functools import lru_cache

import pytest

from course_utils.configs import linear_shapes, parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.data import load_split
from course_utils.display import vi_num
from course_utils.configs import count_lora_params
from course_utils.memory import GIB, estimate_training_memory, weight_memory
from course_utils.profiles import get_profile

from prose import chapter


_ch = chapter("01_gioi_thieu")
page, source, notebook_prose, in_page, in_notebook = (_ch.page, _ch.source, _ch.notebook_prose, _ch.in_page,
                                                       _ch.in_notebook)


def gib(x: float) -> str:
    return vi_num(x / GIB, 2)


CFG = qwen25_7b_config()
COUNTS = parameter_counts(CFG)
T4 = get_profile("t4")
METHODS = ("full", "lora", "qlora")


@lru_cache
def plans():
    return {m: estimate_training_memory(CFG, T4, method=m) for m in METHODS}


def test_qwen_architecture():
    assert (CFG.hidden_size, CFG.num_hidden_layers, CFG.num_attention_heads, CFG.num_key_value_heads) == (3584, 28, 28, 4)
    in_page(f"{vi_num(COUNTS['total'])} tham số, trong đó {vi_num(COUNTS['mlp'])} "
            f"({COUNTS['mlp'] / COUNTS['total']:.0%}) nằm ở các lớp MLP",
            f"kích thước ẩn {vi_num(CFG.hidden_size)}, {CFG.num_hidden_layers} lớp decoder, "
            f"{CFG.num_attention_heads} đầu attention cho query nhưng chỉ {CFG.num_key_value_heads} đầu cho key và value")
    # the seeds' wrong figures are named as wrong, never as Qwen2.5's
    in_page("kích thước ẩn 4096 và 32 đầu attention. Đó là cấu hình của Qwen1/Qwen1.5-7B, Llama-2-7B và Mistral-7B")


def test_lora_share():
    n_lora = count_lora_params(CFG, T4.lora_r, "all-linear")
    in_page(f"hạng r = {T4.lora_r} trên cả bảy lớp tuyến tính",
            f"{vi_num(n_lora)} tham số được huấn luyện, tức {vi_num(100 * n_lora / COUNTS['total'], 2)}%")
    assert len(linear_shapes(CFG)) == 7


def test_vistral_vocabulary():
    in_page(f"Từ vựng của nó có {vi_num(vistral_7b_config().vocab_size)} token")


def test_weight_memory():
    w = {bits: weight_memory(CFG, bits=bits)["total"] for bits in (16, 8, 4)}
    in_page(f"{gib(w[16])} GiB ở 16 bit, {gib(w[8])} GiB ở 8 bit và {gib(w[4])} GiB ở 4 bit")
    w4 = weight_memory(CFG, bits=4)
    share = (w4["embed_tokens"] + w4["lm_head"]) / w4["total"]
    in_notebook(f"ở 4 bit chúng chiếm {share:.0%} bộ nhớ trọng số", f"từ vựng {vi_num(CFG.vocab_size)} token")


def test_full_fine_tuning_bytes():
    in_page("cần 16 byte mỗi tham số", f"Với Qwen2.5-7B đó là {gib(COUNTS['total'] * 16)} GiB")


def test_memory_table():
    p = plans()
    full, lora, qlora = (p[m].parts for m in METHODS)
    rows = [
        f"| Trọng số gốc | {gib(full['weights'])} | {gib(lora['weights_frozen'])} | "
        f"{gib(qlora['weights_4bit'])} (4 bit) + {gib(qlora['weights_16bit'])} (16 bit) |",
        f"| Bản sao fp32 của trọng số | {gib(full['master_weights'])} | | |",
        f"| Trọng số LoRA (fp32) | | {gib(lora['lora_weights'])} | {gib(qlora['lora_weights'])} |",
        "| Gradient | " + " | ".join(gib(x["gradients"]) for x in (full, lora, qlora)) + " |",
        "| Trạng thái bộ tối ưu (8-bit) | " + " | ".join(gib(x["optimizer"]) for x in (full, lora, qlora)) + " |",
        "| Activation | " + " | ".join(gib(x["activations"]) for x in (full, lora, qlora)) + " |",
        "| Logits và hàm mất mát | " + " | ".join(gib(x["logits_loss"]) for x in (full, lora, qlora)) + " |",
        f"| Trọng số giải lượng tử tạm thời | | | {gib(qlora['dequant_buffer'])} |",
        "| **Tổng** | " + " | ".join(f"**{gib(p[m].total)}**" for m in METHODS) + " |",
        "| Cần (thêm 10%) | " + " | ".join(gib(p[m].needed_bytes) for m in METHODS) + " |",
        "| Vừa 14,5 GiB? | " + " | ".join("vừa" if p[m].fits else "không" for m in METHODS) + " |",
    ]
    in_page(*rows)
    listed = {"weights", "master_weights", "weights_frozen", "weights_4bit", "weights_16bit", "lora_weights",
              "gradients", "optimizer", "activations", "logits_loss", "dequant_buffer"}
    assert all(set(p[m].parts) <= listed for m in METHODS), "the plan has a part the page's table does not show"
    assert T4.memory_budget_gib == 14.5
    assert T4.gradient_checkpointing and T4.optim == "paged_adamw_8bit"
    in_page(f"batch {T4.per_device_train_batch_size}, `max_length` {T4.max_length}, gradient checkpointing, "
            f"bộ tối ưu `{T4.optim}`")
    # "more than five times a T4", "LoRA weights alone are 14,19 GiB"
    assert int(p["full"].needed_bytes / p["full"].budget_bytes) == 5
    in_page("cần hơn năm lần ngân sách của một T4", f"riêng trọng số 16-bit của mô hình gốc đã {gib(lora['weights_frozen'])} GiB")
    assert weight_memory(CFG, 16)["total"] * 1.10 > p["lora"].budget_bytes  # no batch size can make LoRA fit
    in_notebook(f"riêng trọng số 16-bit đã {gib(lora['weights_frozen'])} GiB",
                f"chỉ {count_lora_params(CFG, T4.lora_r) // 10**6} triệu tham số LoRA",
                "Ngân sách 14,5 GiB")


def test_context_length():
    acts = []
    for length in (512, 1024, 2048, 4096):
        plan = estimate_training_memory(CFG, T4.replace(max_length=length), method="qlora")
        acts.append(gib(plan.parts["activations"]))
    in_page(f"activation là {acts[0]} GiB ở 512 token, {acts[1]} GiB ở 1024, {acts[2]} GiB ở 2048 và {acts[3]} GiB ở 4096")


def test_eight_bit_optimizer():
    saved = {}
    for method in ("full", "qlora"):
        fp32 = estimate_training_memory(CFG, T4.replace(optim="adamw_torch"), method=method).parts["optimizer"]
        saved[method] = fp32 - plans()[method].parts["optimizer"]
    in_page(f"với tinh chỉnh toàn bộ Qwen2.5-7B là {gib(saved['full'])} GiB, với QLoRA chỉ {gib(saved['qlora'])} GiB")


def test_hyperparameters():
    tiny = get_profile("tiny")
    assert (T4.learning_rate, tiny.learning_rate) == (2e-4, 2e-3)
    in_page("profile `t4` dùng 2e-4", "Profile `tiny` dùng 2e-3")
    in_notebook("Profile `t4` dùng `learning_rate` = 2e-4", "Profile `tiny` dùng 2e-3")
    batch, accumulation = T4.per_device_train_batch_size, T4.gradient_accumulation_steps
    in_page(f"Profile `t4` dùng batch {batch} với {{term}}`tích lũy gradient <Tích lũy gradient>` (gradient "
            f"accumulation) {accumulation} bước, tức batch hiệu dụng {batch * accumulation}")


def test_dataset_sizes():
    n = {split: len(load_split(split)) for split in ("train", "validation", "test")}
    in_page(f"{n['train']} bản ghi huấn luyện, {n['validation']} bản ghi kiểm định và {n['test']} bản ghi kiểm tra")
    in_notebook(f"({n['train']} bản ghi huấn luyện, {n['validation']} kiểm định, {n['test']} kiểm tra")


def test_notebook_eight_bit_state():
    absmax_share = (2 * 4 / 256) / (2 + 2 * 4 / 256)  # one fp32 absmax per block of 256, for each of two states
    assert absmax_share < 0.02
    in_notebook("lượng tử hóa theo khối 256 giá trị", "bỏ qua phần `absmax` (dưới 2%)")


def test_notebook_gqa_ratio():
    assert CFG.num_attention_heads // CFG.num_key_value_heads == 7
    in_notebook(f"{CFG.num_attention_heads} head cho query nhưng chỉ {CFG.num_key_value_heads} head cho key và value",
                "hẹp hơn `q_proj` bảy lần")


@pytest.mark.parametrize("wrong", ["hoá", "tập xác thực", "CASUAL", "1e-3 ~ 1e-6"])
def test_no_forbidden_spelling(wrong):
    assert wrong not in _ch.page_path.read_text(encoding="utf-8") + _ch.notebook_path.read_text(encoding="utf-8")


def test_seed_corrections_are_stated():
    in_page("Tên \"Vistral\" không phải chữ viết tắt",
            "\"BLOOM là LLM đa ngôn ngữ đầu tiên trên thế giới\" là nói quá",
            "là nhận định, thay đổi theo thời gian",
            "Lời khuyên \"từ 1e-3 đến 1e-6\" trải rộng gấp nghìn lần",
            "quanh 1e-5 đến 2e-5", "khoảng 1e-4 đến 2e-4")
