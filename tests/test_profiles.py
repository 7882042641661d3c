import dataclasses

import pytest

from course_utils import profiles
from course_utils.profiles import PROFILES, ProfileError, get_profile


def test_explicit_name_wins(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "t4")
    assert get_profile("tiny").name == "tiny"


def test_environment_variable_then_gpu_then_tiny(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "t4-vistral")
    assert get_profile().name == "t4-vistral"
    monkeypatch.delenv("COURSE_PROFILE")
    monkeypatch.setattr(profiles, "_cuda_available", lambda: True)
    assert get_profile().name == "t4"
    monkeypatch.setattr(profiles, "_cuda_available", lambda: False)
    assert get_profile().name == "tiny"


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ProfileError) as e:
        get_profile("t5")
    message = str(e.value)
    assert "t5" in message and all(f'"{name}"' in message for name in PROFILES)
    assert "hợp lệ" in message  # Vietnamese


def test_profiles_are_frozen_and_complete():
    p = get_profile("t4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.max_length = 10
    assert p.replace(max_length=10).max_length == 10 and p.max_length == 1024
    assert p.model_id == "Qwen/Qwen2.5-7B-Instruct" and p.fp16 and p.dtype == "float16" and p.load_in_4bit
    assert get_profile("t4-vistral").model_id == "Viet-Mistral/Vistral-7B-Chat"
    tiny = get_profile("tiny")
    assert tiny.is_tiny and not tiny.needs_gpu and not tiny.fp16
    for name, prof in PROFILES.items():  # everything a run needs is there
        for field in ("max_length", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                      "learning_rate", "lora_r", "lora_alpha", "lora_target_modules", "eval_steps"):
            assert getattr(prof, field) is not None, (name, field)
