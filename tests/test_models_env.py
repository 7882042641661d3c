"""The hub code path (t4 profiles) exercised on a local directory; GPU and token errors say what to do."""

import pytest
import torch

from course_utils.env import EnvironmentProblem, check_gpu, get_hf_token
from course_utils.models import generate_answers, load_model_and_tokenizer, model_path
from course_utils.profiles import get_profile


def test_t4_profile_without_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EnvironmentProblem) as e:
        check_gpu(get_profile("t4"))
    assert "T4 GPU" in str(e.value) and "tiny" in str(e.value)


def test_gated_model_token(monkeypatch):
    vistral = get_profile("t4-vistral")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(EnvironmentProblem) as e:
        get_hf_token(vistral, prompt=False)
    assert "HF_TOKEN" in str(e.value) and "Secrets" in str(e.value)
    monkeypatch.setenv("HF_TOKEN", "hf_test_value")
    assert get_hf_token(vistral) == "hf_test_value"
    assert get_hf_token(get_profile("t4")) == "hf_test_value"  # not gated, but a token there is used (any model id)
    monkeypatch.delenv("HF_TOKEN")
    assert get_hf_token(get_profile("t4")) is None  # and none is asked for


def test_gated_profile_on_a_local_copy_asks_no_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: pytest.fail("asked for a token"))
    local = get_profile("t4-vistral").replace(model_id=str(tmp_path))
    assert get_hf_token(local) is None
    with pytest.raises(EnvironmentProblem):  # the hub id still needs one
        get_hf_token(get_profile("t4-vistral"), prompt=False)


def test_hub_path_on_a_local_directory(tiny_dir, monkeypatch):
    """The t4 profile's loader, pointed at a local model directory instead of the hub id."""
    import bitsandbytes as bnb

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = get_profile("t4").replace(model_id=str(tiny_dir), needs_gpu=False, dtype="float32")
    assert model_path(local) == str(tiny_dir)
    model, tok = load_model_and_tokenizer(local)
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == 28
    assert model.model.embed_tokens.weight.dtype == torch.float32
    answers = generate_answers(model, tok, ["LoRA là gì?", "Lượng tử hóa là gì?"], max_new_tokens=8)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    # greedy: the same prompt gives the same answer alone or in a batch (left padding)
    assert generate_answers(model, tok, ["Lượng tử hóa là gì?"], max_new_tokens=8) == answers[1:]


@pytest.mark.parametrize("name", ["t4", "t4-vistral", "tiny"])
def test_the_profile_cuda_settings_reach_torch(monkeypatch, name):
    """apply_cuda_settings hands the profile's SDPA and allocator choices to torch (recorded here: no GPU in CI)."""
    from course_utils.models import apply_cuda_settings

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cuda, "enable_cudnn_sdp", lambda on: calls.append(("cudnn_sdp", on)))
    monkeypatch.setattr(torch.cuda.memory, "_set_allocator_settings", lambda s: calls.append(("allocator", s)))
    profile = get_profile(name)
    apply_cuda_settings(profile)
    assert ("cudnn_sdp", profile.sdpa_cudnn) in calls
    assert (("allocator", "expandable_segments:True") in calls) == profile.expandable_segments
    apply_cuda_settings(profile.replace(expandable_segments=True))
    assert ("allocator", "expandable_segments:True") in calls
    if name != "tiny":  # the recipe measured in calls D2 and D3
        assert ("cudnn_sdp", False) in calls and ("allocator", "expandable_segments:True") in calls


def test_no_cuda_settings_without_a_gpu(monkeypatch):
    from course_utils.models import apply_cuda_settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.cuda, "enable_cudnn_sdp", lambda on: pytest.fail("set without a GPU"))
    apply_cuda_settings(get_profile("t4"))
