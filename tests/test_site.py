"""The rendered site: builds with warnings as errors, Colab links derived from _config.yml, checked in a browser.

The build here does not execute the notebooks (nbmake already runs every one of them in this test run);
the README's site command does, with the execution cache.
"""

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """Build the whole site once, notebooks not executed, -W -n: any warning fails."""
    out = tmp_path_factory.mktemp("site")
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["execute"]["execute_notebooks"] = "off"
    config_path = out / "_config.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(ROOT), "--config", str(config_path), "--path-output", str(out),
                           "-W", "-n", "--keep-going"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = out / "_build" / "html"
    assert (html / "book" / "index.html").exists()
    return html


def colab_url(nb: str) -> str:
    """The one Colab URL of a notebook: the one scripts/sync_notebooks.py writes into its badge."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "scripts/sync_notebooks.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    return sync.colab_url(f"{nb}.ipynb")


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_notebook_page_has_colab_button_and_badge(site, nb):
    page = (site / "notebooks" / f"{nb}.html").read_text(encoding="utf-8")
    expected = colab_url(nb)
    links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page)
    assert links.count(expected) >= 2, links  # the launch button and the badge at the top of the notebook
    assert all(link == expected or link.endswith("colab-badge.svg") for link in links), links


def test_every_page_built(site):
    for page in sorted((ROOT / "book").glob("*.md")):
        assert (site / "book" / f"{page.stem}.html").exists(), page.name


def test_mathjax_is_served_locally(site):
    page = (site / "book" / "05_luong_tu_hoa.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in page and (site / "_static/mathjax/tex-chtml.js").exists()


# ---------------------------------------------------------------- in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars"]
PAGES = [  # (path, Vietnamese words as written on the page, has math, has a Colab link)
    ("book/index.html", ["Tinh chỉnh LLM", "mô hình ngôn ngữ lớn"], False, False),
    ("book/05_luong_tu_hoa.html", ["lượng tử hóa", "Lượng tử hóa kép"], True, False),
    ("notebooks/00_bat_dau.html", ["Kiểm tra môi trường", "Chọn profile"], False, True),
]


@pytest.fixture(scope="session")
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def chromium(url: str, profile_dir: Path, *extra: str) -> str:
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", "--virtual-time-budget=15000",
                           *extra, url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium không được cài (.ci/run cài nó bằng apt): bỏ qua kiểm tra trình duyệt")
@pytest.mark.parametrize("path, words, math, colab", PAGES, ids=[p[0] for p in PAGES])
def test_page_in_a_real_browser(site, server, tmp_path, path, words, math, colab):
    url = f"{server}/{path}"
    dom = chromium(url, tmp_path / "profile", "--dump-dom")
    for w in words:  # Vietnamese text as written (NFC), after the browser parsed and ran the page
        assert w in dom, w
    if math:  # MathJax replaced the TeX by its own elements
        assert dom.count("<mjx-container") >= 5
    if colab:
        assert colab_url(Path(path).stem) in dom
    shots = ROOT / "_build" / "screenshots"  # kept after the run (the site itself is built in a temporary folder)
    shots.mkdir(parents=True, exist_ok=True)
    png = shots / (path.replace("/", "_").replace(".html", ".png"))
    chromium(url, tmp_path / "profile2", f"--screenshot={png}", "--window-size=1280,1400")
    assert png.exists() and png.stat().st_size > 20_000
    print(f"screenshot: {png}")
