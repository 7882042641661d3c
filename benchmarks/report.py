"""Print the tables of chapter 9 from benchmarks/results (course_utils.results renders them; a test checks that
book/09_qlora_lab.md contains each of them as printed).

    python benchmarks/report.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from course_utils.results import chapter_blocks  # noqa: E402


def main() -> None:
    for name, block in chapter_blocks().items():
        print(f"<!-- {name} -->\n{block}\n")


if __name__ == "__main__":
    main()
