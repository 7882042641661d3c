"""Shared fixtures: the repository root and the tiny model (built once per machine, cached)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    from course_utils.tiny import tiny_model_dir

    return tiny_model_dir()


@pytest.fixture(scope="module")
def raw(request) -> str:
    """The text of book/<STEM>.md, STEM set by the test module."""
    return (ROOT / "book" / f"{request.module.STEM}.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(raw) -> str:
    """The page with every run of whitespace (line breaks included) made one space."""
    return " ".join(raw.split())
