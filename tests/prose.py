"""The one reader of chapter pages and notebook prose for the tests.

- `page(stem)`: book/<stem>.md as a learner reads it: MyST roles reduced to their text, whitespace squashed.
- `notebook_prose(stem)`: the markdown cells of notebooks/<stem>.py, read the same way.
- `learner_text(path)`: either of them without code (fenced blocks and inline code), for spelling checks.
- `numbers(text)`: the figures a learner reads: numbers with a thousands separator or a decimal comma
  (Vietnamese format: 7.615.616.512, 14,5), and any number followed by a unit (154 MiB, 63 %).
- `unchecked(text, figures)`: the numbers of `text` that no figure of `figures` produces.

Code (fenced blocks, inline code) is left out of `numbers`: it uses Python's format and is run, not read.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# {term}`text <target>` -> text; {doc}`target` -> target; {math}`x` -> x; any other {role}`x` -> x
_ROLE = re.compile(r"\{[a-z:-]+\}`([^`<]*?)(?:\s*<[^>`]*>)?`")
_FENCE = re.compile(r"(```+|~~~+).*?\1", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
UNITS = ("GiB", "MiB", "KiB", "GB", "MB", "KB", "%", "token/s")
_NUMBER = re.compile(
    r"(?<![\w.,])(?:\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+,\d+)(?![\w,])"  # 7.615.616.512, 1.024,5, 14,5
    r"|(?<![\w.,])\d+(?=\s?(?:" + "|".join(re.escape(u) for u in UNITS) + r")(?!\w))"  # 154 MiB, 63 %
)


def squash(text: str) -> str:
    """Every run of whitespace (line breaks included) made one space."""
    return re.sub(r"\s+", " ", text).strip()


def strip_roles(text: str) -> str:
    """MyST roles reduced to the text a reader sees; LaTeX's decimal comma {,} made a plain comma."""
    return _ROLE.sub(r"\1", text).replace("{,}", ",")


def markdown_cells(source: str) -> str:
    """The markdown cells of a py:percent notebook, without their leading '# '."""
    cells, inside = [], False
    for line in source.splitlines():
        if line.startswith("# %%"):
            inside = "[markdown]" in line
            continue
        if inside:
            cells.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    return "\n".join(cells)


def page_path(stem: str) -> Path:
    return ROOT / "book" / f"{stem}.md"


def notebook_path(stem: str) -> Path:
    return ROOT / "notebooks" / f"{stem}.py"


@lru_cache
def _raw(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return markdown_cells(text) if path.suffix == ".py" else text


def page(stem: str) -> str:
    """book/<stem>.md, roles stripped and whitespace squashed (code kept)."""
    return squash(strip_roles(_raw(page_path(stem))))


def notebook_prose(stem: str) -> str:
    """The markdown cells of notebooks/<stem>.py, roles stripped and whitespace squashed (code kept)."""
    return squash(strip_roles(_raw(notebook_path(stem))))


def without_code(text: str) -> str:
    return _INLINE_CODE.sub(" ", _FENCE.sub(" ", text))


def learner_text(path: Path) -> str:
    """What a learner reads of a page or a notebook's prose: no code blocks, no inline code."""
    return squash(without_code(strip_roles(_raw(Path(path)))))


def numbers(text: str) -> set[str]:
    """The figures of a text, as written, code left out (see the module docstring)."""
    return set(_NUMBER.findall(without_code(text)))


def unchecked(text: str, figures) -> list[str]:
    """Numbers in `text` that no figure produces, sorted (an empty list is a pass)."""
    from course_utils.figures import written_forms

    allowed = written_forms(figures)
    return sorted(n for n in numbers(text) if n not in allowed)


def table_row(stem: str, label: str) -> list[str]:
    """The cells after the first of the Markdown table row of book/<stem>.md whose first cell is `label`."""
    for line in page_path(stem).read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {label} |"):
            return [cell.strip() for cell in line.strip("|").split("|")[1:]]
    raise AssertionError(f"không có hàng {label!r} trong bảng của {stem}.md")
