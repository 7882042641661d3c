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
# # Notebook 7: Chọn rank và alpha
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/07_rank_alpha.ipynb)
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
# Notebook này đi cùng chương {doc}`../book/07_rank_alpha`. Ta sẽ:
#
# 1. tính hệ số $s$ của các quy tắc chọn alpha cho Qwen2.5-7B, kể cả đề xuất $\alpha = \sqrt{d_{hidden}}$;
# 2. kiểm tra bằng số rằng với Adam, alpha **không** đơn giản là một hệ số nhân tốc độ học,
#    và phép tương đương đúng là gì;
# 3. quét rank × quy tắc alpha trên mô hình tiny và đọc kết quả một cách thận trọng.
#
# Phép quét luôn dùng mô hình tiny (trên GPU nếu có, nếu không thì CPU). Mặc định nó chạy 3 giá trị của r;
# đặt `FULL_GRID = True` để chạy đủ 7 giá trị (29 lần huấn luyện thay vì 12), hoặc chạy từ dòng lệnh:
# `python -m course_utils.lora --full-grid`.

# %%
import math

import matplotlib.pyplot as plt
import torch
import transformers

transformers.logging.set_verbosity_error()

FULL_GRID = False  # True: r = 1, 2, 4, 8, 16, 32, 64 thay cho r = 1, 16, 64

# %% [markdown]
# ## 1. Hệ số $s$ của từng quy tắc
#
# Adapter cộng $s\,BA$ vào $W$. Với cách chuẩn $s = \alpha/r$; với rsLoRA (`use_rslora=True`) $s = \alpha/\sqrt{r}$.
# Năm quy tắc mà chương này so sánh, viết dưới dạng hàm của $r$ và của số chiều ẩn $h$:

# %%
from course_utils.configs import qwen25_7b_config
from course_utils.display import show_source
from course_utils.lora import SCALINGS, scaling_of

hidden = qwen25_7b_config().hidden_size
print(f"Qwen2.5-7B: hidden = {hidden}, √hidden = {math.sqrt(hidden):.2f}\n")
print(f"{'quy tắc':<26}" + "".join(f"{'r = ' + str(r):>10}" for r in (8, 16, 64, hidden)))
for name in SCALINGS:
    print(f"{name:<26}" + "".join(f"{scaling_of(name, r, hidden):>10.3f}" for r in (8, 16, 64, hidden)))

# %% [markdown]
# Đề xuất trong ghi chú gốc của khóa học, $\alpha = \sqrt{d_{hidden}}$ kèm hệ số $\alpha/\sqrt{r}$, cho
# $s = \sqrt{h / r}$: đúng bằng 1 khi $r = h$ như ghi chú mong muốn, nhưng ở $r = 16$ thì lớn gấp khoảng 7,5 lần
# $s = 2$ của quy tắc $\alpha = 2r$. Đề xuất này chưa có trong bài báo nào; thực chất nó là rsLoRA với một giá trị
# alpha cụ thể. Mục 3 đem nó ra thử.
#
# ## 2. Alpha và tốc độ học khi dùng Adam
#
# Ghi chú gốc viết $LR_{LoRA} = \frac{\alpha}{r} \times LR$. Với SGD, nhân $s$ lên $k$ lần làm gradient của $B$ (và
# của $A$) lớn lên $k$ lần. Nhưng Adam chia mỗi bước cho căn của trung bình bình phương gradient: nhân gradient
# với một hằng số thì bước cập nhật gần như không đổi. Vì vậy alpha chỉ **một phần** giống tốc độ học.
#
# Phép tương đương chính xác (Adam, không weight decay, $\epsilon \to 0$): chạy với
# $(k\alpha,\ A_0/\sqrt{k},\ \eta/\sqrt{k})$ cho **cùng** quỹ đạo $\Delta W_t$ như $(\alpha,\ A_0,\ \eta)$.
# Lý do: đặt $A' = A/\sqrt{k}$, $B' = B/\sqrt{k}$ thì $k s\,B'A' = s\,BA$; gradient theo $A'$, $B'$ lớn gấp $\sqrt{k}$
# lần, Adam xóa hệ số đó, nên mỗi bước $A'$, $B'$ đi đúng $1/\sqrt{k}$ quãng của $A$, $B$ khi tốc độ học là
# $\eta/\sqrt{k}$. Kiểm tra bằng số trên một bài hồi quy nhỏ, float64, $\epsilon = 10^{-16}$:

# %%
from course_utils.lora import adam_delta_w

show_source(adam_delta_w)

# %%
from course_utils.lora import toy_regression

show_source(toy_regression)

# %%
W, A0, X, Y = toy_regression()  # một lớp 5 × 7, r = 3: Y cần học một ΔW

k, alpha, lr, steps = 4.0, 16, 1e-2, 60
runs = {
    "(α, A0, lr)": adam_delta_w(W, A0, X, Y, alpha, lr, steps),
    "(kα, A0/√k, lr/√k)": adam_delta_w(W, A0 / math.sqrt(k), X, Y, k * alpha, lr / math.sqrt(k), steps),
    "(kα, A0, lr): chỉ đổi alpha": adam_delta_w(W, A0, X, Y, k * alpha, lr, steps),
    "(α, A0, k·lr): chỉ đổi lr": adam_delta_w(W, A0, X, Y, alpha, k * lr, steps),
}
ref = runs["(α, A0, lr)"]
scale = max(d.abs().max().item() for d in ref)
for name, deltas in runs.items():
    gap = max((a - b).abs().max().item() for a, b in zip(deltas, ref)) / scale
    print(f"{name:<30} sai khác lớn nhất của ΔW so với (α, A0, lr), tương đối: {gap:.1e}")
gap_equiv = max((a - b).abs().max().item() for a, b in zip(runs["(kα, A0/√k, lr/√k)"], ref)) / scale
assert gap_equiv < 1e-9

fig, ax = plt.subplots(figsize=(6.5, 3.6))
for (name, deltas), style in zip(runs.items(), ["-", "--", ":", "-."]):
    ax.plot([d.norm().item() for d in deltas], style, label=name, linewidth=2)
ax.set_xlabel("bước (step)")
ax.set_ylabel("‖ΔW‖")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Hai đường đầu trùng nhau tới mức làm tròn của float64. Chỉ đổi alpha, hay chỉ đổi tốc độ học, đều cho quỹ đạo khác:
# alpha tác động lên $\Delta W$ khác với tốc độ học, vì $A_0$ (khởi tạo Kaiming, không phụ thuộc alpha) không co giãn theo.
# Với `eps` mặc định của Adam ($10^{-8}$), hay khi có weight decay, phép tương đương trên chỉ còn gần đúng.
#
# ## 3. Quét rank × quy tắc alpha trên mô hình tiny
#
# Mỗi lần chạy: LoRA của peft trên mọi lớp tuyến tính của mô hình tiny (fp32, không dropout), Adam với tốc độ học
# cố định $2 \cdot 10^{-3}$ (tốc độ học của profile tiny), 16 bước, batch 8 chuỗi 128 token, **cùng** các batch
# theo cùng thứ tự; chỉ $r$ và $s$ thay đổi. Kết quả là loss trên tập kiểm định (27 mẫu) sau bước cuối.
#
# Vì sao không dùng `build_trainer`? Trên 2 lõi CPU, mỗi bước của TRL chậm hơn vài lần một vòng lặp PyTorch trần,
# trong khi phép quét cần vài trăm bước: với TRL, notebook không chạy xong trong thời gian cho phép của CI.
# Vòng lặp dưới đây là vòng lặp đơn giản nhất còn trung thực: cùng peft, cùng dữ liệu, cùng loss chỉ trên câu trả lời.

# %%
from course_utils.lora import FULL_RANKS, REDUCED_RANKS, sweep_rank_alpha, train_lora_run

show_source(train_lora_run)

# %%
import time

ranks = FULL_RANKS if FULL_GRID else REDUCED_RANKS
t0 = time.time()
results = sweep_rank_alpha(ranks=ranks, steps=16, lr=2e-3)
print(f"Thời gian quét: {time.time() - t0:.0f} s")

# %%
names = list(SCALINGS)
grid = torch.tensor([[results[(n, r)] for r in ranks] for n in names])

fig, ax = plt.subplots(figsize=(7.5, 3.4))
im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
ax.set_xticks(range(len(ranks)), [str(r) for r in ranks])
ax.set_yticks(range(len(names)), names)
ax.set_xlabel("rank r")
for i in range(len(names)):
    for j in range(len(ranks)):
        ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                color="white" if grid[i, j] > grid.mean() else "black", fontsize=9)
fig.colorbar(im, label="loss kiểm định")
ax.set_title("Mô hình tiny: loss kiểm định sau 16 bước (thấp hơn là tốt hơn)")
plt.show()

# %% [markdown]
# Đọc theo hàng: với $\alpha = 16$ cố định ($s = 16/r$), loss gần như không đổi khi $r$ tăng từ 1 đến 64; với rsLoRA
# và với $\alpha = r$, $\alpha = 2r$, loss nhìn chung giảm khi $r$ tăng. Thử nhìn lại cùng các con số theo $s \cdot r$
# (với quy tắc chuẩn, $s \cdot r$ chính là $\alpha$):

# %%
def spearman(xs, ys):
    """Rank correlation of two lists; tied values share their average rank."""
    def ranks(v):
        v = torch.tensor(v, dtype=torch.float64)
        return torch.stack([((v < x).sum() + ((v == x).sum() - 1) / 2) for x in v]).double()

    return torch.corrcoef(torch.stack([ranks(xs), ranks(ys)]))[0, 1].item()


hidden_tiny = 128
fig, ax = plt.subplots(figsize=(6.5, 3.6))
for name, marker in zip(names, "osD^v"):
    sr = [scaling_of(name, r, hidden_tiny) * r for r in ranks]
    ax.plot(sr, [results[(name, r)] for r in ranks], marker, label=name, alpha=0.8, markersize=7)
ax.set_xscale("log", base=2)
ax.set_xlabel("s · r")
ax.set_ylabel("loss kiểm định")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# loss của các cặp (r, s) có cùng s·r = 16 và của cả lưới theo s·r
same16 = {r: results[("alpha = 16", r)] for r in ranks}
print("α = 16 (s·r = 16) theo r:", {r: round(v, 3) for r, v in same16.items()})
spread16 = max(same16.values()) - min(same16.values())
cells = sorted((scaling_of(n, r, hidden_tiny) * r, results[(n, r)]) for n in names for r in ranks)
print(f"Chênh lệch trong hàng α = 16: {spread16:.3f};  cả lưới: từ {min(v for _, v in cells):.3f} "
      f"đến {max(v for _, v in cells):.3f}")

# những điều phần chữ bên dưới khẳng định, kiểm tra trên chính kết quả vừa chạy
rho = spearman([sr for sr, _ in cells], [v for _, v in cells])
print(f"Tương quan hạng (Spearman) giữa s·r và loss: {rho:.2f}")
grid_range = max(v for _, v in cells) - min(v for _, v in cells)
assert spread16 < 0.1 * grid_range and rho < -0.9
for name in ("alpha = r", "alpha = 2r", "rsLoRA, alpha = 16"):  # nhìn chung giảm khi r tăng
    row = [results[(name, r)] for r in ranks]
    assert row[-1] < row[0] and spearman(list(ranks), row) < -0.8, name
# đề xuất α = √hidden không thắng ở rank nào (hòa khi nó trùng s với một quy tắc khác)
assert all(min(results[(n, r)] for n in names if n != "alpha = √hidden, rsLoRA")
           <= results[("alpha = √hidden, rsLoRA", r)] for r in ranks)

# %% [markdown]
# Các điểm gần như nằm trên một đường: trong thí nghiệm này, loss được quyết định chủ yếu bởi $s \cdot r$,
# tức cỡ bước mà Adam đẩy $\Delta W$ đi mỗi bước, còn bản thân $r$ chỉ thêm một chút. Một cách nhẩm: Adam đẩy mỗi phần
# tử của $B$ đi cỡ $\eta$ mỗi bước, và $\Delta W x = s\,B(Ax)$ cộng $r$ số hạng cùng chiều, nên $\Delta W$ lớn lên cỡ
# $s \cdot r \cdot \eta$. Với $\alpha/r$ và alpha cố định, cỡ bước đó không phụ thuộc $r$: rank cao hơn không học
# nhanh hơn (hàng $\alpha = 16$ phẳng), đúng hiện tượng mà rsLoRA muốn sửa. Với $\alpha = 2r$ hay rsLoRA, tăng $r$ là
# tăng cỡ bước. Đề xuất $\alpha = \sqrt{h}$ cũng nằm trên đường đó và không thắng ở rank nào.
#
# Giới hạn của kết luận: một mô hình 1,35 triệu tham số, một tốc độ học, 16 bước, một hạt giống ngẫu nhiên, loss
# kiểm định trên 27 mẫu. Ở tốc độ học này chưa có ô nào mất ổn định, nên "$s \cdot r$ lớn hơn thì tốt hơn" chỉ đúng
# trong vùng đó (bài tập 3 tăng tốc độ học lên; cả lưới ở tốc độ học khác: `python -m course_utils.lora --lr 1e-2`).
# Thí nghiệm **không** cho biết rank nào tốt nhất cho Qwen2.5-7B.

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-07-1
# ```
# Với Qwen2.5-7B ($h = 3584$) và $r = 16$: đề xuất $\alpha = \sqrt{h}$ kèm rsLoRA cho hệ số $s$ bằng bao nhiêu, và lớn
# gấp bao nhiêu lần $s$ của quy tắc $\alpha = 2r$? Gán `answer = (s, ratio)`.

# %%
from course_utils.exercises.rank_alpha import check_sqrt_hidden

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-07-1
# :class: dropdown
# ```

# %%
s = math.sqrt(3584) / math.sqrt(16)
answer = (s, s / scaling_of("alpha = 2r", 16, 3584))  # s của α = 2r là 2r / r = 2
print(answer)
assert check_sqrt_hidden(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-07-2
# ```
# Một lần chạy dùng $\alpha = 16$, $A_0$ và tốc độ học $10^{-2}$. Bạn muốn đổi sang $\alpha = 64$ mà quỹ đạo $\Delta W_t$
# **không đổi**. Phải nhân $A_0$ với bao nhiêu và dùng tốc độ học bao nhiêu? Gán `answer = (a0_factor, lr)`;
# bộ kiểm tra chạy lại `adam_delta_w` với câu trả lời của bạn.

# %%
from course_utils.exercises.rank_alpha import check_equivalent_run

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-07-2
# :class: dropdown
# ```

# %%
k = 64 / 16
answer = (1 / math.sqrt(k), 1e-2 / math.sqrt(k))
assert check_equivalent_run(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-07-3
# ```
# Thí nghiệm: ở $r = 64$, với tốc độ học $10^{-2}$ (gấp 5 lần phép quét), quy tắc nào trong ba quy tắc
# `"alpha = 16"`, `"alpha = 2r"`, `"rsLoRA, alpha = 16"` vẫn cho loss kiểm định thấp hơn loss trước khi huấn luyện
# ít nhất 1? Dùng `train_lora_run` với các batch của `make_batches()`; để ý hai quy tắc nào có cùng $s$ ở $r = 64$
# (chỉ cần chạy một lần cho chúng). Gán cho `answer` tập hợp tên các quy tắc đó.

# %%
from course_utils.exercises.rank_alpha import check_high_lr, make_batches

model, train_batches, eval_batches, base_loss = make_batches()
print(f"loss trước khi huấn luyện: {base_loss:.3f}")

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-07-3
# :class: dropdown
# ```

# %%
r = 64
print("s ở r = 64:", {n: scaling_of(n, r, hidden_tiny) for n in ("alpha = 16", "alpha = 2r", "rsLoRA, alpha = 16")})
loss_fixed = train_lora_run(model, r, 16, False, train_batches, eval_batches, lr=1e-2)
loss_s2 = train_lora_run(model, r, 2 * r, False, train_batches, eval_batches, lr=1e-2)  # s = 2, như rsLoRA α = 16
losses = {"alpha = 16": loss_fixed, "alpha = 2r": loss_s2, "rsLoRA, alpha = 16": loss_s2}
print({n: round(v, 3) for n, v in losses.items()})
answer = {n for n, v in losses.items() if v < base_loss - 1}
assert check_high_lr(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-07-4
# ```
# Ghép mỗi khẳng định với bài báo đã đưa ra nó: `"hu"` (Hu và cộng sự, 2021, LoRA), `"qlora"` (Dettmers và cộng sự,
# 2023), `"rslora"` (Kalajdzievski, 2023), `"biderman"` (Biderman và cộng sự, 2024, "LoRA Learns Less and Forgets
# Less"), `"illusion"` (Shuttleworth và cộng sự, 2024, "LoRA vs Full Fine-tuning: An Illusion of Equivalence").
# Gán cho `answer` một dict từ chữ cái sang tên bài.
#
# - a. Khuyến nghị đặt $\alpha = 2r$.
# - b. Với GPT-3, $r = 1$ trên $W_q$, $W_v$ đã cạnh tranh được; alpha đặt bằng giá trị r thử đầu tiên, không dò thêm.
# - c. Hệ số phải là $\alpha/\sqrt{r}$ để rank cao không làm việc học chậm lại.
# - d. Gắn LoRA vào mọi lớp tuyến tính quan trọng hơn giá trị của r.
# - e. LoRA tạo ra các chiều xâm nhập (intruder dimensions): vector kỳ dị mới, ứng với giá trị kỳ dị lớn, không có khi
#   tinh chỉnh toàn bộ.

# %%
from course_utils.exercises.rank_alpha import check_papers

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-07-4
# :class: dropdown
# ```

# %%
answer = {"a": "biderman", "b": "hu", "c": "rslora", "d": "qlora", "e": "illusion"}
assert check_papers(answer)

# %% [markdown]
# ```{solution-end}
# ```
