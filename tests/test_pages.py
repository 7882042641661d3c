"""Every number a learner reads on a page or in a notebook's prose is computed (course_utils.figures)."""

import pytest

from course_utils.figures import figures
from prose import ROOT, notebook_path, notebook_prose, page, unchecked

PAGES = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.md"))


@pytest.mark.parametrize("stem", PAGES)
def test_every_number_on_the_page_is_computed(stem):
    assert unchecked(page(stem), figures(stem)) == [], f"book/{stem}.md: số không được tính bởi course_utils.figures"
    if notebook_path(stem).exists():
        assert unchecked(notebook_prose(stem), figures(stem)) == [], f"notebooks/{stem}.py"
