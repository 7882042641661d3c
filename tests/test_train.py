"""build_trainer: fp32 adapters, the NaN guard, resuming without training past max_steps."""

import math

import pytest
import torch

from course_utils.data import load_split
from course_utils.models import load_model_and_tokenizer
from course_utils.profiles import get_profile
from course_utils.train import StopOnNaN, build_trainer, loss_history, train_with_resume


@pytest.fixture()
def small():
    return get_profile("tiny").replace(max_steps=4, save_steps=2, eval_steps=2, logging_steps=1,
                                       per_device_train_batch_size=2, max_length=512)


def test_adapters_are_fp32_and_only_answers_count(small, tmp_path):
    model, tok = load_model_and_tokenizer(small)
    trainer = build_trainer(model, tok, load_split("train")[:8], load_split("validation")[:2], small, tmp_path)
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    kept = tok.decode(ids[labels != -100])
    assert "<|im_start|>" not in kept and kept.endswith("<|im_end|>")  # the assistant answer only


def test_resume_does_not_train_past_max_steps(small, tmp_path):
    data, val = load_split("train")[:40], load_split("validation")[:2]
    model, tok = load_model_and_tokenizer(small)
    first = build_trainer(model, tok, data, val, small, tmp_path, disable_tqdm=True)
    assert train_with_resume(first) is None
    assert first.state.global_step == 4
    model, tok = load_model_and_tokenizer(small)
    again = build_trainer(model, tok, data, val, small, tmp_path, disable_tqdm=True)
    assert train_with_resume(again).endswith("checkpoint-4")
    assert again.state.global_step == 4
    h = loss_history(again.state.log_history)
    assert h["eval_step"][0] == 0 and h["eval_step"][-1] == 4  # the history of the finished run is kept
    lora_a = [p for n, p in again.model.named_parameters() if "lora_B" in n][0]
    assert lora_a.abs().sum() > 0  # trained adapter weights were loaded (B starts at zero)


def test_stop_on_nan_says_what_to_do():
    with pytest.raises(FloatingPointError) as e:
        StopOnNaN().on_log(None, type("S", (), {"global_step": 7})(), None, logs={"loss": math.nan})
    assert "learning_rate" in str(e.value) and "7" in str(e.value)
    StopOnNaN().on_log(None, type("S", (), {"global_step": 7})(), None, logs={"loss": 1.0})
