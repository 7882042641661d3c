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
# # Notebook — Toán lượng tử hóa: absmax, theo khối, NF4, lượng tử hóa kép
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/05_luong_tu_hoa.ipynb)
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
# Notebook này đi cùng chương {doc}`../book/05_luong_tu_hoa`. Ta dựng lại từng bước các cách
# lượng tử hóa (quantization) mà QLoRA dùng, rồi so từng kết quả với thư viện thật:
#
# - absmax int8 và affine (có điểm không, *zero point*) trên một ma trận trọng số thật của mô hình tiny;
# - giá trị ngoại lai (*outlier*) và lượng tử hóa theo khối (*blockwise*);
# - NF4: 16 mức lấy từ phân vị của phân phối chuẩn N(0, 1), lượng tử hóa và giải lượng tử hóa,
#   khớp từng mã với bitsandbytes; NF4 so với FP4 và int4; các mức có nhận phần giá trị bằng nhau không;
# - lượng tử hóa kép (*double quantization*): đếm từng byte bitsandbytes lưu;
# - bộ nhớ của Qwen2.5-7B và Vistral-7B, tính từ cấu hình;
# - từng trường của `BitsAndBytesConfig` thật sự làm gì;
# - huấn luyện ở fp16: phạm vi số, tràn số, và `GradScaler` của PyTorch.
#
# Mọi thứ chạy trên CPU. Notebook luôn dùng profile `tiny`, kể cả trên Colab có GPU: phép toán
# không đổi theo kích thước ma trận, còn bộ nhớ của các mô hình 7B được tính từ cấu hình của chúng.

# %%
import time

import bitsandbytes.functional as bnbF
import matplotlib.pyplot as plt
import torch

from course_utils.display import show_source
from course_utils.models import load_model_and_tokenizer
from course_utils.profiles import get_profile

t_start = time.time()
torch.manual_seed(0)
profile = get_profile("tiny")
model, tokenizer = load_model_and_tokenizer(profile, quantize=False)  # fp32, chưa lượng tử hóa
W = model.model.layers[0].mlp.up_proj.weight.detach().clone()
print(f"W = up_proj của lớp 0: shape {tuple(W.shape)}, dtype {W.dtype}")
print(f"trung bình {W.mean():.5f}, độ lệch chuẩn {W.std():.5f}, max|W| {W.abs().max():.5f} "
      f"(= {W.abs().max() / W.std():.1f} độ lệch chuẩn)")


def rel_error(x, x_hat):
    """Relative error ||x - x_hat|| / ||x|| (Frobenius norm)."""
    return ((x.float() - x_hat.float()).norm() / x.float().norm()).item()


# %% [markdown]
# ## Absmax int8
#
# Int8 có 256 giá trị; absmax dùng 255 giá trị đối xứng từ −127 đến 127. Ta đưa giá trị có trị tuyệt
# đối lớn nhất (absmax) về 127, nhân mọi giá trị với cùng hệ số đó rồi làm tròn. Số 0 luôn về đúng mã 0.

# %%
absmax = W.abs().max()
scale = 127 / absmax                      # hệ số lượng tử hóa
q = torch.round(W * scale).to(torch.int8)  # mã int8: mỗi trọng số 1 byte
W_hat = q.float() / scale                 # giải lượng tử hóa
print("W[0, :5]    ", W[0, :5])
print("q[0, :5]    ", q[0, :5])
print("W_hat[0, :5]", W_hat[0, :5])
print(f"sai số lớn nhất {(W - W_hat).abs().max():.2e}, nửa bước lượng tử 1/(2·scale) = {0.5 / scale:.2e}")
print(f"sai số tương đối ||W - W_hat|| / ||W|| = {rel_error(W, W_hat):.3%}")
assert (W - W_hat).abs().max() <= 0.5 / scale * (1 + 1e-5)

# %% [markdown]
# Làm tròn về số nguyên gần nhất nên sai số của từng giá trị không vượt quá nửa bước lượng tử.
# Hàm hoàn chỉnh trong `course_utils.quant` làm đúng như vậy, thêm tùy chọn `dim=-1` để mỗi hàng có
# absmax riêng: đó là cách LLM.int8() của bitsandbytes lượng tử hóa từng hàng (*vector-wise*).

# %%
from course_utils.quant import absmax_dequantize, absmax_quantize

show_source(absmax_quantize)

# %%
q_rows, absmax_rows = absmax_quantize(W, dim=-1)
ref_q, ref_absmax, _ = bnbF.int8_vectorwise_quant(W.clone(), threshold=0.0)  # LLM.int8(), không ngoại lai
assert torch.equal(q_rows, ref_q) and torch.equal(absmax_rows.squeeze(1), ref_absmax)
print("Mã int8 theo hàng giống hệt bitsandbytes.int8_vectorwise_quant.")
print(f"sai số tương đối: cả ma trận {rel_error(W, absmax_dequantize(*absmax_quantize(W))):.3%}, "
      f"theo hàng {rel_error(W, absmax_dequantize(q_rows, absmax_rows)):.3%}")

# %% [markdown]
# ## Affine: thêm điểm không
#
# Absmax giả định dữ liệu đối xứng quanh 0. Với dữ liệu lệch một phía, một nửa số mã bị bỏ phí.
# Lượng tử hóa affine dùng thêm một **điểm không** *z*: khoảng [min, max] (nới ra cho chứa 0)
# được trải đều lên 0..255, với `scale = (max - min) / 255` và `z = round(-min / scale)`.
#
# Một ví dụ thật: đầu ra của hàm SiLU trong MLP của lớp 0 (activation), khi mô hình đọc một câu.
# SiLU không nhỏ hơn khoảng −0,28 nhưng phía dương thì dài.

# %%
acts = {}
hook = model.model.layers[0].mlp.act_fn.register_forward_hook(lambda m, i, out: acts.update(silu=out.detach()))
with torch.no_grad():
    model(**tokenizer("Lượng tử hóa giúp mô hình 7B vừa với bộ nhớ của GPU T4.", return_tensors="pt"))
hook.remove()
A = acts["silu"].reshape(-1)
print(f"{A.numel()} giá trị activation, min {A.min():.3f}, max {A.max():.3f}")

lo, hi = A.min().clamp(max=0), A.max().clamp(min=0)
scale_a = (hi - lo) / 255
zero_point = torch.round(-lo / scale_a)
q_a = torch.clamp(torch.round(A / scale_a) + zero_point, 0, 255).to(torch.uint8)
A_hat = (q_a.float() - zero_point) * scale_a
print(f"scale {scale_a:.5f}, điểm không z = {zero_point:.0f}: giá trị 0 có mã {zero_point:.0f}")
print(f"sai số tương đối: affine {rel_error(A, A_hat):.3%}, "
      f"absmax {rel_error(A, absmax_dequantize(*absmax_quantize(A))):.3%}")

# %%
from course_utils.quant import affine_dequantize, affine_quantize

show_source(affine_quantize)

# %%
# So với PyTorch: MinMaxObserver chọn scale và điểm không, fake_quantize lượng tử hóa rồi giải lượng tử hóa
observer = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)
observer(A)
ref_scale, ref_zero_point = observer.calculate_qparams()
q_a, s_a, z_a = affine_quantize(A)
assert s_a.item() == ref_scale.item() and z_a.item() == ref_zero_point.item()
ref = torch.fake_quantize_per_tensor_affine(A, ref_scale.item(), int(ref_zero_point), 0, 255)
assert torch.equal(affine_dequantize(q_a, s_a, z_a), ref)
print("scale, điểm không và giá trị giải lượng tử hóa giống hệt PyTorch.")

errors_int8 = {
    ("W", "absmax"): rel_error(W, absmax_dequantize(*absmax_quantize(W))),
    ("W", "affine"): rel_error(W, affine_dequantize(*affine_quantize(W))),
    ("SiLU", "absmax"): rel_error(A, absmax_dequantize(*absmax_quantize(A))),
    ("SiLU", "affine"): rel_error(A, affine_dequantize(*affine_quantize(A))),
}
for (data, method), e in errors_int8.items():
    print(f"{data:5} {method:7} {e:.3%}")
assert errors_int8[("SiLU", "affine")] < errors_int8[("SiLU", "absmax")]

# %% [markdown]
# Trên trọng số (gần đối xứng quanh 0) hai cách gần như ngang nhau; trên activation lệch một phía,
# affine tốt hơn rõ. Vì thế affine hợp với activation (sau ReLU, SiLU, softmax), absmax hợp với
# trọng số. Công thức "trừ điểm không rồi chia scale" mà nhiều ghi chú gán cho lượng tử hóa 4-bit
# chính là affine; NF4 bên dưới **không có** điểm không.
#
# ## Ngoại lai và lượng tử hóa theo khối
#
# Một giá trị rất lớn kéo absmax lên, bước lượng tử lớn theo, và mọi giá trị nhỏ bị làm tròn thô
# (nhiều giá trị về hẳn 0). Ta cài một ngoại lai gấp 20 lần max|W| vào một bản sao của W, rồi so
# ba cách chọn absmax: một cho cả ma trận, một cho mỗi hàng, một cho mỗi khối 64 giá trị liên tiếp.
# Sai số được đo trên các trọng số bình thường (trừ chính ngoại lai).

# %%
W_out = W.clone()
W_out[5, 17] = 20 * W.abs().max()
normal = torch.ones_like(W, dtype=torch.bool)
normal[5, 17] = False


def int8_methods(x):
    """Dequantized x for three choices of absmax: per tensor, per row, per block of 64."""
    blocks = x.reshape(-1, 64)
    return {
        "cả ma trận": absmax_dequantize(*absmax_quantize(x)),
        "theo hàng": absmax_dequantize(*absmax_quantize(x, dim=-1)),
        "khối 64": absmax_dequantize(*absmax_quantize(blocks, dim=-1)).reshape(x.shape),
    }


rows = []
for data, x in (("W", W), ("W + ngoại lai", W_out)):
    for method, x_hat in int8_methods(x).items():
        zeroed = ((x_hat == 0) & (x != 0))[normal].float().mean().item()
        rows.append((data, method, rel_error(x[normal], x_hat[normal]), zeroed))
        print(f"{data:14} {method:11} sai số {rows[-1][2]:7.3%}   bị làm tròn về 0: {zeroed:6.2%}")

err = {(d, m): e for d, m, e, _ in rows}
assert err[("W + ngoại lai", "cả ma trận")] > 10 * err[("W", "cả ma trận")]  # mọi trọng số chịu thiệt
assert err[("W + ngoại lai", "khối 64")] < 2 * err[("W", "khối 64")]  # chỉ một khối chịu thiệt

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
methods = ["cả ma trận", "theo hàng", "khối 64"]
for k, data in enumerate(("W", "W + ngoại lai")):
    ax.bar([i + 0.38 * k for i in range(3)], [100 * err[(data, m)] for m in methods], width=0.36, label=data)
ax.set_xticks([i + 0.19 for i in range(3)], methods)
ax.set_yscale("log")
ax.set_ylabel("sai số tương đối (%)")
ax.set_title("Absmax int8: một ngoại lai chỉ làm hỏng khối của nó")
ax.legend()
plt.show()

# %% [markdown]
# Với một absmax cho cả ma trận, ngoại lai làm sai số của mọi trọng số khác tăng vọt; theo hàng thì
# chỉ hàng chứa nó chịu ảnh hưởng; theo khối 64 thì chỉ 63 giá trị cùng khối. Cái giá là một hằng số
# 32 bit cho mỗi 64 giá trị: 32/64 = 0,5 bit thêm cho mỗi tham số. Phần lượng tử hóa kép bên dưới cho thấy
# cách giảm cái giá này.
#
# ## NF4: 16 mức từ phân vị của N(0, 1)
#
# Với 4 bit chỉ có 16 mức. Trọng số đã huấn luyện phân bố gần chuẩn quanh 0; chia cho absmax của khối
# thì mọi khối về cùng khoảng [−1, 1]. NF4 đặt 16 mức tại các **phân vị** (*quantile*) của N(0, 1)
# để mỗi mức "phục vụ" một phần xác suất gần như nhau: dày ở gần 0, thưa ở hai đuôi. ("Gần như": phần
# "NF4 có thật sự tối ưu?" bên dưới đo xem mỗi mức thật ra nhận bao nhiêu.)
#
# Bài báo QLoRA cần một số 0 chính xác và dùng đủ 16 mã, nên lấy phân vị của hai nửa khác nhau: 8 mức
# dương và 7 mức âm, cộng số 0. Hàm `create_normal_map` của bitsandbytes làm như sau: 8 xác suất cách
# đều từ `offset = 0.9677083` xuống 0,5 (bỏ chính 0,5) cho phía dương, 7 xác suất như vậy cho phía
# âm, lấy phân vị (hàm `norm.ppf` của scipy, ở đây là `Normal.icdf` của torch), rồi chia cho mức lớn nhất.

# %%
offset = 0.9677083
p_pos = torch.linspace(offset, 0.5, 9)[:-1]  # 8 xác suất, float32 như trong bitsandbytes
p_neg = torch.linspace(offset, 0.5, 8)[:-1]  # 7 xác suất
std_normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
positive = std_normal.icdf(p_pos.double())   # phân vị, tính bằng float64
negative = -std_normal.icdf(p_neg.double())
print(f"phân vị lớn nhất: Φ⁻¹({offset}) = {std_normal.icdf(torch.tensor(offset, dtype=torch.float64)):.4f} độ lệch chuẩn")

levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).float().sort().values
levels = levels / levels.max()

bnb_table = bnbF.get_4bit_type("nf4", device="cpu")  # bảng bitsandbytes dùng khi lượng tử hóa
for i in range(16):
    print(f"mã {i:2d}: {levels[i]: .7f}   bitsandbytes {bnb_table[i]: .7f}")
print(f"sai khác lớn nhất: {(levels - bnb_table).abs().max().item():.1e}")
assert (levels - bnb_table).abs().max() < 1e-6
assert torch.equal(levels, bnb_table)  # thật ra trùng đến từng bit

# %% [markdown]
# Bảng trùng đến từng bit vì ta lặp lại đúng các bước làm tròn của bitsandbytes: xác suất ở float32
# (`torch.linspace`), phân vị ở float64, chuyển về float32, rồi chia ở float32. Nếu tính xác suất bằng
# float64 thì vẫn đạt sai khác dưới 1e-6, nhưng không còn trùng từng bit:

# %%
p64 = torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1]
n64 = torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1]
levels64 = torch.cat([-std_normal.icdf(n64), torch.zeros(1, dtype=torch.float64), std_normal.icdf(p64)])
levels64 = levels64.float().sort().values
levels64 = levels64 / levels64.max()
print(f"xác suất float64: sai khác lớn nhất {(levels64 - bnb_table).abs().max().item():.1e}")

# %%
from course_utils.quant import NF4_LEVELS, nf4_levels

show_source(nf4_levels)

# %%
assert torch.equal(NF4_LEVELS, bnb_table) and torch.equal(nf4_levels(), levels)
fp4_levels = bnbF.get_4bit_type("fp4", device="cpu").sort().values  # FP4: 1 bit dấu, 2 bit mũ, 1 bit định trị
int4_levels = torch.arange(-7, 8) / 7                              # absmax 4-bit: 15 mức cách đều
scaled_W = (W.reshape(-1, 64) / W.reshape(-1, 64).abs().amax(dim=1, keepdim=True)).reshape(-1)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
for row, (name, lv) in enumerate((("NF4", NF4_LEVELS), ("FP4", fp4_levels), ("int4", int4_levels))):
    ax1.scatter(lv, [row] * len(lv), s=18)
ax1.set_yticks([0, 1, 2], ["NF4", "FP4", "int4"])
ax1.set_title("Vị trí 16 mức trên [−1, 1]")
ax2.hist(scaled_W, bins=80, color="0.7")
for v in NF4_LEVELS:
    ax2.axvline(v, color="C0", lw=0.8)
ax2.set_title("W chia cho absmax của khối 64, và các mức NF4")
plt.tight_layout()
plt.show()

# %% [markdown]
# Hai cột cao ở −1 và 1 của biểu đồ bên phải là chính các absmax: mỗi khối có ít nhất một giá trị đạt
# ±1 sau khi chia, nên hai mức ngoài cùng luôn được dùng và giá trị lớn nhất của khối được giữ chính xác.
#
# ## Lượng tử hóa và giải lượng tử hóa NF4, từng bước
#
# Với mỗi khối 64 giá trị: chia cho absmax của khối, rồi chọn mức NF4 **gần nhất**. "Gần nhất" tương
# đương với so sánh với 15 **điểm giữa** của hai mức liền nhau: mã của một giá trị là số điểm giữa
# nhỏ hơn nó hẳn (`torch.bucketize`). Một giá trị rơi đúng vào điểm giữa thì lấy mức **dưới**.

# %%
midpoints = (levels[:-1] + levels[1:]) / 2
demo = torch.tensor([0.03, midpoints[8].item(), -0.999, 0.62])
print("điểm giữa của mã 8 và 9:", midpoints[8].item())
print("giá trị    ", demo)
print("mã         ", torch.bucketize(demo, midpoints))
print("số điểm giữa nhỏ hơn hẳn:", (demo.unsqueeze(1) > midpoints).sum(dim=1))

# %%
blocks = W.reshape(-1, 64)                       # 768 khối, mỗi khối 64 giá trị liên tiếp theo hàng
block_absmax = blocks.abs().amax(dim=1)           # một hằng số float32 cho mỗi khối
scaled = blocks * (1.0 / block_absmax).unsqueeze(1)  # bitsandbytes nhân với nghịch đảo, không chia
codes = torch.bucketize(scaled, midpoints).to(torch.uint8)  # 0..15
W_nf4 = (levels[codes.long()] * block_absmax.unsqueeze(1)).reshape(W.shape)
print(f"{blocks.shape[0]} khối; mã của 8 giá trị đầu: {codes[0, :8].tolist()}")
print(f"sai số tương đối của NF4 trên W: {rel_error(W, W_nf4):.3%}")

# %% [markdown]
# Hàm hoàn chỉnh xử lý thêm hai việc: khối cuối ngắn hơn 64 khi số phần tử không chia hết, và absmax
# bằng 0. Đọc mã nguồn CPU của bitsandbytes 0.50 (`backends/default/ops.py`) cho thấy ba chi tiết
# cần chép đúng để mã khớp từng bit: khối đủ 64 thì **nhân** với `1/absmax`, khối cuối ngắn thì **chia**
# cho absmax; absmax được kẹp về tối thiểu `1e-38`; điểm giữa thì lấy mã dưới.

# %%
from course_utils.quant import nf4_dequantize, nf4_quantize, unpack_4bit

show_source(nf4_quantize)

# %%
show_source(nf4_dequantize)

# %% [markdown]
# bitsandbytes lưu hai mã trong một byte. Mã của phần tử đầu tiên nằm ở **4 bit cao**; khi số phần tử
# lẻ, nửa byte cuối là mã 7 (mức 0).

# %%
show_source(unpack_4bit)

# %%
packed, state = bnbF.quantize_4bit(W, blocksize=64, quant_type="nf4")
my_codes, my_absmax = nf4_quantize(W)
print(f"bitsandbytes: {packed.numel()} byte {packed.dtype} cho {W.numel()} trọng số, "
      f"byte đầu {packed[0, 0].item():#04x} = mã {my_codes[0].item()} và {my_codes[1].item()}")
assert torch.equal(my_codes, unpack_4bit(packed, W.numel())) and torch.equal(my_absmax, state.absmax)
assert torch.equal(nf4_dequantize(my_codes, my_absmax, W.shape), bnbF.dequantize_4bit(packed, state, quant_type="nf4"))
assert torch.equal(my_codes.reshape(-1, 64), codes)  # cùng mã với các bước ở trên

# Nhiều kích thước (khối cuối ngắn), nhiều dtype, có số 0, có ngoại lai, có khối toàn 0
g = torch.Generator().manual_seed(0)
checked = 0
for shape in [(1,), (63,), (64,), (65,), (1000,), (4096 + 7,), (3, 5), (2, 3, 11), (7, 130)]:
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = torch.randn(shape, generator=g)
        x.view(-1)[:: 7] = 0
        x.view(-1)[0] = 50.0
        x.view(-1)[-min(3, x.numel()):] = 0
        x = x.to(dtype)
        ref_packed, ref_state = bnbF.quantize_4bit(x, blocksize=64, quant_type="nf4")
        c, a = nf4_quantize(x)
        assert torch.equal(c, unpack_4bit(ref_packed, x.numel())) and torch.equal(a, ref_state.absmax), (shape, dtype)
        checked += 1
print(f"{checked} tensor: mã và absmax giống hệt bitsandbytes.quantize_4bit(..., quant_type='nf4').")

# %% [markdown]
# Ba trường hợp biên, mỗi trường hợp khớp bitsandbytes:

# %%
# (a) khối toàn 0: absmax lưu 0 nếu khối đủ 64, lưu 1e-38 (giá trị kẹp) nếu là khối cuối ngắn
c, a = nf4_quantize(torch.zeros(70))
print("(a) mã", c.unique().tolist(), "absmax", a.tolist(), "| bitsandbytes:", bnbF.quantize_4bit(torch.zeros(70), blocksize=64, quant_type="nf4")[1].absmax.tolist())

# (b) nhân với 1/absmax và chia cho absmax có thể rơi về hai phía của một điểm giữa
a_val, x_val = torch.tensor(1.367555856704712), torch.tensor(0.16445577144622803)
print(f"(b) x·(1/a) = {(x_val * (1.0 / a_val)).item():.9f}, x/a = {(x_val / a_val).item():.9f}, "
      f"điểm giữa {midpoints[8].item():.9f}")
pair_full = torch.zeros(64)
pair_full[:2] = torch.stack([a_val, x_val])
pair_short = pair_full[:10].clone()
for name, x in (("khối đủ 64", pair_full), ("khối ngắn", pair_short)):
    mine = nf4_quantize(x)[0][1].item()
    theirs = unpack_4bit(bnbF.quantize_4bit(x, blocksize=64, quant_type="nf4")[0], x.numel())[1].item()
    print(f"    {name}: mã {mine}, bitsandbytes {theirs}")
    assert mine == theirs

# (c) mã của các giá trị đúng bằng điểm giữa (absmax = 1): luôn là mã dưới
x = torch.cat([torch.ones(1), midpoints, torch.zeros(48)])
print("(c) mã:", nf4_quantize(x)[0][1:16].tolist())
assert torch.equal(nf4_quantize(x)[0][1:16], torch.arange(15, dtype=torch.uint8))

# %% [markdown]
# Cuối cùng, chính mô hình tiny nạp ở 4-bit bằng transformers, với cấu hình 4-bit của khóa học
# (`course_utils.models.bnb_config`: NF4 và lượng tử hóa kép): mã mà lớp `Linear4bit` lưu cho `up_proj`
# phải là mã ta tính từ trọng số fp32. Các hằng số absmax ở đó đã qua lượng tử hóa kép, nên chỉ gần
# bằng (xem phần lượng tử hóa kép bên dưới).
#
# Ta nạp lên CPU (`device_map`), kể cả khi có GPU: trên GPU, bitsandbytes lượng tử hóa bằng kernel CUDA.
# Một lần kiểm tra cho dự án này trên H100 (bitsandbytes 0.50.2) cho thấy kernel CUDA cho cùng mã trên
# mọi lớp của mô hình tiny, nhưng khác kernel CPU ở hai chỗ: giá trị nằm sát một điểm giữa (trong một
# bước làm tròn float32), và khối toàn số 0 (CUDA lưu absmax 0 và mã 0).

# %%
from transformers import AutoModelForCausalLM

from course_utils.models import bnb_config, model_path

model_4bit = AutoModelForCausalLM.from_pretrained(model_path(profile), quantization_config=bnb_config(profile),
                                                  dtype=torch.float32, device_map={"": "cpu"})
layer = model_4bit.model.layers[0].mlp.up_proj
stored = layer.weight.quant_state
print(type(layer).__name__, "| trọng số lưu:", tuple(layer.weight.shape), layer.weight.dtype,
      "| absmax:", stored.absmax.dtype, "| lồng (state2):", stored.nested)
assert torch.equal(unpack_4bit(layer.weight.data, W.numel()), my_codes)
absmax_dq = bnbF.dequantize_blockwise(stored.absmax, stored.state2) + stored.offset
absmax_drift = ((absmax_dq - my_absmax).abs() / my_absmax).max().item()
print(f"absmax sau lượng tử hóa kép lệch tối đa {absmax_drift:.3%} so với absmax thật")
assert absmax_drift < 0.01

# %% [markdown]
# ## NF4, FP4 hay int4 trên dữ liệu phân phối chuẩn
#
# bitsandbytes có hai kiểu 4-bit: `nf4` và `fp4` (số thực dấu phẩy động 4 bit). Ta so chúng với absmax
# int4 cách đều trên một ma trận N(0, 1) 1024 × 1024, cùng khối 64.

# %%
X = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
errors_4bit = {}
for kind in ("nf4", "fp4"):
    p, s = bnbF.quantize_4bit(X, blocksize=64, quant_type=kind)
    errors_4bit[kind] = rel_error(X, bnbF.dequantize_4bit(p, s, quant_type=kind))
q4, a4 = absmax_quantize(X.reshape(-1, 64), bits=4, dim=-1)
errors_4bit["int4"] = rel_error(X, absmax_dequantize(q4, a4, bits=4).reshape(X.shape))
c, a = nf4_quantize(X)
assert abs(rel_error(X, nf4_dequantize(c, a, X.shape)) - errors_4bit["nf4"]) < 1e-7
for kind, e in errors_4bit.items():
    print(f"{kind}: sai số tương đối {e:.2%}")
assert errors_4bit["nf4"] < errors_4bit["int4"] < errors_4bit["fp4"]

# %% [markdown]
# ## NF4 có thật sự "tối ưu"?
#
# Bài báo QLoRA gọi NF4 là tối ưu theo lý thuyết thông tin cho dữ liệu phân phối chuẩn: mỗi ô (bin) nhận cùng một
# phần giá trị. Ta kiểm tra hai điều.
#
# **Thứ nhất, ngay trong giả định của cách dựng.** Cách dựng coi giá trị sau khi chia là $x / \Phi^{-1}(\delta)$ với
# $x \sim N(0, 1)$. Mỗi giá trị về mức gần nhất, nên ô của mức $k$ nằm giữa hai điểm giữa kề nó. Phần xác suất của
# ô đó là hiệu của hàm phân phối $\Phi$ tại hai đầu ô (nhân lại với $\Phi^{-1}(\delta)$ để về đơn vị của $x$):

# %%
span = std_normal.icdf(torch.tensor(offset, dtype=torch.float64))   # Φ⁻¹(δ): mức 1 ứng với ngần này độ lệch chuẩn
mid64 = (NF4_LEVELS[:-1].double() + NF4_LEVELS[1:].double()) / 2
edges = torch.cat([torch.tensor([-torch.inf], dtype=torch.float64), mid64 * span,
                   torch.tensor([torch.inf], dtype=torch.float64)])   # hai ô ngoài cùng kéo dài tới vô cực
bin_prob = std_normal.cdf(edges[1:]) - std_normal.cdf(edges[:-1])
for k in range(16):
    print(f"mã {k:2d}  mức {NF4_LEVELS[k]: .4f}  phần xác suất {bin_prob[k]:.2%}")
print(f"nhỏ nhất {bin_prob.min():.2%}, lớn nhất {bin_prob.max():.2%}; nếu bằng nhau thì mỗi ô 1/16 = {1 / 16:.2%}")
assert abs(bin_prob.sum() - 1) < 1e-12 and bin_prob.max() - bin_prob.min() > 0.01

# %% [markdown]
# Các ô chỉ gần bằng nhau: 8 mức dương và 7 mức âm không đối xứng, và ranh giới ô là điểm giữa hai mức chứ không phải
# một phân vị. Hàm hoàn chỉnh trong `course_utils.quant`:

# %%
from course_utils.quant import expected_absmax, nf4_bin_probabilities, nf4_code_shares

show_source(nf4_bin_probabilities)

# %%
assert torch.allclose(nf4_bin_probabilities(), bin_prob)

# %% [markdown]
# **Thứ hai, giả định đó không khớp với cách chia theo khối.** Sau khi chia cho absmax của khối, giá trị lớn nhất của
# khối là ±1 đúng, tức absmax đóng vai $\Phi^{-1}(\delta)$. Nhưng absmax của 64 mẫu N(0, 1) lớn hơn $\Phi^{-1}(\delta)$
# nhiều. Kỳ vọng của nó là $\int_0^\infty 1 - (2\Phi(m) - 1)^{64}\,dm$ (vì $P(\max|x_i| \le m) = (2\Phi(m) - 1)^{64}$);
# ta tính tích phân đó và so với trung bình absmax của các khối trong ma trận N(0, 1) `X` ở trên:

# %%
show_source(expected_absmax)

# %%
block_absmax_X = X.reshape(-1, 64).abs().amax(dim=1)   # 16.384 khối
print(f"absmax của một khối 64: trung bình {block_absmax_X.mean():.3f} (lấy mẫu), {expected_absmax(64):.3f} (tích phân); "
      f"Φ⁻¹(δ) = {span:.3f}")
assert abs(block_absmax_X.mean() - expected_absmax(64)) < 0.01

shares = nf4_code_shares(X)   # phần giá trị thật sự rơi vào mỗi mã
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
ax1.hist(block_absmax_X, bins=60, color="0.7")
ax1.axvline(span, color="C3", label="Φ⁻¹(δ): giả định của bảng NF4")
ax1.axvline(expected_absmax(64), color="C0", label="kỳ vọng của absmax (64 mẫu)")
ax1.set_xlabel("absmax của khối (độ lệch chuẩn)")
ax1.legend(fontsize=8)
ax2.bar(range(16), 100 * bin_prob, width=0.4, label="theo giả định của cách dựng")
ax2.bar([k + 0.4 for k in range(16)], 100 * shares, width=0.4, label="đo trên X, khối 64")
ax2.axhline(100 / 16, color="0.3", lw=0.8)
ax2.set_xlabel("mã NF4")
ax2.set_ylabel("% số giá trị")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(f"hai mức ngoài cùng: {shares[0] + shares[15]:.2%} số giá trị (chính các absmax: 1/64 = {1 / 64:.2%}); "
      f"mức đông nhất: {shares.max():.2%}")
assert shares[0] + shares[15] < bin_prob[0] + bin_prob[15] and shares.max() > bin_prob.max()

# %% [markdown]
# Absmax thật lớn hơn $\Phi^{-1}(\delta)$, nên sau khi chia các giá trị dồn về gần 0 hơn mức mà bảng giả định: hai
# mức ngoài cùng gần như chỉ dùng cho chính các absmax, còn các mức gần 0 đông hơn nhiều. Phân phối sau khi chia phụ
# thuộc vào kích thước khối (khối càng lớn, absmax càng lớn), nên một bảng cố định không thể "cân bằng" cho mọi khối,
# và NF4 không phải kiểu 4-bit có sai số bình phương trung bình nhỏ nhất (Yoshida, 2023). Dù vậy nó vẫn tốt hơn FP4
# và int4, như phần trước đã đo.

# %% [markdown]
# ## Lượng tử hóa kép: bitsandbytes lưu những gì
#
# Không có lượng tử hóa kép, mỗi khối 64 trọng số có một absmax float32: 4 + 32/64 = 4,5 bit mỗi
# tham số. Với `compress_statistics=True` (tức `bnb_4bit_use_double_quant=True`), bitsandbytes trừ
# đi trung bình của các absmax (`offset`), lượng tử hóa chúng xuống 8 bit theo khối 256, và chỉ giữ
# một float32 cho mỗi 256 absmax: 4 + 8/64 + 32/(64·256) ≈ 4,127 bit. Ta đếm từng byte.

# %%
from course_utils.memory import bits_per_param_4bit


def stored_bytes(packed, state):
    """Bytes of each tensor that a 4-bit QuantState keeps for one weight matrix."""
    parts = {"mã 4-bit": packed.nbytes, f"absmax ({state.absmax.dtype})": state.absmax.nbytes}
    if state.nested:
        parts["absmax lồng (float32)"] = state.state2.absmax.nbytes
        parts["offset (float32)"] = state.offset.nbytes
    return parts


for dq in (False, True):
    p, s = bnbF.quantize_4bit(X, blocksize=64, quant_type="nf4", compress_statistics=dq)
    parts = stored_bytes(p, s)
    total = sum(parts.values())
    print(f"compress_statistics={dq}: " + ", ".join(f"{k} {v:,} B" for k, v in parts.items()))
    print(f"    {total * 8 / X.numel():.6f} bit/tham số; bits_per_param_4bit({dq}) = {bits_per_param_4bit(dq):.6f}")
    per_block = total - parts.get("offset (float32)", 0)
    assert per_block * 8 / X.numel() == bits_per_param_4bit(dq)
    if dq:
        assert s.absmax.dtype == torch.uint8 and s.state2.blocksize == 256

print(f"Thêm vào đó, mỗi lớp lưu bảng mã: NF4 {s.code.nbytes} B, bảng 8-bit của absmax {s.state2.code.nbytes} B.")
X_dq = bnbF.dequantize_4bit(p, s, quant_type="nf4")
print(f"sai số tương đối của NF4: không kép {errors_4bit['nf4']:.4%}, có kép {rel_error(X, X_dq):.4%}")

# %% [markdown]
# Phần chênh nhỏ so với công thức là `offset`: 4 byte cho mỗi ma trận, không đáng kể. Lượng tử hóa kép
# làm sai số gần như không đổi, vì absmax sau lượng tử hóa kép chỉ lệch rất ít (ô nạp mô hình tiny ở 4-bit, phía
# trên, in ra độ lệch đó).
#
# ## Bộ nhớ của Qwen2.5-7B và Vistral-7B
#
# `course_utils.memory.weight_memory` tính bộ nhớ trọng số từ cấu hình: các lớp tuyến tính của khối
# decoder ở 16, 8 hoặc 4 bit; embedding, `lm_head`, các lớp chuẩn hóa và bias giữ 16 bit.

# %%
from course_utils.configs import parameter_counts, qwen25_7b_config, vistral_7b_config
from course_utils.memory import GIB, weight_memory

configs = {"Qwen2.5-7B": qwen25_7b_config(), "Vistral-7B": vistral_7b_config()}
for name, cfg in configs.items():
    counts = parameter_counts(cfg)
    print(f"{name}: hidden {cfg.hidden_size}, intermediate {cfg.intermediate_size}, {cfg.num_hidden_layers} lớp, "
          f"{cfg.num_attention_heads} đầu attention, {cfg.num_key_value_heads} đầu KV, vocab {cfg.vocab_size}")
    print(f"    {counts['total']:,} tham số, trong đó embedding + lm_head {counts['embed_tokens'] + counts['lm_head']:,}")
    for bits in (16, 8, 4):
        parts = weight_memory(cfg, bits=bits)
        print(f"    {bits:2d} bit: {parts['total'] / GIB:6.2f} GiB  (tuyến tính {parts['linear'] / GIB:5.2f}, "
              f"embedding + lm_head {(parts['embed_tokens'] + parts['lm_head']) / GIB:4.2f}, "
              f"norm + bias {parts['norms_and_biases'] / GIB:.4f})")

qwen = configs["Qwen2.5-7B"]
naive = parameter_counts(qwen)["total"] * 0.5
qwen_4bit = weight_memory(qwen, bits=4)
share = (qwen_4bit["embed_tokens"] + qwen_4bit["lm_head"]) / qwen_4bit["total"]
print(f"\nNếu mọi tham số đều 4 bit: {naive / 1e9:.2f} GB = {naive / GIB:.2f} GiB; "
      f"tính đúng: {qwen_4bit['total'] / GIB:.2f} GiB, trong đó embedding + lm_head {share:.0%}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
labels, bottoms = [], []
for name, cfg in configs.items():
    for bits in (16, 8, 4):
        parts = weight_memory(cfg, bits=bits)
        labels.append(f"{name}\n{bits} bit")
        bottoms.append((parts["linear"] / GIB, (parts["embed_tokens"] + parts["lm_head"]) / GIB))
x_pos = range(len(labels))
ax.bar(x_pos, [b[0] for b in bottoms], label="lớp tuyến tính")
ax.bar(x_pos, [b[1] for b in bottoms], bottom=[b[0] for b in bottoms], label="embedding + lm_head (16 bit)")
ax.set_xticks(list(x_pos), labels, fontsize=8)
ax.set_ylabel("GiB")
ax.set_ylim(0, 19)
ax.set_title("Bộ nhớ trọng số (tính từ cấu hình)")
ax.legend(loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# Ở 4 bit, embedding và `lm_head` 16 bit của Qwen2.5-7B (từ điển 152.064 token) chiếm 39% bộ nhớ:
# vì vậy con số đo được không phải 7,6 tỉ × 0,5 byte.
#
# ## `BitsAndBytesConfig` trong transformers 5.23
#
# Giá trị mặc định không phải là công thức QLoRA: kiểu 4-bit mặc định là `fp4`, lượng tử hóa kép tắt,
# kiểu tính toán là float32. Phải đặt rõ từng trường.

# %%
from transformers import BitsAndBytesConfig

default = BitsAndBytesConfig(load_in_4bit=True)
print("mặc định:", default.bnb_4bit_quant_type, default.bnb_4bit_use_double_quant, default.bnb_4bit_compute_dtype)
qlora = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.float16)  # T4: float16, không có bfloat16
print("QLoRA trên T4:", qlora.bnb_4bit_quant_type, qlora.bnb_4bit_use_double_quant, qlora.bnb_4bit_compute_dtype)

# Hai trường 8-bit trong ghi chú gốc không tồn tại: chúng chỉ được ghi log mức INFO rồi bị bỏ qua
seed_like = BitsAndBytesConfig(load_in_8bit=True, bnb_8bit_use_double_quant=True, bnb_8bit_quant_type="fp8")
print("có bnb_8bit_use_double_quant?", hasattr(seed_like, "bnb_8bit_use_double_quant"),
      "| có trong to_dict()?", "bnb_8bit_quant_type" in seed_like.to_dict())
assert not hasattr(seed_like, "bnb_8bit_use_double_quant")

try:
    BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6)  # số nguyên: bị từ chối
except TypeError as e:
    print("TypeError:", e)

try:  # cách viết cũ: transformers 5 không nhận load_in_4bit trong from_pretrained
    AutoModelForCausalLM.from_pretrained(model_path(profile), load_in_4bit=True)
except TypeError as e:
    print("TypeError:", e)

# %% [markdown]
# `llm_int8_threshold` chỉ dùng cho 8-bit (LLM.int8()) và xét **activation** đầu vào của phép nhân, không
# xét trọng số: cột nào của activation có giá trị tuyệt đối từ ngưỡng trở lên thì được nhân ở 16 bit.

# %%
acts_demo = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
acts_demo[:, 3] *= 20  # một cột ngoại lai
_, _, outlier_cols = bnbF.int8_vectorwise_quant(acts_demo.clone(), threshold=6.0)
print("cột ngoại lai được tách ra nhân ở 16 bit:", outlier_cols.tolist())

# %% [markdown]
# `llm_int8_skip_modules` có tên "int8" nhưng cũng áp dụng cho 4-bit. Một cái bẫy: khi bạn truyền danh
# sách này, transformers **không** tự thêm `lm_head` vào danh sách bỏ qua nữa, nên `lm_head` bị lượng tử hóa.

# %%
skip = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", llm_int8_skip_modules=["down_proj"])
model_skip = AutoModelForCausalLM.from_pretrained(model_path(profile), quantization_config=skip, dtype=torch.float32)
print("mặc định      : lm_head là", type(model_4bit.lm_head).__name__)
print("skip down_proj: lm_head là", type(model_skip.lm_head).__name__,
      "| down_proj là", type(model_skip.model.layers[0].mlp.down_proj).__name__)
assert type(model_skip.lm_head).__name__ == "Linear4bit"
del model_skip

# %% [markdown]
# ## Huấn luyện ở fp16: phạm vi số, tràn số và GradScaler
#
# T4 không có bf16, nên bài thực hành tính ở fp16 (`bnb_4bit_compute_dtype=torch.float16` ở trên, và `fp16=True`
# khi huấn luyện). fp16 và bf16 đều 16 bit nhưng chia bit khác nhau: bf16 giữ 8 bit mũ như fp32, fp16 chỉ có 5.

# %%
for dtype in (torch.float16, torch.bfloat16, torch.float32):
    info = torch.finfo(dtype)
    print(f"{str(dtype):15} số lớn nhất {info.max:.4g}   số chuẩn dương nhỏ nhất {info.smallest_normal:.3g}   "
          f"eps {info.eps:.3g}")
FP16_MAX = torch.finfo(torch.float16).max
assert FP16_MAX == 65504 and torch.finfo(torch.bfloat16).max > 1e38

# %% [markdown]
# **Tràn số.** Một mô hình tiền huấn luyện ở bf16 không bị giới hạn ở 65.504: một activation 70.000 là chuyện bình
# thường ở bf16, nhưng thành `inf` ở fp16, và `inf` thì sinh ra `NaN`. Bình phương còn tràn sớm hơn: $256^2$ = 65.536.
# RMSNorm của Qwen2 trong transformers vì thế đổi đầu vào sang fp32 trước khi tính trung bình bình phương:

# %%
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

big = torch.tensor([70000.0])
print("70000 ở bf16:", big.to(torch.bfloat16).item(), "| ở fp16:", big.half().item())
inf16 = big.half()
print("inf - inf =", (inf16 - inf16).item(), "| 0 * inf =", (0 * inf16).item())

h = torch.full((1, 8), 300.0, dtype=torch.float16)   # một activation fp16 hợp lệ (300 < 65504)
print("trung bình bình phương tính ở fp16:", h.pow(2).mean().item())
norm = Qwen2RMSNorm(8).half()
print("Qwen2RMSNorm (đổi sang fp32 bên trong):", norm(h)[0, :3].tolist())
assert torch.isinf(h.pow(2).mean()) and torch.isfinite(norm(h)).all()

# %% [markdown]
# **Tràn dưới.** Số dương nhỏ nhất của fp16 là $2^{-24}$: một gradient cỡ $10^{-8}$ thành 0. Nhân trước với một hệ
# số $S$ rồi chia lại trong fp32 thì giữ được nó. Đó là ý tưởng của co giãn loss (*loss scaling*).

# %%
g = torch.tensor(1e-8)
S = 2.0**15
print("1e-8 ở fp16:", g.half().item(), "| (1e-8 · S) ở fp16 rồi chia S trong fp32:", ((g * S).half().float() / S).item())
assert g.half().item() == 0 and abs((g * S).half().float() / S - g) / g < 1e-3

# %% [markdown]
# `torch.amp.GradScaler` tự chọn $S$. Mỗi bước: nhân loss với $S$ và lan truyền ngược; chia gradient cho $S$; nếu có
# gradient `inf`/`NaN` thì **bỏ qua** bước cập nhật và nhân $S$ với `backoff_factor`; nếu không thì cập nhật, và sau
# `growth_interval` bước liên tiếp không tràn thì nhân $S$ với `growth_factor`. GradScaler chạy được trên CPU; ta thử
# với một tham số fp32 (như $A$, $B$ của LoRA) và phép tính ở fp16, bắt đầu với $S = 2^{17}$ (lớn hơn cả 65.504) và
# `growth_interval=2` để thấy cả hai chiều trong vài bước:

# %%
import inspect

defaults = {k: v.default for k, v in inspect.signature(torch.amp.GradScaler.__init__).parameters.items()
            if k in ("init_scale", "growth_factor", "backoff_factor", "growth_interval")}
print("giá trị mặc định của GradScaler:", defaults)

w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))   # tham số huấn luyện được, fp32
x16 = torch.tensor([1.0, 1e-4]).half()
opt = torch.optim.SGD([w], lr=0.1)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0**17, growth_interval=2)
history = []
for step in range(8):
    opt.zero_grad()
    loss = (w.half() * x16).sum().float()             # lượt truyền xuôi ở fp16
    S_before = scaler.get_scale()
    scaler.scale(loss).backward()                     # gradient = S · (gradient thật), tính qua fp16
    finite = bool(torch.isfinite(w.grad).all())
    w_before = w.detach().clone()
    scaler.step(opt)                                  # chia cho S; bỏ qua nếu có inf/NaN
    scaler.update()                                   # chỉnh S
    history.append((S_before, finite, not torch.equal(w_before, w.detach())))
    print(f"bước {step}: S = {S_before:>8.0f}  gradient hữu hạn: {finite!s:5}  đã cập nhật: {history[-1][2]!s:5}  "
          f"→ S mới {scaler.get_scale():.0f}")
assert all(finite == updated for _, finite, updated in history)

# %% [markdown]
# Dựng lại đúng các quy tắc đó bằng tay: gradient của loss theo đầu ra fp16 là $S$, nên nó tràn khi $S$ vượt 65.504.
# Ta được cùng dãy giá trị của $S$:

# %%
S, good, by_hand = 2.0**17, 0, []
for _ in range(8):
    overflow = torch.isinf(torch.tensor(S).half()).item()   # S · 1 ở fp16
    by_hand.append((S, not overflow))
    if overflow:
        S, good = S * defaults["backoff_factor"], 0
    else:
        good += 1
        if good == 2:  # growth_interval của ví dụ
            S, good = S * defaults["growth_factor"], 0
assert by_hand == [(s, f) for s, f, _ in history]
print("Cùng dãy S và cùng các bước bị bỏ qua như torch.amp.GradScaler.")

# %% [markdown]
# GradScaler không chữa được tràn số ở lượt truyền xuôi: khi một activation đã là `inf`, loss là `NaN` ở mọi bước, mọi
# bước bị bỏ qua, và mô hình không học gì mà không có lỗi nào. Bài thực hành của khóa học làm ba việc:
#
# - profile `t4` huấn luyện fp16 hỗn hợp (`fp16=True`), và trainer của transformers tự tạo một GradScaler như trên;
# - `build_trainer` giữ mọi tham số huấn luyện được ở fp32 (hàm dưới đây): GradScaler cần chia gradient trong fp32, và
#   từ TRL 0.26 `SFTTrainer` đổi adapter của mô hình lượng tử hóa sang bf16, thứ mà T4 không có;
# - callback `StopOnNaN` dừng huấn luyện ở lần ghi log đầu tiên có loss là `NaN` hay `inf`, với thông báo tiếng Việt.

# %%
from course_utils.compat import adapters_to_fp32
from course_utils.train import StopOnNaN
from types import SimpleNamespace

print("profile t4: fp16 =", get_profile("t4").fp16, "| dtype của các lớp không lượng tử hóa:", get_profile("t4").dtype)
show_source(adapters_to_fp32)

# %%
try:
    StopOnNaN().on_log(args=None, state=SimpleNamespace(global_step=12), control=None, logs={"loss": float("nan")})
except FloatingPointError as err:
    print(err)

# %% [markdown]
# Chương {doc}`../book/09_qlora_lab` đo một mô hình thật ở fp16 trên GPU.

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-05-1
# ```
# **Trường nào có tác dụng với 4-bit?** Khi tải mô hình ở 4-bit (`load_in_4bit=True`, transformers 5.23), những
# trường nào dưới đây của `BitsAndBytesConfig` **có tác dụng**? Gán cho `fields_4bit` tập các chữ cái, ví dụ
# `{"a", "b"}`.
#
# - a. `bnb_4bit_quant_type`
# - b. `bnb_4bit_use_double_quant`
# - c. `bnb_4bit_compute_dtype`
# - d. `llm_int8_threshold`
# - e. `llm_int8_skip_modules`
# - f. `bnb_8bit_use_double_quant`
# - g. `llm_int8_enable_fp32_cpu_offload`

# %%
from course_utils.exercises.quant import check_bnb_fields

fields_4bit = ...  # thay ... bằng câu trả lời của bạn
check_bnb_fields(fields_4bit);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-05-1
# :class: dropdown
# ```

# %%
fields_4bit = {"a", "b", "c", "e", "g"}
assert check_bnb_fields(fields_4bit)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-05-2
# ```
# **Số bit mỗi tham số với khối 128.** Tính tay: NF4 với khối **128** và lượng tử hóa kép (khối 256 cho các absmax)
# tốn bao nhiêu bit cho mỗi tham số? Gán vào `bits_128`, rồi so với khối 64.

# %%
from course_utils.exercises.quant import check_bits_per_param

bits_128 = ...  # thay ... bằng câu trả lời của bạn
check_bits_per_param(bits_128);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-05-2
# :class: dropdown
# ```

# %%
bits_128 = 4 + 8 / 128 + 32 / (128 * 256)
print(f"khối 128: {bits_128:.4f} bit, khối 64: {bits_per_param_4bit(True):.4f} bit")
assert check_bits_per_param(bits_128)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-05-3
# ```
# **Mã NF4 bằng tay.** Lượng tử hóa NF4 vector `x_3` dưới đây (100 giá trị: một khối 64 và một khối cuối 36)
# **mà không gọi** `nf4_quantize`: chỉ dùng `NF4_LEVELS`. Gán vào `codes_3` tensor 100 mã (mỗi mã từ 0 đến 15).

# %%
from course_utils.exercises.quant import check_nf4_codes

x_3 = torch.randn(100, generator=torch.Generator().manual_seed(5))
codes_3 = ...  # thay ... bằng câu trả lời của bạn
check_nf4_codes(codes_3, x_3);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-05-3
# :class: dropdown
# ```

# %%
mids = (NF4_LEVELS[:-1] + NF4_LEVELS[1:]) / 2
codes_3 = torch.cat([
    torch.bucketize(x_3[:64] * (1.0 / x_3[:64].abs().max()), mids),  # khối đủ: nhân với nghịch đảo
    torch.bucketize(x_3[64:] / x_3[64:].abs().max(), mids),          # khối cuối: chia
])
assert check_nf4_codes(codes_3, x_3)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-05-4
# ```
# **Kích thước khối: sai số và số bit.** Với mỗi kích thước khối trong `BLOCK_SIZES`, tính sai số tương đối của NF4
# trên `W` (dùng `nf4_quantize(W, blocksize=b)` và `nf4_dequantize`) và số bit mỗi tham số có lượng tử hóa kép
# (`bits_per_param_4bit(True, blocksize=b)`). Gán vào `errors_4` danh sách các sai số, theo thứ tự `BLOCK_SIZES`.
# Khối nào bạn sẽ chọn, và vì sao QLoRA chọn 64?

# %%
from course_utils.exercises.quant import BLOCK_SIZES, check_blocksize_errors

errors_4 = ...  # thay ... bằng câu trả lời của bạn
check_blocksize_errors(errors_4, W);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-05-4
# :class: dropdown
# ```

# %%
errors_4 = []
for b in BLOCK_SIZES:
    c, a = nf4_quantize(W, blocksize=b)
    errors_4.append(rel_error(W, nf4_dequantize(c, a, W.shape, blocksize=b)))
    print(f"khối {b:3d}: sai số {errors_4[-1]:.3%}, {bits_per_param_4bit(True, blocksize=b):.4f} bit/tham số")
assert check_blocksize_errors(errors_4, W)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-05-5
# ```
# **Bao nhiêu bước bị bỏ qua?** Một GradScaler bắt đầu với $S = 2^{20}$ (`backoff_factor` 0,5). Gradient lớn nhất của
# mô hình, trước khi nhân $S$, là `G_5` dưới đây, và nó được tính ở fp16. Giả sử gradient không đổi qua các bước:
# có bao nhiêu bước bị bỏ qua trước bước cập nhật đầu tiên? Gán vào `skipped`.

# %%
from course_utils.exercises.quant import check_skipped_steps

G_5 = 3.0
skipped = ...  # thay ... bằng câu trả lời của bạn
check_skipped_steps(skipped, G_5, 2.0**20);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-05-5
# :class: dropdown
# ```

# %%
# Một bước bị bỏ qua khi S · G_5 tràn fp16 (thành inf); mỗi lần như vậy S giảm một nửa.
S, skipped = 2.0**20, 0
while torch.isinf(torch.tensor(S * G_5).half()):
    S, skipped = S / 2, skipped + 1
print(f"{skipped} bước bị bỏ qua; bước đầu tiên được cập nhật với S = {S:.0f} (S · G_5 = {S * G_5:.0f} ≤ {FP16_MAX:.0f})")
assert check_skipped_steps(skipped, G_5, 2.0**20)

# %% [markdown]
# ```{solution-end}
# ```

# %%
print(f"Notebook chạy xong trong {time.time() - t_start:.0f} s với profile '{profile.name}'.")

# %% [markdown]
# ## Mọi con số của chương, tính lại
#
# Bảng dưới là mọi con số mà chương này và notebook này viết ra, tính lại bằng chính các hàm của khóa học
# (`course_utils.figures`); một bài kiểm thử bảo đảm trang không có con số nào khác.

# %%
from course_utils.figures import show_figures

show_figures("05_luong_tu_hoa")
