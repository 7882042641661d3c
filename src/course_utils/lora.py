"""LoRA: parameter counts from a config (the from-scratch layer is built in the LoRA chapter)."""

from __future__ import annotations

from .configs import linear_shapes


def resolve_targets(model_config, target_modules) -> tuple[str, ...]:
    """LoRA target names of one decoder layer; "all-linear" means every projection (not lm_head)."""
    names = tuple(linear_shapes(model_config))
    if target_modules == "all-linear":
        return names
    if isinstance(target_modules, str):
        target_modules = (target_modules,)
    unknown = [t for t in target_modules if t not in names]
    if unknown:
        raise ValueError(f"Không có lớp {unknown} trong mô hình này; các lớp tuyến tính là {list(names)}.")
    return tuple(target_modules)


def count_lora_params(model_config, r: int, target_modules="all-linear") -> int:
    """Trainable LoRA parameters: r * (in + out) for each targeted linear layer of every decoder layer."""
    shapes = linear_shapes(model_config)
    per_layer = sum(r * (shapes[n][0] + shapes[n][1]) for n in resolve_targets(model_config, target_modules))
    return per_layer * model_config.num_hidden_layers
