"""The course dataset's splits (chapter 1): complete Alpaca records, and no record leaking between them."""

from __future__ import annotations

import difflib
import re
import unicodedata
from itertools import combinations

import pytest

from course_utils.data import SPLITS, load_split

SPLIT_RECORDS = {split: load_split(split) for split in SPLITS}


def normalized(text: str) -> str:
    """NFC, lower case, whitespace squashed: two texts that differ only in that are the same record."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text).lower()).strip()


KEYS = {
    "instruction": lambda r: normalized(r["instruction"]),
    "output": lambda r: normalized(r["output"]),
    "instruction + input": lambda r: normalized(r["instruction"] + " " + r["input"]),
}


@pytest.mark.parametrize("a, b", list(combinations(SPLITS, 2)))
@pytest.mark.parametrize("field", list(KEYS))
def test_no_record_shared_between_splits(a, b, field):
    key = KEYS[field]
    shared = {key(r) for r in SPLIT_RECORDS[a]} & {key(r) for r in SPLIT_RECORDS[b]}
    assert not shared, f"{a} và {b} chung {field}: {sorted(shared)[:3]}"


@pytest.mark.parametrize("split", SPLITS)
def test_no_duplicate_inside_a_split(split):
    for field, key in KEYS.items():
        values = [key(r) for r in SPLIT_RECORDS[split]]
        assert len(values) == len(set(values)), f"{split}: {field} trùng"


def test_no_near_duplicate_answer_across_splits():
    """Answers that differ by a few characters (a typo, a punctuation mark) would leak just as well."""
    answers = [(split, normalized(r["output"])) for split in SPLITS for r in SPLIT_RECORDS[split]]
    for (s1, t1), (s2, t2) in combinations(answers, 2):
        if s1 != s2:
            matcher = difflib.SequenceMatcher(None, t1, t2)
            if matcher.real_quick_ratio() > 0.9 and matcher.quick_ratio() > 0.9:
                assert matcher.ratio() <= 0.9, f"{s1}/{s2}: gần trùng\n{t1}\n{t2}"


def test_the_checks_catch_a_leak():
    """The normalisation is what makes a near copy a leak: case and spaces alone must not hide one."""
    record = SPLIT_RECORDS["train"][0]
    copy = dict(record, instruction="  " + record["instruction"].upper().replace(" ", "  "))
    assert KEYS["instruction"](copy) == KEYS["instruction"](record)
    decomposed = dict(record, output=unicodedata.normalize("NFD", record["output"]))
    assert KEYS["output"](decomposed) == KEYS["output"](record)


def test_records_are_complete_alpaca_in_nfc():
    for records in SPLIT_RECORDS.values():
        assert all(set(r) == {"instruction", "input", "output"} and r["instruction"] and r["output"] for r in records)
        assert all(unicodedata.is_normalized("NFC", r["instruction"] + r["input"] + r["output"]) for r in records)
