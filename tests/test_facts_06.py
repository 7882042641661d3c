"""Chapter 6: the claims a learner could be misled by, each checked against a computed value or peft itself."""

from __future__ import annotations

import re

import pytest

from course_utils.configs import count_lora_params, parameter_counts, qwen25_7b_config
from course_utils.display import vi_num
from course_utils.figures.ch06 import adapter_mib, dora_extra_parameters
from course_utils.profiles import get_profile
import prose
from prose import page, page_path

STEM = "06_lora_qlora"
QWEN = qwen25_7b_config()
TOTAL = parameter_counts(QWEN)["total"]
T4 = get_profile("t4")
ROWS = {
    "`q_proj`, `v_proj` (như bài báo LoRA)": ("q_proj", "v_proj"),
    "attention: `q_proj`, `k_proj`, `v_proj`, `o_proj`": ("q_proj", "k_proj", "v_proj", "o_proj"),
    'mọi lớp tuyến tính (`"all-linear"`)': "all-linear",
}


@pytest.fixture(scope="module")
def text() -> str:
    return page(STEM)


def table_row(label: str) -> list[str]:
    return prose.table_row(STEM, label)


@pytest.mark.parametrize("label", list(ROWS))
def test_lora_count_table_is_computed(label):
    expected = [f"{vi_num(n)} ({vi_num(100 * n / TOTAL, 2)}%)"
                for n in (count_lora_params(QWEN, r, ROWS[label]) for r in (8, 16, 64))]
    assert table_row(label) == expected


def test_equal_budget_evidence_is_the_lora_papers_table_5(text):
    """r = 64 on q, v and r = 8 on all 7 layers are one budget; the page credits the equal-budget comparison to Hu et al.
    (2021, Table 5), the one comparison at a fixed budget (QLoRA's all-linear vs q, v was at its default settings)."""
    budget = count_lora_params(QWEN, 64, ("q_proj", "v_proj"))
    assert budget == count_lora_params(QWEN, 8, "all-linear")
    paragraph = next(p for p in page_path(STEM).read_text(encoding="utf-8").split("\n\n")
                     if vi_num(budget) in p and not p.startswith("|"))
    assert re.search(r"Hu và cộng sự, 2021,\s+Bảng 5", paragraph)


def test_adapter_size(text):
    n = count_lora_params(QWEN, T4.lora_r, T4.lora_target_modules)
    assert re.search(rf"{vi_num(n)} tham số, khoảng {vi_num(adapter_mib(n))} MiB ở fp32", text)
    assert n == 40_370_176 and round(adapter_mib(n)) == 154


def test_dora_extra_parameters(text):
    extra = dora_extra_parameters(QWEN)
    assert re.search(rf"Qwen2\.5-7B là {vi_num(extra)} tham số", text)
    assert extra == sum([3584, 512, 512, 3584, 18944, 18944, 3584]) * 28


def test_transformer_example(text):
    full, a, b = 512 * 64, 8 * 512, 64 * 8
    assert re.search(rf"\$W\$ có {vi_num(full)} trọng số", text)
    assert re.search(rf"tổng {vi_num(a + b)}, ít hơn {vi_num(100 * (1 - (a + b) / full), 1)}%", text)


def test_loraconfig_defaults_as_written():
    from peft import LoraConfig

    c = LoraConfig()
    for field in ("r", "lora_alpha", "lora_dropout", "task_type", "modules_to_save", "layers_to_transform",
                  "inference_mode", "use_rslora", "use_dora", "init_lora_weights", "target_modules"):
        assert table_row(f"`{field}`")[0] == f"`{getattr(c, field)}`", field
    assert table_row("`bias`")[0] == f'`"{c.bias}"`'


def test_peft_default_targets_for_qwen2(text):
    from peft.utils import (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as IA3,
                            TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as LORA)

    q, v = LORA["qwen2"]
    assert f"(với Qwen2 là `{q}`, `{v}`)" in text
    assert "danh sách mặc định của peft cho Qwen2 là " + ", ".join(f"`{m}`" for m in IA3["qwen2"]) in text


def test_peft_version_as_written(text):
    import peft

    versions = set(re.findall(r"peft (?:bản )?(\d+\.\d+\.\d+)", text))
    assert versions == {peft.__version__}
