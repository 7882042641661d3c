"""Small display helpers: show a function's source, write numbers the Vietnamese way."""

from __future__ import annotations

import inspect


def show_source(obj):
    """The source of a course_utils function or class, highlighted in a notebook (d2l's #@save spirit)."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def vi_num(x: float, digits: int = 0) -> str:
    """A number written the Vietnamese way: '.' between thousands, ',' before decimals (7.615.616.512; 7,62)."""
    s = f"{x:,.{digits}f}"
    return s.replace(",", "\0").replace(".", ",").replace("\0", ".")
