"""course_utils.templates against TRL 1.16 and transformers: which tokens the assistant-only loss sees."""

from __future__ import annotations

import copy

import pytest
from trl.chat_template_utils import get_training_chat_template, qwen2_5_chat_template, qwen2_5_training_chat_template

from course_utils.templates import (
    ASSISTANT_ONLY,
    COMPLETION_ONLY,
    TemplateError,
    assistant_mask,
    has_generation_markers,
    loss_strategy,
    template_text,
    training_template,
)

MESSAGES = [
    {"role": "system", "content": "Bạn là trợ lý."},
    {"role": "user", "content": "Một cộng một bằng mấy?"},
    {"role": "assistant", "content": "Bằng hai."},
    {"role": "user", "content": "Còn hai cộng hai?"},
    {"role": "assistant", "content": "Bằng bốn."},
]
# same ChatML layout as Qwen's, no {% generation %}, and not a template TRL ships
MARKERLESS = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
              "{% endfor %}")


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from course_utils.models import load_tokenizer
    from course_utils.profiles import get_profile

    return load_tokenizer(get_profile("tiny"))


def with_template(tokenizer, template: str):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


def masked_text(tokenizer, ids, mask) -> str:
    return tokenizer.decode([i for i, keep in zip(ids, mask) if keep])


def test_tiny_template_has_markers(tiny_tokenizer):
    assert has_generation_markers(template_text(tiny_tokenizer))
    assert training_template(tiny_tokenizer) == template_text(tiny_tokenizer)
    assert loss_strategy(tiny_tokenizer).loss_on == ASSISTANT_ONLY
    ids, mask = assistant_mask(tiny_tokenizer, MESSAGES)
    assert masked_text(tiny_tokenizer, ids, mask) == "Bằng hai.<|im_end|>Bằng bốn.<|im_end|>"


def test_qwen25_template_uses_trl_training_copy(tiny_tokenizer):
    qwen = with_template(tiny_tokenizer, qwen2_5_chat_template)
    assert not has_generation_markers(qwen2_5_chat_template)  # Qwen2.5's own template has no markers
    # transformers alone: an all-zero mask, no error
    raw = qwen.apply_chat_template(MESSAGES, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert sum(raw["assistant_masks"]) == 0
    # TRL swaps in its training copy, which renders the same text
    assert get_training_chat_template(qwen) == qwen2_5_training_chat_template == training_template(qwen)
    assert (qwen.apply_chat_template(MESSAGES, tokenize=False)
            == qwen.apply_chat_template(MESSAGES, tokenize=False, chat_template=qwen2_5_training_chat_template))
    assert loss_strategy(qwen).loss_on == ASSISTANT_ONLY
    ids, mask = assistant_mask(qwen, MESSAGES)
    trained = masked_text(qwen, ids, mask)
    assert trained == "\nBằng hai.<|im_end|>\n\nBằng bốn.<|im_end|>\n"  # the end-of-turn token is in the loss
    assert mask[-2:] == [1, 1] and qwen.convert_ids_to_tokens(ids[-2]) == "<|im_end|>"


def test_markerless_unknown_template_is_refused(tiny_tokenizer):
    plain = with_template(tiny_tokenizer, MARKERLESS)
    assert not has_generation_markers(MARKERLESS)
    with pytest.raises(ValueError):  # what SFTTrainer(assistant_only_loss=True) calls
        get_training_chat_template(plain)
    raw = plain.apply_chat_template(MESSAGES, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert sum(raw["assistant_masks"]) == 0  # transformers: silently all zeros
    assert training_template(plain) is None
    assert loss_strategy(plain).loss_on == COMPLETION_ONLY
    with pytest.raises(TemplateError, match="prompt – completion"):
        assistant_mask(plain, MESSAGES)


def test_no_template_is_refused(tiny_tokenizer):
    none = with_template(tiny_tokenizer, None)
    with pytest.raises(TemplateError):
        loss_strategy(none)
    with pytest.raises(TemplateError):
        assistant_mask(none, MESSAGES)
