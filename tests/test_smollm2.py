"""The lab on a real pretrained model (SmolLM2-135M-Instruct), end to end on a CPU, with a learner-style data file."""

import json

import pytest

from course_utils import lab
from course_utils.profiles import get_profile
from course_utils.templates import COMPLETION_ONLY, loss_strategy

# a small set, repeated: the loss must fall on it within a few steps
RECORDS = [{"instruction": f"Mã số của phòng {name} là gì?", "input": "", "output": f"Phòng {name} có mã số {code}."}
           for name, code in (("Sen", 17), ("Mai", 42), ("Cúc", 8), ("Lan", 91), ("Đào", 63), ("Huệ", 25))] * 3


@pytest.fixture(scope="module")
def profile(smollm2_dir):
    # its own hyper-parameters on the tiny profile's CPU settings; fp32 LoRA (bitsandbytes' 4-bit CPU path is
    # tested on the tiny model and is slow on 135 M parameters)
    return get_profile("tiny").replace(model_id=str(smollm2_dir), load_in_4bit=False, max_steps=4, eval_steps=4,
                                       save_steps=4, logging_steps=1, per_device_train_batch_size=4, max_length=128,
                                       learning_rate=1e-3, n_eval_examples=1, eval_max_new_tokens=6)


def test_its_own_chatml_template_and_an_answer_only_mask(profile, tmp_path):
    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import build_trainer

    model, tok = load_model_and_tokenizer(profile)
    assert "<|im_start|>" in tok.chat_template and "SmolLM" in tok.chat_template  # its own ChatML template
    assert loss_strategy(tok).loss_on == COMPLETION_ONLY  # no generation markers, no TRL copy: prompt-completion
    trainer = build_trainer(model, tok, RECORDS[:2], None, profile, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        text, kept = tok.decode(ids), tok.decode(ids[labels != -100])
        assert text.startswith("<|im_start|>system\n") and "<|im_start|>assistant\n" in text
        answer = next(r["output"] for r in RECORDS if r["output"] in text)
        assert kept.strip() == f"{answer}<|im_end|>"  # the answer and its end-of-turn token, nothing else


def test_the_lab_end_to_end(profile, tmp_path):
    data = tmp_path / "du_lieu.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n", encoding="utf-8")
    summary = lab.run(profile, tmp_path / "out", data=str(data))
    assert summary["steps"] == 4 and summary["losses_finite"]
    assert summary["eval_loss_last"] < 0.5 * summary["eval_loss_first"]  # it learns the repeated set
    assert summary["reloaded_answers_identical"] is True
