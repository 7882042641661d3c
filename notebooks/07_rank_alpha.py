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
# # Notebook — Chọn rank và alpha
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/07_rank_alpha.ipynb)
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
# Notebook này đi cùng chương {doc}`../book/07_rank_alpha`. Ta sẽ:
#
# - tính hệ số $s$ của các quy tắc chọn alpha cho Qwen2.5-7B, kể cả đề xuất $\alpha = \sqrt{d_{hidden}}$;
# - kiểm tra bằng số rằng với Adam, alpha **không** đơn giản là một hệ số nhân tốc độ học, và phép tương đương
#   đúng là gì;
# - đo bước cập nhật đầu tiên theo $r$, với Adam và với SGD: vì sao rsLoRA và một cách nhẩm khác chọn hai hệ số
#   khác nhau;
# - quét rank × quy tắc alpha × tốc độ học trên mô hình tiny: một lưới nhỏ chạy ngay trong notebook, lưới đầy đủ
#   của chương (ba hạt giống) đọc từ kết quả đã lưu.
#
# Phép quét luôn dùng mô hình tiny (trên GPU nếu có, nếu không thì CPU). Lưới đầy đủ chạy bằng dòng lệnh:
# `python -m course_utils.sweep --full --out runs.jsonl`.

# %%
import math

import matplotlib.pyplot as plt
import torch
import transformers

from course_utils.display import show_source

transformers.logging.set_verbosity_error()

# %% [markdown]
# ## Hệ số $s$ của từng quy tắc
#
# Adapter cộng $s\,BA$ vào $W$. Với cách chuẩn $s = \alpha/r$; với rsLoRA (`use_rslora=True`) $s = \alpha/\sqrt{r}$.
# Năm quy tắc mà chương này so sánh, viết dưới dạng hàm của $r$ và của số chiều ẩn $h$:

# %%
from course_utils.configs import qwen25_7b_config
from course_utils.sweep import SCALINGS, scaling_of

hidden = qwen25_7b_config().hidden_size
print(f"Qwen2.5-7B: hidden = {hidden}, √hidden = {math.sqrt(hidden):.2f}\n")
print(f"{'quy tắc':<26}" + "".join(f"{'r = ' + str(r):>10}" for r in (8, 16, 64, hidden)))
for name in SCALINGS:
    print(f"{name:<26}" + "".join(f"{scaling_of(name, r, hidden):>10.3f}" for r in (8, 16, 64, hidden)))

# %% [markdown]
# Đề xuất trong ghi chú gốc của khóa học, $\alpha = \sqrt{d_{hidden}}$ kèm hệ số $\alpha/\sqrt{r}$, cho
# $s = \sqrt{h / r}$: đúng bằng 1 khi $r = h$ như ghi chú mong muốn, nhưng ở $r = 16$ thì lớn gấp khoảng 7,5 lần
# $s = 2$ của quy tắc $\alpha = 2r$. Đề xuất này chưa có trong bài báo nào; thực chất nó là rsLoRA với một giá trị
# alpha cụ thể. Phép quét bên dưới đem nó ra thử.
#
# ## Alpha và tốc độ học khi dùng Adam
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
gaps = {name: max((a - b).abs().max().item() for a, b in zip(deltas, ref)) / scale for name, deltas in runs.items()}
for name, gap in gaps.items():
    print(f"{name:<30} sai khác lớn nhất của ΔW so với (α, A0, lr), tương đối: {gap:.1e}")
assert gaps["(kα, A0/√k, lr/√k)"] < 1e-9
assert min(gaps["(kα, A0, lr): chỉ đổi alpha"], gaps["(α, A0, k·lr): chỉ đổi lr"]) > 1e-2

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
# ## Cỡ bước theo $r$: Adam, SGD và rsLoRA
#
# rsLoRA nói rằng với $s = \alpha/r$, bản cập nhật nhỏ dần khi $r$ tăng, và $s = \alpha/\sqrt{r}$ giữ nó ổn định.
# Một cách nhẩm khác lại cho rằng với Adam, chính $\alpha/r$ giữ cỡ bước không đổi. Đo thử bước đầu tiên: một lớp
# LoRA nhỏ (float64), $\alpha = 16$ cố định, một bước của Adam hoặc SGD, rồi xem đầu ra của lớp trên chính các đầu
# vào vừa học thay đổi bao nhiêu, ở $r = 64$ so với $r = 1$. Hai trường hợp đầu vào: một đầu vào duy nhất (các số
# hạng của $B(Ax)$ cộng cùng dấu), và 64 đầu vào ngẫu nhiên độc lập.

# %%
from course_utils.lora import first_step_change

show_source(first_step_change)

# %%
cases = {(opt, n, rs): first_step_change(64, rs, opt, n) / first_step_change(1, rs, opt, n)
         for opt in ("adam", "sgd") for n in (1, 64) for rs in (False, True)}
print(f"{'bộ tối ưu':<10}{'số đầu vào':>11}{'α/r':>10}{'α/√r (rsLoRA)':>16}   (thay đổi ở r = 64 / ở r = 1)")
for opt in ("adam", "sgd"):
    for n in (1, 64):
        print(f"{opt:<10}{n:>11}{cases[(opt, n, False)]:>10.3f}{cases[(opt, n, True)]:>16.3f}")
assert 0.5 < cases[("adam", 1, False)] < 2 and cases[("adam", 1, True)] > 4  # Adam, one input: alpha / r is stable
assert 0.5 < cases[("sgd", 1, True)] < 2 and cases[("sgd", 1, False)] < 1 / 16  # SGD: alpha / sqrt(r) is stable
assert cases[("adam", 64, False)] < 0.5  # Adam, independent inputs: alpha / r shrinks

# %% [markdown]
# Với SGD, gradient theo $B$ mang sẵn hệ số $s$, nên trên một đầu vào bước đầu tiên thay đổi đầu ra cỡ $s^2 r \eta$:
# $\alpha/\sqrt{r}$ giữ nó không đổi, đúng hệ số của rsLoRA, còn $\alpha/r$ làm nó nhỏ đi cỡ $r$ lần (trên nhiều đầu
# vào độc lập, với SGD cả hai đều nhỏ dần). Với Adam, hệ số $s$ trong gradient
# bị chia mất, mỗi phần tử của $B$ đi cỡ $\eta$: trên một đầu vào, thay đổi cỡ $s\,r\,\eta$ và $\alpha/r$ mới là hệ số
# giữ nó không đổi; trên nhiều đầu vào độc lập, các số hạng cộng yếu hơn và $\alpha/r$ lại nhỏ dần. Các đầu vào của một
# LLM thường cùng hướng hơn nhiều so với vector ngẫu nhiên; phép quét dưới đây cho biết mô hình tiny nằm ở đâu.
#
# Với Adam còn một điều quan trọng hơn: theo phép tương đương ở trên, nhân $s$ với một hằng số gần giống nhân tốc độ
# học với một hằng số. Nên "quy tắc nào ổn định theo $r$" thực chất là "tốc độ học tốt nhất có đổi theo $r$ không",
# và so các quy tắc (hay các rank) ở **một** tốc độ học là so các tốc độ học. Phép quét vì vậy dò tốc độ học cho từng ô.
#
# ## Quét rank × quy tắc × tốc độ học trên mô hình tiny
#
# Mỗi lần chạy: LoRA của peft trên mọi lớp tuyến tính của mô hình tiny (fp32, không dropout), Adam với tốc độ học
# cố định (không warmup, không weight decay), 16 bước, batch 8 chuỗi 128 token, **cùng** các batch theo cùng thứ
# tự và cùng $A_0$ ở mỗi $r$; kết quả là loss trên tập kiểm định (27 mẫu) sau bước cuối. Một ô (quy tắc, $r$) được
# chạy ở mọi tốc độ học của lưới và giữ loss tốt nhất.
#
# Vòng lặp là PyTorch trần thay vì `build_trainer`, vì phép quét cần hàng trăm lần chạy ngắn và trên 2 lõi CPU mỗi
# bước của TRL tốn gấp vài lần chính bước đó; vòng lặp vẫn dùng peft, cùng dữ liệu, cùng loss chỉ trên câu trả lời.

# %%
from course_utils.sweep import train_lora_run

show_source(train_lora_run)

# %% [markdown]
# ### Một lưới nhỏ, chạy ngay
#
# Ở $r = 64$, hai quy tắc có $s$ khác nhau 8 lần: $\alpha = 16$ ($s = 0{,}25$) và $\alpha = 2r$ ($s = 2$), mỗi quy
# tắc ở ba tốc độ học: một phần tư, một lần và bốn lần tốc độ học của profile tiny.

# %%
import time

from course_utils.sweep import BASE_LR, SMALL_LRS, SMALL_RANKS, SMALL_RULES, best_per_cell, sweep_rank_alpha

t0 = time.time()
small = sweep_rank_alpha(ranks=SMALL_RANKS, scalings=SMALL_RULES, lrs=SMALL_LRS, seeds=(0,))
print(f"Thời gian: {time.time() - t0:.0f} s")

# %%
r = SMALL_RANKS[0]
fixed = {rule: next(x["loss"] for x in small if x["rule"] == rule and x["lr"] == BASE_LR) for rule in SMALL_RULES}
tuned = {rule: best_per_cell(small)[(rule, r)] for rule in SMALL_RULES}
print(f"[mô hình tiny, r = {r}]")
for rule in SMALL_RULES:
    print(f"  {rule:<11} ở tốc độ học {BASE_LR:g}: {fixed[rule]:.3f}   "
          f"tốt nhất: {tuned[rule][1]:.3f} (tốc độ học {tuned[rule][0]:g})")
gap_fixed = abs(fixed["alpha = 16"] - fixed["alpha = 2r"])
gap_tuned = abs(tuned["alpha = 16"][1] - tuned["alpha = 2r"][1])
print(f"chênh lệch giữa hai quy tắc: {gap_fixed:.3f} ở một tốc độ học, {gap_tuned:.3f} khi dò tốc độ học")
assert gap_tuned < gap_fixed / 3
assert tuned["alpha = 16"][0] > tuned["alpha = 2r"][0]  # the smaller s wants the larger learning rate

# %% [markdown]
# Ở cùng một tốc độ học, $\alpha = 2r$ thắng xa; dò tốc độ học cho từng quy tắc thì hai quy tắc gần như hòa, và
# quy tắc có $s$ nhỏ hơn chọn tốc độ học lớn hơn. Trên mô hình tiny, "alpha nào tốt hơn" ở một tốc độ học chủ yếu là
# "tốc độ học nào tốt hơn".
#
# ### Lưới đầy đủ: kết quả đã lưu
#
# Lưới của chương: $r \in \{1, 4, 16, 64\}$, năm quy tắc, tám tốc độ học từ $5 \cdot 10^{-4}$ đến
# $6{,}4 \cdot 10^{-2}$ (mỗi bậc gấp đôi), ba hạt giống (hạt giống đổi $A_0$ và thứ tự các batch). Trên 2 lõi CPU lưới
# này chạy hơn hai mươi phút, nên notebook đọc kết quả đã lưu trong `course_utils` (ghi bởi
# `python -m course_utils.sweep --full`).

# %%
from course_utils.sweep import FULL_LRS, FULL_RANKS, at_lr, base_loss, load_results, seed_spread

rows = load_results()
names = list(SCALINGS)
best = best_per_cell(rows)  # loss trung bình qua ba hạt giống, ở tốc độ học tốt nhất của mỗi ô
fixed_all = at_lr(rows, BASE_LR)


def heatmap(ax, value, title, label=lambda v: f"{v:.2f}"):
    grid = torch.tensor([[value(n, r) for r in FULL_RANKS] for n in names])
    ax.imshow(grid, cmap="viridis_r", aspect="auto", vmin=5.55, vmax=6.95)
    ax.set_xticks(range(len(FULL_RANKS)), [str(r) for r in FULL_RANKS])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("rank r")
    for i, n in enumerate(names):
        for j, r in enumerate(FULL_RANKS):
            ax.text(j, i, label(n, r), ha="center", va="center", fontsize=8,
                    color="white" if grid[i, j] > 6.3 else "black")
    ax.set_title(title, fontsize=10)


fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
heatmap(axes[0], lambda n, r: fixed_all[(n, r)], f"một tốc độ học ({BASE_LR:g})",
        lambda n, r: f"{fixed_all[(n, r)]:.2f}")
heatmap(axes[1], lambda n, r: best[(n, r)][1], "tốc độ học tốt nhất của từng ô",
        lambda n, r: f"{best[(n, r)][1]:.2f}\n@{best[(n, r)][0]:g}")
fig.suptitle(f"Mô hình tiny: loss kiểm định sau 16 bước, trung bình 3 hạt giống (trước khi học: {base_loss(rows):.2f})",
             fontsize=11)
plt.tight_layout()
plt.show()

# %% [markdown]
# Những điều đọc được, và được kiểm tra ngay bên dưới trên chính các con số này (tất cả là của mô hình tiny):

# %%
row16 = {lr: [at_lr(rows, lr)[("alpha = 16", r)] for r in FULL_RANKS[1:]] for lr in FULL_LRS}
spread_fixed = {r: max(fixed_all[(n, r)] for n in names) - min(fixed_all[(n, r)] for n in names) for r in FULL_RANKS}
spread_tuned = {r: max(best[(n, r)][1] for n in names) - min(best[(n, r)][1] for n in names) for r in FULL_RANKS}
noise = sorted(seed_spread(rows).values())
best_by_rank = {r: min(best[(n, r)][1] for n in names) for r in FULL_RANKS}
print("1. α = 16, r từ 4 đến 64, ở từng tốc độ học: chênh lệch", {f"{lr:g}": round(max(v) - min(v), 3)
                                                                   for lr, v in row16.items() if lr <= 2 * BASE_LR})
print("2. chênh lệch giữa năm quy tắc ở cùng r: một tốc độ học", {r: round(v, 2) for r, v in spread_fixed.items()},
      "| dò tốc độ học", {r: round(v, 2) for r, v in spread_tuned.items()})
print(f"   chênh lệch giữa ba hạt giống của cùng một ô: từ {noise[0]:.2f} đến {noise[-1]:.2f}")
print("3. loss tốt nhất theo r:", {r: round(v, 3) for r, v in best_by_rank.items()})
print("4. tốc độ học tốt nhất theo r:")
for n in names:
    print(f"   {n:<24}", "  ".join(f"{best[(n, r)][0]:g}" for r in FULL_RANKS))

assert all(max(v) - min(v) < 0.05 for lr, v in row16.items() if lr <= 2 * BASE_LR)
assert max(spread_tuned.values()) < min(spread_fixed.values()) / 3
assert max(spread_tuned.values()) <= noise[-1]
assert list(best_by_rank.values()) == sorted(best_by_rank.values(), reverse=True)  # lower with every larger r
assert all(min(FULL_LRS) < best[cell][0] < max(FULL_LRS) for cell in best)  # no optimum at the grid's edge

# %% [markdown]
# 1. Với $\alpha = 16$ (tức $s = 16/r$), ở một tốc độ học cố định không quá lớn, loss gần như không đổi khi $r$ đi từ
#    4 đến 64: với Adam, mô hình tiny ở gần trường hợp "đầu vào cùng hướng" của mục trước, nơi $\alpha/r$ giữ cỡ bước
#    không đổi. Rank cao hơn không học nhanh hơn, đúng điều rsLoRA quan sát, nhưng cũng không học chậm đi.
# 2. Ở một tốc độ học, năm quy tắc cách nhau rất xa; dò tốc độ học cho từng ô thì chúng gần như gặp nhau, trong cỡ
#    chênh lệch giữa các hạt giống. Quy tắc alpha chủ yếu quyết định tốc độ học nào là tốt nhất.
# 3. Sau khi dò tốc độ học, loss tốt nhất giảm dần khi $r$ tăng; giữa hai giá trị $r$ kề nhau, khoảng cách cỡ chênh
#    lệch giữa các hạt giống. Đây là một mô hình có số chiều ẩn 128, nơi $r = 64$ đã
#    bằng nửa số chiều ẩn: kết quả này không nói $r$ nào tốt cho Qwen2.5-7B.
# 4. Tốc độ học tốt nhất phụ thuộc quy tắc: với $\alpha = r$ và $\alpha = 2r$ ($s$ không đổi), nó giảm khi $r$ tăng;
#    với $\alpha = 16$ cố định, có hay không có rsLoRA, nó gần như không đổi theo $r$. Đổi $r$ mà giữ $\alpha = 2r$
#    thì phải dò lại tốc độ học.
# 5. Đề xuất $\alpha = \sqrt{h}$ không có gì đặc biệt: khi đã dò tốc độ học, nó cách các quy tắc khác không quá
#    chênh lệch giữa các hạt giống.
#
# Giới hạn: một mô hình 1,35 triệu tham số, 16 bước, ba hạt giống, loss trên 27 mẫu.

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-07-1
# ```
# **Đề xuất $\alpha = \sqrt{h}$ ở $r = 16$.** Với Qwen2.5-7B ($h = 3584$) và $r = 16$: đề xuất $\alpha = \sqrt{h}$ kèm
# rsLoRA cho hệ số $s$ bằng bao nhiêu, và lớn gấp bao nhiêu lần $s$ của quy tắc $\alpha = 2r$? Gán
# `answer = (s, ratio)`.

# %%
from course_utils.exercises.rank_alpha import check_sqrt_hidden

answer = ...  # thay ... bằng câu trả lời của bạn
check_sqrt_hidden(answer);

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
# **Đổi alpha mà giữ nguyên quỹ đạo.** Một lần chạy dùng $\alpha = 16$, $A_0$ và tốc độ học $10^{-2}$. Bạn muốn đổi
# sang $\alpha = 64$ mà quỹ đạo $\Delta W_t$ **không đổi**. Phải nhân $A_0$ với bao nhiêu và dùng tốc độ học bao
# nhiêu? Gán `answer = (a0_factor, lr)`; bộ kiểm tra chạy lại `adam_delta_w` với câu trả lời của bạn.

# %%
from course_utils.exercises.rank_alpha import check_equivalent_run

answer = ...  # thay ... bằng câu trả lời của bạn
check_equivalent_run(answer);

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
# **Tốc độ học tốt nhất của $\alpha = 2r$.** Từ kết quả đã lưu của lưới đầy đủ (`rows = load_results()`), với quy tắc
# `"alpha = 2r"`: ở mỗi $r$, tốc độ học nào cho loss kiểm định trung bình (qua ba hạt giống) thấp nhất? Gán cho
# `answer` một dict `{r: tốc_độ_học}`. Tốc độ học đó thay đổi thế nào khi $r$ tăng, và vì sao (nghĩ đến $s$)?

# %%
from course_utils.exercises.rank_alpha import check_best_lrs

answer = ...  # thay ... bằng câu trả lời của bạn
check_best_lrs(answer);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-07-3
# :class: dropdown
# ```

# %%
answer = {r: lr for (rule, r), (lr, loss) in best_per_cell(rows).items() if rule == "alpha = 2r"}
print(answer)  # với α = 2r, s = 2 ở mọi r: bước của ΔW lớn dần theo r, nên tốc độ học tốt nhất nhỏ dần
assert check_best_lrs(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-07-4
# ```
# **Ai nói gì.** Ghép mỗi khẳng định với bài báo đã đưa ra nó: `"hu"` (Hu và cộng sự, 2021, LoRA), `"qlora"`
# (Dettmers và cộng sự, 2023), `"rslora"` (Kalajdzievski, 2023), `"biderman"` (Biderman và cộng sự, 2024, "LoRA
# Learns Less and Forgets Less"), `"illusion"` (Shuttleworth và cộng sự, 2024, "LoRA vs Full Fine-tuning: An
# Illusion of Equivalence"). Gán cho `answer` một dict từ chữ cái sang tên bài.
#
# - a. Khuyến nghị đặt $\alpha = 2r$ (và ghi nguồn quy tắc này từ Sebastian Raschka).
# - b. Với GPT-3, $r = 1$ trên $W_q$, $W_v$ đã cạnh tranh được; alpha đặt bằng giá trị r thử đầu tiên, không dò thêm.
# - c. Hệ số phải là $\alpha/\sqrt{r}$ để rank cao không làm việc học chậm lại.
# - d. Gắn LoRA vào mọi lớp tuyến tính quan trọng hơn giá trị của r (r từ 8 đến 64, trên LLaMA-7B).
# - e. LoRA tạo ra các chiều xâm nhập (intruder dimensions): vector kỳ dị mới, ứng với giá trị kỳ dị lớn, không có khi
#   tinh chỉnh toàn bộ.
# - f. Ở cùng rank, $\alpha = 2r$ sinh ít chiều xâm nhập hơn $\alpha = r$.

# %%
from course_utils.exercises.rank_alpha import check_papers

answer = ...  # thay ... bằng câu trả lời của bạn
check_papers(answer);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-07-4
# :class: dropdown
# ```

# %%
answer = {"a": "biderman", "b": "hu", "c": "rslora", "d": "qlora", "e": "illusion", "f": "illusion"}
assert check_papers(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Mọi con số của chương, tính lại
#
# Mọi con số mà trang của chương và phần chữ của notebook này nêu ra, tính lại bằng các hàm của `course_utils`
# (`course_utils.figures.ch07`; kết quả của phép quét đọc từ tệp đã lưu); một bài kiểm thử so chúng với phần chữ.

# %%
from course_utils.figures import show_figures

show_figures("07_rank_alpha")
