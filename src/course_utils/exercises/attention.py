"""Exercise checkers of chapter 3 (attention and the FFN). Expected values are computed, never typed in."""

from __future__ import annotations

from . import check_number, check_tensor, report, unanswered
from ..attention import scaled_dot_product_attention
from ..configs import head_dim, parameter_counts, qwen25_7b_config, vistral_7b_config


def _as_float(answer) -> float | None:
    try:
        return float(answer)
    except (TypeError, ValueError):
        return None


def check_head_dim(answer) -> bool:
    """bt-03-1: d_k of Qwen2.5-7B, the size of one head (not the hidden size)."""
    if unanswered(answer):
        return False
    config = qwen25_7b_config()
    d_k = head_dim(config)
    if _as_float(answer) == config.hidden_size:
        return report(False, f"{config.hidden_size} là hidden_size, kích thước của cả vector ẩn. d_k là "
                             "kích thước của một đầu: hidden_size chia cho số đầu attention.")
    return check_number(answer, d_k,
                        hint="d_k = hidden_size / num_attention_heads, lấy từ config của Qwen2.5-7B.",
                        praise=f"Mỗi đầu làm việc trong không gian {d_k} chiều, nên điểm số chia cho √{d_k}.")


def check_single_query(answer, q, k, v) -> bool:
    """bt-03-2: the attention output of one query q (d,) over keys k (n, d) and values v (n, dv)."""
    if unanswered(answer):
        return False
    expected = scaled_dot_product_attention(q[None, :], k, v)[0]
    if hasattr(answer, "shape") and tuple(answer.shape) == (k.shape[0],):
        return report(False, "bạn trả về vector trọng số (n phần tử). Còn thiếu bước nhân với V: "
                             "đầu ra là tổng các hàng của V, có trọng số.")
    return check_tensor(answer, expected,
                        hint="điểm = k @ q / √d; trọng số = softmax(điểm); đầu ra = trọng số @ v.",
                        praise="Đầu ra là trung bình có trọng số của các hàng của V.")


def mlp_share_of_non_embedding(config) -> float:
    """MLP parameters over the parameters outside embed_tokens and lm_head."""
    counts = parameter_counts(config)
    return counts["mlp"] / (counts["total"] - counts["embed_tokens"] - counts["lm_head"])


def check_mlp_share(answer) -> bool:
    """bt-03-3: the MLP's share of Vistral-7B's non-embedding parameters, as a fraction."""
    if unanswered(answer):
        return False
    expected = mlp_share_of_non_embedding(vistral_7b_config())
    value = _as_float(answer)
    if value is not None and 1 < value <= 100:
        return report(False, "hãy trả lời bằng tỉ lệ giữa 0 và 1 (ví dụ 0.5), không phải phần trăm.")
    return check_number(answer, expected, rel_tol=1e-3,
                        hint="mẫu số là total - embed_tokens - lm_head của parameter_counts(vistral_7b_config()).",
                        praise="Ở Vistral-7B cũng vậy: phần lớn tham số ngoài embedding nằm trong MLP.")


def kv_cache_ratio(config) -> float:
    """How many times smaller the KV cache is with the config's GQA than with one K/V head per query head."""
    return config.num_attention_heads / config.num_key_value_heads


def check_kv_values_per_token(answer) -> bool:
    """bt-03-4: values of K and V stored per token and per layer for Qwen2.5-7B."""
    if unanswered(answer):
        return False
    config = qwen25_7b_config()
    expected = 2 * config.num_key_value_heads * head_dim(config)
    if _as_float(answer) == expected // 2:
        return report(False, "bạn mới đếm K (hoặc V). Mỗi token lưu cả K lẫn V cho mỗi đầu key/value.")
    if _as_float(answer) == 2 * config.num_attention_heads * head_dim(config):
        return report(False, "đó là số giá trị khi mỗi đầu query có K, V riêng. Qwen2.5-7B dùng GQA: chỉ "
                             "num_key_value_heads đầu key/value.")
    return check_number(answer, expected,
                        hint="mỗi token lưu một vector K và một vector V cho mỗi đầu key/value: "
                             "2 × num_key_value_heads × head_dim.")


def check_kv_ratio(answer) -> bool:
    """bt-03-5: how much smaller GQA makes Qwen2.5-7B's KV cache than full multi-head attention."""
    if unanswered(answer):
        return False
    ratio = kv_cache_ratio(qwen25_7b_config())
    return check_number(answer, ratio,
                        hint="so số đầu query (mỗi đầu có K, V riêng nếu không dùng GQA) với số đầu key/value.",
                        praise=f"{ratio:g} đầu query dùng chung một cặp K, V nên KV cache nhỏ đi {ratio:g} lần.")
