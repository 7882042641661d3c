"""Chapter 7: the claims a learner could be misled by, checked against the configs, the profiles and the committed
sweep (course_utils/data/sweep_rank_alpha.jsonl). Tables and numbers are read from the page; no sentence is pinned."""

from __future__ import annotations

import re

import pytest

from course_utils.configs import count_lora_params, qwen25_7b_config
from course_utils.display import vi_num
from course_utils.figures.ch07 import QLORA_RANKS_TESTED
from course_utils.profiles import get_profile
from course_utils.sweep import (BASE_LR, FULL_LRS, FULL_RANKS, SCALINGS, at_lr, best_per_cell, load_results,
                                scaling_of, seed_spread)
from prose import page

STEM = "07_rank_alpha"
CELL = r"(\d+(?:\.\d{3})*(?:,\d+)?)"


def number(text: str) -> float:
    return float(text.replace(".", "").replace(",", "."))


def written_as(text: str, value: float) -> bool:
    decimals = len(text.split(",")[1]) if "," in text else 0
    return text == vi_num(value, decimals)


def test_scaling_table_is_computed_for_qwen():
    """Each row of the table is one rule's s at the header's ranks, for Qwen2.5-7B's hidden size (3.584, not 4.096)."""
    text, h = page(STEM), qwen25_7b_config().hidden_size
    assert vi_num(h) in text and "4.096" not in text
    header = re.search(r"\| quy tắc \| r = " + r" \| r = ".join([CELL] * 4) + r" \|", text)
    ranks = [int(number(x)) for x in header.groups()]
    assert ranks[-1] == h
    rows = re.findall(r"\| ([^|]+?) \| " + r" \| ".join([CELL] * 4) + r" \|", text)
    matched = set()
    for label, *cells in rows:
        rules = [n for n in SCALINGS if all(written_as(c, scaling_of(n, r, h)) for c, r in zip(cells, ranks))]
        assert len(rules) == 1, (label, cells)
        matched |= set(rules)
    assert matched == set(SCALINGS)


def test_ranks_quoted_are_the_ones_tested():
    """QLoRA's "r does not matter" is quoted with the ranks its appendix tried; the sweep with its own grid."""
    quoted = {tuple(int(x) for x in m.split(", ")) for m in re.findall(r"r \\in \\\{([\d, ]+)\\\}", page(STEM))}
    assert quoted == {QLORA_RANKS_TESTED, FULL_RANKS}


def test_lab_configuration():
    t4, qwen = get_profile("t4"), qwen25_7b_config()
    text = page(STEM)
    r, alpha, s = (int(x) for x in re.search(r"\$r = (\d+)\$, \$\\alpha = (\d+)\$ \(\$s = (\d+)\$\)", text).groups())
    assert (r, alpha, s) == (t4.lora_r, t4.lora_alpha, t4.lora_alpha // t4.lora_r)
    assert alpha == 2 * r and t4.lora_target_modules == "all-linear"
    assert vi_num(count_lora_params(qwen, r, "all-linear")) in text


def test_sweep_findings_hold_in_the_committed_results():
    """What the page reads from the sweep is what the committed runs say (every loss a mean over the seeds)."""
    rows = load_results()
    best, fixed, noise = best_per_cell(rows), at_lr(rows, BASE_LR), seed_spread(rows)
    # every cell's best learning rate lies inside the grid: the tuning is not cut short by its edges
    assert all(min(FULL_LRS) < lr < max(FULL_LRS) for lr, _ in best.values())
    # at one learning rate the rules differ; tuned, they differ no more than the seeds of one cell do
    spread = lambda losses, r: max(losses[(n, r)] for n in SCALINGS) - min(losses[(n, r)] for n in SCALINGS)  # noqa
    tuned = {cell: loss for cell, (_, loss) in best.items()}
    assert max(spread(tuned, r) for r in FULL_RANKS) < min(spread(fixed, r) for r in FULL_RANKS) / 3
    assert max(spread(tuned, r) for r in FULL_RANKS) <= max(noise.values())
    # alpha = 16 (s = 16 / r): flat in r from 4 to 64 at every learning rate up to twice the profile's
    for lr in (x for x in FULL_LRS if x <= 2 * BASE_LR):
        row = [at_lr(rows, lr)[("alpha = 16", r)] for r in FULL_RANKS[1:]]
        assert max(row) - min(row) < 0.05, lr
    # the best learning rate falls with r when s is constant, and stays within a factor 2 with alpha fixed
    for rule in ("alpha = r", "alpha = 2r"):
        lrs = [best[(rule, r)][0] for r in FULL_RANKS]
        assert lrs == sorted(lrs, reverse=True) and lrs[0] >= 8 * lrs[-1], rule
    for rule in ("alpha = 16", "rsLoRA, alpha = 16"):
        lrs = [best[(rule, r)][0] for r in FULL_RANKS]
        assert max(lrs) <= 2 * min(lrs), rule


def test_best_loss_by_rank_as_the_page_lists_it():
    """The page lists the tuned loss of each r: the committed values, lower for every larger r."""
    rows = load_results()
    best = best_per_cell(rows)
    by_rank = {r: min(best[(n, r)][1] for n in SCALINGS) for r in FULL_RANKS}
    assert list(by_rank.values()) == sorted(by_rank.values(), reverse=True)
    quoted = {int(r): loss for loss, r in re.findall(r"(\d,\d+) ở \$r = (\d+)\$", page(STEM))}
    assert set(quoted) == set(FULL_RANKS)
    assert all(written_as(quoted[r], by_rank[r]) for r in FULL_RANKS)
    # "small": neighbouring ranks are no further apart than the seeds of one cell
    gaps = [a - b for a, b in zip(list(by_rank.values()), list(by_rank.values())[1:])]
    assert max(gaps) <= max(seed_spread(rows).values())


def test_sweep_settings_as_the_page_describes():
    """Steps, batch, sequence length, validation size and learning-rate range: those of the committed runs."""
    from course_utils.data import load_split
    from course_utils.sweep import BATCH_SIZE, MAX_LENGTH, STEPS

    text = page(STEM)
    assert {tuple(int(x) for x in m) for m in re.findall(r"(\d+) bước, batch (\d+) chuỗi (\d+) token", text)} == {
        (STEPS, BATCH_SIZE, MAX_LENGTH)}
    assert {int(n) for n in re.findall(r"(\d+) mẫu\b", text)} == {len(load_split("validation"))}
    low, low_exp, high, high_exp = re.search(
        r"từ \$([\d,]+) \\cdot 10\^\{(-\d+)\}\$ đến \$([\d,]+) \\cdot 10\^\{(-\d+)\}\$", text).groups()
    assert number(low) * 10 ** int(low_exp) == pytest.approx(min(FULL_LRS))
    assert number(high) * 10 ** int(high_exp) == pytest.approx(max(FULL_LRS))
    assert {x["steps"] for x in load_results() if x["rule"] != "base"} == {STEPS}
