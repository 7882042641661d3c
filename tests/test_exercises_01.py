"""The exercise checkers of chapter 1: right answers pass, typical wrong answers fail, the placeholder `...` too."""

from __future__ import annotations

from course_utils.configs import parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.data import alpaca_to_sharegpt
from course_utils.exercises import NO_ANSWER
from course_utils.exercises import gioi_thieu as ex
from course_utils.memory import estimate_training_memory
from course_utils.profiles import get_profile

ALPACA = {"instruction": "Dịch sang tiếng Anh.", "input": "Tinh chỉnh", "output": "Fine-tuning"}


def test_fine_tuning_ways(capsys):
    assert ex.check_fine_tuning_ways({"a": "Tự giám sát", "b": " có giám sát", "c": "tăng cường"})
    assert not ex.check_fine_tuning_ways({"a": "có giám sát", "b": "có giám sát", "c": "tăng cường"})
    assert "mục a" in capsys.readouterr().out
    assert not ex.check_fine_tuning_ways({"a": ..., "b": "có giám sát", "c": "tăng cường"})
    assert not ex.check_fine_tuning_ways(["tự giám sát", "có giám sát", "tăng cường"])
    assert not ex.check_fine_tuning_ways(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_vistral_params(capsys):
    cfg = vistral_7b_config()
    counts = parameter_counts(cfg)
    assert ex.check_vistral_params(counts["total"])
    assert not ex.check_vistral_params(counts["total"] - counts["lm_head"])  # tied embeddings assumed
    assert "tie_word_embeddings" in capsys.readouterr().out
    # Qwen2's q/k/v biases do not belong to Mistral: adding them is wrong
    head = cfg.hidden_size // cfg.num_attention_heads
    biases = cfg.num_hidden_layers * (cfg.hidden_size + 2 * cfg.num_key_value_heads * head)
    assert not ex.check_vistral_params(counts["total"] + biases)
    assert not ex.check_vistral_params("bảy tỉ")
    assert not ex.check_vistral_params(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_sharegpt_record(capsys):
    assert ex.check_sharegpt_record(alpaca_to_sharegpt(ALPACA), ALPACA)
    swapped = {"conversations": [{"from": "gpt", "value": "Fine-tuning"},
                                 {"from": "human", "value": "Dịch sang tiếng Anh.\n\nTinh chỉnh"}]}
    assert not ex.check_sharegpt_record(swapped, ALPACA)
    no_input = {"conversations": [{"from": "human", "value": "Dịch sang tiếng Anh."},
                                  {"from": "gpt", "value": "Fine-tuning"}]}
    assert not ex.check_sharegpt_record(no_input, ALPACA)
    assert not ex.check_sharegpt_record({"conversations": []}, ALPACA)
    assert not ex.check_sharegpt_record(..., ALPACA)
    assert NO_ANSWER in capsys.readouterr().out


def test_qlora_max_length_is_a_real_experiment(capsys):
    """The checker accepts exactly one length, one whose plan fits while the next length up does not: the answer is
    neither the smallest nor the largest choice (the experiment is not decided by the list alone)."""
    cfg, t4 = qwen25_7b_config(), get_profile("t4")
    accepted = [n for n in ex.QLORA_LENGTHS if ex.check_qlora_max_length(n)]
    assert len(accepted) == 1
    best = accepted[0]
    assert best not in (min(ex.QLORA_LENGTHS), max(ex.QLORA_LENGTHS))
    plan = estimate_training_memory(cfg, t4.replace(max_length=best), "qlora")
    bigger = estimate_training_memory(cfg, t4.replace(max_length=2 * best), "qlora")
    assert plan.fits and not bigger.fits  # on the GPU, or for the offloaded activations in the CPU's RAM
    capsys.readouterr()
    assert not ex.check_qlora_max_length(2 * best)
    assert "plan.fits" in capsys.readouterr().out
    assert not ex.check_qlora_max_length(...)
    assert NO_ANSWER in capsys.readouterr().out
