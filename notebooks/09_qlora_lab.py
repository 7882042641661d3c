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
# # Notebook 9: Thực hành QLoRA một mô hình 7B trên Colab T4
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/09_qlora_lab.ipynb)
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
# Notebook này tinh chỉnh {term}`QLoRA` một mô hình 7B (mặc định Qwen2.5-7B-Instruct) trên bộ dữ liệu
# hỏi – đáp tiếng Việt của khóa học, từ đầu đến cuối, trên **một GPU T4 miễn phí của Colab**
# (khoảng 14,5 GiB dùng được, chỉ có fp16). Không có GPU, cùng notebook chạy với mô hình `tiny`
# trên CPU trong khoảng một phút: các bước giống hệt, chỉ mô hình khác.
#
# Các bước:
#
# 1. chọn profile, đọc token Hugging Face nếu mô hình cần;
# 2. **lập kế hoạch bộ nhớ trước khi tải**: cấu hình không vừa thì bị từ chối ngay;
# 3. tải mô hình 4-bit, gắn LoRA lên mọi lớp tuyến tính;
# 4. đo ROUGE và xem câu trả lời *trước* khi tinh chỉnh;
# 5. huấn luyện bằng TRL `SFTTrainer` (fp16 + GradScaler, gradient checkpointing, bộ tối ưu 8-bit phân trang),
#    có checkpoint để tiếp tục khi Colab ngắt kết nối;
# 6. vẽ loss huấn luyện và loss kiểm định, đo lại ROUGE, so sánh câu trả lời trước/sau;
# 7. lưu adapter, tải lại mô hình 4-bit + adapter (không gộp) và kiểm tra nó trả lời y hệt.
#
# Chạy trên Colab: *Runtime > Change runtime type > T4 GPU*, rồi *Run all*.

# %% [markdown]
# ## 1. Profile và token
#
# Muốn dùng Vistral-7B-Chat thay cho Qwen2.5-7B-Instruct, đặt `COURSE_PROFILE = "t4-vistral"` ở ô dưới.
# Vistral là mô hình có kiểm soát truy cập (gated): bạn cần chấp nhận điều khoản trên trang mô hình
# và có token. Token được đọc từ Colab Secrets (tên `HF_TOKEN`) hoặc hỏi bằng `getpass`; nó không bao giờ
# được in ra hay lưu vào notebook.

# %%
import os

# os.environ["COURSE_PROFILE"] = "t4-vistral"  # bỏ dấu # để dùng Vistral-7B-Chat

from course_utils.env import get_hf_token, gpu_summary
from course_utils.profiles import get_profile

profile = get_profile()
token = get_hf_token(profile)  # None với mô hình không cần token
print(gpu_summary())
print(f"Profile: {profile.name} — {profile.description}")
print(f"Mô hình: {profile.model_id}")
print(f"max_length={profile.max_length}, batch={profile.per_device_train_batch_size}, "
      f"gradient_accumulation_steps={profile.gradient_accumulation_steps}, max_steps={profile.max_steps}, "
      f"learning_rate={profile.learning_rate}")

# %% [markdown]
# ## 2. Kế hoạch bộ nhớ, trước khi tải bất cứ thứ gì
#
# `estimate_training_memory` chỉ đọc `config.json` của mô hình (vài KB) và cộng từng phần: trọng số 4-bit
# kèm hằng số lượng tử hóa, các phần giữ 16-bit (embedding, `lm_head`, norm), trọng số LoRA cùng gradient và
# trạng thái bộ tối ưu, {term}`activation` khi bật {term}`gradient checkpointing`, và phần logits của hàm
# mất mát. Hệ số của phần activation được hiệu chỉnh bằng phép đo thật (mục "Kết quả đo" của chương).
# Nếu tổng (cộng 10% dự phòng cho bộ cấp phát bộ nhớ) vượt ngân sách 14,5 GiB của T4, `memory_plan`
# dừng lại với một thông báo nói rõ phải giảm gì.

# %%
from course_utils.lab import memory_plan

config, plan = memory_plan(profile, token)
print(plan.table())

# %% [markdown]
# Thử một cấu hình quá tham trên đúng mô hình 7B mặc định (chỉ cần cấu hình của nó, không tải trọng số):
# độ dài 8192 token với batch 4.

# %%
from course_utils.configs import qwen25_7b_config
from course_utils.memory import MemoryPlanError, check_plan, estimate_training_memory

too_big = get_profile("t4").replace(max_length=8192, per_device_train_batch_size=4)
try:
    check_plan(estimate_training_memory(qwen25_7b_config(), too_big), too_big, qwen25_7b_config())
except MemoryPlanError as err:
    print(str(err).splitlines()[0])

# %% [markdown]
# ## 3. Tải mô hình 4-bit
#
# Lượng tử hóa NF4 với lượng tử hóa kép, tính toán ở fp16 trên T4 (`dtype=torch.float16`, vì checkpoint gốc
# lưu ở bf16 mà T4 không có bf16). Xem chương {doc}`../book/05_luong_tu_hoa` để hiểu NF4.

# %%
import time

import torch

from course_utils.models import bnb_config, describe_model, load_model_and_tokenizer

print(bnb_config(profile))
t0 = time.time()
model, tokenizer = load_model_and_tokenizer(profile, token=token)
info = describe_model(model)
print(f"Tải xong trong {time.time() - t0:.0f} s; {info['parameters']:,} tham số, "
      f"{info['linear4bit_layers']} lớp Linear4bit, trọng số chiếm {info['footprint_bytes'] / 2**20:,.1f} MiB")
if torch.cuda.is_available():
    print(f"Bộ nhớ GPU đang cấp phát: {torch.cuda.memory_allocated() / 2**30:.2f} GiB")

# %% [markdown]
# ## 4. Dữ liệu và LoRA
#
# Bộ dữ liệu của khóa học có 216 bản ghi huấn luyện, 27 kiểm định, 27 kiểm tra, định dạng Alpaca.
# `build_trainer` đổi chúng sang hội thoại (system, user, assistant) và chỉ tính loss trên câu trả lời
# của trợ lý (`assistant_only_loss=True`; với Vistral, mẫu hội thoại không có dấu `{% generation %}`
# nên dùng dạng prompt – completion, cũng chỉ tính loss trên câu trả lời).
#
# LoRA: r = 16, alpha = 32 trên **mọi lớp tuyến tính** (`target_modules="all-linear"`). Lý do ở chương
# {doc}`../book/07_rank_alpha`: QLoRA (Dettmers và cộng sự, 2023) thấy việc gắn adapter vào mọi lớp tuyến tính
# quan trọng hơn chọn r; alpha = 2r là khuyến nghị của Biderman và cộng sự (2024).

# %%
from course_utils.data import alpaca_to_messages, load_split
from course_utils.train import lora_config

train, validation, test = load_split("train"), load_split("validation"), load_split("test")
print(len(train), len(validation), len(test))
print(lora_config(profile))
print(tokenizer.apply_chat_template(alpaca_to_messages(train[0]), tokenize=False)[:400])

# %% [markdown]
# ## 5. Trước khi tinh chỉnh: câu trả lời và ROUGE
#
# ROUGE ở đây tính trên âm tiết tiếng Việt (`course_utils.metrics.rouge_vi`): bộ tách từ mặc định của
# `rouge-score` bỏ mọi chữ có dấu, xem chương {doc}`../book/08_rouge`.

# %%
from course_utils.lab import evaluate

before_table, before = evaluate(model, tokenizer, profile, test)
print({k: round(v, 4) for k, v in before.items()})

# %% [markdown]
# ## 6. Huấn luyện
#
# `build_trainer` dựng `SFTTrainer` với đúng công thức đã đo (mục "Kết quả đo" của chương):
#
# - fp16 với GradScaler, `bf16=False` (T4 không có bf16);
# - trọng số LoRA ở **fp32**: TRL ≥ 0.26 tự đổi adapter của mô hình lượng tử hóa sang bf16, làm GradScaler
#   báo lỗi `"_amp_foreach_non_finite_check_and_unscale_cuda" not implemented for 'BFloat16'`;
#   `build_trainer` đổi lại sang fp32;
# - **không** gọi `prepare_model_for_kbit_training`: hàm này đổi embedding và `lm_head` sang fp32,
#   tốn thêm khoảng 2 GiB mà không cần thiết;
# - gradient checkpointing, bộ tối ưu `paged_adamw_8bit`, `packing=False`;
# - đánh giá trên tập kiểm định ngay từ bước 0 rồi cứ `eval_steps` bước một lần; checkpoint mỗi `save_steps` bước.
#
# Checkpoint được lưu vào Google Drive nếu bạn đã gắn Drive (ô dưới, chỉ trên Colab), nên khi Colab ngắt kết nối,
# chạy lại notebook sẽ **tiếp tục từ checkpoint cuối** (`train_with_resume`).

# %%
import shutil

from course_utils.env import in_colab
from course_utils.train import build_trainer, default_output_dir, train_with_resume

if in_colab():
    from google.colab import drive

    drive.mount("/content/drive")  # bỏ qua được: khi đó checkpoint nằm trong /content (mất khi ngắt kết nối)
output_dir = default_output_dir(profile)
if profile.is_tiny and output_dir.exists():
    shutil.rmtree(output_dir)  # tiny: luôn chạy lại từ đầu, để trang web cho thấy một lần chạy trọn vẹn
print(f"Checkpoint và adapter: {output_dir}")

trainer = build_trainer(model, tokenizer, train, validation, profile, output_dir, disable_tqdm=profile.is_tiny)
trainer.model.print_trainable_parameters()
print({str(p.dtype) for p in trainer.model.parameters() if p.requires_grad})

# %%
t0 = time.time()
resumed = train_with_resume(trainer)
print(f"Tiếp tục từ {resumed}" if resumed else "Huấn luyện từ đầu", f"— {time.time() - t0:.0f} s")

# %% [markdown]
# ## 7. Đường loss

# %%
from course_utils.train import loss_history, plot_losses

plot_losses(trainer.state.log_history, title=f"{profile.model_id} ({profile.name})");
history = loss_history(trainer.state.log_history)
print("loss kiểm định:", [round(x, 3) for x in history["eval_loss"]])
assert history["eval_loss"][-1] < history["eval_loss"][0], "loss kiểm định phải giảm sau khi tinh chỉnh"

# %% [markdown]
# ## 8. Sau khi tinh chỉnh: cùng câu hỏi, cùng phép đo

# %%
import pandas as pd

after_table, after = evaluate(trainer.model, tokenizer, profile, test)
pd.set_option("display.max_colwidth", 120)
side = pd.DataFrame({"câu hỏi": before_table["prompt"], "trước": before_table["answer"],
                     "sau": after_table["answer"], "tham chiếu": before_table["reference"]})
side.head(3)

# %%
scores = pd.DataFrame({"trước": before, "sau": after}).round(4)
scores

# %% [markdown]
# Với profile `tiny`, các con số trên đến từ mô hình tiny (khoảng 1,3 triệu tham số): nó học được
# hình thức câu trả lời (độ dài, cách mở đầu) nhiều hơn nội dung, nên ROUGE chỉ nhích lên chút ít. Đừng
# đọc chúng như chất lượng của một mô hình 7B.

# %% [markdown]
# ## 9. Lưu adapter, tải lại không gộp
#
# `trainer.save_model` chỉ lưu adapter (vài chục MB với mô hình 7B), không lưu mô hình nền. Khi dùng,
# ta tải lại mô hình nền 4-bit rồi đặt adapter lên trên bằng `PeftModel.from_pretrained`: mô hình tính
# $W x + \frac{\alpha}{r} B A x$ với $W$ vẫn ở dạng 4-bit. Trên T4 phải giải phóng mô hình đang huấn luyện
# trước khi tải bản thứ hai.

# %%
from course_utils.lab import free_memory, reload_with_adapter

adapter_dir = output_dir / "adapter"
trainer.save_model(str(adapter_dir))
print(sorted(p.name for p in adapter_dir.iterdir()))

del trainer, model
free_memory()
reloaded, tokenizer = reload_with_adapter(profile, adapter_dir, token)
reloaded_table, _ = evaluate(reloaded, tokenizer, profile, test)
same = reloaded_table["answer"].tolist() == after_table["answer"].tolist()
print("Mô hình tải lại trả lời y hệt:", same)
assert same

# %% [markdown]
# ### Vì sao không `merge_and_unload` trên mô hình 4-bit?
#
# Gộp trọng số (merge) nghĩa là tính $W' = W + \frac{\alpha}{r} B A$. Với $W$ ở dạng NF4, peft phải
# giải lượng tử hóa $W$ về 16-bit, cộng $\Delta W$, rồi lượng tử hóa lại: $W'$ bị làm tròn về 16 mức NF4
# của từng khối, nên phần lớn $\Delta W$ (vốn nhỏ) bị mất hoặc méo đi. Giữ adapter riêng thì chính xác và
# nhẹ. Muốn có một mô hình gộp để phục vụ (serving), hãy tải mô hình nền ở **16-bit** (không lượng tử hóa)
# rồi gộp:
#
# ```python
# base = AutoModelForCausalLM.from_pretrained(profile.model_id, dtype=torch.float16)  # khoảng 15 GB
# merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
# merged.save_pretrained("qwen2.5-7b-vi-merged")
# ```
#
# Với mô hình 7B, việc này cần khoảng 15 GB RAM hoặc VRAM, nhiều hơn Colab miễn phí có (khoảng 12,7 GB RAM,
# 15 GB VRAM): hãy làm trên một máy lớn hơn. Chương {doc}`../book/06_lora_qlora` đo sai số của việc gộp trên
# mô hình 4-bit.

# %%
print(f"Notebook này đã chạy với profile '{profile.name}', mô hình {profile.model_id}.")
