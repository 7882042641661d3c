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



@pytest.mark.parametrize("changes, words", [
    ({"max_steps": -3}, "max_steps"), ({"max_steps": 0}, "max_steps"), ({"per_device_train_batch_size": 0}, "batch"),
    ({"learning_rate": 0.0}, "learning_rate"), ({"loss_on": "answers"}, "loss_on"), ({"lora_r": 2.5}, "lora_r"),
    ({"validation_share": 1.0}, "validation_share"), ({"no_such_field": 1}, "no_such_field"),
])
def test_a_bad_setting_is_refused_in_vietnamese(changes, words):
    with pytest.raises(ProfileError, match=words) as e:
        get_profile("t4").replace(**changes)
    assert "phải" in str(e.value) or "không có" in str(e.value)


def test_settings_from_the_command_line_are_typed_like_the_field():
    p = get_profile("tiny").with_settings(["lora_r=8", "learning_rate=1e-4", "use_liger_kernel=true", "lora_dropout=0"])
    assert (p.lora_r, p.learning_rate, p.use_liger_kernel, p.lora_dropout) == (8, 1e-4, True, 0.0)
    for bad in ("lora_r=tám", "lora_r", "khong_co=1", "use_liger_kernel=có"):
        with pytest.raises(ProfileError):
            get_profile("tiny").with_settings([bad])
