"""What the index, chapter 0 and the teacher's guide say about the exercises is what the notebooks hold."""

from __future__ import annotations

import re

import pytest

from prose import ROOT, page

WORDS = {"một": 1, "hai": 2, "ba": 3, "bốn": 4, "năm": 5}
NOTEBOOKS = {p.stem[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))}


def exercises(chapter: str) -> list[str]:
    """The labels of the exercise-start blocks of a chapter's notebook."""
    source = NOTEBOOKS[chapter].read_text(encoding="utf-8")
    blocks = re.findall(r"```\{exercise-start\}\n# :label: (\S+)", source)
    assert len(blocks) == source.count("{exercise-start}"), f"{NOTEBOOKS[chapter].name}: bài tập không có nhãn"
    return blocks


def index_claim() -> tuple[range, int, set[str]]:
    """(chapters the index promises exercises for, the minimum it promises, the stems it says have none)."""
    text = page("index")
    m = re.search(r"[Cc]ác chương (\d+)[–-](\d+) mỗi chương có ít nhất (\w+) bài tập", text)
    assert m, "index.md không còn nói các chương nào có bao nhiêu bài tập"
    none = re.search(r"([^.]*) không có bài tập riêng", text)
    stems = set(re.findall(r"\b(\d\d_\w+)\b", none.group(1))) if none else set()
    return range(int(m.group(1)), int(m.group(2)) + 1), WORDS[m.group(3)], stems


def test_the_index_promise_holds():
    chapters, minimum, without = index_claim()
    for n in chapters:
        labels = exercises(f"{n:02d}")
        assert len(labels) >= minimum, f"chương {n}: {len(labels)} bài tập, index.md hứa ít nhất {minimum}"
        assert labels == [f"bt-{n:02d}-{k}" for k in range(1, len(labels) + 1)], f"chương {n}: nhãn {labels}"
    for stem in without:
        assert exercises(stem[:2]) == [], f"{stem}: index.md nói không có bài tập"
    assert set(NOTEBOOKS) == {f"{n:02d}" for n in chapters} | {s[:2] for s in without}, "chương nào index.md bỏ sót?"


def test_chapter_zero_says_what_it_has():
    says_none = re.search(r"không có bài tập", page("00_bat_dau")) is not None
    assert says_none == (exercises("00") == [])


@pytest.mark.parametrize("label", sorted(set(re.findall(r"bt-\d\d-\d+", (ROOT / "book/giao_vien.md").read_text(
    encoding="utf-8")))))
def test_teacher_guide_names_real_exercises(label):
    assert label in exercises(label[3:5]), f"giao_vien.md nhắc {label}, notebook không có"
