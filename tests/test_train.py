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


def _losses(profile, data, tmp_path):
    model, tok = load_model_and_tokenizer(profile)
    trainer = build_trainer(model, tok, data, None, profile, tmp_path, save_strategy="no", disable_tqdm=True)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.train()
    return trainer, batch, loss_history(trainer.state.log_history)["train_loss"]


def test_padding_free_trains_like_padding(small, tmp_path):
    """The batch laid end to end, no padding: SDPA keeps the sequences apart, so the losses are the padded ones."""
    data = load_split("train")[:24]
    padded = small.replace(per_device_train_batch_size=4, max_steps=3)
    _, pbatch, plosses = _losses(padded, data, tmp_path / "padded")
    trainer, batch, losses = _losses(padded.replace(padding_free=True), data, tmp_path / "free")
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    starts = (batch["position_ids"][0] == 0).sum().item()
    assert starts == 4 and batch["input_ids"].shape[1] == pbatch["attention_mask"].sum().item()
    assert losses == pytest.approx(plosses, rel=1e-3)
    assert losses != pytest.approx(plosses, rel=1e-7) or pbatch["attention_mask"].all()  # the padding was real


def test_padding_free_cuts_like_trl(small, tmp_path):
    """Padding-free, TRL leaves max_length to us: build_trainer cuts the sequences exactly as TRL would."""
    data = load_split("train")[:16]
    model, tok = load_model_and_tokenizer(small)
    lengths = sorted(len(x) for x in build_trainer(model, tok, data, None, small, tmp_path / "n").train_dataset["input_ids"])
    short = small.replace(max_length=lengths[len(lengths) // 2])  # half the sequences are longer
    cut_by_trl = build_trainer(model, tok, data, data[:4], short, tmp_path / "a").train_dataset
    free = build_trainer(model, tok, data, data[:4], short.replace(padding_free=True), tmp_path / "b")
    assert max(len(x) for x in free.train_dataset["input_ids"]) == short.max_length
    assert free.train_dataset["input_ids"] == cut_by_trl["input_ids"]
    assert free.train_dataset["labels"] == cut_by_trl["labels"]
    assert max(len(x) for x in free.eval_dataset["input_ids"]) <= short.max_length



@pytest.mark.parametrize("padding_free", [False, True])
def test_a_max_length_that_cuts_every_answer_is_refused(small, tmp_path, padding_free):
    """Every answer cut away by max_length: a Vietnamese error that says to raise it, not an empty-sampler traceback."""
    from course_utils.errors import CourseError

    data = load_split("train")[:8]
    short = small.replace(max_length=8, padding_free=padding_free)
    model, tok = load_model_and_tokenizer(short)
    with pytest.raises(CourseError, match="max_length=8") as e:
        build_trainer(model, tok, data, data[:2], short, tmp_path)
    assert "--max-length 16" in str(e.value)



def test_training_with_an_8bit_optimizer_leaves_no_embedding_behind(small, tmp_path):
    """build_trainer's trainers give bitsandbytes' global references to the embedding back at the end of training
    (compat.release_optim_overrides): the model, once deleted, is freed whole."""
    import gc

    def embeddings():
        gc.collect()
        return sum(isinstance(o, torch.nn.Embedding) for o in gc.get_objects())

    before = embeddings()
    profile = small.replace(max_steps=1, optim="adamw_8bit")
    model, tok = load_model_and_tokenizer(profile)
    trainer = build_trainer(model, tok, load_split("train")[:8], None, profile, tmp_path, save_strategy="no",
                            disable_tqdm=True)
    trainer.train()
    del trainer, model
    assert embeddings() == before
