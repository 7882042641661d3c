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
# # Notebook — Attention và lớp truyền thẳng (FFN)
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/03_attention_ffn.ipynb)
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
# Notebook này đi cùng chương {doc}`../book/03_attention_ffn`. Nó dựng lại, bằng vài dòng PyTorch, hai lớp con
# của mỗi khối decoder trong Qwen2:
#
# 1. *scaled dot-product attention*, rồi so với `torch.nn.functional.scaled_dot_product_attention`;
# 2. *multi-head attention* (attention nhiều đầu), rồi so với `torch.nn.MultiheadAttention`;
# 3. *grouped-query attention* (GQA) và *rotary position embedding* (RoPE), hai chi tiết riêng của Qwen2;
# 4. một lớp attention của mô hình tiny, tính lại từ trọng số của nó, sai khác dưới `1e-5`;
# 5. bản đồ nhiệt trọng số attention trên một câu tiếng Việt;
# 6. lớp truyền thẳng SwiGLU (gate, up, down) so với dạng ReLU/GELU cũ, SiLU (không phải cổng từ 0 đến 1), và tỉ lệ
#    tham số của attention,
#    MLP, embedding trong Qwen2.5-7B, Vistral-7B và mô hình tiny.
#
# Mọi phép so sánh với mô hình thật dùng mô hình tiny ở fp32, không lượng tử hóa, kể cả trên Colab:
# phép tính giống hệt ở Qwen2.5-7B, chỉ khác kích thước. Số liệu của các mô hình 7B lấy từ config.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course_utils.display import show_source

_ = torch.manual_seed(0)
t_start = time.time()

# %% [markdown]
# ## Scaled dot-product attention, từng bước
#
# Năm token, mỗi token có một vector query, key và value 8 chiều ($d_k = 8$). Ta làm đúng ba bước của
# công thức $\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\left(QK^\top/\sqrt{d_k}\right)V$:

# %%
n, d_k = 5, 8
q, k, v = torch.randn(n, d_k), torch.randn(n, d_k), torch.randn(n, d_k)

scores = q @ k.T / math.sqrt(d_k)      # (n, n): query i so với key j
weights = torch.softmax(scores, dim=-1)  # mỗi hàng là một phân phối xác suất trên các key
out = weights @ v                        # (n, d_k): trung bình có trọng số của các hàng của V

print("scores:", tuple(scores.shape), " weights:", tuple(weights.shape), " out:", tuple(out.shape))
print("tổng mỗi hàng của weights:", weights.sum(dim=-1))

# %% [markdown]
# `softmax(QKᵀ/√d_k)` mới chỉ là **ma trận trọng số** $n \times n$: nó cho biết mỗi token lấy bao nhiêu
# từ mỗi token khác, nhưng chưa lấy gì cả. Phải nhân với $V$ mới có đầu ra, mỗi token một vector.
# Một số ghi chú (kể cả ghi chú gốc của khóa học) chép công thức thiếu $V$; công thức đúng có $V$.
#
# ### Vì sao chia cho √d_k
#
# Nếu các thành phần của $q$ và $k$ độc lập, trung bình 0, phương sai 1, thì tích vô hướng $q \cdot k$ là
# tổng của $d_k$ số hạng có phương sai 1: phương sai của nó là $d_k$, độ lệch chuẩn là $\sqrt{d_k}$.
# Điểm số càng lớn thì softmax càng dồn gần hết trọng số vào một key (gradient gần 0). Thử với vài $d_k$:

# %%
for dim in (8, 32, 128):
    qs, ks = torch.randn(2000, dim), torch.randn(2000, 16, dim)
    raw = torch.einsum("bd,bkd->bk", qs, ks)  # 2000 query, mỗi query 16 key
    top_raw = torch.softmax(raw, -1).amax(-1).mean().item()
    top_scaled = torch.softmax(raw / math.sqrt(dim), -1).amax(-1).mean().item()
    print(f"d_k={dim:4d}: độ lệch chuẩn của q·k = {raw.std():6.2f} (√d_k = {math.sqrt(dim):5.2f}); "
          f"trọng số lớn nhất trung bình: không chia {top_raw:.2f}, chia √d_k {top_scaled:.2f}")

# %% [markdown]
# ### Mặt nạ (mask)
#
# Mặt nạ boolean cùng quy ước với PyTorch: `True` nghĩa là *được phép chú ý*. Điểm số ở ô `False` được thay
# bằng $-\infty$ trước softmax, nên trọng số ở đó bằng đúng 0. Ví dụ dưới dùng mặt nạ tam giác dưới (mỗi
# token chỉ nhìn chính nó và các token trước): chương {doc}`../book/04_causal_lm` dành riêng cho mặt nạ này.

# %%
allowed = torch.ones(n, n, dtype=torch.bool).tril()
masked_weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
print(masked_weights.round(decimals=2))

# %% [markdown]
# Hàm hoàn chỉnh của khóa học gom các bước trên (thêm trường hợp một hàng bị che hết: PyTorch trả về
# vector 0, ta cũng vậy):

# %%
from course_utils.attention import attention_weights, scaled_dot_product_attention

show_source(attention_weights)

# %%
show_source(scaled_dot_product_attention)

# %% [markdown]
# Kiểm tra với `torch.nn.functional.scaled_dot_product_attention` trên tensor 4 chiều
# (batch, đầu, vị trí, chiều), có và không có mặt nạ:

# %%
q4, k4, v4 = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 9, 16), torch.randn(2, 3, 9, 16)
mask4 = torch.rand(7, 9) > 0.3
mask4[:, 0] = True  # mỗi query được nhìn ít nhất một key

diff_sdpa = max(
    (scaled_dot_product_attention(q4, k4, v4) - F.scaled_dot_product_attention(q4, k4, v4)).abs().max().item(),
    (scaled_dot_product_attention(q4, k4, v4, mask4)
     - F.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask4)).abs().max().item(),
)
print(f"Sai khác lớn nhất so với torch SDPA: {diff_sdpa:.2e}")
assert diff_sdpa < 1e-5

# %% [markdown]
# ## Multi-head attention
#
# Một đầu attention chỉ cho mỗi token một cách trộn thông tin. Multi-head attention chạy $h$ đầu song song:
# chiếu $x$ thành $Q, K, V$ bằng ba ma trận, cắt chiều cuối thành $h$ đoạn (mỗi đoạn $d_k = d/h$ chiều),
# làm attention trên từng đoạn, nối các kết quả lại rồi chiếu bằng $W^O$:
#
# $$\mathrm{MHA}(x) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\,W^O,\qquad
# \mathrm{head}_i = \mathrm{Attention}(xW_i^Q, xW_i^K, xW_i^V).$$
#
# Mỗi đầu là **một** phép attention; "nhiều đầu" là $h$ phép attention song song trong một lớp.

# %%
from course_utils.attention import merge_heads, split_heads

d_model, n_heads, seq = 16, 4, 6
head_size = d_model // n_heads
x = torch.randn(1, seq, d_model)
w_q, w_k, w_v, w_o = (torch.randn(d_model, d_model) / math.sqrt(d_model) for _ in range(4))
b_q, b_k, b_v, b_o = (torch.randn(d_model) * 0.1 for _ in range(4))

Q = split_heads(x @ w_q.T + b_q, head_size)  # (1, 4 đầu, 6 vị trí, 4 chiều)
K = split_heads(x @ w_k.T + b_k, head_size)
V = split_heads(x @ w_v.T + b_v, head_size)
heads = scaled_dot_product_attention(Q, K, V)  # attention của từng đầu, song song
mha_out = merge_heads(heads) @ w_o.T + b_o     # nối các đầu rồi chiếu bằng W^O
print("Q:", tuple(Q.shape), "-> đầu ra:", tuple(mha_out.shape))

# %% [markdown]
# `split_heads` và `merge_heads` chỉ đổi hình dạng tensor:

# %%
show_source(split_heads)

# %% [markdown]
# So với `torch.nn.MultiheadAttention` khi chép cùng trọng số vào. Lưu ý: lớp này dùng quy ước mặt nạ
# **ngược** với SDPA (`True` là *bị che*), nên ta truyền `~allowed`.

# %%
torch_mha = torch.nn.MultiheadAttention(d_model, n_heads, batch_first=True)
with torch.no_grad():
    torch_mha.in_proj_weight.copy_(torch.cat([w_q, w_k, w_v]))
    torch_mha.in_proj_bias.copy_(torch.cat([b_q, b_k, b_v]))
    torch_mha.out_proj.weight.copy_(w_o)
    torch_mha.out_proj.bias.copy_(b_o)
    ref_out, _ = torch_mha(x, x, x, need_weights=False)
    allowed6 = torch.ones(seq, seq, dtype=torch.bool).tril()
    ref_masked, _ = torch_mha(x, x, x, attn_mask=~allowed6, need_weights=False)

mine_masked = merge_heads(scaled_dot_product_attention(Q, K, V, allowed6)) @ w_o.T + b_o
diff_mha = max((mha_out - ref_out).abs().max().item(), (mine_masked - ref_masked).abs().max().item())
print(f"Sai khác lớn nhất so với nn.MultiheadAttention: {diff_mha:.2e}")
assert diff_mha < 1e-5

# %% [markdown]
# ## Grouped-query attention (GQA)
#
# Trong Qwen2, số đầu key/value nhỏ hơn số đầu query: mỗi nhóm đầu query dùng chung một cặp đầu K, V.
# Mô hình tiny có 4 đầu query và 2 đầu key/value (nhóm 2); Qwen2.5-7B có 28 đầu query và 4 đầu key/value
# (nhóm 7). Khi tính, mỗi đầu key/value được lặp lại cho cả nhóm của nó; đầu query số `h` dùng đầu
# key/value số `h // nhóm`.

# %%
from course_utils.attention import repeat_kv

show_source(repeat_kv)

# %%
q_gqa = torch.randn(2, 4, 5, 8)  # 4 đầu query
k_gqa, v_gqa = torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)  # 2 đầu key/value
mine_gqa = scaled_dot_product_attention(q_gqa, repeat_kv(k_gqa, 2), repeat_kv(v_gqa, 2))
torch_gqa = F.scaled_dot_product_attention(q_gqa, k_gqa, v_gqa, enable_gqa=True)
diff_gqa = (mine_gqa - torch_gqa).abs().max().item()
print(f"Sai khác lớn nhất so với torch SDPA (enable_gqa=True): {diff_gqa:.2e}")
assert diff_gqa < 1e-5
# đầu query 3 thuộc nhóm của đầu key/value 3 // 2 = 1
assert torch.allclose(mine_gqa[:, 3], scaled_dot_product_attention(q_gqa[:, 3], k_gqa[:, 1], v_gqa[:, 1]))

# %% [markdown]
# ## RoPE: vị trí bằng phép xoay
#
# Attention tự nó không biết thứ tự các token. Qwen2 đưa vị trí vào bằng cách **xoay** query và key: chia
# vector $d$ chiều thành $d/2$ cặp, cặp thứ $i$ ở vị trí $m$ quay một góc $m\,\theta_i$ với
# $\theta_i = \text{rope\_theta}^{-2i/d}$. Trong cách cài của Hugging Face (Llama, Qwen2), cặp thứ $i$ là
# hai thành phần $i$ và $i + d/2$ (không phải hai thành phần kề nhau như trong bài báo RoFormer; hai cách
# tương đương sau khi hoán vị các cột của $W^Q$, $W^K$).

# %%
head_dim_demo, theta = 8, 10000.0
positions = torch.arange(6)
inv_freq = 1.0 / theta ** (torch.arange(0, head_dim_demo, 2).float() / head_dim_demo)  # θ_i, d/2 tần số
angles = positions[:, None].float() * inv_freq[None, :]                                # (6 vị trí, d/2)
angles = torch.cat([angles, angles], dim=-1)  # thành phần i và i + d/2 quay cùng một góc
cos, sin = angles.cos(), angles.sin()


def rotate(x):
    x1, x2 = x.chunk(2, dim=-1)  # (x_i, x_{i+d/2}) -> (x_i cos − x_{i+d/2} sin, x_{i+d/2} cos + x_i sin)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


qr, kr = torch.randn(6, head_dim_demo), torch.randn(6, head_dim_demo)
print("độ dài vector giữ nguyên:", torch.allclose(rotate(qr).norm(dim=-1), qr.norm(dim=-1)))

# %% [markdown]
# Tính chất làm nên RoPE: sau khi xoay, tích $q_m \cdot k_n$ chỉ phụ thuộc vào **khoảng cách** $m - n$.
# Đặt cùng một cặp $(q, k)$ ở các vị trí (3, 1) rồi (5, 3): khoảng cách đều là 2, điểm số như nhau.

# %%
q_same, k_same = qr[0].expand(6, -1), kr[0].expand(6, -1)  # cùng một q, một k ở mọi vị trí
rq, rk = rotate(q_same), rotate(k_same)
print(f"vị trí (3, 1): {rq[3] @ rk[1]:.6f}   vị trí (5, 3): {rq[5] @ rk[3]:.6f}   vị trí (3, 3): {rq[3] @ rk[3]:.6f}")
assert torch.allclose(rq[3] @ rk[1], rq[5] @ rk[3], atol=1e-5)

# %%
from course_utils.attention import apply_rope, rope_cos_sin

show_source(rope_cos_sin)

# %%
show_source(apply_rope)

# %% [markdown]
# ## Tính lại một lớp attention của mô hình tiny
#
# Giờ ghép mọi thứ lại và so với mô hình thật. Ta nạp mô hình tiny ở fp32 (`quantize=False`) rồi gắn một
# *forward hook* vào `model.model.layers[1].self_attn` để lấy đúng đầu vào và đầu ra của lớp attention này
# trong một lượt truyền xuôi bình thường.

# %%
from course_utils.models import load_model_and_tokenizer
from course_utils.profiles import get_profile

profile = get_profile("tiny")
model, tokenizer = load_model_and_tokenizer(profile, quantize=False)
model.eval()
config = model.config
print(f"hidden_size={config.hidden_size}, num_attention_heads={config.num_attention_heads}, "
      f"num_key_value_heads={config.num_key_value_heads}, head_dim={config.hidden_size // config.num_attention_heads}, "
      f"rope_theta={config.rope_parameters['rope_theta']}")
print(model.model.layers[1].self_attn)

# %%
sentence = "Mô hình ngôn ngữ dự đoán từ tiếp theo trong câu tiếng Việt."
input_ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
tokens = [tokenizer.decode([i]) for i in input_ids[0]]
print(len(tokens), "token:", tokens)

LAYER = 1
captured = {}


def capture(module, args, kwargs, output):
    captured["x"] = kwargs["hidden_states"]  # đầu vào của self_attn (đã qua input_layernorm)
    captured["y"] = output[0]                # đầu ra của self_attn (trước khi cộng residual)


hook = model.model.layers[LAYER].self_attn.register_forward_hook(capture, with_kwargs=True)
with torch.no_grad():
    model(input_ids)
hook.remove()
print("đầu vào:", tuple(captured["x"].shape), " đầu ra:", tuple(captured["y"].shape))

# %% [markdown]
# Tính lại đầu ra từ trọng số, từng bước: chiếu (có bias, như mọi lớp q/k/v của Qwen2), tách đầu, xoay
# bằng RoPE, lặp K/V cho GQA, attention với mặt nạ tam giác dưới (lớp attention của mô hình nhân quả),
# nối các đầu, chiếu bằng `o_proj` (không có bias).

# %%
attn = model.model.layers[LAYER].self_attn
xs = captured["x"]
n_tok, hd = xs.shape[1], attn.head_dim
with torch.no_grad():
    q_l = split_heads(xs @ attn.q_proj.weight.T + attn.q_proj.bias, hd)  # (1, 4, n, 32)
    k_l = split_heads(xs @ attn.k_proj.weight.T + attn.k_proj.bias, hd)  # (1, 2, n, 32)
    v_l = split_heads(xs @ attn.v_proj.weight.T + attn.v_proj.bias, hd)
    cos_l, sin_l = rope_cos_sin(torch.arange(n_tok), hd, config.rope_parameters["rope_theta"])
    q_l, k_l = apply_rope(q_l, cos_l, sin_l), apply_rope(k_l, cos_l, sin_l)
    group = config.num_attention_heads // config.num_key_value_heads
    causal = torch.ones(n_tok, n_tok, dtype=torch.bool).tril()
    heads_l = scaled_dot_product_attention(q_l, repeat_kv(k_l, group), repeat_kv(v_l, group), causal)
    y_mine = merge_heads(heads_l) @ attn.o_proj.weight.T

diff_layer = (y_mine - captured["y"]).abs().max().item()
print(f"Sai khác lớn nhất so với model.model.layers[{LAYER}].self_attn: {diff_layer:.2e}")
assert diff_layer < 1e-5

# %% [markdown]
# Hàm hoàn chỉnh của khóa học làm đúng các bước trên; ta kiểm tra nó trên cả bốn lớp của mô hình tiny.

# %%
from course_utils.attention import qwen2_self_attention

show_source(qwen2_self_attention)

# %%
seen = []  # (đầu vào, đầu ra) của self_attn, theo thứ tự các lớp


def record(module, args, kwargs, output):
    seen.append((kwargs["hidden_states"], output[0]))  # không trả về gì: đầu ra của lớp giữ nguyên


hooks = [layer.self_attn.register_forward_hook(record, with_kwargs=True) for layer in model.model.layers]
with torch.no_grad():
    model(input_ids)
    for h in hooks:
        h.remove()
    diffs = [
        (qwen2_self_attention(x_in, layer.self_attn, config.rope_parameters["rope_theta"], causal) - y_out)
        .abs().max().item()
        for layer, (x_in, y_out) in zip(model.model.layers, seen)
    ]
print("Sai khác lớn nhất từng lớp:", [f"{d:.1e}" for d in diffs])
assert max(diffs) < 1e-5

# %% [markdown]
# ## Bản đồ nhiệt trọng số attention
#
# Với câu tiếng Việt ở trên, ta vẽ ma trận `softmax(QKᵀ/√d_k)` của bốn đầu ở lớp 1 (hàng: token đang tính,
# cột: token được nhìn). Đây là mô hình tiny, mới tiền huấn luyện khoảng một phút trên một đoạn văn
# ngắn: đừng đọc ý nghĩa ngôn ngữ học từ các mẫu này. Điều chắc chắn là nửa trên đường chéo bằng 0 (mặt nạ
# nhân quả, chương {doc}`../book/04_causal_lm`) và mỗi hàng cộng lại bằng 1.

# %%
with torch.no_grad():
    w_heat = attention_weights(q_l, repeat_kv(k_l, group), causal)[0]  # (4 đầu, n, n)
assert torch.allclose(w_heat.sum(-1), torch.ones(config.num_attention_heads, n_tok))
assert (w_heat.triu(diagonal=1) == 0).all()

fig, axes = plt.subplots(1, config.num_attention_heads, figsize=(16, 4.6), constrained_layout=True)
for h, ax in enumerate(axes):
    im = ax.imshow(w_heat[h], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"Lớp {LAYER}, đầu {h} (nhóm K/V {h // group})")
    ax.set_xticks(range(n_tok), tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(n_tok), tokens if h == 0 else [], fontsize=8)
fig.colorbar(im, ax=axes, shrink=0.8, label="trọng số attention")
fig.suptitle("Trọng số attention của mô hình tiny trên một câu tiếng Việt")
plt.show()

# %% [markdown]
# Thử đổi `sentence` hoặc `LAYER` rồi chạy lại từ ô hook để xem các đầu khác.
#
# ## Lớp truyền thẳng: từ ReLU/GELU đến SwiGLU
#
# Bản Transformer gốc (2017) dùng $\mathrm{FFN}(x) = \max(0, xW_1 + b_1)W_2 + b_2$ với $d_{ff} = 4d$;
# GPT-2 và BERT thay ReLU bằng GELU. Qwen2 (cũng như Llama, Mistral) dùng SwiGLU, không có bias:
#
# $$\mathrm{FFN}(x) = \big(\mathrm{SiLU}(x W_{gate}^\top) \odot x W_{up}^\top\big)\, W_{down}^\top,
# \qquad \mathrm{SiLU}(z) = z \cdot \sigma(z).$$
#
# Ba ma trận thay vì hai, nên mỗi lớp có $3\,d\,d_{ff}$ tham số thay vì $2\,d\,d_{ff}$.
#
# Nhánh `gate` hay được gọi là "cổng", như thể nó quyết định cho qua bao nhiêu phần trăm của nhánh `up`. Đó là
# cổng của GLU gốc, $\sigma(xW)$, với sigmoid nằm trong khoảng $(0, 1)$. SiLU thì không bị chặn trên và âm với mọi
# $z < 0$. Điểm thấp nhất của nó là nơi đạo hàm $\sigma(z)\,(1 + z(1 - \sigma(z)))$ bằng 0; hàm của khóa học tìm
# điểm đó bằng chia đôi:

# %%
from course_utils.attention import silu_minimum

show_source(silu_minimum)

# %%
z_min, silu_min = silu_minimum()
z = torch.linspace(-4, 4, 801)
print(f"SiLU thấp nhất: {silu_min:.4f} tại z = {z_min:.4f};  SiLU(10) = {F.silu(torch.tensor(10.0)).item():.4f}")
assert abs(F.silu(z).min().item() - silu_min) < 1e-4  # khớp với F.silu của PyTorch
assert silu_min < 0 and F.silu(torch.tensor(10.0)) > 9.99  # âm được, và không bị chặn trên

plt.figure(figsize=(6, 3.5))
for name, fn in (("ReLU", F.relu), ("GELU", F.gelu), ("SiLU", F.silu)):
    plt.plot(z, fn(z), label=name)
plt.plot(z, torch.sigmoid(z), "--", color="gray", label="sigmoid (cổng của GLU gốc)")
plt.scatter([z_min], [silu_min], color="tab:green", zorder=3, label="đáy của SiLU")
plt.axhline(0, color="gray", lw=0.5)
plt.legend(fontsize=8)
plt.title("Các hàm kích hoạt của FFN, và sigmoid để so sánh")
plt.show()

# %% [markdown]
# Vì SiLU âm được và lớn tùy ý, tích $\mathrm{SiLU}(xW_{gate}) \odot xW_{up}$ có thể đổi dấu, khuếch đại hay gần
# như tắt từng thành phần của nhánh `up`: "cổng" ở đây là một vector nhân vào, không phải một van từ 0 đến 1.

# %% [markdown]
# Dựng SwiGLU từ ba ma trận của `model.model.layers[1].mlp`, với đầu vào thật của lớp này:

# %%
mlp = model.model.layers[LAYER].mlp
print(mlp)
mlp_io = {}
hook = mlp.register_forward_hook(lambda m, args, out: mlp_io.update(x=args[0], y=out))
with torch.no_grad():
    model(input_ids)
hook.remove()

with torch.no_grad():
    xm = mlp_io["x"]                   # (1, n, 128), đã qua post_attention_layernorm
    gate = F.silu(xm @ mlp.gate_proj.weight.T)  # (1, n, 384)
    up = xm @ mlp.up_proj.weight.T              # (1, n, 384)
    y_ffn = (gate * up) @ mlp.down_proj.weight.T  # (1, n, 128)
diff_mlp = (y_ffn - mlp_io["y"]).abs().max().item()
print(f"Sai khác lớn nhất so với model.model.layers[{LAYER}].mlp: {diff_mlp:.2e}")
assert diff_mlp < 1e-5

# %%
from course_utils.attention import classic_ffn, swiglu_ffn

show_source(swiglu_ffn)

# %%
with torch.no_grad():
    assert torch.allclose(swiglu_ffn(xm, mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight),
                          mlp_io["y"], atol=1e-5)

# FFN kiểu cũ cùng kích thước (128 -> 384 -> 128), trọng số ngẫu nhiên: chỉ để so hình dạng và số tham số
d, d_ff = config.hidden_size, config.intermediate_size
w1, b1, w2, b2 = torch.randn(d_ff, d) * 0.05, torch.zeros(d_ff), torch.randn(d, d_ff) * 0.05, torch.zeros(d)
print("FFN GELU:", tuple(classic_ffn(xm, w1, b1, w2, b2, activation=F.gelu).shape))
print(f"Tham số: ReLU/GELU {2 * d * d_ff + d_ff + d:,} (có bias), SwiGLU {3 * d * d_ff:,} (không bias)")
assert sum(p.numel() for p in mlp.parameters()) == 3 * d * d_ff

# %% [markdown]
# ## Tham số nằm ở đâu
#
# `parameter_counts` đếm tham số theo nhóm chỉ từ config. Trước hết, kiểm tra nó với mô hình tiny thật:

# %%
from course_utils.configs import parameter_counts, qwen25_7b_config, vistral_7b_config

real = {"embed_tokens": 0, "attention": 0, "mlp": 0, "norms": 0, "lm_head": 0}
for name, p in model.named_parameters():
    group_name = ("embed_tokens" if "embed_tokens" in name else "lm_head" if "lm_head" in name
                  else "attention" if "self_attn" in name else "mlp" if ".mlp." in name else "norms")
    real[group_name] += p.numel()
counted = parameter_counts(config)
print(real)
assert all(counted[g] == real[g] for g in real) and counted["total"] == sum(real.values())

# %%
configs = {"Qwen2.5-7B": qwen25_7b_config(), "Vistral-7B": vistral_7b_config(), "tiny": config}
shares = {}
print(f"{'mô hình':<12}{'tổng':>16}{'embedding':>12}{'attention':>12}{'MLP':>8}{'MLP/ngoài emb.':>16}")
for label, cfg in configs.items():
    c = parameter_counts(cfg)
    non_embedding = c["total"] - c["embed_tokens"] - c["lm_head"]
    shares[label] = {g: c[g] / c["total"] for g in ("attention", "mlp", "norms")}
    shares[label]["embedding"] = (c["embed_tokens"] + c["lm_head"]) / c["total"]
    print(f"{label:<12}{c['total']:>16,}{shares[label]['embedding']:>12.1%}"
          f"{shares[label]['attention']:>12.1%}{shares[label]['mlp']:>8.1%}{c['mlp'] / non_embedding:>16.1%}")

# %%
fig, ax = plt.subplots(figsize=(7, 2.8))
left = [0.0] * len(shares)
parts = {"embedding": ("embed_tokens + lm_head", "tab:gray"), "attention": ("attention", "tab:blue"),
         "mlp": ("MLP", "tab:orange"), "norms": ("RMSNorm", "k")}
for part, (label, color) in parts.items():
    vals = [shares[m][part] for m in shares]
    ax.barh(list(shares), vals, left=left, color=color, label=label)
    left = [a + b for a, b in zip(left, vals)]
ax.set_xlabel("tỉ lệ trên tổng số tham số")
ax.invert_yaxis()
ax.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
plt.show()

# %% [markdown]
# Với Qwen2.5-7B, MLP chiếm gần 7/8 số tham số ngoài embedding. Nếu LoRA chỉ gắn vào `q_proj` và `v_proj`
# (như nhiều ví dụ cũ), toàn bộ phần đó đứng yên. Đếm tham số LoRA với hạng `r` của profile `t4`:

# %%
from course_utils.configs import count_lora_params

qwen = configs["Qwen2.5-7B"]
r = get_profile("t4").lora_r
lora_qv = count_lora_params(qwen, r, ("q_proj", "v_proj"))
lora_attn = count_lora_params(qwen, r, ("q_proj", "k_proj", "v_proj", "o_proj"))
lora_all = count_lora_params(qwen, r, "all-linear")
print(f"LoRA r={r} trên Qwen2.5-7B: q,v {lora_qv:,}; cả attention {lora_attn:,}; mọi lớp tuyến tính {lora_all:,}")
print(f"phần của MLP trong LoRA all-linear: {(lora_all - lora_attn) / lora_all:.1%}")


# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-03-1
# ```
# **$d_k$ của Qwen2.5-7B.** Trong công thức $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ của Qwen2.5-7B, $d_k$
# bằng bao nhiêu? Lấy số liệu từ `qwen25_7b_config()` và gán vào `d_k_qwen`.

# %%
from course_utils.exercises.attention import check_head_dim

d_k_qwen = ...  # thay ... bằng câu trả lời của bạn
check_head_dim(d_k_qwen);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-03-1
# :class: dropdown
# ```

# %%
qwen = qwen25_7b_config()
d_k_qwen = qwen.hidden_size // qwen.num_attention_heads
assert check_head_dim(d_k_qwen)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-03-2
# ```
# **Attention của một query, viết tay.** Cho một query `q1` (8 chiều), 5 key `k1` và 5 value `v1`. Tính
# đầu ra attention của `q1` chỉ bằng phép nhân, chia và `torch.softmax` (không dùng hàm của khóa học), gán vào
# `out1`.

# %%
from course_utils.exercises.attention import check_single_query

gen = torch.Generator().manual_seed(3)
q1, k1, v1 = torch.randn(8, generator=gen), torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
out1 = ...  # thay ... bằng câu trả lời của bạn
check_single_query(out1, q1, k1, v1);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-03-2
# :class: dropdown
# ```

# %%
scores1 = k1 @ q1 / math.sqrt(q1.shape[0])  # 5 điểm số
out1 = torch.softmax(scores1, dim=0) @ v1     # trung bình có trọng số của 5 value
assert check_single_query(out1, q1, k1, v1)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-03-3
# ```
# **MLP của Vistral-7B.** Dùng `parameter_counts(vistral_7b_config())`, tính tỉ lệ (từ 0 đến 1) số tham
# số MLP trên số tham số ngoài embedding (tức là trừ `embed_tokens` và `lm_head`), gán vào `mlp_share_vistral`.
# So với Qwen2.5-7B thì sao, và vì sao (gợi ý: so `intermediate_size / hidden_size` của hai mô hình)?

# %%
from course_utils.exercises.attention import check_mlp_share

mlp_share_vistral = ...  # thay ... bằng câu trả lời của bạn
check_mlp_share(mlp_share_vistral);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-03-3
# :class: dropdown
# ```

# %%
vistral = vistral_7b_config()
c = parameter_counts(vistral)
mlp_share_vistral = c["mlp"] / (c["total"] - c["embed_tokens"] - c["lm_head"])
print(f"Vistral-7B: {mlp_share_vistral:.1%}; intermediate/hidden = "
      f"{vistral.intermediate_size / vistral.hidden_size:.2f} (Qwen2.5-7B: {qwen.intermediate_size / qwen.hidden_size:.2f})")
assert check_mlp_share(mlp_share_vistral)
# Vistral-7B (kiến trúc Mistral-7B) có MLP hẹp hơn so với hidden size và nhiều đầu key/value hơn Qwen2.5-7B,
# nên phần của attention lớn hơn một chút; MLP vẫn chiếm phần lớn.

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-03-4
# ```
# **KV cache của một token.** Khi sinh văn bản, mô hình lưu K và V của mọi token đã qua (KV cache) để khỏi tính
# lại. Với Qwen2.5-7B, mỗi token, mỗi lớp, cần lưu bao nhiêu giá trị (số thực)? Gán vào `values_per_token`.

# %%
from course_utils.exercises.attention import check_kv_values_per_token

values_per_token = ...  # thay ... bằng câu trả lời của bạn
check_kv_values_per_token(values_per_token);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-03-4
# :class: dropdown
# ```

# %%
d_head = qwen.hidden_size // qwen.num_attention_heads
values_per_token = 2 * qwen.num_key_value_heads * d_head  # một K và một V cho mỗi đầu key/value
assert check_kv_values_per_token(values_per_token)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-03-5
# ```
# **GQA và KV cache.** Nếu Qwen2.5-7B không dùng GQA (mỗi đầu query có K, V riêng), KV cache lớn gấp bao nhiêu
# lần? Gán vào `ratio_vs_mha`.

# %%
from course_utils.exercises.attention import check_kv_ratio

ratio_vs_mha = ...  # thay ... bằng câu trả lời của bạn
check_kv_ratio(ratio_vs_mha);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-03-5
# :class: dropdown
# ```

# %%
# không GQA: 2 × num_attention_heads × d_k giá trị; với GQA: 2 × num_key_value_heads × d_k
ratio_vs_mha = qwen.num_attention_heads / qwen.num_key_value_heads
assert check_kv_ratio(ratio_vs_mha)

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

show_figures("03_attention_ffn")
