"""The exercise checkers of chapter 6: right answers pass, typical wrong answers fail, the placeholder `...` too."""

from __future__ import annotations

import torch

from course_utils.configs import linear_shapes, qwen25_7b_config
from course_utils.exercises import NO_ANSWER
from course_utils.exercises import lora as ex

QWEN = qwen25_7b_config()


def test_gate_proj_params(capsys):
    out_f, in_f = linear_shapes(QWEN)["gate_proj"]
    assert ex.check_gate_proj_params(16 * (in_f + out_f))
    assert not ex.check_gate_proj_params(16 * in_f * out_f)  # multiplied in by out
    assert "không nhân in với out" in capsys.readouterr().out
    assert not ex.check_gate_proj_params(16 * in_f)  # A only
    assert not ex.check_gate_proj_params(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_lora_output(capsys):
    layer, x = ex.make_layer()
    with torch.no_grad():
        right = x @ layer.base.weight.T + layer.base.bias + layer.scaling * (x @ layer.lora_A.T) @ layer.lora_B.T
        no_scaling = x @ layer.base.weight.T + layer.base.bias + (x @ layer.lora_A.T) @ layer.lora_B.T
        no_bias = x @ layer.base.weight.T + layer.scaling * (x @ layer.lora_A.T) @ layer.lora_B.T
    assert ex.check_lora_output(right, layer, x)
    assert not ex.check_lora_output(no_scaling, layer, x)
    assert "layer.scaling" in capsys.readouterr().out
    assert not ex.check_lora_output(no_bias, layer, x)
    assert not ex.check_lora_output(right.T, layer, x)  # wrong shape
    assert not ex.check_lora_output(..., layer, x)
    assert NO_ANSWER in capsys.readouterr().out


def test_merge_4bit(capsys):
    assert ex.check_merge_4bit({"b", "d"})
    assert not ex.check_merge_4bit({"a", "d"})  # the common belief: merging dequantizes to 16 bits
    assert not ex.check_merge_4bit({"b", "c", "d"})  # the merged model is not the evaluated one
    assert not ex.check_merge_4bit(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_ffn_last_layers(capsys, tiny_dir):
    from transformers import AutoConfig

    shapes = linear_shapes(AutoConfig.from_pretrained(tiny_dir))
    right = 2 * sum(4 * (shapes[n][0] + shapes[n][1]) for n in ("gate_proj", "up_proj", "down_proj"))
    assert ex.check_ffn_last_layers(right)
    assert not ex.check_ffn_last_layers(right // 2)  # one decoder layer
    assert not ex.check_ffn_last_layers(2 * right)  # rank 8, or all four layers
    assert not ex.check_ffn_last_layers(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_dora_extra(capsys):
    shapes = linear_shapes(QWEN)
    layers = QWEN.num_hidden_layers
    assert ex.check_dora_extra(sum(o for o, _ in shapes.values()) * layers)
    assert not ex.check_dora_extra(sum(i for _, i in shapes.values()) * layers)  # one per input
    assert "đầu ra" in capsys.readouterr().out
    assert not ex.check_dora_extra(sum(o for o, _ in shapes.values()))  # one decoder layer
    assert not ex.check_dora_extra(...)
    assert NO_ANSWER in capsys.readouterr().out
