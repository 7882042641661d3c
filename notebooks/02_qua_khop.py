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
# # Notebook — Quá khớp và tác vụ downstream
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/02_qua_khop.ipynb)
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
# Notebook này dùng mô hình tiny của khóa học để thấy tận mắt ba điều:
#
# 1. **upstream**: mô hình đã được tiền huấn luyện trên văn bản gì, nó làm được gì sau bước đó, và loss của nó
#    trên văn bản đã đọc, văn bản chưa đọc và câu trả lời theo mẫu hội thoại;
# 2. **downstream**: tinh chỉnh nó trên khoảng 100 cặp hỏi – đáp, lặp lại nhiều epoch, cho đến khi nó
#    quá khớp: loss huấn luyện tiếp tục giảm trong khi loss kiểm định quay đầu đi lên;
# 3. bốn cách chống quá khớp, đo trên **cùng** thiết lập đó: dừng sớm, weight decay, LoRA dropout, thêm dữ liệu.
#
# Notebook luôn dùng profile `tiny`, kể cả trên Colab có GPU: năm lần huấn luyện, mỗi lần vài giây. (Lần đầu
# dùng trên một máy mới, `course_utils` dựng mô hình tiny trước, mất khoảng một phút.)
# Mô hình được nạp ở fp32, không lượng tử hóa (`quantize=False`): chương này nói về quá khớp chứ không về
# 4 bit, và với 1,3 triệu tham số thì lượng tử hóa chẳng tiết kiệm được gì đáng kể.

# %%
import json
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import transformers
from transformers import EarlyStoppingCallback, PrinterCallback, set_seed

from course_utils.data import load_split, to_training_dataset
from course_utils.models import generate_answers, load_model_and_tokenizer, model_path
from course_utils.profiles import get_profile
from course_utils.train import build_trainer, loss_history, plot_losses

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", message=".*pin_memory.*")  # Trainer trên máy không có GPU
SEED = 0

# %% [markdown]
# ## Upstream: mô hình tiny đã học gì
#
# `course_utils.tiny` dựng mô hình tiny một lần rồi lưu lại: một bộ tách từ BPE học trên một đoạn văn
# tiếng Việt ngắn (`corpus_text()`), rồi một Qwen2 nhỏ được tiền huấn luyện trên chính đoạn văn đó, đoán token
# tiếp theo. File `course_tiny.json` ghi lại lần tiền huấn luyện ấy.

# %%
from course_utils import tiny

profile = get_profile("tiny")
info = json.loads((Path(model_path(profile)) / "course_tiny.json").read_text(encoding="utf-8"))
print(info)
print(tiny.corpus_text()[:300], "...")

# %%
tokens_seen = info["pretrain_steps"] * tiny.PRETRAIN_BATCH * tiny.SEQ_LEN
print(f"{info['pretrain_steps']} bước × {tiny.PRETRAIN_BATCH} đoạn × {tiny.SEQ_LEN} token = {tokens_seen:,} token đã đọc, "
      f"tức khoảng {tokens_seen / info['corpus_tokens']:.0f} lượt qua kho văn bản {info['corpus_tokens']:,} token")

# %% [markdown]
# Mô hình đã đọc kho văn bản nhỏ ấy khoảng 30 lần. Ta cho nó viết tiếp một câu mở đầu, rồi hỏi nó một câu theo
# mẫu hội thoại. (Đây là đầu ra của mô hình tiny 1,3 triệu tham số.)

# %%
set_seed(SEED)
model, tokenizer = load_model_and_tokenizer(profile, quantize=False)

prompt = "Mô hình ngôn ngữ là"
ids = tokenizer(prompt, return_tensors="pt")
continuation = model.generate(**ids, max_new_tokens=30, do_sample=False)
print("Viết tiếp:", tokenizer.decode(continuation[0], skip_special_tokens=True))

question = "LoRA là gì?"
print("Hỏi đáp :", generate_answers(model, tokenizer, [question], max_new_tokens=30)[0])

# %% [markdown]
# Viết tiếp văn bản là đúng việc của bước tiền huấn luyện. Trả lời một câu hỏi theo mẫu hội thoại thì mô hình
# chưa từng được dạy: đó là một **tác vụ downstream**.
#
# ### So cho đúng cặp: loss trên văn bản đã đọc, chưa đọc, và trong mẫu hội thoại
#
# Loss cuối của lần tiền huấn luyện (`final_train_loss` ở trên) được đo trên kho văn bản mô hình đọc đi đọc lại.
# Đem nó so với loss trên câu trả lời của tập kiểm định là trộn hai thay đổi làm một: văn bản đã đọc → chưa đọc, và
# viết tiếp văn bản thường → trả lời theo mẫu hội thoại. `upstream_losses` đo riêng từng bước:
#
# - `corpus`: kho văn bản tiền huấn luyện, cắt thành các đoạn 128 token như lúc tiền huấn luyện (đã đọc);
# - `answers_plain`: các câu trả lời của tập kiểm định, mỗi câu đứng một mình như một đoạn văn (chưa đọc);
# - `answers_chat`: chính các câu trả lời ấy, đặt sau câu hỏi trong mẫu hội thoại; loss chỉ tính trên các token
#   của câu trả lời, đúng những token của dòng trên.
#
# Mô hình tiny đã đọc mọi đoạn của kho, nên không có đoạn nào của kho để giữ riêng; các câu trả lời kiểm định đóng vai
# văn bản tiếng Việt chưa đọc, cùng chủ đề.

# %%
import math

from course_utils.display import show_source
from course_utils.figures.ch02 import upstream_losses

show_source(upstream_losses)

# %%
losses = upstream_losses(model, tokenizer, load_split("validation"))
uniform = math.log(model.config.vocab_size)  # loss của một mô hình đoán đều mọi token
print(pd.DataFrame(losses).T.round(3))
print(f"đoán đều mọi token trong {model.config.vocab_size} mục của từ vựng: ln = {uniform:.3f}")

memorized = losses["answers_plain"]["loss"] - losses["corpus"]["loss"]  # đã đọc → chưa đọc, cùng việc
chat_format = losses["answers_chat"]["loss"] - losses["answers_plain"]["loss"]  # cùng token, thêm mẫu hội thoại
print(f"đã đọc → chưa đọc: {memorized:+.3f}; văn bản thường → mẫu hội thoại: {chat_format:+.3f}")
assert losses["answers_plain"]["tokens"] == losses["answers_chat"]["tokens"]  # cùng những token câu trả lời
assert memorized > 1 and abs(chat_format) < memorized / 4
assert losses["answers_plain"]["loss"] > uniform - 1  # trên văn bản chưa đọc: gần mức đoán đều

# %% [markdown]
# Trên mô hình tiny, gần như toàn bộ khoảng cách đến từ việc văn bản là mới: trên văn bản chưa đọc, loss gần mức
# đoán đều. Đặt cùng các câu trả lời ấy vào mẫu hội thoại chỉ đổi loss một chút. Mô hình tiny đã thuộc kho văn bản của
# nó; một LLM thật, đọc hàng nghìn tỉ token không lặp lại nhiều, không ở trong tình trạng ấy.
#
# ## Downstream: tinh chỉnh cho đến khi quá khớp
#
# Thiết lập cố ý làm cho quá khớp đến nhanh: LoRA hạng 64 trên mọi lớp tuyến tính (số tham số LoRA bằng 46% số
# tham số của chính mô hình tiny), tốc độ học 3e-3 không đổi, 48 bước với batch 8, tức gần năm epoch trên khoảng
# 80 mẫu. Cứ 4 bước (và một lần ở bước 0), trainer ghi loss huấn luyện (trung bình 4 bước vừa qua) và đo loss
# kiểm định trên 16 bản ghi kiểm định đầu (trừ những bản ghi mà TRL bỏ, xem dưới). Các thiết lập này nằm ở một
# chỗ, `OVERFIT`, cũng là chỗ trang của chương đọc các con số nó nêu; muốn thử thiết lập khác, sửa ngay trong ô
# dưới.

# %%
from course_utils.figures.ch02 import OVERFIT

MAX_LENGTH = OVERFIT["max_length"]  # token mỗi mẫu: các mẫu dài hơn bị cắt
N_TRAIN = OVERFIT["n_train"]  # bản ghi huấn luyện của thí nghiệm quá khớp
N_EVAL = OVERFIT["n_eval"]  # bản ghi kiểm định dùng để đo loss kiểm định
STEPS = OVERFIT["steps"]  # bước huấn luyện của mỗi lần chạy
EVAL_EVERY = OVERFIT["eval_every"]  # số bước giữa hai lần đo loss kiểm định
print(OVERFIT)

train_records = load_split("train")
train_small = to_training_dataset(train_records[:N_TRAIN], system=None)
train_full = to_training_dataset(train_records, system=None)
val_data = to_training_dataset(load_split("validation")[:N_EVAL], system=None)

profile = get_profile("tiny").replace(
    max_length=MAX_LENGTH,
    learning_rate=OVERFIT["learning_rate"],
    lr_scheduler_type="constant",
    warmup_steps=0,
    lora_r=OVERFIT["lora_r"],
    lora_alpha=OVERFIT["lora_alpha"],
    lora_dropout=0.0,
    gradient_checkpointing=False,  # mô hình tiny: không cần đổi tính toán lấy bộ nhớ
)
output_root = Path(tempfile.mkdtemp(prefix="qua_khop-"))

# %% [markdown]
# Hàm `run` dưới đây là toàn bộ một lần huấn luyện: nạp lại mô hình tiny, dựng trainer bằng `build_trainer`
# với các thiết lập trên, huấn luyện. Các thí nghiệm sau chỉ đổi một thứ trong đó.

# %%
def run(name, train_data=train_small, callbacks=None, lora_overrides=None, **overrides):
    """Fine-tune a fresh copy of the tiny model with the chapter's settings; return the trainer."""
    set_seed(SEED)
    model, tokenizer = load_model_and_tokenizer(profile, quantize=False)
    settings = dict(max_steps=STEPS, eval_steps=EVAL_EVERY, logging_steps=EVAL_EVERY, eval_on_start=True,
                    save_strategy="no", disable_tqdm=True)
    settings.update(overrides)
    trainer = build_trainer(model, tokenizer, train_data, val_data, profile, output_root / name,
                            callbacks=callbacks, lora_overrides=lora_overrides, **settings)
    trainer.remove_callback(PrinterCallback)  # bảng tóm tắt ở dưới thay cho log từng bước
    trainer.train()
    return trainer


overfit = run("overfit")
n_trainable, n_total = overfit.model.get_nb_trainable_parameters()
print(f"Tham số LoRA được huấn luyện: {n_trainable:,} (mô hình nền: {n_total - n_trainable:,})")

# %% [markdown]
# `build_trainer` cắt mỗi mẫu còn `MAX_LENGTH` token, và TRL bỏ những mẫu mà phần câu trả lời bị cắt mất hoàn
# toàn. Số mẫu thực sự dùng, và số epoch mà 48 bước với batch 8 tương ứng:

# %%
h = loss_history(overfit.state.log_history)
batch_size = profile.per_device_train_batch_size
epochs = {name: STEPS * batch_size / len(data) for name, data in (("100 bản ghi", overfit.train_dataset),)}
print(f"{len(overfit.train_dataset)} trên {N_TRAIN} bản ghi huấn luyện, "
      f"{len(overfit.eval_dataset)} trên {N_EVAL} bản ghi kiểm định; "
      f"{STEPS} bước × batch {batch_size} = {epochs['100 bản ghi']:.2f} epoch")
assert 4.5 < epochs["100 bản ghi"] < 5 and abs(len(overfit.train_dataset) - 80) <= 5  # "gần năm epoch", "khoảng 80 mẫu"

# %%
best = min(range(len(h["eval_loss"])), key=h["eval_loss"].__getitem__)
best_step = h["eval_step"][best]
train_at_best = h["train_loss"][h["train_step"].index(best_step)]

ax = plot_losses(overfit.state.log_history, title="Mô hình tiny, 100 bản ghi, LoRA r=64")
ax.axhline(h["eval_loss"][best], color="gray", linestyle=":", linewidth=1)
ax.annotate("loss kiểm định thấp nhất", (best_step, h["eval_loss"][best]), xytext=(10, 40),
            textcoords="offset points", arrowprops=dict(arrowstyle="->", color="gray"))
plt.show()

# %%
print(f"Loss kiểm định thấp nhất {h['eval_loss'][best]:.3f} ở bước {best_step}; cuối cùng {h['eval_loss'][-1]:.3f}")
print(f"Loss huấn luyện ở bước {best_step}: {train_at_best:.3f}; cuối cùng {h['train_loss'][-1]:.3f}")

# quá khớp: loss kiểm định cuối cao hơn mức thấp nhất của nó, trong khi loss huấn luyện vẫn giảm mạnh
assert best_step < STEPS and h["eval_loss"][-1] > h["eval_loss"][best] + 0.05
assert h["train_loss"][-1] < train_at_best - 0.5

# %% [markdown]
# Sau bước có loss kiểm định thấp nhất, mỗi bước làm mô hình khớp hơn với khoảng 80 mẫu nó đang thuộc dần, còn
# trên các mẫu chưa thấy thì không khá lên mà kém dần đi. Đường kiểm định dao động vì tập kiểm định ở đây rất nhỏ:
# hãy nhìn xu hướng, đừng nhìn từng điểm. Bài tập cuối notebook đo trực tiếp khoảng cách giữa hai bên: loss trên
# chính các mẫu đã học so với loss kiểm định.

# %% [markdown]
# ## Chống quá khớp, đo trên cùng thiết lập
#
# Bốn lần chạy nữa, mỗi lần đổi đúng một thứ so với lần chạy trên; cùng hạt giống ngẫu nhiên, cùng 48 bước.
#
# **Dừng sớm** (early stopping): `EarlyStoppingCallback` dừng khi loss kiểm định không cải thiện sau 3 lần đo
# liên tiếp; `load_best_model_at_end=True` nạp lại checkpoint có loss kiểm định thấp nhất. Muốn nạp lại được thì
# phải lưu checkpoint ở mỗi lần đo, nên lần chạy này đặt `save_strategy="steps"` với `save_steps` bằng
# `eval_steps`.

# %%
early = run("early_stopping",
            callbacks=[EarlyStoppingCallback(early_stopping_patience=OVERFIT["patience"])],
            save_strategy="steps", save_steps=EVAL_EVERY,
            load_best_model_at_end=True, metric_for_best_model="eval_loss")
early_history = loss_history(early.state.log_history)  # trước evaluate(), vì evaluate() ghi thêm một dòng
early_evals = early_history["eval_loss"]
early_final = early.evaluate()["eval_loss"]  # mô hình đang nạp là checkpoint tốt nhất
print(f"Dừng ở bước {early.state.global_step}/{STEPS}; checkpoint tốt nhất: {early.state.best_model_checkpoint}")
print(f"Loss kiểm định của mô hình cuối cùng: {early_final:.3f} (thấp nhất đã đo: {min(early_evals):.3f})")
assert early.state.global_step < STEPS
assert abs(early_final - min(early_evals)) < 1e-3

# %% [markdown]
# **Weight decay**: AdamW nhân mỗi tham số *được huấn luyện* với (1 − tốc độ học × weight decay) ở mỗi bước, kéo nó
# dần về 0. Ở đây đó là A và B của LoRA; trọng số W của mô hình nền bị đóng băng, không được tối ưu nên không bị
# kéo. Ô dưới kiểm tra cả hai điều trên chính trainer: bộ tối ưu chỉ giữ các tham số LoRA, và sau khi huấn luyện, W
# vẫn y hệt W của mô hình tiny vừa nạp.

# %%
from course_utils.figures.ch02 import decay_factor

WEIGHT_DECAY = OVERFIT["weight_decay"]
wd = run("weight_decay", weight_decay=WEIGHT_DECAY)
optimized = {id(p) for group in wd.optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
names = [n for n, p in wd.model.named_parameters() if id(p) in optimized]
print(f"{len(names)} tensor chịu weight decay, ví dụ {names[:2]}")
assert names and all("lora_A" in n or "lora_B" in n for n in names)

frozen_w = wd.model.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight
assert torch.equal(frozen_w, model.model.layers[0].self_attn.q_proj.weight)  # W không đổi
shrink = decay_factor(profile.learning_rate, WEIGHT_DECAY, STEPS)
print(f"Sau {STEPS} bước, riêng weight decay nhân A và B với {shrink:.4f}, và ΔW = (alpha/r)·B·A với {shrink**2:.4f}")

# %% [markdown]
# **LoRA dropout**: trong lúc huấn luyện, đầu vào của nhánh LoRA bị đặt ngẫu nhiên 10% giá trị về 0.

# %%
LORA_DROPOUT = OVERFIT["lora_dropout"]
dropout = run("lora_dropout", lora_overrides={"lora_dropout": LORA_DROPOUT})

# %% [markdown]
# **Thêm dữ liệu**: toàn bộ 216 bản ghi huấn luyện thay cho 100, cùng 48 bước. Mỗi mẫu vì thế được thấy ít lần
# hơn (khoảng hai lần thay vì năm).

# %%
more = run("more_data", train_data=train_full)
epochs_full = STEPS * batch_size / len(more.train_dataset)
print(f"{len(more.train_dataset)} mẫu, {epochs_full:.2f} epoch")
assert round(epochs_full) == 2

# %% [markdown]
# ## So sánh

# %%
runs = {"quá khớp (gốc)": overfit, "dừng sớm": early, f"weight decay {WEIGHT_DECAY}": wd,
        f"LoRA dropout {LORA_DROPOUT}": dropout, "216 bản ghi": more}
histories = {name: early_history if trainer is early else loss_history(trainer.state.log_history)
             for name, trainer in runs.items()}
rows = []
for name, trainer in runs.items():
    hist = histories[name]
    i = min(range(len(hist["eval_loss"])), key=hist["eval_loss"].__getitem__)
    rows.append({
        "lần chạy": name,
        "số mẫu": len(trainer.train_dataset),
        "số bước": trainer.state.global_step,
        "loss kiểm định thấp nhất": round(hist["eval_loss"][i], 3),
        "ở bước": hist["eval_step"][i],
        "loss kiểm định cuối": round(early_final if trainer is early else hist["eval_loss"][-1], 3),
        "loss huấn luyện cuối": round(hist["train_loss"][-1], 3),
    })
table = pd.DataFrame(rows).set_index("lần chạy")
table

# %%
fig, ax = plt.subplots(figsize=(7, 4))
styles = {"dừng sớm": dict(linewidth=5, alpha=0.3), f"weight decay {WEIGHT_DECAY}": dict(linestyle="--")}
for name, hist in histories.items():
    ax.plot(hist["eval_step"], hist["eval_loss"], marker="o", markersize=3, label=name, **styles.get(name, {}))
ax.axvline(early.state.global_step, color="gray", linestyle=":", label="dừng sớm dừng ở đây")
ax.set_ylim(min(table["loss kiểm định thấp nhất"]) - 0.05, 6.0)  # cắt phần đầu để thấy rõ đoạn cuối
ax.set_xlabel("bước (step)")
ax.set_ylabel("loss kiểm định")
ax.set_title("Loss kiểm định của năm lần chạy (mô hình tiny; trục tung bị cắt ở 6)")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# Những điều mô hình tiny cho thấy ở đây, và ô dưới kiểm tra lại từng điều:
#
# - **Dừng sớm** không làm mô hình học tốt hơn; cùng hạt giống, nó đi đúng con đường của lần chạy gốc cho đến lúc
#   dừng, rồi trả lại checkpoint tốt nhất đã gặp: loss kiểm định của nó thấp hơn của mô hình ở bước cuối lần chạy gốc.
# - **Weight decay 0,1** gần như không đổi gì: trong 48 bước nó chỉ làm A và B nhỏ đi khoảng 1,4%.
# - **LoRA dropout 0,1** làm loss huấn luyện giảm chậm hơn; loss kiểm định chỉ khác lần chạy gốc một chút.
# - **Thêm dữ liệu** là cách duy nhất hạ được hẳn loss kiểm định thấp nhất.

# %%
best_loss = table["loss kiểm định thấp nhất"]
assert abs(table.loc["dừng sớm", "loss kiểm định cuối"] - best_loss["dừng sớm"]) < 1e-3
assert table.loc["dừng sớm", "loss kiểm định cuối"] < table.loc["quá khớp (gốc)", "loss kiểm định cuối"]
assert abs(best_loss[f"weight decay {WEIGHT_DECAY}"] - best_loss["quá khớp (gốc)"]) < 0.02
assert table.loc[f"LoRA dropout {LORA_DROPOUT}", "loss huấn luyện cuối"] > table.loc["quá khớp (gốc)", "loss huấn luyện cuối"] + 0.1
assert abs(best_loss[f"LoRA dropout {LORA_DROPOUT}"] - best_loss["quá khớp (gốc)"]) < 0.1
assert best_loss["216 bản ghi"] < best_loss.drop("216 bản ghi").min() - 0.1

# %% [markdown]
# Đừng khái quát quá xa từ năm lần chạy này. Đây là một mô hình 1,3 triệu tham số, 48 bước, một hạt giống
# ngẫu nhiên: weight decay và dropout có thể có ích hơn với lần huấn luyện dài hơn hay mô hình khác, và chỉ
# có phép đo trên dữ liệu của bạn mới trả lời được.

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-02-1
# ```
# **Dấu hiệu của quá khớp.** Dấu hiệu nào cho thấy quá khớp? Gán chữ cái của bạn cho `choice`.
#
# - (a) loss huấn luyện và loss kiểm định cùng giảm;
# - (b) loss huấn luyện giảm, loss kiểm định giảm rồi quay đầu tăng;
# - (c) loss huấn luyện và loss kiểm định cùng đứng yên ở mức cao;
# - (d) loss huấn luyện tăng, loss kiểm định giảm.

# %%
from course_utils.exercises.qua_khop import check_overfitting_signal

choice = ...  # thay ... bằng câu trả lời của bạn: "a", "b", "c" hoặc "d"
check_overfitting_signal(choice);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-02-1
# :class: dropdown
# ```

# %%
choice = "b"
assert check_overfitting_signal(choice)

# %% [markdown]
# (c) là học chưa đủ (underfitting): mô hình chưa học được cả dữ liệu huấn luyện.

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-02-2
# ```
# **Bước có loss kiểm định thấp nhất.** Từ `overfit.state.log_history` (một danh sách từ điển; từ điển có khóa
# `"eval_loss"` là một lần đo kiểm định, khóa `"step"` là bước), tìm bước có loss kiểm định thấp nhất, không dùng
# `loss_history`, và gán nó cho `step_of_min`.

# %%
from course_utils.exercises.qua_khop import check_best_step

step_of_min = ...  # thay ... bằng câu trả lời của bạn
check_best_step(step_of_min, overfit.state.log_history);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-02-2
# :class: dropdown
# ```

# %%
evals = [row for row in overfit.state.log_history if "eval_loss" in row]
step_of_min = min(evals, key=lambda row: row["eval_loss"])["step"]
print(step_of_min)
assert check_best_step(step_of_min, overfit.state.log_history)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-02-3
# ```
# **Weight decay cần bao lâu.** Nếu chỉ có weight decay tác động, sau bao nhiêu bước thì weight decay 0,1 với tốc độ
# học 3e-3 (không đổi) làm A và B của LoRA nhỏ đi một nửa? Gán cho `n_half` số bước nhỏ nhất n sao cho
# (1 − lr × wd)^n ≤ 0,5. So với 48 bước của thí nghiệm, con số này nói gì? Còn ΔW = (alpha/r)·B·A thì sao?

# %%
from course_utils.exercises.qua_khop import check_half_life_steps

n_half = ...  # thay ... bằng câu trả lời của bạn
check_half_life_steps(n_half, lr=profile.learning_rate, weight_decay=WEIGHT_DECAY);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-02-3
# :class: dropdown
# ```

# %%
n_half = math.ceil(math.log(0.5) / math.log(1 - profile.learning_rate * WEIGHT_DECAY))
print(n_half)
assert check_half_life_steps(n_half, lr=profile.learning_rate, weight_decay=WEIGHT_DECAY)

# %% [markdown]
# Cần hàng nghìn bước, trong khi thí nghiệm chỉ có 48: weight decay quá yếu để kịp tác dụng. ΔW là tích của B và A,
# nên nó bị nhân với bình phương hệ số ấy và nhỏ đi một nửa sau khoảng một nửa số bước đó; vẫn xa hơn 48 bước rất
# nhiều. W của mô hình nền thì không đổi.

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-02-4
# ```
# **Khoảng cách giữa dữ liệu đã học và dữ liệu mới.** Một thử nghiệm nhỏ: đo loss của mô hình quá khớp (`overfit`)
# trên 16 mẫu đầu của chính tập huấn luyện của nó, bằng `overfit.evaluate(eval_dataset=...)`. Gán cho `gap` hiệu
# giữa loss kiểm định cuối và loss trên dữ liệu đã học. (`overfit.train_dataset` là tập đã qua xử lý; `train_small`
# là tập gốc mà trainer nhận.)

# %%
from course_utils.exercises.qua_khop import check_generalization_gap

gap = ...  # thay ... bằng câu trả lời của bạn: loss kiểm định cuối − loss trên 16 mẫu huấn luyện
check_generalization_gap(gap, overfit, train_small.select(range(16)));

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-02-4
# :class: dropdown
# ```

# %%
seen = train_small.select(range(16))
train_loss_seen = overfit.evaluate(eval_dataset=seen)["eval_loss"]
gap = h["eval_loss"][-1] - train_loss_seen  # loss kiểm định cuối của lần chạy gốc
print(f"loss trên mẫu đã học {train_loss_seen:.3f}, khoảng cách {gap:.3f}")
assert check_generalization_gap(gap, overfit, seen)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Các con số của chương
#
# Mọi con số mà trang của chương và notebook này nêu, tính lại bằng `course_utils` (các thiết lập của thí nghiệm
# là `OVERFIT`, đúng những thiết lập notebook đã chạy):

# %%
from course_utils.figures import show_figures

pd.set_option("display.max_rows", 100)
show_figures("02_qua_khop")
