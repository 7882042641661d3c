"""The exercise checkers of chapter 4: right answers pass, typical wrong answers fail, the placeholder `...` too."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM

from course_utils.exercises import NO_ANSWER
from course_utils.exercises import causal as ex


def test_mask_count(capsys):
    n = 1024
    assert ex.check_mask_count(n * (n + 1) // 2, n)
    assert not ex.check_mask_count(n * (n - 1) // 2, n)  # without the diagonal
    assert "đường chéo" in capsys.readouterr().out
    assert not ex.check_mask_count(n * n, n)
    assert not ex.check_mask_count(..., n)
    assert NO_ANSWER in capsys.readouterr().out


def test_loss_uses_the_model(capsys):
    torch.manual_seed(7)
    config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = Qwen2ForCausalLM(config).eval()
    ids = torch.randint(0, 64, (1, 12))
    labels = ids.clone()
    labels[:, :5] = -100
    with torch.no_grad():
        logits = model(ids).logits
    right = F.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100).item()
    unshifted = F.cross_entropy(logits[0], labels[0], ignore_index=-100).item()
    every_token = F.cross_entropy(logits[0, :-1], ids[0, 1:]).item()  # the prompt left in the loss
    assert ex.check_loss(right, model, ids, labels)
    assert not ex.check_loss(unshifted, model, ids, labels)
    assert not ex.check_loss(every_token, model, ids, labels)
    assert not ex.check_loss(..., model, ids, labels)
    assert NO_ANSWER in capsys.readouterr().out


def test_changed_positions(capsys):
    assert ex.check_changed_positions({3, 4, 5, 6}, 7, 3)
    assert ex.check_changed_positions([3, 4, 5, 6], 7, 3)
    assert not ex.check_changed_positions({2, 3, 4, 5, 6}, 7, 3)  # a position before j
    assert not ex.check_changed_positions({3}, 7, 3)
    assert not ex.check_changed_positions(3, 7, 3)
    assert not ex.check_changed_positions(..., 7, 3)
    assert NO_ANSWER in capsys.readouterr().out


def test_task_type(capsys):
    from peft import TaskType

    assert ex.check_task_type(TaskType.CAUSAL_LM) and ex.check_task_type("causal_lm")
    assert not ex.check_task_type("CAUSAL_LM".replace("AUS", "ASU"))
    assert "CAUSAL" in capsys.readouterr().out
    assert not ex.check_task_type(TaskType.SEQ_2_SEQ_LM)
    assert not ex.check_task_type(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_scored_positions(capsys):
    labels = torch.tensor([[-100, -100, 5, 6, 7, -100],   # the next-token labels of row 0: 5, 6, 7 -> 3
                           [-100, 8, 9, -100, -100, -100]])  # 8, 9 -> 2
    assert ex.check_scored_positions(5, labels)
    assert not ex.check_scored_positions(int((labels != -100).sum()) + 1, labels)
    labels[0, 0] = 4  # a label at position 0 has no hidden state before it: not scored
    assert ex.check_scored_positions(5, labels)
    assert not ex.check_scored_positions(6, labels)  # forgot the shift
    assert "dịch một vị trí" in capsys.readouterr().out
    assert not ex.check_scored_positions(labels[:, 1:].numel(), labels)  # every position
    assert not ex.check_scored_positions(..., labels)
    assert NO_ANSWER in capsys.readouterr().out
