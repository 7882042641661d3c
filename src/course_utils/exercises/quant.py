"""Checkers of chapter 5 (quantization math). Each prints Vietnamese feedback and returns True/False."""

from __future__ import annotations

from . import check_choice, check_number, check_tensor, report, unanswered

BLOCK_SIZES = (32, 64, 128, 256, 512)

# Exercise 1: which BitsAndBytesConfig fields act on a 4-bit load (transformers 5.23)
FIELDS_4BIT = {
    "a": "bnb_4bit_quant_type",
    "b": "bnb_4bit_use_double_quant",
    "c": "bnb_4bit_compute_dtype",
    "d": "llm_int8_threshold",
    "e": "llm_int8_skip_modules",
    "f": "bnb_8bit_use_double_quant",
    "g": "llm_int8_enable_fp32_cpu_offload",
}
ACTIVE_4BIT = {"a", "b", "c", "e", "g"}


def check_bnb_fields(answer) -> bool:
    """bt-05-1. answer: the set of letters of FIELDS_4BIT that change what a 4-bit load does."""
    if unanswered(answer):
        return False
    chosen = {str(a).strip().lower() for a in answer} if isinstance(answer, (set, list, tuple)) else set()
    if not chosen:
        return report(False, 'trả lời bằng một tập các chữ cái, ví dụ {"a", "b"}.')
    hints = []
    if "d" in chosen:
        hints.append("llm_int8_threshold chỉ được truyền cho Linear8bitLt (LLM.int8()), lớp 4-bit không dùng nó.")
    if "f" in chosen:
        hints.append("bnb_8bit_use_double_quant không phải là trường của BitsAndBytesConfig: nó bị bỏ qua.")
    if not {"e", "g"} <= chosen:
        hints.append("tên bắt đầu bằng llm_int8_ nhưng trình lượng tử hóa 4-bit của transformers vẫn đọc "
                     "llm_int8_skip_modules và llm_int8_enable_fp32_cpu_offload (xem quantizer_bnb_4bit.py).")
    if not {"a", "b", "c"} <= chosen:
        hints.append("ba trường bnb_4bit_* đều được truyền cho Linear4bit.")
    return check_choice(chosen, ACTIVE_4BIT, hint=" ".join(hints),
                        praise="Tên llm_int8_* gây hiểu nhầm: hai trong số đó cũng áp dụng cho 4-bit.")


def expected_bits_per_param(blocksize: int = 128, dq_blocksize: int = 256) -> float:
    """NF4 with double quantization: 4 bits + one 8-bit constant per block + one fp32 per dq block."""
    from ..memory import bits_per_param_4bit

    return bits_per_param_4bit(True, blocksize=blocksize, dq_blocksize=dq_blocksize)


def check_bits_per_param(answer) -> bool:
    """bt-05-2: bits per parameter of NF4 with blocks of 128 and double quantization (blocks of 256)."""
    return check_number(answer, expected_bits_per_param(128, 256), rel_tol=1e-6,
                        hint="4 bit cho mã, cộng 8 bit hằng số cho mỗi khối 128 giá trị, cộng 32 bit "
                             "cho mỗi 256 hằng số (tức mỗi 128 × 256 giá trị).",
                        praise="Khối lớn hơn thì tốn ít bit hơn, nhưng một ngoại lai làm hỏng nhiều giá trị hơn.")


def check_nf4_codes(codes, x) -> bool:
    """bt-05-3: NF4 codes of x (blocks of 64, the last one short) computed without nf4_quantize."""
    import torch

    from ..quant import nf4_quantize

    if unanswered(codes):
        return False
    expected, _ = nf4_quantize(x)
    if not isinstance(codes, torch.Tensor):
        return report(False, f"cần một torch.Tensor, nhận được {type(codes).__name__}.")
    codes = codes.reshape(-1)
    if codes.numel() != expected.numel():
        return report(False, f"cần {expected.numel()} mã (một mã cho mỗi giá trị), nhận được {codes.numel()}.")
    wrong = (codes.long() != expected.long()).nonzero().flatten()
    if wrong.numel():
        where = "khối cuối (ngắn)" if wrong.min() >= 64 else "khối đầu"
        return report(False, f"{wrong.numel()} mã sai, mã sai đầu tiên ở vị trí {int(wrong[0])} ({where}). "
                             "Mỗi khối chia cho absmax của chính nó, rồi lấy mức gần nhất trong NF4_LEVELS.")
    return report(True, praise="Mã giống hệt nf4_quantize, nên cũng giống bitsandbytes.")


def blocksize_errors(weight, block_sizes=BLOCK_SIZES) -> list[float]:
    """Relative error ||W - W_hat|| / ||W|| of NF4 for each block size."""
    from ..quant import nf4_dequantize, nf4_quantize

    errors = []
    for b in block_sizes:
        codes, absmax = nf4_quantize(weight, blocksize=b)
        w_hat = nf4_dequantize(codes, absmax, weight.shape, blocksize=b)
        errors.append(((weight.float() - w_hat).norm() / weight.float().norm()).item())
    return errors


def check_blocksize_errors(errors, weight) -> bool:
    """bt-05-4: the list of relative errors of NF4 on `weight` for the block sizes BLOCK_SIZES."""
    import torch

    if unanswered(errors):
        return False
    expected = torch.tensor(blocksize_errors(weight))
    try:
        answer = torch.as_tensor([float(e) for e in errors])
    except (TypeError, ValueError):
        return report(False, "cần một danh sách các số, mỗi kích thước khối một số.")
    return check_tensor(answer, expected, atol=1e-6, rtol=1e-4,
                        hint="dùng sai số tương đối ||W - W_hat|| / ||W|| và đúng thứ tự BLOCK_SIZES.",
                        praise="Sai số tăng dần theo kích thước khối, còn số bit mỗi tham số thì giảm.")


def skipped_steps(gradient: float, init_scale: float, backoff_factor: float = 0.5) -> int:
    """Steps a GradScaler skips before its first update when the largest fp16 gradient is `gradient` times S."""
    import torch

    scale, skipped = init_scale, 0
    while torch.isinf(torch.tensor(scale * gradient).half()):
        scale, skipped = scale * backoff_factor, skipped + 1
    return skipped


def check_skipped_steps(answer, gradient: float, init_scale: float) -> bool:
    """bt-05-5: how many steps a GradScaler starting at init_scale skips when S · gradient overflows fp16."""
    if unanswered(answer):
        return False
    expected = skipped_steps(gradient, init_scale)
    if isinstance(answer, (int, float)) and answer == expected - 1:
        return report(False, "gần đúng: S · G phải nhỏ hơn hoặc bằng 65504 (số lớn nhất của fp16) thì mới không tràn; "
                             "đếm lại lần giảm S cuối cùng.")
    return check_number(answer, expected, rel_tol=0, abs_tol=0,
                        hint="mỗi bước tràn, S giảm một nửa; bước đầu tiên được cập nhật là bước đầu tiên có "
                             "S · G ≤ 65504.",
                        praise="Mỗi bước bị bỏ qua là một bước không học: GradScaler đang dò S.")
