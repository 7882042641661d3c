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
