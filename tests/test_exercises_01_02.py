"""The exercise checkers of chapters 1 and 2: right answers pass, typical wrong answers fail with a hint."""

from __future__ import annotations

import math

import pytest

from course_utils.configs import parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.data import alpaca_to_sharegpt
from course_utils.exercises import gioi_thieu as ex1
from course_utils.exercises import qua_khop as ex2
from course_utils.memory import estimate_training_memory
from course_utils.profiles import get_profile

# ---- chapter 1 -------------------------------------------------------------------------------------------


def test_fine_tuning_ways(capsys):
    assert ex1.check_fine_tuning_ways({"a": "Tự giám sát", "b": " có giám sát", "c": "tăng cường"})
    assert not ex1.check_fine_tuning_ways({"a": "có giám sát", "b": "có giám sát", "c": "tăng cường"})
    assert "mục a" in capsys.readouterr().out
    assert not ex1.check_fine_tuning_ways({"a": "...", "b": "...", "c": "..."})
    assert not ex1.check_fine_tuning_ways(["tự giám sát", "có giám sát", "tăng cường"])


def test_vistral_params(capsys):
    counts = parameter_counts(vistral_7b_config())
    assert ex1.check_vistral_params(counts["total"])
    assert not ex1.check_vistral_params(counts["total"] - counts["lm_head"])
    assert "tie_word_embeddings" in capsys.readouterr().out
    assert not ex1.check_vistral_params(0)
    assert not ex1.check_vistral_params("bảy tỉ")
    # Qwen2's q/k/v biases do not belong to Mistral: adding them is wrong
    cfg = vistral_7b_config()
    biases = cfg.num_hidden_layers * (cfg.hidden_size + 2 * cfg.num_key_value_heads * 128)
    assert not ex1.check_vistral_params(counts["total"] + biases)


def test_sharegpt_record():
    alpaca = {"instruction": "Dịch sang tiếng Anh.", "input": "Tinh chỉnh", "output": "Fine-tuning"}
    assert ex1.check_sharegpt_record(alpaca_to_sharegpt(alpaca), alpaca)
    swapped = {"conversations": [{"from": "gpt", "value": "Fine-tuning"},
                                 {"from": "human", "value": "Dịch sang tiếng Anh.\n\nTinh chỉnh"}]}
    assert not ex1.check_sharegpt_record(swapped, alpaca)
    no_input = {"conversations": [{"from": "human", "value": "Dịch sang tiếng Anh."},
                                  {"from": "gpt", "value": "Fine-tuning"}]}
    assert not ex1.check_sharegpt_record(no_input, alpaca)
    assert not ex1.check_sharegpt_record({"conversations": []}, alpaca)


def test_qlora_max_length():
    cfg, t4 = qwen25_7b_config(), get_profile("t4")
    fits = [n for n in ex1.QLORA_LENGTHS if estimate_training_memory(cfg, t4.replace(max_length=n), "qlora").fits]
    assert fits, "no length fits: the exercise has no answer"
    best = max(fits)
    assert ex1.check_qlora_max_length(best)
    for other in ex1.QLORA_LENGTHS:
        if other != best:
            assert not ex1.check_qlora_max_length(other)
    assert not ex1.check_qlora_max_length(0)


# ---- chapter 2 -------------------------------------------------------------------------------------------

HISTORY = [
    {"eval_loss": 6.0, "step": 0},
    {"loss": 6.5, "step": 4}, {"eval_loss": 5.6, "step": 4},
    {"loss": 5.0, "step": 8}, {"eval_loss": 5.4, "step": 8},
    {"loss": 4.0, "step": 12}, {"eval_loss": 5.5, "step": 12},
    {"loss": 3.0, "step": 16}, {"eval_loss": 5.7, "step": 16},
]


def test_overfitting_signal():
    assert ex2.check_overfitting_signal("B")
    for wrong in ("a", "c", "d", "", "e"):
        assert not ex2.check_overfitting_signal(wrong)


def test_best_step(capsys):
    assert ex2.best_eval_step(HISTORY) == 8
    assert ex2.check_best_step(8, HISTORY)
    assert not ex2.check_best_step(16, HISTORY)
    assert "lần đo cuối" in capsys.readouterr().out
    assert not ex2.check_best_step(None, HISTORY)
    with pytest.raises(ValueError):
        ex2.best_eval_step([{"loss": 1.0, "step": 1}])


def test_half_life_steps():
    lr, wd = 3e-3, 0.1
    n = math.ceil(math.log(0.5) / math.log(1 - lr * wd))
    assert (1 - lr * wd) ** n <= 0.5 < (1 - lr * wd) ** (n - 1)
    assert ex2.check_half_life_steps(n, lr=lr, weight_decay=wd)
    assert not ex2.check_half_life_steps(n - 1, lr=lr, weight_decay=wd)
    assert not ex2.check_half_life_steps(n + 10, lr=lr, weight_decay=wd)
    assert not ex2.check_half_life_steps(0, lr=lr, weight_decay=wd)


class FakeTrainer:
    """evaluate() as a Trainer: the validation loss, or the loss on the dataset passed in."""

    def __init__(self, val_loss, seen_loss):
        self.val_loss, self.seen_loss, self.calls = val_loss, seen_loss, 0

    def evaluate(self, eval_dataset=None):
        self.calls += 1
        return {"eval_loss": self.val_loss if eval_dataset is None else self.seen_loss}


def test_generalization_gap(capsys):
    trainer = FakeTrainer(5.7, 3.4)
    assert ex2.check_generalization_gap(5.7 - 3.4, trainer, seen_dataset=[1])
    assert not ex2.check_generalization_gap(3.4 - 5.7, trainer, seen_dataset=[1])
    assert "ngược dấu" in capsys.readouterr().out
    assert not ex2.check_generalization_gap(1.0, trainer, seen_dataset=[1])
    calls = trainer.calls
    assert not ex2.check_generalization_gap(0.0, trainer, seen_dataset=[1])
    assert trainer.calls == calls  # the placeholder answer costs no evaluation
