"""Exercise checkers of chapter 1 (introduction): ways of fine-tuning, parameter counts, data formats, memory."""

from __future__ import annotations

from . import check_number, report, unanswered

WAYS = ("tự giám sát", "có giám sát", "tăng cường")
FINE_TUNING_WAYS = {"a": "tự giám sát", "b": "có giám sát", "c": "tăng cường"}
WHY = {
    "a": "nhãn là token tiếp theo của chính văn bản thô, không ai phải gán nhãn",
    "b": "mỗi câu hỏi có sẵn câu trả lời mẫu (nhãn)",
    "c": "tín hiệu học là điểm thưởng từ đánh giá của con người, không phải một câu trả lời mẫu",
}
QLORA_LENGTHS = (2048, 4096, 8192, 16384)


def _norm(text) -> str:
    return " ".join(str(text).strip().lower().split())


def check_fine_tuning_ways(answer: dict) -> bool:
    """answer: {"a": way, "b": way, "c": way} with way in WAYS."""
    if unanswered(answer):
        return False
    if not isinstance(answer, dict) or set(answer) != set(FINE_TUNING_WAYS):
        return report(False, 'cần một từ điển có đúng ba khóa "a", "b", "c".')
    unknown = [k for k, v in answer.items() if v is Ellipsis or _norm(v) not in WAYS]
    if unknown:
        return report(False, f"mục {', '.join(sorted(unknown))}: chỉ chọn một trong {', '.join(WAYS)}.")
    wrong = sorted(k for k, v in answer.items() if _norm(v) != FINE_TUNING_WAYS[k])
    if wrong:
        k = wrong[0]
        return report(False, f"xem lại mục {', '.join(wrong)}. Với ({k}): tín hiệu học đến từ đâu?")
    return report(True, praise="(a) " + WHY["a"] + "; (b) " + WHY["b"] + "; (c) " + WHY["c"] + ".")


def check_vistral_params(answer) -> bool:
    """The parameter count of Vistral-7B-Chat, from its config."""
    from ..configs import parameter_counts, vistral_7b_config

    if unanswered(answer):
        return False
    counts = parameter_counts(vistral_7b_config())
    expected = counts["total"]
    try:
        value = int(answer)
    except (TypeError, ValueError):
        return check_number(answer, expected)
    if value == expected:
        return report(True, praise=f"{expected:,} tham số; MLP chiếm {counts['mlp'] / expected:.0%}.")
    if value <= 0:
        return report(False, "số tham số phải dương: embedding + các lớp decoder + norm cuối + lm_head.")
    diff = value - expected
    hints = {
        counts["lm_head"]: "bạn đã tính lm_head hai lần, hoặc cộng thêm một embedding.",
        -counts["lm_head"]: "Vistral không dùng chung embedding và lm_head (tie_word_embeddings=False): tính cả hai.",
        -(2 * vistral_7b_config().num_hidden_layers + 1) * vistral_7b_config().hidden_size:
            "còn thiếu các lớp RMSNorm (hai lớp mỗi decoder, cộng một lớp cuối).",
    }
    return report(False, hints.get(diff, f"lệch {diff:+,} tham số. Kiểm tra k_proj/v_proj: Vistral có "
                                          "num_key_value_heads = 8, hẹp hơn q_proj."))


def check_sharegpt_record(answer: dict, alpaca: dict) -> bool:
    """A ShareGPT record (no system turn) equal to course_utils.data.alpaca_to_sharegpt(alpaca)."""
    from ..data import alpaca_to_sharegpt

    if unanswered(answer):
        return False
    expected = alpaca_to_sharegpt(alpaca)
    turns = answer.get("conversations") if isinstance(answer, dict) else None
    if not isinstance(turns, list) or not turns:
        return report(False, 'cần {"conversations": [ {...}, {...} ]} với hai lượt.')
    if len(turns) != 2:
        return report(False, f"một bản ghi Alpaca thành đúng hai lượt (human rồi gpt), bạn có {len(turns)}.")
    if [t.get("from") for t in turns] != ["human", "gpt"]:
        return report(False, 'vai của hai lượt là "human" rồi "gpt" (khóa "from").')
    if turns[1].get("value") != expected["conversations"][1]["value"]:
        return report(False, 'lượt "gpt" là nguyên văn trường output.')
    if turns[0].get("value") != expected["conversations"][0]["value"]:
        return report(False, "lượt human là instruction, rồi một dòng trống (\\n\\n), rồi input.")
    return report(True)


def check_qlora_max_length(answer) -> bool:
    """Largest max_length in QLORA_LENGTHS whose QLoRA plan fits the t4 budget (batch 2)."""
    from ..configs import qwen25_7b_config
    from ..memory import estimate_training_memory
    from ..profiles import get_profile

    if unanswered(answer):
        return False
    t4 = get_profile("t4")
    cfg = qwen25_7b_config()
    fits = [n for n in QLORA_LENGTHS if estimate_training_memory(cfg, t4.replace(max_length=n), "qlora").fits]
    expected = max(fits)
    if answer == expected:
        return report(True, praise="Activation tăng theo batch × max_length; trọng số 4-bit thì đứng yên.")
    if answer in QLORA_LENGTHS and answer > expected:
        return report(False, f"với {answer}, plan.fits là False: xem dòng 'Cần ... / ngân sách' và dòng RAM của CPU "
                             "cho activation offload trong plan.table().")
    return report(False, f"chọn trong {QLORA_LENGTHS}; thử từng giá trị với t4.replace(max_length=...).")
