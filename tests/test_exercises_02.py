"""The exercise checkers of chapter 2: right answers pass, typical wrong answers fail, the placeholder `...` too."""

from __future__ import annotations

import pytest

from course_utils.exercises import NO_ANSWER
from course_utils.exercises import qua_khop as ex
from course_utils.figures.ch02 import OVERFIT

HISTORY = [
    {"eval_loss": 6.0, "step": 0},
    {"loss": 6.5, "step": 4}, {"eval_loss": 5.6, "step": 4},
    {"loss": 5.0, "step": 8}, {"eval_loss": 5.4, "step": 8},
    {"loss": 4.0, "step": 12}, {"eval_loss": 5.5, "step": 12},
    {"loss": 3.0, "step": 16}, {"eval_loss": 5.7, "step": 16},
]


def test_overfitting_signal(capsys):
    assert ex.check_overfitting_signal("B")
    for wrong in ("a", "c", "d", "", "e"):
        assert not ex.check_overfitting_signal(wrong)
    assert not ex.check_overfitting_signal(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_best_step(capsys):
    assert ex.best_eval_step(HISTORY) == 8
    assert ex.check_best_step(8, HISTORY)
    assert not ex.check_best_step(16, HISTORY)
    assert "lần đo cuối" in capsys.readouterr().out
    assert not ex.check_best_step(4, HISTORY)
    assert not ex.check_best_step("8", HISTORY)
    assert not ex.check_best_step(..., HISTORY)
    assert NO_ANSWER in capsys.readouterr().out
    with pytest.raises(ValueError):
        ex.best_eval_step([{"loss": 1.0, "step": 1}])


def smallest_halving_step(lr: float, wd: float) -> int:
    """Brute force, independent of the checker's logarithm: the first step at which the factor is <= 0.5."""
    factor, n = 1.0, 0
    while factor > 0.5:
        factor *= 1 - lr * wd
        n += 1
    return n


@pytest.mark.parametrize("lr, wd", [(OVERFIT["learning_rate"], OVERFIT["weight_decay"]), (1e-2, 0.5), (2e-4, 0.01)])
def test_half_life_steps(lr, wd, capsys):
    n = smallest_halving_step(lr, wd)
    assert ex.check_half_life_steps(n, lr=lr, weight_decay=wd)
    assert not ex.check_half_life_steps(n - 1, lr=lr, weight_decay=wd)  # not yet halved
    assert not ex.check_half_life_steps(n + 1, lr=lr, weight_decay=wd)  # halved, but not the smallest
    assert not ex.check_half_life_steps(n // 2, lr=lr, weight_decay=wd)  # the half life of ΔW = B·A, not of A, B
    assert not ex.check_half_life_steps(..., lr=lr, weight_decay=wd)
    assert NO_ANSWER in capsys.readouterr().out


class FakeTrainer:
    """evaluate() as a Trainer: the validation loss, or the loss on the dataset passed in."""

    def __init__(self, val_loss, seen_loss):
        self.val_loss, self.seen_loss, self.calls = val_loss, seen_loss, 0

    def evaluate(self, eval_dataset=None):
        self.calls += 1
        return {"eval_loss": self.val_loss if eval_dataset is None else self.seen_loss}


def test_generalization_gap(capsys):
    trainer = FakeTrainer(5.7, 3.4)
    assert ex.check_generalization_gap(5.7 - 3.4, trainer, seen_dataset=[1])
    assert not ex.check_generalization_gap(3.4 - 5.7, trainer, seen_dataset=[1])
    assert "ngược dấu" in capsys.readouterr().out
    assert not ex.check_generalization_gap(1.0, trainer, seen_dataset=[1])
    calls = trainer.calls
    assert not ex.check_generalization_gap(..., trainer, seen_dataset=[1])
    assert NO_ANSWER in capsys.readouterr().out
    assert trainer.calls == calls  # the placeholder costs no evaluation
