"""Glossary: chapters use its spelling, link its terms, and every {term} reference exists."""

import re

import pytest
import yaml

from prose import ROOT, learner_text

GLOSSARY = (ROOT / "book/glossary.md").read_text(encoding="utf-8")
VARIANTS = yaml.safe_load((ROOT / "book/glossary_variants.yml").read_text(encoding="utf-8"))
CHAPTERS = sorted(p for p in (ROOT / "book").glob("[0-9][0-9]_*.md"))
NOTEBOOK_SOURCES = sorted((ROOT / "notebooks").glob("*.py"))


def glossary_terms() -> set[str]:
    block = GLOSSARY.split(":::{glossary}", 1)[1].split("\n:::", 1)[0]
    return {line.strip().lower() for line in block.splitlines() if line.strip() and not line.startswith(" ")}


def test_glossary_has_the_core_terms():
    terms = glossary_terms()
    for t in ("lượng tử hóa", "lora", "qlora", "nf4", "quá khớp", "tinh chỉnh", "rouge", "cơ chế chú ý"):
        assert t in terms
    assert sorted(k for k in VARIANTS if k.lower() not in terms) == []  # the chosen spellings are glossary terms


@pytest.mark.parametrize("path", CHAPTERS + NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_no_variant_spelling(path):
    text = learner_text(path).lower()
    for chosen, variants in VARIANTS.items():
        for v in variants:
            assert v.lower() not in text, f'{path.name}: "{v}" — viết "{chosen}"'


@pytest.mark.parametrize("path", CHAPTERS + NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_term_references_exist(path):
    terms = glossary_terms()
    for ref in re.findall(r"\{term\}`([^`]+)`", path.read_text(encoding="utf-8")):
        target = re.search(r"<([^>]+)>$", ref)
        name = " ".join((target.group(1) if target else ref).split()).lower()
        assert name in terms, f"{path.name}: {{term}}`{ref}` không có trong book/glossary.md"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_link_the_glossary(path):
    assert "{term}`" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted((ROOT / "book").glob("*.md")) + NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_learner_text_is_nfc(path):
    import unicodedata

    text = path.read_text(encoding="utf-8")
    assert text == unicodedata.normalize("NFC", text), f"{path.name}: chuẩn hóa về NFC trước khi commit"
