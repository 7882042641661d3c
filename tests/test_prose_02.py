"""Every computed number of chapter 2 (page and notebook prose) is recomputed here and found as written.

The measured losses are not in the prose: the notebook prints them and asserts each qualitative claim.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache

import pytest

from course_utils import tiny
from course_utils.configs import parameter_counts, qwen25_7b_config
from course_utils.data import load_split
from course_utils.display import vi_num
from course_utils.configs import count_lora_params
from course_utils.memory import GIB, weight_memory
from course_utils.profiles import get_profile

from prose import chapter


_ch = chapter("02_qua_khop")
page, source, notebook_prose, in_page, in_notebook = (_ch.page, _ch.source, _ch.notebook_prose, _ch.in_page,
                                                       _ch.in_notebook)


def setting(pattern: str) -> str:
    """A value set in the notebook's code, e.g. setting(r"^STEPS = (\\d+)")."""
    m = re.search(pattern, source(), flags=re.MULTILINE)
    assert m, f"không thấy {pattern!r} trong {_ch.notebook_path.name}"
    return m.group(1)


@lru_cache
def tiny_info() -> dict:
    return json.loads((tiny.tiny_model_dir(verbose=False) / "course_tiny.json").read_text(encoding="utf-8"))


# ---- upstream: the tiny model's pre-training ------------------------------------------------------------

def test_tiny_pretraining_figures():
    info = tiny_info()
    assert info["pretrain_steps"] == tiny.PRETRAIN_STEPS
    tokens_seen = tiny.PRETRAIN_STEPS * tiny.PRETRAIN_BATCH * tiny.SEQ_LEN
    passes = round(tokens_seen / info["corpus_tokens"])
    in_page(f"{vi_num(info['parameters'])} tham số, được tiền huấn luyện {info['pretrain_steps']} bước",
            f"({vi_num(info['corpus_tokens'])} token)",
            f"nó đã đọc {vi_num(tokens_seen)} token, tức khoảng {passes} lượt")
    in_notebook(f"khoảng {passes} lần")


def test_tiny_parameters_match_config():
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(tiny.tiny_model_dir(verbose=False))
    assert parameter_counts(cfg)["total"] == tiny_info()["parameters"]
    millions = vi_num(tiny_info()["parameters"] / 1e6, 1)
    assert millions == "1,3"
    in_page(f"{millions} triệu tham số")
    in_notebook(f"{millions} triệu tham số")


# ---- PEFT and downstream tasks -------------------------------------------------------------------------

def test_adapter_size():
    cfg = qwen25_7b_config()
    r = get_profile("t4").lora_r
    n = count_lora_params(cfg, r)
    in_page(f"LoRA r = {r} trên mọi lớp tuyến tính, một bộ điều hợp có {vi_num(n)} tham số, "
            f"khoảng {vi_num(n * 4 / 2**20)} MiB ở fp32, so với {vi_num(weight_memory(cfg, 16)['total'] / GIB, 2)} GiB")


# ---- the experiment's settings, as the notebook sets them ----------------------------------------------

def test_settings_in_prose():
    n_train, max_length = int(setting(r"^N_TRAIN = (\d+)")), int(setting(r"^MAX_LENGTH = (\d+)"))
    n_eval, steps = int(setting(r"^N_EVAL = (\d+)")), int(setting(r"^STEPS = (\d+)"))
    every = int(setting(r"^EVAL_EVERY = (\d+)"))
    lr, r = setting(r"learning_rate=([\de.-]+),"), int(setting(r"lora_r=(\d+),"))
    alpha = int(setting(r"lora_alpha=(\d+),"))
    patience = int(setting(r"early_stopping_patience=(\d+)"))
    wd, dropout = float(setting(r"^WEIGHT_DECAY = ([\d.]+)")), float(setting(r"^LORA_DROPOUT = ([\d.]+)"))
    batch = get_profile("tiny").per_device_train_batch_size
    in_page(f"{n_train} bản ghi đầu của tập huấn luyện; mỗi mẫu cắt còn {max_length} token",
            f"{{term}}`LoRA` hạng {r}, alpha {alpha}",
            f"{{term}}`tốc độ học <Tốc độ học>` {lr}, không đổi",
            f"{steps} bước với batch {batch}",
            f"cứ {every} bước lại đo loss kiểm định trên {n_eval} bản ghi kiểm định",
            f"(`early_stopping_patience`, ở đây là {patience})",
            f"weight decay {vi_num(wd, 1)}, sau {steps} bước",
            f"(ở đây {dropout:.0%})",
            f"Dùng cả {len(load_split('train'))} bản ghi huấn luyện thay cho {n_train}, cùng {steps} bước")
    in_notebook(f"LoRA hạng {r} trên mọi lớp tuyến tính", f"tốc độ học {lr} không đổi",
                f"{steps} bước với batch {batch}", f"Cứ {every} bước", f"trên {n_eval} bản ghi kiểm định",
                f"sau {patience} lần đo liên tiếp", f"ngẫu nhiên {dropout:.0%} giá trị về 0",
                f"toàn bộ {len(load_split('train'))} bản ghi huấn luyện thay cho {n_train}, cùng {steps} bước")


def test_lora_share_of_tiny_model():
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(tiny.tiny_model_dir(verbose=False))
    share = count_lora_params(cfg, int(setting(r"lora_r=(\d+),"))) / tiny_info()["parameters"]
    assert 0.4 < share < 0.5
    in_page("gần bằng nửa số tham số của chính mô hình tiny")
    in_notebook("gần nửa số tham số của chính mô hình tiny")


def test_weight_decay_factor():
    lr = float(setting(r"learning_rate=([\de.-]+),"))
    wd, steps = float(setting(r"^WEIGHT_DECAY = ([\d.]+)")), int(setting(r"^STEPS = (\d+)"))
    factor = (1 - lr * wd) ** steps
    in_page(f"hệ số đó chỉ là {vi_num(factor, 4)}: trọng số nhỏ đi khoảng {vi_num(100 * (1 - factor), 1)}%")
    in_notebook(f"chỉ làm trọng số nhỏ đi khoảng {vi_num(100 * (1 - factor), 1)}%")


@pytest.fixture(scope="module")
def kept_examples():
    """How many examples TRL keeps (the notebook prints them), from the same settings, without training."""
    from course_utils.data import to_training_dataset
    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import build_trainer

    n_train, max_length = int(setting(r"^N_TRAIN = (\d+)")), int(setting(r"^MAX_LENGTH = (\d+)"))
    profile = get_profile("tiny").replace(max_length=max_length)
    records = load_split("train")
    val = to_training_dataset(load_split("validation")[:4], system=None)
    kept = {}
    for name, recs in (("small", records[:n_train]), ("full", records)):
        model, tokenizer = load_model_and_tokenizer(profile, quantize=False)
        trainer = build_trainer(model, tokenizer, to_training_dataset(recs, system=None), val, profile,
                                "/tmp/test_prose_02", save_strategy="no", report_to="none")
        kept[name] = len(trainer.train_dataset)
    return kept


def test_epochs_in_prose(kept_examples):
    steps = int(setting(r"^STEPS = (\d+)"))
    batch = get_profile("tiny").per_device_train_batch_size
    small, full = (steps * batch / kept_examples[k] for k in ("small", "full"))
    assert 4.5 < small < 5 and round(full) == 2  # "gần năm epoch", "khoảng hai lần thay vì năm"
    assert round(kept_examples["small"], -1) == 80  # "khoảng 80 mẫu"
    in_page("tức gần năm epoch", "mỗi mẫu được thấy khoảng hai lần thay vì năm")
    in_notebook("tức gần năm epoch trên khoảng 80 mẫu", "(khoảng hai lần thay vì năm)")


def test_half_life_is_thousands_of_steps():
    lr = float(setting(r"learning_rate=([\de.-]+),"))
    n = math.ceil(math.log(0.5) / math.log(1 - lr * float(setting(r"^WEIGHT_DECAY = ([\d.]+)"))))
    assert 1000 <= n < 10000
    in_notebook("Cần hàng nghìn bước")


def test_overfitting_is_asserted_in_the_notebook():
    # the page says the notebook checks the pattern with assert: it must
    assert re.search(r'assert best_step < STEPS and h\["eval_loss"\]\[-1\] > h\["eval_loss"\]\[best\]', source())
    assert 'assert h["train_loss"][-1] < train_at_best' in source()
    in_page("Notebook không chỉ vẽ mà còn kiểm tra điều này bằng `assert`")
