"""Chat templates and the loss mask: which tokens of a conversation the loss sees, decided from the template.

TRL 1.16 masks everything but the assistant's answers in one of two ways:
- `assistant_only_loss=True`: the template marks each answer with `{% generation %}...{% endgeneration %}`.
  A template without the markers is swapped for TRL's training copy when TRL ships one (Qwen2.5's among them:
  `trl.chat_template_utils.get_training_chat_template`), else TRL refuses it.
- prompt-completion data (`completion_only_loss`): the text before an answer is the prompt, the answer the
  completion; it needs no markers. A conversation of several answers becomes one example per answer.

`loss_strategy(tokenizer)` picks between them from the tokenizer's own template and says why, in Vietnamese.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CourseError

ASSISTANT_ONLY = "assistant_only"
COMPLETION_ONLY = "completion_only"


class TemplateError(CourseError):
    """A tokenizer whose chat template cannot give an assistant mask; the message says what to do."""


def template_text(tokenizer) -> str | None:
    """The tokenizer's chat template (the "default" one when it ships several)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template


def has_generation_markers(template: str | None) -> bool:
    """Whether a template marks the assistant's answers with {% generation %} (TRL's own test)."""
    from trl.chat_template_utils import has_generation_markers as trl_has_markers

    return bool(template) and trl_has_markers(template)


def training_template(tokenizer) -> str | None:
    """The template that gives an assistant mask: the tokenizer's own if it has markers, else TRL's training
    copy of it (what SFTTrainer swaps in with assistant_only_loss=True), else None."""
    from trl.chat_template_utils import get_training_chat_template

    template = template_text(tokenizer)
    if not template:
        return None
    if has_generation_markers(template):
        return template
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:  # TRL has no training copy of this template
        return None
    return patched or template


@dataclass(frozen=True)
class LossStrategy:
    """How the loss is restricted to the answers: loss_on (assistant_only or completion_only), and why."""

    loss_on: str
    reason: str


def loss_strategy(tokenizer) -> LossStrategy:
    """assistant_only when the template (or TRL's training copy of it) marks the answers, else completion_only."""
    template = template_text(tokenizer)
    if not template:
        raise TemplateError("Bộ tách từ này không có mẫu hội thoại (chat_template). Hãy dùng bản Instruct/Chat của "
                            "mô hình, hoặc gán tokenizer.chat_template trước khi huấn luyện.")
    if has_generation_markers(template):
        return LossStrategy(ASSISTANT_ONLY, "mẫu hội thoại có dấu {% generation %}: loss tính trên mọi câu trả lời "
                                            "của trợ lý (assistant_only_loss).")
    if training_template(tokenizer) is not None:
        return LossStrategy(ASSISTANT_ONLY, "mẫu hội thoại không có dấu {% generation %}, nhưng TRL có bản huấn luyện "
                                            "của đúng mẫu này và tự thay vào: loss tính trên mọi câu trả lời của "
                                            "trợ lý (assistant_only_loss).")
    return LossStrategy(COMPLETION_ONLY, "mẫu hội thoại không có dấu {% generation %} và TRL không có bản huấn luyện "
                                         "cho nó: dữ liệu được chuyển sang dạng prompt – completion (mỗi câu trả lời "
                                         "của trợ lý là một mẫu), loss chỉ tính trên câu trả lời.")


def assistant_mask(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(input_ids, mask) of one conversation: mask[i] = 1 for the tokens the assistant_only loss trains on.

    Uses the template TRL would train with (see training_template); refuses, with what to do, a template that
    gives no mask instead of returning an all-zero one.
    """
    template = training_template(tokenizer)
    if template is None:
        raise TemplateError(
            "Mẫu hội thoại của bộ tách từ này không đánh dấu câu trả lời của trợ lý ({% generation %}) và TRL không "
            "có bản huấn luyện cho nó: return_assistant_tokens_mask sẽ trả về toàn số 0, tức loss không tính trên "
            "token nào. Hãy dùng dữ liệu dạng prompt – completion (course_utils.templates.loss_strategy chọn giúp).")
    enc = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
    if any(m["role"] == "assistant" for m in messages) and not any(mask):
        raise TemplateError("Mặt nạ trợ lý toàn số 0 dù hội thoại có câu trả lời: mẫu hội thoại đặt dấu "
                            "{% generation %} sai chỗ. Hãy kiểm tra lại mẫu, hoặc dùng dữ liệu prompt – completion.")
    return ids, mask
