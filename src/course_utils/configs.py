"""Reference model configurations (offline copies), and parameter counts (model, LoRA) from a config."""

from __future__ import annotations

from transformers import MistralConfig, Qwen2Config



def qwen25_7b_config() -> Qwen2Config:
    """Qwen2.5-7B-Instruct's config.json values (profiles.QWEN25_7B) (hidden 3584, 28 layers, 28 heads, 4 KV heads)."""
    return Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        tie_word_embeddings=False,
        use_sliding_window=False,
        bos_token_id=151643,
        eos_token_id=151645,
    )


def vistral_7b_config() -> MistralConfig:
    """Vistral-7B-Chat's config.json values (Mistral-7B with a 38369-token Vietnamese vocabulary)."""
    return MistralConfig(
        vocab_size=38369,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        sliding_window=4096,
        bos_token_id=1,
        eos_token_id=2,
    )


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _qkv_bias(config) -> bool:
    # Qwen2 always has q/k/v biases; Llama/Mistral only with attention_bias=True
    return config.model_type == "qwen2" or bool(getattr(config, "attention_bias", False))


def linear_shapes(config) -> dict[str, tuple[int, int]]:
    """(out_features, in_features) of each linear layer of one decoder layer."""
    h, d = config.hidden_size, head_dim(config)
    q, kv = config.num_attention_heads * d, config.num_key_value_heads * d
    i = config.intermediate_size
    return {
        "q_proj": (q, h), "k_proj": (kv, h), "v_proj": (kv, h), "o_proj": (h, q),
        "gate_proj": (i, h), "up_proj": (i, h), "down_proj": (h, i),
    }


ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")


def parameter_counts(config) -> dict[str, int]:
    """Parameters by group: embed_tokens, attention, mlp, norms, lm_head, and their total."""
    shapes = linear_shapes(config)
    n_layers = config.num_hidden_layers
    attn = sum(o * i for name, (o, i) in shapes.items() if name in ATTENTION_MODULES)
    if _qkv_bias(config):
        attn += sum(shapes[n][0] for n in ("q_proj", "k_proj", "v_proj"))
    mlp = sum(o * i for name, (o, i) in shapes.items() if name in MLP_MODULES)
    embed = config.vocab_size * config.hidden_size
    counts = {
        "embed_tokens": embed,
        "attention": attn * n_layers,
        "mlp": mlp * n_layers,
        "norms": (2 * n_layers + 1) * config.hidden_size,
        "lm_head": 0 if config.tie_word_embeddings else embed,
    }
    counts["total"] = sum(counts.values())
    return counts


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
