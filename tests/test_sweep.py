"""course_utils.sweep: the rank x alpha x learning-rate sweep runs on a CPU, and its committed results are whole."""

from __future__ import annotations

import math

import pytest

from course_utils.sweep import (FULL_LRS, FULL_RANKS, FULL_SEEDS, SCALINGS, at_lr, best_per_cell, load_results, main,
                                scaling_of, sweep_rank_alpha, write_results)


def test_scalings():
    assert scaling_of("alpha = 16", 64, 128) == 0.25
    assert scaling_of("rsLoRA, alpha = 16", 64, 128) == 2
    assert scaling_of("alpha = 2r", 7, 128) == 2
    assert scaling_of("alpha = √hidden, rsLoRA", 16, 3584) == pytest.approx(math.sqrt(3584 / 16))
    # at r = 64 the rules alpha = 2r and rsLoRA alpha = 16 share s = 2: one run for two cells
    assert scaling_of("alpha = 2r", 64, 128) == scaling_of("rsLoRA, alpha = 16", 64, 128)


def test_a_tiny_sweep_runs_and_its_cells_differ(tmp_path):
    """Two cells x two steps on the CPU, through the command line: finite losses, different per cell."""
    out = tmp_path / "runs.jsonl"
    main(["--ranks", "1", "4", "--rules", "alpha = 16", "rsLoRA, alpha = 16", "--lrs", "0.004",
          "--seeds", "0", "--steps", "2", "--out", str(out)])
    rows = load_results(out)
    base = [x for x in rows if x["rule"] == "base"]
    runs = [x for x in rows if x["rule"] != "base"]
    assert len(base) == 1 and len(runs) == 4
    assert all(math.isfinite(x["loss"]) for x in rows)
    assert all(x["loss"] < base[0]["loss"] for x in runs)  # two steps already lower the validation loss
    # rsLoRA at r = 1 is alpha = 16 at r = 1 (s = 16): the same run; at r = 4 the two differ (s = 4 vs 8)
    loss = {(x["rule"], x["r"]): x["loss"] for x in runs}
    assert loss[("alpha = 16", 1)] == loss[("rsLoRA, alpha = 16", 1)]
    assert loss[("alpha = 16", 4)] != loss[("rsLoRA, alpha = 16", 4)]
    assert loss[("alpha = 16", 1)] != loss[("alpha = 16", 4)]
    # the same grid called from Python gives the same numbers (same seed, same batches)
    again = sweep_rank_alpha(ranks=(4,), scalings=("alpha = 16",), lrs=(0.004,), steps=2, verbose=False)
    assert again[-1]["loss"] == pytest.approx(loss[("alpha = 16", 4)], rel=1e-5)


def test_best_per_cell_averages_seeds_and_picks_the_lowest():
    rows = [
        {"seed": 0, "rule": "base", "r": 0, "s": 0.0, "lr": 0.0, "steps": 0, "loss": 7.0},
        *({"seed": seed, "rule": "alpha = 16", "r": 4, "s": 4.0, "lr": lr, "steps": 16, "loss": loss}
          for seed, lr, loss in [(0, 1e-3, 6.0), (1, 1e-3, 6.2), (0, 2e-3, 5.9), (1, 2e-3, 6.5),
                                 (0, 4e-3, math.inf), (1, 4e-3, 5.0)]),
    ]
    assert best_per_cell(rows) == {("alpha = 16", 4): (1e-3, pytest.approx(6.1))}  # 2e-3: mean 6.2; 4e-3: inf
    assert best_per_cell(rows, seed=0) == {("alpha = 16", 4): (2e-3, 5.9)}
    assert at_lr(rows, 4e-3, seed=1) == {("alpha = 16", 4): 5.0}


def test_results_round_trip_keeps_diverged_runs(tmp_path):
    rows = [{"seed": 0, "rule": "alpha = r", "r": 1, "s": 1.0, "lr": 1e-2, "steps": 16, "loss": math.inf},
            {"seed": 0, "rule": "alpha = r", "r": 1, "s": 1.0, "lr": 1e-3, "steps": 16, "loss": 6.25}]
    path = tmp_path / "r.jsonl"
    write_results(rows, path)
    assert "Infinity" not in path.read_text() and load_results(path) == rows


def test_committed_results_cover_the_whole_grid():
    rows = load_results()
    runs = [x for x in rows if x["rule"] != "base"]
    assert {x["seed"] for x in rows} == set(FULL_SEEDS)
    assert len([x for x in rows if x["rule"] == "base"]) == len(FULL_SEEDS)
    cells = {(x["seed"], x["rule"], x["r"], x["lr"]) for x in runs}
    assert cells == {(seed, rule, r, lr) for seed in FULL_SEEDS for rule in SCALINGS for r in FULL_RANKS
                     for lr in FULL_LRS}
    assert len(runs) == len(cells)
    assert all(x["steps"] == 16 and math.isclose(x["s"], scaling_of(x["rule"], x["r"], 128)) for x in runs)
    assert all(x["loss"] > 0 for x in runs)
