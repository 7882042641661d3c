"""Read a chapter's page and notebook prose, to check that computed numbers appear as written."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]


def squash(text: str) -> str:
    """Every run of whitespace (line breaks included) made one space."""
    return re.sub(r"\s+", " ", text)


def chapter(stem: str) -> SimpleNamespace:
    """page(), source(), notebook_prose(), in_page(*needles), in_notebook(*needles) of book/<stem>.md and notebooks/<stem>.py."""
    page_path, notebook_path = ROOT / "book" / f"{stem}.md", ROOT / "notebooks" / f"{stem}.py"

    @lru_cache
    def page() -> str:
        return squash(page_path.read_text(encoding="utf-8"))

    @lru_cache
    def source() -> str:
        return notebook_path.read_text(encoding="utf-8")

    @lru_cache
    def notebook_prose() -> str:
        """The markdown cells of the py:percent source, without their leading '# '."""
        cells, inside = [], False
        for line in source().splitlines():
            if line.startswith("# %%"):
                inside = "[markdown]" in line
                continue
            if inside:
                cells.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        return squash("\n".join(cells))

    def in_page(*needles: str) -> None:
        for needle in needles:
            assert squash(needle) in page(), f"không thấy {needle!r} trong {page_path.name}"

    def in_notebook(*needles: str) -> None:
        for needle in needles:
            assert squash(needle) in notebook_prose(), f"không thấy {needle!r} trong phần chữ của {notebook_path.name}"

    return SimpleNamespace(page=page, source=source, notebook_prose=notebook_prose, in_page=in_page,
                           in_notebook=in_notebook, page_path=page_path, notebook_path=notebook_path)
