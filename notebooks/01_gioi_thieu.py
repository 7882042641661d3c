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
# # Notebook 1: Giới thiệu: LLM, tinh chỉnh và hệ sinh thái Hugging Face
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/01_gioi_thieu.ipynb)
#
# :::{note}
# Trên trang web này, notebook đã được chạy lúc dựng trang với profile `tiny`: mô hình tiny của khóa học, một Qwen2 rất nhỏ chạy trên CPU. Mọi đầu ra của mô hình ở đây đến từ mô hình tiny đó, không phải từ một mô hình 7B.
# :::

# %% tags=["colab-install", "hide-input"]
# Ô cài đặt cho Google Colab; ở nơi khác (máy của bạn, CI) ô này không làm gì.
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
        "evaluate==0.4.6",
        "rouge-score==0.1.2",
        "matplotlib==3.11.2",
        "course_utils @ git+https://github.com/tinh-chinh-llm/tinh-chinh-llm@main",
    ], check=True)

# %% [markdown]
# Notebook này đi cùng chương 1. Nó không huấn luyện gì cả; nó làm bốn việc mà chương chỉ kể:
#
# 1. điểm danh các thư viện Hugging Face mà khóa học dùng;
# 2. chuyển một bản ghi giữa hai định dạng dữ liệu Alpaca và ShareGPT, rồi xem mô hình thực sự đọc gì;
# 3. đếm tham số của Qwen2.5-7B chỉ từ file cấu hình, rồi đối chiếu với transformers;
# 4. tính bộ nhớ cần để huấn luyện mô hình đó theo ba cách: tinh chỉnh toàn bộ, LoRA và QLoRA.
#
# Mọi phép tính về mô hình 7B ở đây chỉ dùng cấu hình (`config.json`), không tải trọng số, nên chạy
# được trên CPU trong vài giây.

# %% [markdown]
# ## 1. Các thư viện
#
# Mỗi thư viện lo một việc; khóa học dùng cả bảy.

# %%
import importlib

import course_utils  # noqa: F401 (trước bitsandbytes: ẩn một cảnh báo vô hại của nó trên CPU)

roles = {
    "transformers": "kiến trúc mô hình, from_pretrained, Trainer, chat template",
    "datasets": "bảng dữ liệu (Dataset), đọc JSON/CSV/Parquet, map, chia tập",
    "tokenizers": "bộ tách từ viết bằng Rust, dùng bên dưới các tokenizer 'Fast'",
    "accelerate": "đặt mô hình lên thiết bị, mixed precision, huấn luyện nhiều GPU",
    "peft": "LoRA và các phương pháp tinh chỉnh tiết kiệm tham số khác",
    "trl": "SFTTrainer (tinh chỉnh có giám sát), DPO, GRPO...",
    "bitsandbytes": "lượng tử hóa 8-bit và 4-bit (NF4), bộ tối ưu 8-bit",
}
for name, role in roles.items():
    module = importlib.import_module(name)
    print(f"{name:<13} {module.__version__:<9} {role}")

# %% [markdown]
# ## 2. Dữ liệu: Alpaca, ShareGPT và thứ mô hình thực sự đọc
#
# Bộ dữ liệu của khóa học (216 bản ghi huấn luyện, 27 kiểm định, 27 kiểm tra, đều về chủ đề của khóa
# học) được lưu ở định dạng **Alpaca**: mỗi bản ghi có `instruction`, `input` (có thể rỗng) và `output`.

# %%
from course_utils.data import alpaca_to_messages, alpaca_to_sharegpt, load_split, sharegpt_to_alpaca

train = load_split("train")
print({split: len(load_split(split)) for split in ("train", "validation", "test")})
record = next(r for r in train if r["input"])  # một bản ghi có cả input
record

# %% [markdown]
# Định dạng **ShareGPT** là một danh sách lượt hội thoại; mỗi lượt có `from` (`system`, `human`, `gpt`)
# và `value`. Khi chuyển từ Alpaca, `input` được nối vào sau `instruction` thành lượt của người dùng.

# %%
sharegpt = alpaca_to_sharegpt(record)
sharegpt

# %% [markdown]
# Chiều ngược lại chỉ làm được với hội thoại **một lượt**: Alpaca không có chỗ cho lượt thứ hai.
# Sau một vòng Alpaca → ShareGPT → Alpaca, `instruction` và `input` đã bị gộp làm một, nên bản ghi
# không còn y hệt ban đầu dù nội dung vẫn đủ:

# %%
back = sharegpt_to_alpaca(sharegpt)
print(back["input"] == "", back["instruction"] == record["instruction"] + "\n\n" + record["input"])
assert back["output"] == record["output"]

# %% [markdown]
# Mô hình không đọc JSON. Trước khi huấn luyện, bản ghi được đổi thành danh sách tin nhắn
# (`role`, `content`) rồi ghép thành **một chuỗi** theo *chat template* của mô hình. Ở đây là ChatML,
# mẫu của Qwen2.5, mà tokenizer của mô hình tiny dùng lại. (Lần đầu dùng trên một máy mới, `course_utils`
# dựng mô hình tiny, mất khoảng một phút.)

# %%
from course_utils.models import load_tokenizer
from course_utils.profiles import get_profile

tiny = get_profile("tiny")
tokenizer = load_tokenizer(tiny)
messages = alpaca_to_messages(record)  # lượt system là SYSTEM_PROMPT của khóa học
text = tokenizer.apply_chat_template(messages, tokenize=False)
print(text)

# %%
ids = tokenizer.apply_chat_template(messages)["input_ids"]
print(f"{len(ids)} token. 16 token đầu: {[tokenizer.decode([i]) for i in ids[:16]]}")
assert tokenizer.decode(ids) == text  # chuỗi và dãy token là một, chỉ khác cách nhìn

# %% [markdown]
# Bộ tách từ của mô hình tiny được học trên một đoạn văn tiếng Việt ngắn: nhiều âm tiết tiếng Việt (kèm dấu
# cách đứng trước) là một token, còn từ tiếng Anh `system` bị cắt vụn. Đó cũng là lý do Vistral mở rộng bộ tách từ của Mistral
# bằng token tiếng Việt: cùng một câu, ít token hơn thì chuỗi ngắn hơn, huấn luyện và sinh nhanh hơn.

# %% [markdown]
# ## 3. Qwen2.5-7B có bao nhiêu tham số?
#
# Ghi chú gốc của khóa học chép cấu hình Qwen 7B là hidden 4096, 32 head. Đó là số của Qwen1/Qwen1.5-7B,
# Llama-2-7B và Mistral-7B, không phải của Qwen2.5-7B. `qwen25_7b_config()` chứa đúng các giá trị trong
# `config.json` của `Qwen/Qwen2.5-7B-Instruct` (lưu sẵn trong `course_utils` để không phải tải):

# %%
from course_utils.configs import qwen25_7b_config

cfg = qwen25_7b_config()
for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "vocab_size", "tie_word_embeddings"):
    print(f"{key:<22} {getattr(cfg, key)}")

# %% [markdown]
# Ta đếm tham số từng khối. Mỗi lớp decoder có attention (bốn phép chiếu `q_proj`, `k_proj`, `v_proj`,
# `o_proj`) và MLP (ba phép chiếu `gate_proj`, `up_proj`, `down_proj`), cộng hai lớp RMSNorm.
# Qwen2.5-7B dùng *grouped-query attention*: 28 head cho query nhưng chỉ 4 head cho key và value,
# nên `k_proj` và `v_proj` hẹp hơn `q_proj` bảy lần. Riêng Qwen2 có bias ở `q_proj`, `k_proj`, `v_proj`.

# %%
h, n_layers, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
head_dim = h // cfg.num_attention_heads  # 128
q_out = cfg.num_attention_heads * head_dim  # 3584
kv_out = cfg.num_key_value_heads * head_dim  # 512

attention = (h * q_out + q_out) + 2 * (h * kv_out + kv_out) + q_out * h  # q, k, v có bias; o thì không
mlp = 3 * h * cfg.intermediate_size
norms = 2 * h  # RMSNorm trước attention và trước MLP
per_layer = attention + mlp + norms

embed = vocab * h
lm_head = 0 if cfg.tie_word_embeddings else vocab * h  # Qwen2.5-7B không dùng chung embedding và lm_head
total = embed + n_layers * per_layer + h + lm_head  # + h: RMSNorm cuối
print(f"head_dim={head_dim}, q_proj ra {q_out}, k_proj/v_proj ra {kv_out}")
print(f"Một lớp decoder: {per_layer:,} tham số (MLP chiếm {mlp / per_layer:.0%})")
print(f"Tổng: {total:,} tham số; bỏ embedding và lm_head: {total - embed - lm_head:,}")

# %% [markdown]
# Hàm `parameter_counts` của `course_utils` làm đúng phép đếm đó, chia theo nhóm:

# %%
from course_utils.configs import linear_shapes, parameter_counts
from course_utils.display import show_source

show_source(parameter_counts)

# %%
counts = parameter_counts(cfg)
print({k: f"{v:,}" for k, v in counts.items()})
assert counts["total"] == total

# %% [markdown]
# Đối chiếu với thư viện thật: dựng `Qwen2ForCausalLM` của transformers trên thiết bị `meta`
# (chỉ có hình dạng tensor, không cấp phát bộ nhớ) rồi đếm.

# %%
import torch
from transformers import Qwen2ForCausalLM

with torch.device("meta"):
    qwen_meta = Qwen2ForCausalLM(cfg)
n_real = sum(p.numel() for p in qwen_meta.parameters())
print(f"transformers đếm được {n_real:,} tham số")
assert n_real == counts["total"]

# %% [markdown]
# LoRA thêm hai ma trận nhỏ A (r × in) và B (out × r) cạnh mỗi lớp tuyến tính, tức r·(in + out)
# tham số mỗi lớp. Với r = 16 trên cả bảy lớp tuyến tính của mọi lớp decoder (cấu hình `t4` của khóa học):

# %%
from course_utils.configs import count_lora_params

t4 = get_profile("t4")
shapes = linear_shapes(cfg)
n_lora = n_layers * sum(t4.lora_r * (out_f + in_f) for out_f, in_f in shapes.values())
print(f"LoRA r={t4.lora_r}: {n_lora:,} tham số huấn luyện, {n_lora / total:.2%} của mô hình gốc")
assert n_lora == count_lora_params(cfg, t4.lora_r, "all-linear")

# %% [markdown]
# Và đối chiếu với peft: gắn LoRA thật vào mô hình `meta` ở trên.

# %%
from peft import get_peft_model

from course_utils.train import lora_config

peft_model = get_peft_model(qwen_meta, lora_config(t4))
trainable, _ = peft_model.get_nb_trainable_parameters()
print(f"peft: {trainable:,} tham số huấn luyện")
assert trainable == n_lora
del peft_model, qwen_meta

# %% [markdown]
# ## 4. Bộ nhớ khi huấn luyện
#
# Trong một bước huấn luyện, bộ nhớ GPU chứa năm thứ:
#
# - **trọng số** của mô hình;
# - **gradient** của những tham số được huấn luyện;
# - **trạng thái bộ tối ưu** (optimizer state): AdamW giữ hai con số (mô-men bậc một và bậc hai) cho mỗi tham số được huấn luyện;
# - **activation**: các giá trị trung gian của lượt truyền xuôi mà lượt lan truyền ngược cần dùng lại;
# - **bộ nhớ tạm**: logits, hàm mất mát, các tensor sống trong chốc lát.
#
# Ba phần đầu tỉ lệ với số tham số; hai phần sau tỉ lệ với số token trong batch.
#
# ### Trọng số: 2 byte, 1 byte hay nửa byte
#
# Ở 16 bit mỗi tham số chiếm 2 byte. `weight_memory` tính cho ba mức: 16 bit, 8 bit (LLM.int8) và
# 4 bit (NF4). Ở 8 và 4 bit chỉ các lớp tuyến tính của decoder được lượng tử hóa; embedding, `lm_head`
# và các lớp norm vẫn ở 16 bit, đúng như bitsandbytes làm trong transformers.

# %%
from course_utils.memory import GIB, bits_per_param_4bit, weight_memory

for bits in (16, 8, 4):
    w = weight_memory(cfg, bits=bits)
    print(f"{bits:>2} bit: {w['total'] / GIB:6.2f} GiB  (lớp tuyến tính {w['linear'] / GIB:5.2f} GiB, "
          f"embedding + lm_head {(w['embed_tokens'] + w['lm_head']) / GIB:4.2f} GiB)")
print(f"NF4 với lượng tử hóa kép: {bits_per_param_4bit(True):.3f} bit mỗi tham số (4 bit + hằng số của khối)")

# %% [markdown]
# Embedding và `lm_head` của Qwen2.5-7B lớn (từ vựng 152.064 token, không dùng chung trọng số) và không
# được lượng tử hóa, nên ở 4 bit chúng chiếm 39% bộ nhớ trọng số. Chương 5 giải thích NF4 và lượng tử hóa kép.
#
# Đối chiếu với thư viện: nạp mô hình tiny ở fp16 rồi cộng số byte của các tham số.

# %%
from transformers import AutoConfig, AutoModelForCausalLM

from course_utils.models import model_path, quiet_progress_bars

quiet_progress_bars()  # mô hình tiny nạp trong chớp mắt: không cần thanh tiến trình
tiny_dir = model_path(tiny)
tiny_cfg = AutoConfig.from_pretrained(tiny_dir)
tiny_fp16 = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float16)
param_bytes = sum(p.numel() * p.element_size() for p in tiny_fp16.parameters())
print(f"Mô hình tiny ở fp16: {param_bytes:,} byte tham số; weight_memory: {weight_memory(tiny_cfg, 16)['total']:,}")
assert param_bytes == weight_memory(tiny_cfg, 16)["total"]

# %% [markdown]
# ### Trạng thái bộ tối ưu: 8 byte hay 2 byte mỗi tham số
#
# AdamW của PyTorch giữ `exp_avg` và `exp_avg_sq` ở fp32: 8 byte mỗi tham số. Bộ tối ưu 8-bit của
# bitsandbytes lưu hai trạng thái đó ở 8 bit, lượng tử hóa theo khối 256 giá trị: 2 byte, cộng một hằng
# số fp32 (`absmax`) mỗi khối cho mỗi trạng thái. Đo trực tiếp trên một lớp 4096 × 4096 sau một bước:

# %%
import bitsandbytes as bnb

device = "cuda" if torch.cuda.is_available() else "cpu"


def state_bytes(optimizer_class):
    """Bytes of each optimizer state tensor, per parameter of a 4096 x 4096 layer, after one step."""
    layer = torch.nn.Linear(4096, 4096, bias=False, device=device)
    optimizer = optimizer_class(layer.parameters(), lr=1e-3)
    layer(torch.randn(2, 4096, device=device)).sum().backward()
    optimizer.step()
    n = layer.weight.numel()
    return {k: v.numel() * v.element_size() / n for k, v in optimizer.state[layer.weight].items() if torch.is_tensor(v)}


torch.manual_seed(0)
measured = {cls.__name__: state_bytes(cls) for cls in (torch.optim.AdamW, bnb.optim.AdamW8bit)}
for name, per_param in measured.items():
    print(f"{name:<10} {sum(per_param.values()):.4f} byte/tham số: {({k: round(v, 5) for k, v in per_param.items()})}")
assert round(sum(measured["AdamW"].values()), 3) == 8.0
assert round(sum(measured["AdamW8bit"].values()), 1) == 2.0

# %% [markdown]
# `step` và `qmap` (bảng 256 mức của lượng tử hóa) có kích thước cố định, không đáng kể. `course_utils`
# tính trạng thái 8-bit là đúng 2 byte mỗi tham số, bỏ qua phần `absmax` (dưới 2%).

# %% [markdown]
# ### Tinh chỉnh toàn bộ: 16 byte mỗi tham số, trước cả activation
#
# Cách tính kinh điển của huấn luyện mixed precision với Adam (bài báo ZeRO): trọng số fp16 (2 byte), bản
# sao fp32 để cập nhật (4 byte), gradient fp16 (2 byte), hai trạng thái Adam fp32 (8 byte).

# %%
bytes_per_param = {"trọng số fp16": 2, "bản sao fp32": 4, "gradient fp16": 2, "Adam m và v (fp32)": 8}
full_states = total * sum(bytes_per_param.values())
print(f"{sum(bytes_per_param.values())} byte × {total:,} tham số = {full_states / GIB:.2f} GiB")
print(f"Với bộ tối ưu 8-bit (2 byte thay cho 8): {total * (2 + 4 + 2 + 2) / GIB:.2f} GiB")

# %% [markdown]
# ### Ba cách huấn luyện, cùng một mô hình
#
# `estimate_training_memory` ghép đủ năm phần cho một bước huấn luyện với profile `t4` (batch 2,
# `max_length` 1024, gradient checkpointing, `paged_adamw_8bit`). Activation và logits được tính bằng
# hệ số đã hiệu chỉnh theo phép đo thật (xem chương thực hành QLoRA). Ngân sách 14,5 GiB là phần dùng
# được của một T4 16 GB; dòng "Cần" cộng thêm 10% cho bộ cấp phát bộ nhớ của PyTorch.

# %%
from course_utils.memory import estimate_training_memory

plans = {m: estimate_training_memory(cfg, t4, method=m) for m in ("full", "lora", "qlora")}
for method, plan in plans.items():
    print(f"=== {method} ===")
    print(plan.table(), end="\n\n")

# %% [markdown]
# Đọc bảng:
#
# - **full**: bản sao fp32 và gradient đã vượt xa một T4, dù bộ tối ưu đã là 8-bit.
# - **lora**: gradient và trạng thái bộ tối ưu gần như biến mất (chỉ 40 triệu tham số LoRA được huấn
#   luyện), nhưng riêng trọng số 16-bit đã 14,19 GiB: không vừa T4 dù batch nhỏ đến đâu.
# - **qlora**: trọng số gốc ở 4 bit, phần còn lại như LoRA: vừa T4 với dư địa.

# %%
for method, plan in plans.items():
    print(f"{method:<6} tổng {plan.total / GIB:6.2f} GiB, cần {plan.needed_bytes / GIB:6.2f} GiB: "
          f"{'vừa' if plan.fits else 'không vừa'} ngân sách {t4.memory_budget_gib} GiB")
assert [p.fits for p in plans.values()] == [False, False, True]

# %% [markdown]
# ### Siêu tham số và bộ nhớ
#
# **Bộ tối ưu 8-bit.** Tiết kiệm bao nhiêu phụ thuộc vào số tham số được huấn luyện:

# %%
for method in ("full", "qlora"):
    fp32 = estimate_training_memory(cfg, t4.replace(optim="adamw_torch"), method=method).parts["optimizer"]
    int8 = plans[method].parts["optimizer"]
    print(f"{method:<6} AdamW fp32 {fp32 / GIB:6.2f} GiB → 8-bit {int8 / GIB:5.2f} GiB (bớt {(fp32 - int8) / GIB:.2f} GiB)")

# %% [markdown]
# **Độ dài ngữ cảnh.** Activation tăng theo số token trong batch (batch × `max_length`), còn trọng số
# thì không:

# %%
for length in (512, 1024, 2048, 4096):
    plan = estimate_training_memory(cfg, t4.replace(max_length=length), method="qlora")
    print(f"max_length {length:>4}: activation {plan.parts['activations'] / GIB:5.2f} GiB, "
          f"tổng {plan.total / GIB:5.2f} GiB, {'vừa' if plan.fits else 'không vừa'}")

# %% [markdown]
# **Tốc độ học.** Profile `t4` dùng `learning_rate` = 2e-4, trong khoảng 1e-4 đến 2e-4 thường dùng cho LoRA.
# Profile `tiny` dùng 2e-3: mô hình tiny và vài chục bước huấn luyện là một chế độ khác hẳn, đừng
# mang con số đó sang mô hình 7B.

# %%
for name in ("t4", "tiny"):
    p = get_profile(name)
    print(f"{name:<5} lr={p.learning_rate:g}, optim={p.optim}, max_length={p.max_length}, "
          f"batch={p.per_device_train_batch_size} × tích lũy {p.gradient_accumulation_steps}, r={p.lora_r}, alpha={p.lora_alpha}")

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-1
# ```
# Ghép mỗi mô tả với cách tinh chỉnh: `"tự giám sát"`, `"có giám sát"` hay `"tăng cường"`.
#
# - (a) Huấn luyện tiếp Mistral-7B trên hàng tỉ token văn bản tiếng Việt thô, dự đoán token tiếp theo.
# - (b) Huấn luyện trên 216 cặp câu hỏi – câu trả lời mẫu của khóa học.
# - (c) Người chấm xếp hạng hai câu trả lời; mô hình được tối ưu để được chấm điểm cao hơn.
#
# Điền vào từ điển `ways` rồi chạy ô kiểm tra.
# ```{exercise-end}
# ```

# %%
from course_utils.exercises.gioi_thieu import check_fine_tuning_ways

ways = {"a": "...", "b": "...", "c": "..."}  # điền vào đây
check_fine_tuning_ways(ways);

# %% [markdown]
# ```{solution-start} bt-01-1
# :class: dropdown
# ```

# %%
ways = {"a": "tự giám sát", "b": "có giám sát", "c": "tăng cường"}
assert check_fine_tuning_ways(ways)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-2
# ```
# Đếm số tham số của Vistral-7B-Chat từ `vistral_7b_config()` theo đúng cách ở mục 3, không dùng
# `parameter_counts`. Lưu ý: kiến trúc Mistral không có bias ở `q_proj`, `k_proj`, `v_proj`.
# ```{exercise-end}
# ```

# %%
from course_utils.configs import vistral_7b_config
from course_utils.exercises.gioi_thieu import check_vistral_params

vcfg = vistral_7b_config()
n_vistral = 0  # thay bằng phép đếm của bạn
check_vistral_params(n_vistral);

# %% [markdown]
# ```{solution-start} bt-01-2
# :class: dropdown
# ```

# %%
vh, vd = vcfg.hidden_size, vcfg.hidden_size // vcfg.num_attention_heads
v_q, v_kv = vcfg.num_attention_heads * vd, vcfg.num_key_value_heads * vd
v_layer = vh * v_q + 2 * vh * v_kv + v_q * vh + 3 * vh * vcfg.intermediate_size + 2 * vh
n_vistral = 2 * vcfg.vocab_size * vh + vcfg.num_hidden_layers * v_layer + vh
print(f"{n_vistral:,}")
assert check_vistral_params(n_vistral)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-3
# ```
# Viết tay bản ghi ShareGPT (không có lượt system) tương ứng với bản ghi Alpaca dưới đây, rồi kiểm tra.
# Sau đó trả lời cho chính mình: vì sao một hội thoại ShareGPT ba lượt hỏi – đáp không chuyển được sang Alpaca?
# ```{exercise-end}
# ```

# %%
from course_utils.exercises.gioi_thieu import check_sharegpt_record

alpaca = {"instruction": "Dịch sang tiếng Anh.", "input": "Tinh chỉnh", "output": "Fine-tuning"}
my_sharegpt = {"conversations": []}  # điền vào đây
check_sharegpt_record(my_sharegpt, alpaca);

# %% [markdown]
# ```{solution-start} bt-01-3
# :class: dropdown
# ```

# %%
my_sharegpt = {"conversations": [
    {"from": "human", "value": "Dịch sang tiếng Anh.\n\nTinh chỉnh"},
    {"from": "gpt", "value": "Fine-tuning"},
]}
assert check_sharegpt_record(my_sharegpt, alpaca)

# %% [markdown]
# Alpaca chỉ có một chỗ cho câu hỏi và một chỗ cho câu trả lời; các lượt trước phải bỏ đi, hoặc nhồi
# vào `input`, và khi đó mô hình không còn học được cấu trúc hội thoại.
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-4
# ```
# Một thử nghiệm nhỏ với `estimate_training_memory`: giữ batch 2 của profile `t4`, QLoRA,
# `max_length` lớn nhất trong các giá trị 1024, 2048, 4096, 8192 mà ước lượng vẫn vừa ngân sách T4
# (`plan.fits`) là bao nhiêu?
# ```{exercise-end}
# ```

# %%
from course_utils.exercises.gioi_thieu import check_qlora_max_length

best_length = 0  # thay bằng kết quả thử nghiệm của bạn
check_qlora_max_length(best_length);

# %% [markdown]
# ```{solution-start} bt-01-4
# :class: dropdown
# ```

# %%
fitting = [n for n in (1024, 2048, 4096, 8192)
           if estimate_training_memory(cfg, t4.replace(max_length=n), method="qlora").fits]
best_length = max(fitting)
print(best_length)
assert check_qlora_max_length(best_length)

# %% [markdown]
# ```{solution-end}
# ```
