"""Every figure a chapter quotes, computed by the course's own functions: one table per chapter.

`figures(stem)` returns {name: value} for book/<stem>.md and the prose of notebooks/<stem>.py, from the
module course_utils.figures.chNN (NN: the chapter number). The notebook shows the table in its last
cell (`show_figures`), and a test checks that every number on the page and in the notebook's prose is one of
its written forms (`written_forms`): no hand-typed figure.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ..display import vi_num


def figures(stem: str) -> dict[str, float]:
    """{name: value} of the chapter whose page is book/<stem>.md (e.g. "03_attention_ffn")."""
    module = importlib.import_module(f"{__name__}.ch{stem[:2]}")
    return dict(module.figures())


def written_forms(values: Mapping[str, float] | dict) -> set[str]:
    """How each value may be written on a page: vi_num with 0 to 3 decimals (integers: 0 decimals)."""
    forms = set()
    for value in values.values():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            forms.add(vi_num(value))
        else:
            forms |= {vi_num(value, d) for d in range(4)}
    return forms


def show_figures(stem: str):
    """The chapter's figures as a table (name, value as the page writes it), for the notebook's last cell."""
    import pandas as pd

    rows = [(name, vi_num(v) if isinstance(v, int) else vi_num(v, 2)) for name, v in figures(stem).items()]
    return pd.DataFrame(rows, columns=["số liệu", "giá trị"]).set_index("số liệu")
