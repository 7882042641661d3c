"""The exercise checkers of chapter 7: right answers pass, typical wrong answers and the placeholder fail."""

from __future__ import annotations

import math

from course_utils.exercises import rank_alpha as ex
from course_utils.sweep import FULL_RANKS, best_per_cell, load_results


def test_sqrt_hidden(capsys):
    s = math.sqrt(3584 / 16)
    assert ex.check_sqrt_hidden((s, s / 2))
    assert not ex.check_sqrt_hidden((3584 / 16, 3584 / 16 / 2))  # alpha / r instead of alpha / sqrt(r)
    assert not ex.check_sqrt_hidden((s, s * 2))  # ratio upside down
    assert not ex.check_sqrt_hidden(s)
    assert not ex.check_sqrt_hidden(...)
    out = capsys.readouterr().out
    assert "Đúng rồi" in out and "√r" in out and "chưa có câu trả lời" in out.lower()


def test_equivalent_run(capsys):
    assert ex.check_equivalent_run((0.5, 0.005))
    assert not ex.check_equivalent_run((1.0, 0.0025))  # the SGD intuition: learning rate / k, A0 unchanged
    assert not ex.check_equivalent_run((0.5, 0.01))
    assert not ex.check_equivalent_run("0.5, 0.005")
    assert not ex.check_equivalent_run(...)
    assert "1/√k" in capsys.readouterr().out


def test_best_lrs(capsys):
    best = {r: lr for (rule, r), (lr, _) in best_per_cell(load_results()).items() if rule == "alpha = 2r"}
    assert set(best) == set(FULL_RANKS)
    assert ex.check_best_lrs(best)
    assert ex.check_best_lrs({str(r): str(lr) for r, lr in best.items()})
    seed0 = {r: lr for (rule, r), (lr, _) in best_per_cell(load_results(), seed=0).items() if rule == "alpha = 2r"}
    one_lr = dict.fromkeys(best, 2e-3)  # "the profile's learning rate is best everywhere"
    assert not ex.check_best_lrs(one_lr)
    if seed0 != best:  # one seed instead of the mean over the seeds
        assert not ex.check_best_lrs(seed0)
    assert not ex.check_best_lrs({r: lr for r, lr in best.items() if r != FULL_RANKS[-1]})
    assert not ex.check_best_lrs([best[r] for r in FULL_RANKS])
    assert not ex.check_best_lrs(...)
    assert "best_per_cell" in capsys.readouterr().out


def test_papers(capsys):
    right = {"a": "biderman", "b": "hu", "c": "rslora", "d": "qlora", "e": "illusion", "f": "illusion"}
    assert ex.check_papers(right)
    assert ex.check_papers({k.upper(): f" {v.upper()} " for k, v in right.items()})
    # the attribution the course's notes made: alpha = 2r to the Illusion-of-Equivalence paper
    assert not ex.check_papers({**right, "a": "illusion"})
    assert not ex.check_papers({**right, "d": "hu"})
    assert not ex.check_papers(list(right.values()))
    assert not ex.check_papers(...)
    assert "xem lại các câu a" in capsys.readouterr().out
