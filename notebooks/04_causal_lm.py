# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["colab-badge"]
# # Notebook — Mô hình ngôn ngữ nhân quả và causal mask
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/04_causal_lm.ipynb)
#
# :::{note}
# Trên trang web này, notebook đã được chạy lúc dựng trang với profile `tiny`: mô hình tiny của khóa học, một Qwen2 rất nhỏ chạy trên CPU. Mọi đầu ra của mô hình ở đây đến từ mô hình tiny đó, không phải từ một mô hình 7B.
# :::

# %% tags=["colab-install", "hide-input"]
# Ô cài đặt cho Google Colab; ở nơi khác (máy của bạn, CI) phần cài đặt không làm gì.
# Phiên bản được ghim đúng như requirements.txt của khóa học; torch của Colab được giữ nguyên.
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([
        sys.executable, "-m", "pip", "install", "-q",
        "transformers==5.23.0",
        "peft==0.21.2",
        "trl==1.16.0",
        "bitsandbytes==0.50.2",
        "accelerate==1.15.0",
        "datasets==5.2.0",
        "rouge-score==0.1.2",
        "matplotlib==3.11.2",
        "liger-kernel==0.8.5",
        "course_utils @ git+https://github.com/tinh-chinh-llm/tinh-chinh-llm@main",
    ], check=True)

from course_utils.compat import quiet_logs

quiet_logs()  # ẩn các thông báo người học không cần xử lý (xem course_utils/compat.py)


# %% [markdown]
# Notebook này kiểm chứng bằng mô hình tiny những gì chương {doc}`../book/04_causal_lm` nói về mô hình ngôn ngữ
# nhân quả:
#
# 1. *causal mask* (mặt nạ nhân quả) `causal_mask(n)`, vẽ thành ma trận, so với `is_causal=True` của PyTorch;
# 2. tính nhân quả trên mô hình thật: đổi token ở vị trí `j` thì logits ở mọi vị trí trước `j` không đổi;
# 3. dự đoán token tiếp theo: nhãn dịch một vị trí, và loss của mô hình bằng cross-entropy tự tính;
# 4. loss chỉ trên câu trả lời: mặt nạ trợ lý lấy từ mẫu hội thoại (chat template), với mẫu của mô hình tiny, mẫu
#    của Qwen2.5 và một mẫu không có dấu `{% generation %}`;
# 5. logits ở mọi vị trí, hay chỉ ở các vị trí có nhãn: đầu LM hợp nhất (fused LM head) của TRL;
# 6. sinh văn bản tự hồi quy bằng một vòng lặp `argmax`, cho ra đúng các token của `generate`;
# 7. ba họ mô hình (nhân quả, che từ, chuỗi sang chuỗi), `AutoModelForCausalLM` và `TaskType.CAUSAL_LM`.
#
# Mọi đầu ra của mô hình ở đây đến từ mô hình tiny ở fp32 (kể cả trên Colab), không phải từ một mô hình 7B.

# %%
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course_utils.display import show_source
from course_utils.models import load_model_and_tokenizer
from course_utils.profiles import get_profile

t_start = time.time()
profile = get_profile("tiny")
model, tokenizer = load_model_and_tokenizer(profile, quantize=False)
model.eval()
print(type(model).__name__, "-", model.config.num_hidden_layers, "lớp, từ vựng", model.config.vocab_size)

# %% [markdown]
# ## Causal mask
#
# Trong mô hình nhân quả, vị trí `i` chỉ được chú ý tới các vị trí `j ≤ i`: chính nó và các token đứng
# trước. Viết thành điều kiện trên chỉ số hàng `i` và cột `j`:

# %%
n = 6
i = torch.arange(n)[:, None]  # chỉ số hàng: vị trí đang tính (query)
j = torch.arange(n)[None, :]  # chỉ số cột: vị trí được nhìn (key)
allowed = j <= i
print(allowed.int())

# %%
from course_utils.attention import causal_mask, scaled_dot_product_attention

show_source(causal_mask)

# %%
assert torch.equal(causal_mask(n), allowed)

sentence = "Mô hình ngôn ngữ dự đoán từ tiếp theo."
ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
tokens = [tokenizer.decode([t]) for t in ids[0]]
m = causal_mask(len(tokens))
assert m.diagonal().all() and not m.triu(diagonal=1).any()  # đường chéo có, nửa trên không

fig, ax = plt.subplots(figsize=(5, 5))
ax.imshow(m, cmap="Blues", vmin=0, vmax=1.4)
for r in range(len(tokens)):
    for c in range(len(tokens)):
        ax.text(c, r, int(m[r, c]), ha="center", va="center", color="k" if m[r, c] else "0.6")
ax.set_xticks(range(len(tokens)), tokens, rotation=90)
ax.set_yticks(range(len(tokens)), tokens)
ax.set_xlabel("vị trí được nhìn (key)")
ax.set_ylabel("vị trí đang tính (query)")
ax.set_title("causal_mask: 1 = được chú ý")
plt.show()

# %% [markdown]
# Đường chéo là 1: mỗi vị trí nhìn thấy chính nó. Nếu bỏ đường chéo, hàng đầu tiên không còn ô nào được
# nhìn và softmax trên một hàng rỗng không xác định. Điều bị giấu là token **tiếp theo** (vị trí `i + 1`), thứ
# mà vị trí `i` phải đoán, chứ không phải token `i`: token `i` là đầu vào, không phải đáp án.
#
# PyTorch có sẵn mặt nạ này qua `is_causal=True`; hàm attention của chương {doc}`../book/03_attention_ffn` với
# `causal_mask` cho cùng kết quả:

# %%
q, k, v = torch.randn(2, 4, 7, 16), torch.randn(2, 4, 7, 16), torch.randn(2, 4, 7, 16)
diff_causal = (scaled_dot_product_attention(q, k, v, causal_mask(7))
               - F.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max().item()
print(f"Sai khác lớn nhất so với F.scaled_dot_product_attention(is_causal=True): {diff_causal:.2e}")
assert diff_causal < 1e-5

# %% [markdown]
# Ba chỗ dùng, ba quy ước cho "mặt nạ", rất dễ nhầm:
#
# | nơi dùng | giá trị `True` / `1` nghĩa là | che cái gì |
# |---|---|---|
# | `F.scaled_dot_product_attention(attn_mask=...)` (bool) | được chú ý | tùy bạn (ở đây: tương lai) |
# | `torch.nn.MultiheadAttention(attn_mask=...)` (bool) | **bị che** | tùy bạn |
# | `attention_mask` của tokenizer / transformers | token thật (0 là padding) | chỉ padding |
#
# `attention_mask` mà tokenizer trả về không phải causal mask: nó chỉ đánh dấu padding. Mô hình tự tạo mặt nạ
# nhân quả bên trong rồi kết hợp với nó.

# %%
batch = tokenizer(["Mô hình ngôn ngữ", "Mô hình ngôn ngữ dự đoán từ tiếp theo"], padding=True,
                  return_tensors="pt")
print("padding ở bên", tokenizer.padding_side)
print(batch["attention_mask"])

# %% [markdown]
# ## Tính nhân quả trên mô hình tiny
#
# Nếu mặt nạ làm đúng việc của nó, thay token ở vị trí `j` không thể làm đổi logits ở bất kỳ vị trí nào
# trước `j`, qua cả bốn lớp của mô hình; còn vị trí `j` và các vị trí sau thì đổi.

# %%
J = 4
new_token = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(" mèo"))[0]
changed = ids.clone()
changed[0, J] = new_token
print("trước:", tokenizer.decode(ids[0]))
print("sau:  ", tokenizer.decode(changed[0]))

with torch.no_grad():
    logits = model(ids).logits
    logits_changed = model(changed).logits
diff_by_pos = (logits_changed - logits).abs().amax(dim=-1)[0]  # sai khác lớn nhất ở từng vị trí
for pos, (tok, d) in enumerate(zip(tokens, diff_by_pos)):
    print(f"vị trí {pos:2d} {tok!r:12} sai khác logits lớn nhất {d.item():.2e}")

assert diff_by_pos[:J].max() < 1e-6, "một vị trí trước j đã thấy token ở j!"
assert (diff_by_pos[J:] > 1e-3).all(), "một vị trí từ j trở đi không thấy token ở j"

# %% [markdown]
# Trước `J`, logits không đổi; từ `J` trở đi, mọi vị trí đều đổi. Chính mặt nạ làm nên điều đó: tính lại
# riêng lớp attention số 1 bằng hàm của chương {doc}`../book/03_attention_ffn`, với cùng đầu vào, một lần có causal
# mask và một lần không.
# Không có mặt nạ, các vị trí đầu câu "thấy" ngay token ở `J`:

# %%
from course_utils.attention import qwen2_self_attention

layer_input = {}
hook = model.model.layers[1].self_attn.register_forward_hook(
    lambda mod, args, kwargs, out: layer_input.update(x=kwargs["hidden_states"]), with_kwargs=True)
with torch.no_grad():
    model(ids)
    x_before = layer_input["x"]
    model(changed)
    x_after = layer_input["x"]
hook.remove()

attn, theta = model.model.layers[1].self_attn, model.config.rope_parameters["rope_theta"]
early_diff = {}
with torch.no_grad():
    for name, mask in (("có causal mask", causal_mask(len(tokens))), ("không có mặt nạ", None)):
        d = (qwen2_self_attention(x_after, attn, theta, mask)
             - qwen2_self_attention(x_before, attn, theta, mask)).abs().amax(-1)[0]
        early_diff[name] = d[:J].max().item()
        print(f"{name:16}: sai khác lớn nhất ở các vị trí trước J = {early_diff[name]:.2e}")
assert early_diff["có causal mask"] < 1e-6 < 1e-3 < early_diff["không có mặt nạ"]

# %% [markdown]
# ## Dự đoán token tiếp theo và nhãn dịch một vị trí
#
# Đầu ra ở vị trí `t` là phân phối xác suất cho token ở vị trí `t + 1`. Với $n$ token, một lượt truyền xuôi
# cho $n - 1$ dự đoán có đáp án (đầu ra ở vị trí cuối dự đoán một token chưa có).

# %%
probs = logits.softmax(dim=-1)[0]
print(f"{'vị trí':>6}  {'đầu vào':12} {'đáp án (t+1)':14} {'P(đáp án)':>9}  {'mô hình đoán':12}")
for t in range(len(tokens) - 1):
    target = ids[0, t + 1]
    guess = tokenizer.decode([probs[t].argmax().item()])
    print(f"{t:>6}  {tokens[t]!r:12} {tokens[t + 1]!r:14} {probs[t, target].item():>9.3f}  {guess!r:12}")

# %% [markdown]
# Trong transformers, bạn truyền `labels` **trùng vị trí** với `input_ids`; mô hình tự dịch: so
# `logits[:, :-1]` với `labels[:, 1:]`. Tự tính lại:

# %%
with torch.no_grad():
    model_loss = model(ids, labels=ids).loss
manual_loss = F.cross_entropy(logits[0, :-1], ids[0, 1:])
diff_loss = abs(model_loss.item() - manual_loss.item())
print(f"loss của mô hình {model_loss.item():.6f}, tự tính {manual_loss.item():.6f}, sai khác {diff_loss:.1e}")
assert diff_loss < 1e-6

# %% [markdown]
# Một lỗi hay gặp: tự dịch nhãn rồi mới truyền vào. Mô hình dịch thêm lần nữa, thành ra học đoán token
# cách **hai** vị trí, và loss cao bất thường:

# %%
pre_shifted = torch.cat([ids[:, 1:], torch.full((1, 1), -100)], dim=1)
with torch.no_grad():
    wrong_loss = model(ids, labels=pre_shifted).loss
print(f"nhãn đúng: {model_loss.item():.3f}   nhãn bị dịch hai lần: {wrong_loss.item():.3f}")
assert wrong_loss > model_loss  # không có lỗi nào được báo, chỉ có loss cao hơn

# %% [markdown]
# ## Loss chỉ trên câu trả lời: mẫu hội thoại và mặt nạ trợ lý
#
# Nhãn `-100` bị bỏ qua. Đó là cách tinh chỉnh có giám sát chỉ tính loss trên câu trả lời: các token của lời nhắc
# (system, user) mang nhãn `-100`. Token nào thuộc câu trả lời thì mẫu hội thoại (chat template) cho biết, nếu nó bọc
# mỗi câu trả lời trong cặp dấu `{% generation %}` … `{% endgeneration %}`. Mẫu của mô hình tiny có hai dấu đó:

# %%
from course_utils.data import alpaca_to_messages, load_split
from course_utils.templates import has_generation_markers, template_text

print(template_text(tokenizer))
assert has_generation_markers(template_text(tokenizer))

# %% [markdown]
# `course_utils.templates.assistant_mask` trả về `input_ids` và mặt nạ trợ lý của một hội thoại, bằng đúng mẫu mà
# TRL sẽ dùng khi huấn luyện, và báo lỗi thay vì trả về một mặt nạ toàn 0 (xem hai mục sau):

# %%
from course_utils.templates import assistant_mask

show_source(assistant_mask)

# %%
messages = alpaca_to_messages(load_split("train")[0])
ids_list, mask_list = assistant_mask(tokenizer, messages)
chat_ids, assistant = torch.tensor([ids_list]), torch.tensor([mask_list]).bool()
chat_labels = chat_ids.masked_fill(~assistant, -100)
print(f"{chat_ids.shape[1]} token, trong đó {int(assistant.sum())} token của câu trả lời được tính loss")
print("phần được tính loss:", repr(tokenizer.decode(chat_ids[assistant])))
assert tokenizer.decode(chat_ids[assistant]).endswith("<|im_end|>")  # token kết thúc lượt cũng được học

with torch.no_grad():
    sft_loss = model(chat_ids, labels=chat_labels).loss
    chat_logits = model(chat_ids).logits
manual_sft = F.cross_entropy(chat_logits[0, :-1], chat_labels[0, 1:], ignore_index=-100)
print(f"loss chỉ trên câu trả lời: mô hình {sft_loss.item():.6f}, tự tính {manual_sft.item():.6f}")
assert abs(sft_loss.item() - manual_sft.item()) < 1e-5

# %% [markdown]
# ### Mẫu của Qwen2.5 không có dấu `{% generation %}`
#
# Mẫu hội thoại của chính Qwen2.5 không có hai dấu đó. TRL lưu một bản sao từng ký tự của nó
# (`trl.chat_template_utils.qwen2_5_chat_template`); ta gán bản đó cho một bản sao của bộ tách từ tiny (bộ này cũng
# có `<|im_start|>` và `<|im_end|>`) rồi chép nguyên cách làm quen thuộc, `return_assistant_tokens_mask=True`:

# %%
import copy

from trl.chat_template_utils import qwen2_5_chat_template, qwen2_5_training_chat_template

qwen_tok = copy.deepcopy(tokenizer)
qwen_tok.chat_template = qwen2_5_chat_template
print("mẫu Qwen2.5 có dấu {% generation %}:", has_generation_markers(qwen2_5_chat_template))
raw = qwen_tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
print("tổng mặt nạ trợ lý mà transformers trả về:", sum(raw["assistant_masks"]))
assert not has_generation_markers(qwen2_5_chat_template) and sum(raw["assistant_masks"]) == 0

raw_ids = torch.tensor([raw["input_ids"]])
with torch.no_grad():
    nan_loss = model(raw_ids, labels=torch.full_like(raw_ids, -100)).loss  # mặt nạ toàn 0: mọi nhãn là -100
print("loss khi mọi nhãn là -100:", nan_loss.item())
assert torch.isnan(nan_loss)

# %% [markdown]
# Mặt nạ toàn 0, loss NaN, và chỉ một dòng cảnh báo trong log. `SFTTrainer` của TRL 1.16 với
# `assistant_only_loss=True` tránh được bẫy này: khi mẫu không có dấu, nó gọi `get_training_chat_template`, hàm này
# nhận ra mẫu Qwen2.5 (so từng ký tự) và trả về bản huấn luyện `qwen2_5_training.jinja`, có thêm hai dấu.
# `training_template`, `loss_strategy` và `assistant_mask` của khóa học làm đúng như vậy:

# %%
from trl.chat_template_utils import get_training_chat_template

from course_utils.templates import loss_strategy, training_template

assert get_training_chat_template(qwen_tok) == qwen2_5_training_chat_template == training_template(qwen_tok)
# bản huấn luyện cho ra đúng văn bản của mẫu gốc, chỉ thêm dấu
assert (qwen_tok.apply_chat_template(messages, tokenize=False)
        == qwen_tok.apply_chat_template(messages, tokenize=False, chat_template=qwen2_5_training_chat_template))
print(loss_strategy(qwen_tok))

q_ids, q_mask = assistant_mask(qwen_tok, messages)
q_trained = qwen_tok.decode([i for i, keep in zip(q_ids, q_mask) if keep])
print("phần được tính loss:", repr(q_trained))
assert q_trained == "\n" + messages[-1]["content"] + "<|im_end|>\n"

# %% [markdown]
# Với mẫu Qwen2.5 (bản huấn luyện của TRL), phần được tính loss của một lượt trợ lý là dấu xuống dòng, câu trả lời,
# `<|im_end|>` và dấu xuống dòng sau nó. Token kết thúc lượt `<|im_end|>` nằm trong loss: mô hình học được lúc nào
# thì dừng.
#
# ### Mẫu không có dấu mà TRL cũng không biết
#
# Một mẫu tự chế, cùng định dạng nhưng không có dấu `{% generation %}` và không phải mẫu nào TRL lưu. TRL từ chối nó
# (`SFTTrainer` với `assistant_only_loss=True` báo lỗi khi dựng, qua đúng hàm dưới đây); `assistant_mask` của khóa
# học báo `TemplateError` kèm cách sửa; `loss_strategy` chọn dữ liệu dạng prompt – completion, không cần dấu:

# %%
from course_utils.templates import TemplateError

plain_tok = copy.deepcopy(tokenizer)
plain_tok.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
                           "'<|im_end|>\n' }}{% endfor %}")
refused = {}
try:
    get_training_chat_template(plain_tok)
except ValueError as err:
    refused["trl"] = err
    print("TRL, ValueError:", err)
try:
    assistant_mask(plain_tok, messages)
except TemplateError as err:
    refused["course_utils"] = err
    print("course_utils, TemplateError:", err)
strategy = loss_strategy(plain_tok)
print(strategy)
assert set(refused) == {"trl", "course_utils"} and strategy.loss_on == "completion_only"

# %% [markdown]
# ## Logits: ở mọi vị trí, hay chỉ ở các vị trí có nhãn
#
# Lượt truyền xuôi thường, `model(input_ids, labels=...)`, tính logits ở mọi vị trí, kể cả những vị trí có nhãn
# `-100`. Trong một batch dữ liệu của khóa học (kích thước batch của profile `tiny`, đệm tới chuỗi dài nhất), đếm
# xem bao nhiêu vị trí thật sự có nhãn (mục {ref}`fused-lm-head` của chương giải thích vì sao điều đó quan trọng):

# %%
records = load_split("train")[: profile.per_device_train_batch_size]
pairs = [assistant_mask(tokenizer, alpaca_to_messages(r)) for r in records]
width = max(len(i) for i, _ in pairs)
b_ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
b_att, b_labels = torch.zeros_like(b_ids), torch.full_like(b_ids, -100)
for row, (i, m) in enumerate(pairs):
    b_ids[row, : len(i)] = torch.tensor(i)
    b_att[row, : len(i)] = 1
    b_labels[row, : len(i)] = torch.tensor(i).masked_fill(~torch.tensor(m).bool(), -100)

positions = b_labels[:, 1:].numel()           # mọi vị trí có một token tiếp theo để đoán
scored = int((b_labels[:, 1:] != -100).sum())  # vị trí có nhãn: token tiếp theo thuộc câu trả lời
with torch.no_grad():
    plain = model(input_ids=b_ids, attention_mask=b_att, labels=b_labels)
print(f"logits của lượt truyền xuôi thường: {tuple(plain.logits.shape)}, {plain.logits.numel():,} giá trị")
print(f"vị trí có dự đoán: {positions}; có nhãn: {scored} ({scored / positions:.0%})")
assert plain.logits.shape == (*b_ids.shape, model.config.vocab_size) and scored < positions

# %% [markdown]
# Trên mô hình tiny và dữ liệu này, chỉ một phần các vị trí có nhãn; phần còn lại là lời nhắc và phần đệm. Với
# Qwen2.5-7B, mỗi vị trí thừa đó là một hàng logits dài bằng cả từ vựng.
#
# `SFTTrainer` gắn vào mô hình đầu LM hợp nhất của TRL (`add_fused_lm_head`). Gắn nó vào một bản sao của mô hình tiny
# rồi gọi với `fused_lm_head=True`: cùng loss, nhưng đầu ra chỉ có log-xác suất của từng nhãn, không có logits.
# (Ở đây, trên CPU không có Triton, TRL tính mọi vị trí, theo từng ô; trên GPU nó chỉ tính các vị trí có nhãn.)

# %%
from trl.kernels.chunked_logprob import TOKEN_CHUNK_SIZE
from trl.trainer.utils import add_fused_lm_head

fused_model = copy.deepcopy(model)
add_fused_lm_head(fused_model)
with torch.no_grad():
    fused = fused_model(input_ids=b_ids, attention_mask=b_att, labels=b_labels, fused_lm_head=True)
print(type(fused).__name__, "gồm:", list(fused.keys()), "; TOKEN_CHUNK_SIZE =", TOKEN_CHUNK_SIZE)
print(f"loss: lượt thường {plain.loss.item():.6f}, đầu LM hợp nhất {fused.loss.item():.6f}")
print("log_probs:", tuple(fused.log_probs.shape), " nhãn được tính:", int(fused.label_mask.sum()))
assert "logits" not in fused.keys() and int(fused.label_mask.sum()) == scored
assert abs(fused.loss.item() - plain.loss.item()) < 1e-4

# %% [markdown]
# Lõi của nó là log-sum-exp trực tuyến. Đi qua từ vựng theo từng khúc; mỗi token chỉ giữ giá trị lớn nhất `m` đã
# gặp và tổng `s` của `exp(z - m)`; khi `m` tăng, `s` được nhân với `exp(m_cũ - m_mới)`. Cuối cùng
# `log p(đáp án) = z_đáp_án - (m + log s)`. Tự làm trên các vị trí có nhãn của batch trên, với khúc từ vựng nhỏ để có
# nhiều khúc:

# %%
with torch.no_grad():
    hidden = model.model(input_ids=b_ids, attention_mask=b_att).last_hidden_state[:, :-1]
keep = b_labels[:, 1:] != -100
h, targets = hidden[keep], b_labels[:, 1:][keep]  # chỉ các vị trí có nhãn
W = model.lm_head.weight                          # (vocab, hidden)
CHUNK = 512
m = torch.full((len(h),), float("-inf"))
s = torch.zeros(len(h))
target_logit = torch.zeros(len(h))
with torch.no_grad():
    for start in range(0, W.shape[0], CHUNK):
        z = h @ W[start : start + CHUNK].T  # một ô (số nhãn, CHUNK), không bao giờ (số nhãn, vocab)
        m_new = torch.maximum(m, z.amax(-1))
        s = s * torch.exp(m - m_new) + torch.exp(z - m_new[:, None]).sum(-1)
        m = m_new
        here = (targets >= start) & (targets < start + CHUNK)
        target_logit[here] = z[here, targets[here] - start]
online_loss = -(target_logit - (m + s.log())).mean()
print(f"{-(-W.shape[0] // CHUNK)} khúc từ vựng; loss: trực tuyến {online_loss.item():.6f}, lượt thường {plain.loss.item():.6f}")
assert abs(online_loss.item() - plain.loss.item()) < 1e-4

# %% [markdown]
# ## Sinh văn bản tự hồi quy, từng bước
#
# Sinh văn bản là lặp lại dự đoán token tiếp theo: lấy logits ở vị trí cuối, chọn token (ở đây: `argmax`,
# tức giải mã tham lam, greedy), nối vào chuỗi, chạy lại. Dừng khi gặp token kết thúc hoặc đủ số token.

# %%
prompt_ids = tokenizer("Mô hình ngôn ngữ", return_tensors="pt")["input_ids"]
stop_ids = set(model.generation_config.eos_token_id)
MAX_NEW = 20

seq = prompt_ids
with torch.no_grad():
    for step in range(MAX_NEW):
        next_logits = model(seq).logits[:, -1]            # chỉ cần vị trí cuối
        next_id = next_logits.argmax(dim=-1, keepdim=True)  # greedy
        seq = torch.cat([seq, next_id], dim=1)
        print(f"bước {step:2d}: {tokenizer.decode(next_id[0])!r}")
        if next_id.item() in stop_ids:
            break

# %%
with torch.no_grad():
    generated = model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids),
                               max_new_tokens=MAX_NEW, do_sample=False)
print("vòng lặp argmax:", repr(tokenizer.decode(seq[0])))
print("generate       :", repr(tokenizer.decode(generated[0])))
assert torch.equal(seq, generated)

# %% [markdown]
# Cùng các token, dù `generate` không tính lại cả chuỗi như vòng lặp trên: nó giữ K, V của các token cũ
# (KV cache) và mỗi bước chỉ đưa token mới qua mô hình. Điều đó đúng được chính nhờ tính nhân quả: thêm
# token mới không làm đổi gì ở các vị trí cũ (phần tính nhân quả ở trên). (Văn bản trên do mô hình tiny sinh, nên
# chưa có nghĩa.)
#
# ## Ba họ mô hình, AutoModelForCausalLM và TaskType.CAUSAL_LM
#
# Mẫu mặt nạ của ba họ mô hình: mô hình nhân quả (GPT, Llama, Qwen, Mistral) chỉ có decoder với causal mask;
# mô hình che từ (BERT) chỉ có encoder, mọi token nhìn mọi token; mô hình chuỗi sang chuỗi (T5, BART) có
# encoder hai chiều, decoder nhân quả, và cross-attention từ decoder sang toàn bộ đầu vào.

# %%
n_in, n_out = 5, 4  # seq2seq: 5 token đầu vào (encoder), 4 token đầu ra (decoder)
panels = {
    "Nhân quả: decoder": (causal_mask(n_in), "token"),
    "Che từ (BERT): encoder": (torch.ones(n_in, n_in, dtype=torch.bool), "token"),
    "Seq2seq: decoder tự chú ý": (causal_mask(n_out), "token đầu ra"),
    "Seq2seq: cross-attention": (torch.ones(n_out, n_in, dtype=torch.bool), "token đầu vào"),
}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), constrained_layout=True)
for ax, (title, (mask, key_label)) in zip(axes, panels.items()):
    ax.pcolormesh(mask.float(), cmap="Blues", vmin=0, vmax=1.4, edgecolors="white", linewidth=1)
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"key: {key_label}")
    ax.set_ylabel("query")
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %% [markdown]
# Trong transformers, `AutoModelForCausalLM` đọc `model_type` trong config (`"qwen2"`, `"mistral"`, ...: tên
# họ kiến trúc, không phải `"causal_lm"`) rồi chọn lớp `...ForCausalLM` tương ứng: phần thân Transformer cộng
# `lm_head`, lớp tuyến tính biến vector ẩn thành logits trên từ vựng. `AutoModel` chỉ nạp phần thân
# (`Qwen2Model`); `AutoModelForMaskedLM` và `AutoModelForSeq2SeqLM` làm việc tương tự cho hai họ còn lại.

# %%
print("model_type:", model.config.model_type, " architectures:", model.config.architectures)
print(type(model).__name__, "= thân", type(model.model).__name__, "+ lm_head", model.lm_head)
with torch.no_grad():
    hidden = model.model(ids).last_hidden_state  # thân: vector ẩn của từng vị trí
    assert torch.allclose(model.lm_head(hidden), logits, atol=1e-5)
print("vector ẩn", tuple(hidden.shape), "-> lm_head -> logits", tuple(logits.shape))

# %% [markdown]
# Trong peft, `task_type` cho biết bọc mô hình bằng lớp nào. Với mô hình nhân quả là `TaskType.CAUSAL_LM`
# (viết đúng chính tả: *causal*, nhân quả; không phải *casual*, tùy ý). Tên viết sai bị từ chối ngay:

# %%
from peft import LoraConfig, TaskType, get_peft_model

print([t.value for t in TaskType])
typo = "CAUSAL_LM".replace("AUS", "ASU")  # đảo chữ U và S, lỗi chính tả hay gặp
try:
    LoraConfig(task_type=typo)
except ValueError as err:
    print("ValueError:", err)

peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, target_modules="all-linear"))
print(type(peft_model).__name__)
assert type(peft_model).__name__ == "PeftModelForCausalLM"
peft_model.print_trainable_parameters()
model = peft_model.unload()  # gỡ LoRA, trả lại mô hình gốc cho phần bài tập

# %% [markdown]
# `TaskType` của peft không có mục nào cho mô hình che từ kiểu BERT; với BERT người ta dùng `SEQ_CLS`,
# `TOKEN_CLS`, `QUESTION_ANS` hay `FEATURE_EXTRACTION` tùy tác vụ.

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-04-1
# ```
# **Đếm ô của causal mask.** Profile `t4` cắt mỗi mẫu ở `max_length` token. Với chuỗi dài đúng chừng đó,
# causal mask có bao nhiêu cặp (query, key) được phép chú ý? Trả lời bằng một công thức của `n_t4`, gán vào `pairs`,
# rồi kiểm tra bằng `causal_mask`.

# %%
from course_utils.exercises.causal import check_mask_count

n_t4 = get_profile("t4").max_length
pairs = ...  # thay ... bằng câu trả lời của bạn
check_mask_count(pairs, n_t4);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-04-1
# :class: dropdown
# ```

# %%
pairs = n_t4 * (n_t4 + 1) // 2  # hàng i có i + 1 ô: 1 + 2 + ... + n
assert pairs == causal_mask(n_t4).sum().item()
assert check_mask_count(pairs, n_t4)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-04-2
# ```
# **Loss chỉ trên câu trả lời, tự tính.** Với mẫu thứ hai của tập huấn luyện, `ids2` và `labels2` đã được tạo như ở
# trên (`assistant_mask`, nhãn `-100` ngoài câu trả lời). Tính loss bằng `F.cross_entropy` trên logits của mô hình,
# không dùng tham số `labels` của mô hình, gán vào `my_loss`.

# %%
from course_utils.exercises.causal import check_loss

ids2, mask2 = assistant_mask(tokenizer, alpaca_to_messages(load_split("train")[1]))
ids2 = torch.tensor([ids2])
labels2 = ids2.masked_fill(~torch.tensor([mask2]).bool(), -100)
my_loss = ...  # thay ... bằng câu trả lời của bạn
check_loss(my_loss, model, ids2, labels2);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-04-2
# :class: dropdown
# ```

# %%
with torch.no_grad():
    logits2 = model(ids2).logits
my_loss = F.cross_entropy(logits2[0, :-1], labels2[0, 1:], ignore_index=-100).item()
assert check_loss(my_loss, model, ids2, labels2)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-04-3
# ```
# **Thí nghiệm nhân quả.** Với câu `"Tinh chỉnh mô hình ngôn ngữ lớn cần dữ liệu tốt."`, thay token ở vị
# trí 3 bằng một token khác tùy bạn. Những vị trí nào có logits đổi (sai khác lớn hơn `1e-4`)? Trả lời bằng
# một tập các vị trí, gán vào `changed_positions`.

# %%
from course_utils.exercises.causal import check_changed_positions

ids3 = tokenizer("Tinh chỉnh mô hình ngôn ngữ lớn cần dữ liệu tốt.", return_tensors="pt")["input_ids"]
changed_positions = ...  # thay ... bằng câu trả lời của bạn
check_changed_positions(changed_positions, ids3.shape[1], 3);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-04-3
# :class: dropdown
# ```

# %%
other = ids3.clone()
other[0, 3] = (ids3[0, 3] + 1) % model.config.vocab_size
with torch.no_grad():
    d3 = (model(other).logits - model(ids3).logits).abs().amax(-1)[0]
changed_positions = {p for p in range(ids3.shape[1]) if d3[p] > 1e-4}
print(sorted(changed_positions), "trên", ids3.shape[1], "vị trí")
assert check_changed_positions(changed_positions, ids3.shape[1], 3)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-04-4
# ```
# **Chọn task_type.** Bạn tinh chỉnh Qwen2.5-7B-Instruct bằng LoRA để trả lời câu hỏi tiếng Việt. Trong
# `LoraConfig`, `task_type` là gì? Trả lời bằng một giá trị của `TaskType` hoặc chuỗi tương ứng, gán vào
# `my_task_type`.

# %%
from course_utils.exercises.causal import check_task_type

my_task_type = ...  # thay ... bằng câu trả lời của bạn
check_task_type(my_task_type);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-04-4
# :class: dropdown
# ```

# %%
my_task_type = TaskType.CAUSAL_LM  # Qwen2.5 chỉ có decoder: dự đoán token tiếp theo
assert check_task_type(my_task_type)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-04-5
# ```
# **Đầu LM hợp nhất tính bao nhiêu vị trí?** Với batch `b_labels` ở mục logits phía trên, trên GPU đầu LM hợp
# nhất của TRL chỉ đưa qua `lm_head` các vị trí có nhãn tiếp theo khác `-100`. Đó là bao nhiêu vị trí? Tính từ
# `b_labels` (nhớ phép dịch một vị trí), gán vào `n_scored`.

# %%
from course_utils.exercises.causal import check_scored_positions

n_scored = ...  # thay ... bằng câu trả lời của bạn
check_scored_positions(n_scored, b_labels);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-04-5
# :class: dropdown
# ```

# %%
n_scored = int((b_labels[:, 1:] != -100).sum())  # vector ẩn ở vị trí t đi với nhãn ở vị trí t + 1
print(n_scored, "vị trí có nhãn trên", b_labels[:, 1:].numel(), "vị trí có dự đoán")
assert check_scored_positions(n_scored, b_labels)

# %% [markdown]
# ```{solution-end}
# ```

# %%
print(f"Notebook chạy xong trong {time.time() - t_start:.0f} s với mô hình tiny ({profile.model_id}).")

# %% [markdown]
# ## Mọi con số của chương, tính lại
#
# Bảng dưới là mọi con số mà chương này và notebook này viết ra, tính lại bằng chính các hàm của khóa học
# (`course_utils.figures`); một bài kiểm thử bảo đảm trang không có con số nào khác.

# %%
from course_utils.figures import show_figures

show_figures("04_causal_lm")
