"""Write each notebook's header cells from _config.yml and requirements.txt, then pair .ipynb with .py.

The .py (jupytext py:percent) is the source; the .ipynb is written from it, without outputs.
Header cells, found by their tag:
- "colab-badge": the title line kept, then the "Open in Colab" badge and the note on the tiny model;
- "colab-install": pip install of the pinned packages and of course_utils from the repository, on Colab only.

    python scripts/sync_notebooks.py          # rewrite
    python scripts/sync_notebooks.py --check  # list what is out of date, exit 1 if anything is
    python scripts/sync_notebooks.py notebooks/05_luong_tu_hoa.py  # only these notebooks
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# what a notebook needs at run time on Colab (torch stays Colab's own)
RUNTIME_PACKAGES = ["transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets", "rouge-score",
                    "matplotlib", "liger-kernel"]
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
TINY_NOTE = (
    ":::{note}\n"
    "Trên trang web này, notebook đã được chạy lúc dựng trang với profile `tiny`: mô hình tiny "
    "của khóa học, một Qwen2 rất nhỏ chạy trên CPU. Mọi đầu ra của mô hình ở đây đến từ mô hình tiny đó, "
    "không phải từ một mô hình 7B.\n"
    ":::"
)


def repository() -> tuple[str, str]:
    """(url, branch) from _config.yml, the one place where they are written."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def github_path() -> str:
    url, _ = repository()
    m = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)", url)
    if not m:
        raise ValueError(f"repository.url phải có dạng https://github.com/<tổ chức>/<kho>, không phải {url}")
    return m.group(1)


def colab_url(notebook: str) -> str:
    _, branch = repository()
    return f"https://colab.research.google.com/github/{github_path()}/blob/{branch}/notebooks/{notebook}"


def pins() -> dict[str, str]:
    """name -> version of every `name==version` line of requirements.txt."""
    out = {}
    lines = []
    for name in ("requirements.txt", "requirements-gpu.txt"):
        lines += (ROOT / name).read_text(encoding="utf-8").splitlines()
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def install_specs() -> list[str]:
    p = pins()
    url, branch = repository()
    return [f"{name}=={p[name]}" for name in RUNTIME_PACKAGES] + [f"course_utils @ git+{url}@{branch}"]


def badge_source(title_line: str, notebook: str) -> str:
    return f"{title_line}\n\n[![Mở trong Colab]({BADGE})]({colab_url(notebook)})\n\n{TINY_NOTE}"


def install_source() -> str:
    specs = ",\n        ".join(f'"{s}"' for s in install_specs())
    return (
        "# Ô cài đặt cho Google Colab; ở nơi khác (máy của bạn, CI) phần cài đặt không làm gì.\n"
        "# Phiên bản được ghim đúng như requirements.txt của khóa học; torch của Colab được giữ nguyên.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run([\n"
        '        sys.executable, "-m", "pip", "install", "-q",\n'
        f"        {specs},\n"
        "    ], check=True)\n"
        "\n"
        "from course_utils.compat import quiet_logs\n"
        "\n"
        "quiet_logs()  # ẩn các thông báo người học không cần xử lý (xem course_utils/compat.py)"
    )


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def expected_notebook(py_path: Path):
    """The notebook as it should be: header cells regenerated, no outputs."""
    nb = jupytext.read(py_path)
    name = py_path.with_suffix(".ipynb").name
    badge = [c for c in nb.cells if "colab-badge" in _tags(c)]
    if not badge or nb.cells[0] is not badge[0]:
        raise ValueError(f'{py_path.name}: ô đầu tiên phải là ô markdown có tag "colab-badge" (dòng đầu: "# tiêu đề").')
    title = badge[0].source.splitlines()[0] if badge[0].source.strip() else "# (thiếu tiêu đề)"
    badge[0].source = badge_source(title, name)
    installs = [c for c in nb.cells if "colab-install" in _tags(c)]
    if not installs or nb.cells[1] is not installs[0]:
        raise ValueError(f'{py_path.name}: ô thứ hai phải là ô code có tag "colab-install".')
    installs[0].source = install_source()
    installs[0].metadata["tags"] = ["colab-install", "hide-input"]  # folded on the site, visible on Colab
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"  # stable ids: the .ipynb is the same bytes for the same .py
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def render(nb) -> tuple[str, str]:
    """(py text, ipynb text) of a notebook."""
    return jupytext.writes(nb, fmt="py:percent"), jupytext.writes(nb, fmt="ipynb")


def out_of_date() -> list[str]:
    stale = []
    for py_path in sorted(NOTEBOOKS.glob("*.py")):
        py, ipynb = render(expected_notebook(py_path))
        if py_path.read_text(encoding="utf-8") != py:
            stale.append(py_path.name)
        nb_path = py_path.with_suffix(".ipynb")
        if not nb_path.exists() or nb_path.read_text(encoding="utf-8") != ipynb:
            stale.append(nb_path.name)
    return stale


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = out_of_date()
        for name in stale:
            print(f"cần đồng bộ: notebooks/{name}")
        return 1 if stale else 0
    chosen = [Path(a).resolve().with_suffix(".py") for a in argv]
    for py_path in chosen or sorted(NOTEBOOKS.glob("*.py")):
        py, ipynb = render(expected_notebook(py_path))
        py_path.write_text(py, encoding="utf-8")
        py_path.with_suffix(".ipynb").write_text(ipynb, encoding="utf-8")
        print(f"đã đồng bộ: notebooks/{py_path.stem}.{{py,ipynb}}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
