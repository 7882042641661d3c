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
# # Notebook — Thực hành QLoRA một mô hình 7B trên Colab T4
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/09_qlora_lab.ipynb)
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
# Notebook này tinh chỉnh {term}`QLoRA` một mô hình 7B (mặc định Qwen2.5-7B-Instruct) trên **một GPU T4 miễn phí
# của Colab**, từ đầu đến cuối, với dữ liệu của khóa học hoặc **dữ liệu của bạn**. Không có GPU, cùng notebook chạy
# với {term}`mô hình tiny <Mô hình tiny>` trên CPU: các bước giống hệt, chỉ mô hình khác.
#
# Mỗi bước là một hàm nhỏ của `course_utils.lab`; lệnh `python -m course_utils.lab` gọi đúng các hàm ấy theo cùng
# thứ tự, nên notebook và dòng lệnh là một quy trình. Chạy trên Colab: *Runtime > Change runtime type > T4 GPU*,
# rồi *Run all*.

# %% [markdown]
# ## Profile và token
#
# Muốn dùng Vistral-7B-Chat, đặt `COURSE_PROFILE = "t4-vistral"` ở ô dưới. Vistral là mô hình có kiểm soát truy cập
# (gated): chấp nhận điều khoản trên trang mô hình và thêm token vào Colab Secrets với tên `HF_TOKEN`. Token không bao
# giờ được in ra hay lưu vào notebook.

# %%
import os

# os.environ["COURSE_PROFILE"] = "t4-vistral"  # bỏ dấu # để dùng Vistral-7B-Chat

from course_utils import lab
from course_utils.env import gpu_summary, in_colab
from course_utils.profiles import get_profile

profile = get_profile()
# profile = profile.replace(model_id="Qwen/Qwen2.5-3B-Instruct")  # một mô hình khác: tên trên Hub hoặc thư mục
print(gpu_summary())
print(f"Profile: {profile.name} — {profile.description}")
print(f"Mô hình: {profile.model_id}")

# %% [markdown]
# ## Dùng dữ liệu của bạn
#
# Để `DATA = None` thì notebook dùng dữ liệu của khóa học. Muốn dùng dữ liệu của bạn, gán `DATA` bằng một trong:
#
# - đường dẫn một tệp `.jsonl` (mỗi dòng một bản ghi) hoặc `.json` (một danh sách bản ghi), ở định dạng Alpaca,
#   ShareGPT (nhiều lượt cũng được) hoặc `messages` (chương {doc}`../book/09_qlora_lab` có ví dụ từng dạng);
# - trên Colab: `"upload"` để chọn tệp từ máy bạn, hoặc một đường dẫn trong Google Drive
#   (`/content/drive/MyDrive/...`, sau khi gắn Drive ở bước huấn luyện);
# - tên một bộ dữ liệu trên Hugging Face Hub (`"tổ-chức/tên"`, cần mạng).
#
# Không có tập kiểm định riêng (`VALIDATION = None`), dữ liệu được tách ngẫu nhiên 90/10 với seed cố định và
# notebook nói rõ đã tách thế nào. Một bản ghi hỏng làm notebook dừng với thông báo chỉ đúng dòng cần sửa.

# %%
DATA = None  # ví dụ "du_lieu_cua_toi.jsonl", "upload", hoặc "tổ-chức/tên-bộ-dữ-liệu"
VALIDATION = None

if DATA == "upload" and in_colab():
    from google.colab import files

    DATA = next(iter(files.upload()))  # tên tệp vừa tải lên

run = lab.prepare(profile, data=DATA, validation=VALIDATION)  # kiểm tra mọi tham số, chưa tải gì
data = lab.load_data(run)
print(data.note)
print("Thư mục kết quả:", run.output_dir)

# %% [markdown]
# ## Mẫu hội thoại, mặt nạ loss và kế hoạch bộ nhớ, trước khi tải trọng số
#
# Bộ tách từ chỉ nặng vài MB. Từ {term}`mẫu hội thoại` của nó, `resolve_loss` quyết định loss chỉ tính trên câu trả
# lời bằng cách nào ({ref}`assistant-mask`): mẫu có dấu `{% generation %}` (hoặc TRL có bản huấn luyện của đúng mẫu
# đó, như với Qwen2.5) thì dùng mặt nạ trợ lý, nếu không thì chuyển dữ liệu sang dạng prompt – completion.
#
# Rồi `plan_memory` đọc `config.json` (vài KB) và độ dài thật của dữ liệu sau mẫu hội thoại, và cộng từng phần bộ nhớ
# của một bước huấn luyện. Cấu hình vượt ngân sách của T4 (kể cả 5% dự phòng cho bộ cấp phát) bị từ chối ngay ở đây,
# với thông báo nói phải giảm gì.

# %%
from course_utils.models import load_tokenizer
from course_utils.train import resolve_loss

tokenizer = load_tokenizer(run.profile, run.token)
print("Loss:", resolve_loss(run.profile, tokenizer).reason)
plan = lab.plan_memory(run, tokenizer, data)
print(plan.text)

# %% [markdown]
# Thử một cấu hình quá tham trên đúng mô hình 7B mặc định (chỉ cần cấu hình của nó): `max_length=16384` với batch 4.

# %%
from course_utils.configs import qwen25_7b_config
from course_utils.memory import MemoryPlanError, check_plan, estimate_training_memory

too_big = get_profile("t4").replace(max_length=16384, per_device_train_batch_size=4)
try:
    check_plan(estimate_training_memory(qwen25_7b_config(), too_big), too_big, qwen25_7b_config())
except MemoryPlanError as err:
    print(str(err).splitlines()[0])

# %% [markdown]
# ## Tải mô hình 4-bit
#
# NF4 với lượng tử hóa kép, tính toán ở fp16 trên T4 (checkpoint gốc lưu ở bf16, T4 không có bf16); xem chương
# {doc}`../book/05_luong_tu_hoa`.

# %%
import time

import torch

from course_utils.models import describe_model

t0 = time.time()
model, tokenizer = lab.load_model(run)
info = describe_model(model)
print(f"Tải xong trong {time.time() - t0:.0f} s; {info['parameters']:,} tham số, "
      f"{info['linear4bit_layers']} lớp Linear4bit, trọng số chiếm {info['footprint_bytes'] / 2**20:,.1f} MiB")
if torch.cuda.is_available():
    print(f"Bộ nhớ GPU đang cấp phát: {torch.cuda.memory_allocated() / 2**30:.2f} GiB")

# %% [markdown]
# ## Trước khi tinh chỉnh: câu trả lời, ROUGE và câu hỏi ngoài đề
#
# `evaluate` sinh câu trả lời tham lam (greedy) cho các câu hỏi kiểm tra và chấm bằng ROUGE trên âm tiết tiếng Việt
# (chương {doc}`../book/08_rouge`). Nó cũng hỏi mô hình vài câu **ngoài đề tài** của dữ liệu huấn luyện (thủ đô,
# phép nhân, dịch một câu): tinh chỉnh một mô hình Instruct trên một tập hẹp có thể làm nó quên bớt những điều
# này, và cách duy nhất để biết là hỏi lại sau khi huấn luyện.

# %%
before = lab.evaluate(model, tokenizer, run, data)
print({k: round(v, 4) for k, v in before.means.items()})

# %% [markdown]
# ## Huấn luyện
#
# `lab.train` dựng `SFTTrainer` bằng `build_trainer` với công thức đã đo ở chương {doc}`../book/09_qlora_lab`
# (fp16 với GradScaler, adapter ở fp32, gradient checkpointing, AdamW 8-bit, tổng LoRA gộp; trên GPU thêm kernel
# của Liger, offload activation, phân đoạn mở rộng và SDPA không dùng cuDNN) rồi huấn luyện, **tiếp tục từ checkpoint mới nhất** nếu có. Trên Colab, gắn Google Drive để
# checkpoint sống sót khi Colab ngắt kết nối.

# %%
import shutil

if in_colab():
    from google.colab import drive

    drive.mount("/content/drive")  # bỏ qua được: khi đó checkpoint nằm trong /content (mất khi ngắt kết nối)
if profile.is_tiny and DATA is None and run.output_dir.exists():
    shutil.rmtree(run.output_dir)  # tiny: luôn chạy lại từ đầu, để trang web cho thấy một lần chạy trọn vẹn
    run.output_dir.mkdir(parents=True)

t0 = time.time()
trainer, resumed = lab.train(model, tokenizer, run, data)
print(f"Tiếp tục từ {resumed}" if resumed else "Huấn luyện từ đầu", f"— {time.time() - t0:.0f} s")
trainer.model.print_trainable_parameters()

# %% [markdown]
# ## Đường loss

# %%
from course_utils.train import loss_history, plot_losses

plot_losses(trainer.state.log_history, title=f"{profile.model_id} ({profile.name})");
history = loss_history(trainer.state.log_history)
print("loss kiểm định:", [round(x, 3) for x in history["eval_loss"]])

# %% [markdown]
# ## Sau khi tinh chỉnh: cùng câu hỏi, cùng phép đo, và khoảng tin cậy
#
# Vài chục câu kiểm tra là ít: điểm ROUGE trung bình phụ thuộc nhiều vào việc câu nào tình cờ được chọn. So cặp
# (cùng một câu, trước và sau) bằng bootstrap (chương {doc}`../book/08_rouge`) cho biết khoảng tin cậy của phần
# cải thiện, thay vì một con số trơ trọi.

# %%
import pandas as pd

from course_utils.metrics import paired_bootstrap

after = lab.evaluate(trainer.model, tokenizer, run, data)
pd.set_option("display.max_colwidth", 100)
side = pd.DataFrame({"câu hỏi": before.table["prompt"], "trước": before.table["answer"],
                     "sau": after.table["answer"], "tham chiếu": before.table["reference"]})
display(side.head(3))
display(pd.DataFrame({"trước": before.means, "sau": after.means}).round(4))
gain = paired_bootstrap(before.table["rougeL"], after.table["rougeL"])
print({k: round(v, 4) for k, v in gain.items()})

# %% [markdown]
# Câu hỏi ngoài đề, trước và sau:

# %%
pd.DataFrame({"câu hỏi": before.probe_table["prompt"], "trước": before.probe_table["answer"],
              "sau": after.probe_table["answer"]}).head(4)

# %% [markdown]
# Với profile `tiny`, mọi con số trên đến từ mô hình tiny: nó học được hình thức câu trả lời nhiều hơn nội dung, và
# những câu ngoài đề vốn đã sai. Đừng đọc chúng như chất lượng của một mô hình 7B.

# %% [markdown]
# ## Lưu adapter, tải lại không gộp, kiểm tra
#
# `lab.save` chỉ lưu adapter, không lưu mô hình nền; với Qwen2.5-7B, r = 16 trên mọi lớp tuyến tính, adapter ở fp32
# nặng khoảng 154 MiB. `lab.reload` tải lại mô hình nền 4-bit rồi đặt adapter lên trên (`PeftModel.from_pretrained`):
# mô hình tính $W x + \frac{\alpha}{r} B A x$ với $W$ vẫn ở dạng 4-bit. Trên T4 phải giải phóng mô hình đang huấn
# luyện trước khi tải bản thứ hai. `lab.checks` là những gì lệnh `python -m course_utils.lab` cũng kiểm tra và ghi
# vào `summary.json`.

# %%
adapter_dir = lab.save(trainer, run)
print(sorted(p.name for p in adapter_dir.iterdir()))
log_history = trainer.state.log_history
del trainer, model
lab.free_memory()
reloaded_model, tokenizer = lab.reload(run, adapter_dir)
reloaded = lab.evaluate(reloaded_model, tokenizer, run, data, probe=False)
checks = lab.checks(log_history, before, after, reloaded.table["answer"].tolist())
print(checks)
summary = lab.write_outputs(run, data, log_history, before, after, reloaded, checks, plan)
if profile.is_tiny and DATA is None:
    assert all(checks.values()), checks  # the site's run: the validation loss falls, the reload answers identically

# %% [markdown]
# ## Trò chuyện với kết quả
#
# Câu trả lời hiện ra từng token một, như trong một ứng dụng trò chuyện. Ngoài notebook:
# `python -m course_utils.lab --chat --output-dir <thư mục kết quả>`.

# %%
from course_utils.data import SYSTEM_PROMPT
from course_utils.models import stream_answer

stream_answer(reloaded_model, tokenizer, "LoRA khác tinh chỉnh toàn bộ ở điểm nào?", max_new_tokens=40,
              system=SYSTEM_PROMPT);

# %% [markdown]
# ## Xuất: gộp từng phần và chia sẻ
#
# Muốn một mô hình gộp để phục vụ (serving), gộp adapter vào mô hình nền **16-bit** chứ không phải bản 4-bit
# (chương {doc}`../book/06_lora_qlora`). `merge_streamed` đọc từng tensor của các tệp safetensors, cộng
# $\frac{\alpha}{r} B A$ vào đúng trọng số, ghi ra từng mảnh, nên không bao giờ giữ cả mô hình trong RAM: với 7B nó
# vừa RAM của Colab miễn phí. Với mô hình 7B, bước này tải bản 16-bit từ Hub (khoảng 14,2 GiB), nên mặc định chỉ chạy
# với mô hình tiny; đặt `MERGE = True` để chạy.

# %%
from course_utils.export import merge_streamed, push_to_hub
from course_utils.models import model_path

MERGE = profile.is_tiny
if MERGE:
    report = merge_streamed(model_path(profile), adapter_dir, run.output_dir / "merged")
    print(f"Đã gộp {report.merged} trọng số vào {report.shards} mảnh trong {report.seconds:.1f} s: {report.out_dir}")

# Chia sẻ adapter lên Hub (kho riêng tư), với token có quyền ghi trong Colab Secrets (HF_TOKEN):
PUSH_TO = None  # ví dụ "ten-ban/qwen2.5-7b-vi-lora"
if PUSH_TO:
    print(push_to_hub(adapter_dir, PUSH_TO))

# %% [markdown]
# ## Hai GPU: Kaggle 2 × T4
#
# Trên Kaggle (*Settings > Accelerator > GPU T4 x2*), cùng ô cài đặt, rồi chạy bài thực hành trên cả hai GPU bằng
# accelerate, mỗi GPU giữ một bản 4-bit của mô hình và học trên một nửa dữ liệu (chương
# {doc}`../book/09_qlora_lab` giải thích khi nào nên dùng). Ô dưới chỉ chạy khi máy có từ hai GPU.

# %%
import subprocess
import sys

if torch.cuda.device_count() >= 2:
    from pathlib import Path

    import course_utils

    config = Path(course_utils.__file__).parent / "accelerate" / "2gpu.yaml"
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                    "-m", "course_utils.lab", "--profile", profile.name, "--output-dir", str(run.output_dir) + "-2gpu"],
                   check=True)
else:
    print(f"Máy này có {torch.cuda.device_count()} GPU: bỏ qua phần hai GPU.")

# %% [markdown]
# ## Các con số của chương
#
# Mọi con số chương {doc}`../book/09_qlora_lab` nêu, tính lại từ `course_utils` và các tệp kết quả đo.

# %%
from course_utils.figures import show_figures

show_figures("09_qlora_lab")
