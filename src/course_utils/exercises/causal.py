"""Exercise checkers of chapter 4 (causal language models and masking). Expected values are computed."""

from __future__ import annotations

from . import check_choice, check_number, report, unanswered
from ..attention import causal_mask


def check_mask_count(answer, n: int) -> bool:
    """bt-04-1: how many (query, key) pairs may attend in a causal mask of n positions."""
    if unanswered(answer):
        return False
    expected = int(causal_mask(n).sum())
    try:
        if float(answer) == expected - n:
            return report(False, "bạn đã bỏ đường chéo. Mỗi vị trí được chú ý tới chính nó, nên đường chéo "
                                 "cũng là True.")
        if float(answer) == n * n:
            return report(False, "đó là số ô của cả ma trận; mặt nạ nhân quả che nửa trên đường chéo.")
    except (TypeError, ValueError):
        pass
    return check_number(answer, expected, hint="đếm số ô True của causal_mask(n): hàng i có i + 1 ô True.",
                        praise=f"Với n = {n}, gần một nửa ma trận điểm số bị che.")


def check_loss(answer, model, input_ids, labels) -> bool:
    """bt-04-2: the loss computed by hand equals the one the model computes from `labels`."""
    import torch

    if unanswered(answer):
        return False

    with torch.no_grad():
        expected = model(input_ids=input_ids, labels=labels).loss.item()
    return check_number(answer, expected, rel_tol=1e-4,
                        hint="dịch một vị trí: logits[:, :-1] dự đoán labels[:, 1:]; các vị trí có nhãn -100 "
                             "không được tính (cross_entropy bỏ qua chúng với ignore_index=-100).",
                        praise="Mô hình tự dịch nhãn bên trong: bạn chỉ cần truyền labels trùng vị trí với input_ids.")


def check_changed_positions(answer, n_tokens: int, j: int) -> bool:
    """bt-04-3: the positions whose logits change when the token at position j changes: j, j + 1, ..., n - 1."""
    if unanswered(answer):
        return False
    expected = set(range(j, n_tokens))
    try:
        given = {int(p) for p in answer}
    except TypeError:
        return report(False, "cần một tập hoặc danh sách các vị trí (số nguyên), ví dụ {3, 4, 5}.")
    if given and min(given) < j:
        return report(False, f"vị trí {min(given)} đứng trước vị trí {j} nên không thể thấy token đã đổi. "
                             "Hãy kiểm tra lại ngưỡng so sánh (sai khác rất nhỏ, cỡ 1e-6, là sai số làm tròn).")
    return check_choice(given, expected,
                        hint=f"vị trí {j} và mọi vị trí sau nó đều nhìn thấy token ở vị trí {j}.",
                        praise=f"Chỉ các vị trí từ {j} trở đi đổi: mô hình nhân quả không nhìn về tương lai.")


def check_task_type(answer) -> bool:
    """bt-04-4: the peft task type for fine-tuning a decoder-only chat model such as Qwen2.5-7B-Instruct."""
    from peft import TaskType

    if unanswered(answer):
        return False

    value = str(getattr(answer, "value", answer)).strip().upper()
    if value.startswith("CAS"):
        return report(False, "chú ý chính tả: CAUSAL (nhân quả), không phải CASUAL (tùy ý). "
                             "peft báo lỗi ValueError với tên viết sai.")
    if value == TaskType.SEQ_2_SEQ_LM.value:
        return report(False, "SEQ_2_SEQ_LM dành cho mô hình encoder – decoder như T5, BART. "
                             "Qwen2.5 chỉ có decoder.")
    return check_choice(value, TaskType.CAUSAL_LM.value,
                        hint="Qwen2.5 là mô hình chỉ có decoder, sinh token tiếp theo từ các token đứng trước.",
                        praise="get_peft_model khi đó trả về PeftModelForCausalLM.")


def check_scored_positions(answer, labels) -> bool:
    """bt-04-5: how many positions TRL's fused LM head scores on a GPU: those whose next-token label is not -100."""
    if unanswered(answer):
        return False
    expected = int((labels[:, 1:] != -100).sum())
    try:
        value = float(answer)
    except (TypeError, ValueError):
        value = None
    if value == int((labels != -100).sum()) and value != expected:
        return report(False, "bạn đếm nhãn khác -100 trên cả chuỗi, chưa dịch một vị trí. Vector ẩn ở vị trí t đi với "
                             "nhãn ở vị trí t + 1: đếm trên labels[:, 1:].")
    if value == labels[:, 1:].numel():
        return report(False, "đó là mọi vị trí có dự đoán, cũng là số vị trí mà lượt truyền xuôi thường tính logits. "
                             "Đầu LM hợp nhất bỏ qua các vị trí có nhãn tiếp theo là -100.")
    return check_number(answer, expected,
                        hint="đếm các ô khác -100 của labels[:, 1:] (nhãn của token tiếp theo).",
                        praise="Trên GPU, chỉ chừng đó hàng logits được tính; lời nhắc và phần đệm không tốn gì ở lm_head.")
