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
# # Notebook — Kiểm tra môi trường và chạy mô hình đầu tiên
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/00_bat_dau.ipynb)
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
# Notebook này làm bốn việc, theo đúng thứ tự mà mọi notebook sau của khóa học đều làm:
#
# 1. kiểm tra môi trường (phiên bản thư viện, có GPU hay không);
# 2. chọn **profile** (hồ sơ cấu hình): `tiny` trên CPU, `t4` khi có GPU;
# 3. tải mô hình ở dạng 4-bit và xem nó chiếm bao nhiêu bộ nhớ;
# 4. sinh một câu trả lời tiếng Việt qua *chat template* (mẫu hội thoại).

# %%
import time

import bitsandbytes
import peft
import torch
import transformers
import trl

from course_utils.env import gpu_summary

print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
      f"trl {trl.__version__}, bitsandbytes {bitsandbytes.__version__}")
print(gpu_summary())

# %% [markdown]
# ## Chọn profile
#
# `get_profile()` chọn theo thứ tự: tên bạn truyền vào, rồi biến môi trường `COURSE_PROFILE`,
# rồi `"t4"` nếu có GPU CUDA, còn lại là `"tiny"`. Profile là một dataclass bất biến (frozen)
# chứa mọi thiết lập của một lần chạy.

# %%
from course_utils.profiles import get_profile

profile = get_profile()
print(f"Profile: {profile.name} — {profile.description}")
print(f"Mô hình: {profile.model_id}")
print(f"Độ dài tối đa: {profile.max_length}, batch: {profile.per_device_train_batch_size}, "
      f"LoRA r={profile.lora_r}, alpha={profile.lora_alpha}")

# %% [markdown]
# ## Tải mô hình ở dạng 4-bit
#
# `load_model_and_tokenizer` gọi `AutoModelForCausalLM.from_pretrained` giống hệt nhau cho mọi profile:
# với `tiny` là một thư mục trên máy (được dựng ngoại tuyến ở lần dùng đầu, khoảng một phút),
# với `t4` là tên mô hình trên Hugging Face Hub. Các lớp tuyến tính được lượng tử hóa NF4 bởi
# bitsandbytes; embedding, `lm_head` và các lớp chuẩn hóa giữ nguyên 16-bit (32-bit với `tiny`).

# %%
from course_utils.models import describe_model, load_model_and_tokenizer

t0 = time.time()
model, tokenizer = load_model_and_tokenizer(profile)
info = describe_model(model)
print(f"Tải xong trong {time.time() - t0:.1f} s")
print(f"Số tham số: {info['parameters']:,}")
print(f"Số lớp Linear4bit: {info['linear4bit_layers']}")
print(f"Bộ nhớ của trọng số (get_memory_footprint): {info['footprint_bytes'] / 2**20:,.1f} MiB")
if torch.cuda.is_available():
    print(f"Bộ nhớ GPU đang cấp phát: {torch.cuda.memory_allocated() / 2**30:.2f} GiB")

# %%
# Mỗi lớp tuyến tính của khối decoder giờ là bitsandbytes Linear4bit
print(model.model.layers[0].self_attn.q_proj)
assert info["linear4bit_layers"] == 7 * model.config.num_hidden_layers

# %% [markdown]
# ## Sinh câu trả lời bằng chat template
#
# Mô hình hội thoại được huấn luyện trên văn bản có định dạng cố định. Với họ Qwen2.5 đó là ChatML:
# mỗi lượt nằm giữa `<|im_start|>vai trò` và `<|im_end|>`. Hàm `apply_chat_template` của tokenizer
# tạo đúng định dạng ấy; `add_generation_prompt=True` thêm phần mở đầu lượt trả lời của trợ lý.

# %%
messages = [{"role": "user", "content": "Lượng tử hóa 4-bit giúp gì khi tinh chỉnh mô hình?"}]
print(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

# %%
from course_utils.models import generate_answers

answer = generate_answers(model, tokenizer, [messages], max_new_tokens=60)[0]
print(f"[{profile.model_id}] {answer}")

# %% [markdown]
# Với profile `tiny`, câu trả lời trên đến từ mô hình tiny: khoảng 1,3 triệu tham số, mới được
# tiền huấn luyện (pre-training) chừng một phút trên một đoạn văn tiếng Việt ngắn. Nó viết ra chữ tiếng Việt
# nhưng chưa biết trả lời câu hỏi. Trên Colab với GPU T4, cùng ô lệnh này chạy Qwen2.5-7B-Instruct.

# %%
print(f"Notebook này đã chạy với profile '{profile.name}', mô hình {profile.model_id}.")

# %% [markdown]
# ## Các con số của chương
#
# Mọi con số mà trang của chương và notebook này nêu, tính lại từ `course_utils` (ở đây: từ cấu hình của mô hình tiny):

# %%
from course_utils.figures import show_figures

show_figures("00_bat_dau")
