"""Figures of chapter 0 (getting started): the tiny model's size, read from its config and build record."""

from __future__ import annotations

import json


def figures() -> dict:
    from transformers import AutoConfig

    from ..tiny import tiny_model_dir

    model_dir = tiny_model_dir(verbose=False)
    cfg = AutoConfig.from_pretrained(model_dir)
    info = json.loads((model_dir / "course_tiny.json").read_text(encoding="utf-8"))
    return {
        "số lớp decoder của mô hình tiny": cfg.num_hidden_layers,
        "kích thước ẩn của mô hình tiny": cfg.hidden_size,
        "số đầu query": cfg.num_attention_heads,
        "số đầu key/value": cfg.num_key_value_heads,
        "số tham số của mô hình tiny": info["parameters"],
        "số tham số của mô hình tiny (triệu)": info["parameters"] / 1e6,
    }
