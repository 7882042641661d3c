"""Every computed number and library fact of chapter 6 (page and notebook prose) is recomputed and found as written."""

from __future__ import annotations


import pytest

from course_utils.configs import linear_shapes, parameter_counts, qwen25_7b_config
from course_utils.display import vi_num
from course_utils.configs import count_lora_params
from course_utils.memory import GIB, weight_memory
from course_utils.profiles import get_profile

from prose import chapter
QWEN = qwen25_7b_config()
TOTAL = parameter_counts(QWEN)["total"]
T4 = get_profile("t4")


_ch = chapter("06_lora_qlora")
page, source, notebook_prose, in_page, in_notebook = (_ch.page, _ch.source, _ch.notebook_prose, _ch.in_page,
                                                       _ch.in_notebook)


def pct(n: int) -> str:
    return vi_num(100 * n / TOTAL, 2) + "%"


def test_model_size_in_intro():
    in_page(f"cập nhật {vi_num(TOTAL / 1e9, 1)} tỉ tham số")


def test_small_example():
    d_model, d_k, r = 512, 64, 8
    full, a, b = d_model * d_k, r * d_model, d_k * r
    in_page(f"$W$ có {vi_num(full)} trọng số", f"$8 \\times 512 = {vi_num(a)}$", f"$64 \\times 8 = {vi_num(b)}$",
            f"tổng {vi_num(a + b)}, ít hơn {vi_num(100 * (1 - (a + b) / full), 1)}%",
            f"làm tròn thành {round(100 * (1 - (a + b) / full))}%")


TARGETS = {
    "`q_proj`, `v_proj` (như bài báo LoRA)": ("q_proj", "v_proj"),
    "attention: `q_proj`, `k_proj`, `v_proj`, `o_proj`": ("q_proj", "k_proj", "v_proj", "o_proj"),
    'mọi lớp tuyến tính (`"all-linear"`)': "all-linear",
}


@pytest.mark.parametrize("label", list(TARGETS))
def test_qwen_lora_table(label):
    cells = " | ".join(f"{vi_num(count_lora_params(QWEN, r, TARGETS[label]))} "
                       f"({pct(count_lora_params(QWEN, r, TARGETS[label]))})" for r in (8, 16, 64))
    in_page(f"| {label} | {cells} |")


def test_qwen_shapes_and_budget_facts():
    shapes = linear_shapes(QWEN)
    assert shapes["k_proj"][0] == shapes["v_proj"][0] == 512
    in_page(f"chỉ có {shapes['k_proj'][0]} đầu ra", f"nhân với {QWEN.num_hidden_layers} lớp",
            f"{len(shapes)} lớp tuyến tính trong mỗi lớp decoder", f"so với {vi_num(TOTAL)} tham số")
    same = count_lora_params(QWEN, 64, ("q_proj", "v_proj"))
    assert same == count_lora_params(QWEN, 8, "all-linear")
    in_page(f"cùng một ngân sách {vi_num(same)} tham số")


def test_adapter_size_and_memory():
    n = count_lora_params(QWEN, T4.lora_r, T4.lora_target_modules)
    in_page(f"$r = {T4.lora_r}$ trên mọi lớp tuyến tính của Qwen2.5-7B là {vi_num(n)} tham số, "
            f"{vi_num(4 * n / 2**20, 1)} MiB ở fp32")
    in_page(f"với Qwen2.5-7B, $r = {T4.lora_r}$ trên mọi lớp tuyến tính là {vi_num(n)}")
    in_page(f"Qwen2.5-7B là {vi_num(weight_memory(QWEN, 16)['total'] / GIB, 2)} GiB, "
            f"sát ngân sách {vi_num(T4.memory_budget_gib, 1)} GiB")


def test_dora_extra_parameters():
    extra = sum(out for out, _ in linear_shapes(QWEN).values()) * QWEN.num_hidden_layers
    in_page(f"là {vi_num(extra)} tham số")


def test_course_lora_config_is_the_profiles():
    assert T4.lora_target_modules == "all-linear"
    in_page(f"LoraConfig(r={T4.lora_r}, lora_alpha={T4.lora_alpha}, lora_dropout={T4.lora_dropout}, "
            f'target_modules="{T4.lora_target_modules}",')
    in_page(f"Khóa học dùng `{T4.lora_dropout}`", f"dùng bộ tối ưu `{T4.optim}`")


def test_loraconfig_defaults_as_written():
    from peft import LoraConfig

    c = LoraConfig()
    for field, shown in [("r", c.r), ("lora_alpha", c.lora_alpha), ("lora_dropout", c.lora_dropout),
                         ("bias", f'"{c.bias}"'), ("task_type", c.task_type), ("modules_to_save", c.modules_to_save),
                         ("layers_to_transform", c.layers_to_transform), ("inference_mode", c.inference_mode),
                         ("use_rslora", c.use_rslora), ("use_dora", c.use_dora),
                         ("init_lora_weights", c.init_lora_weights), ("target_modules", c.target_modules)]:
        in_page(f"| `{field}` | `{shown}` |")


def test_peft_facts_stated():
    import peft
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    in_page(f"peft (bản {peft.__version__}", f"`LoraConfig` (peft {peft.__version__})",
            f"đúng với peft {peft.__version__}")
    q, v = DEFAULTS["qwen2"]
    in_page(f"(với Qwen2 là `{q}`, `{v}`)")


def test_rounding_threshold_matches_the_tests():
    # tests/test_lora.py and the notebook assert a relative difference below 1e-5 against peft
    in_page("sai khác tương đối dưới $10^{-5}$")
    assert "< 1e-5" in _ch.notebook_path.read_text(encoding="utf-8")


def test_notebook_prose_numbers():
    head_dim = QWEN.hidden_size // QWEN.num_attention_heads
    in_notebook(f"{QWEN.num_key_value_heads} đầu key/value × {head_dim}", "nhân với 28 lớp",
                "7 lớp tuyến tính trong mỗi lớp decoder")
    assert QWEN.num_hidden_layers == 28 and len(linear_shapes(QWEN)) == 7
