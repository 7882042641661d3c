"""Notebooks: paired with their .py, committed without outputs, headers derived from _config.yml and requirements.txt."""

import importlib.util
import json
import re

import pytest
import yaml

from conftest import ROOT


def _sync():
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "scripts/sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _sync()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_is_paired_and_in_sync():
    pys = {p.stem for p in (ROOT / "notebooks").glob("*.py")}
    assert pys == {p.stem for p in NOTEBOOKS}
    assert sync.out_of_date() == [], "run: python scripts/sync_notebooks.py"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs(nb):
    data = json.loads(nb.read_text(encoding="utf-8"))
    for cell in data["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def _cell(nb, tag):
    data = json.loads(nb.read_text(encoding="utf-8"))
    return next("".join(c["source"]) for c in data["cells"] if tag in c.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_install_cell_pins_exactly_requirements(nb):
    pins = sync.pins()
    source = _cell(nb, "colab-install")
    found = dict(re.findall(r'"([A-Za-z0-9_.\-]+)==([^"]+)"', source))
    assert found, "no pinned package in the install cell"
    for name, version in found.items():
        assert pins.get(name.lower()) == version, f"{name}=={version} but requirements.txt pins {pins.get(name.lower())}"
    assert set(sync.RUNTIME_PACKAGES) <= set(found)
    url, branch = sync.repository()
    assert f'"course_utils @ git+{url}@{branch}"' in source
    assert 'if "google.colab" in sys.modules:' in source  # does nothing outside Colab


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_points_at_this_file(nb):
    badge = _cell(nb, "colab-badge")
    assert badge.startswith("# ")
    assert re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)]+)\)", badge) == [sync.colab_url(nb.name)]


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for e in entries:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))
            walk(e.get("chapters", []))

    for part in toc.get("parts", []):
        walk(part["chapters"])
    return files


def test_every_notebook_is_in_the_toc_and_every_entry_exists():
    files = _toc_files()
    for f in files:
        assert (ROOT / f"{f}.md").exists() or (ROOT / f"{f}.ipynb").exists(), f
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in files, nb.name
    for page in (ROOT / "book").glob("*.md"):
        assert f"book/{page.stem}" in files, page.name
