"""Print the tables of chapter 9 from benchmarks/results (course_utils.results renders them; a test checks that
book/09_qlora_lab.md contains each of them as printed).

    python benchmarks/report.py
    python benchmarks/report.py --merge /path/from/device/peers.json --call C1

--merge adds a device call's runs to benchmarks/results/peers.json, each labelled with --call: rows are compared
(course ÷ Unsloth) only within one call, since the GPU's speed varies between calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from course_utils.results import RESULTS, chapter_blocks  # noqa: E402


def merge(path: Path, call: str, target: Path = RESULTS / "peers.json") -> int:
    """Append the runs of one call's peers.json to target (labelled with the call); returns how many."""
    new = json.loads(path.read_text())
    report = json.loads(target.read_text()) if target.exists() else {"runs": []}
    if any(r.get("call") == call for r in report["runs"]):
        raise SystemExit(f"call {call!r} is already in {target}")
    for r in new["runs"]:
        r["call"] = call
    report["runs"] += new["runs"]
    report.update({k: v for k, v in new.items() if k != "runs"})
    target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return len(new["runs"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--merge", type=Path, help="a device call's peers.json")
    ap.add_argument("--call", help="the call's label (with --merge)")
    a = ap.parse_args(argv)
    if a.merge:
        if not a.call:
            ap.error("--merge needs --call")
        print(f"{merge(a.merge, a.call)} runs added")
        return
    for name, block in chapter_blocks().items():
        print(f"<!-- {name} -->\n{block}\n")


if __name__ == "__main__":
    main()
