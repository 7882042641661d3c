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
# # Notebook 6: LoRA và QLoRA
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/06_lora_qlora.ipynb)
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
# Notebook này đi cùng chương {doc}`../book/06_lora_qlora`. Ta sẽ:
#
# 1. dựng lớp LoRA từ đầu bằng vài phép nhân ma trận, rồi so với lớp LoRA của thư viện peft;
# 2. đếm số tham số huấn luyện được, cho ví dụ nhỏ và cho Qwen2.5-7B;
# 3. thử từng trường của `LoraConfig` trên mô hình tiny;
# 4. với QLoRA: giữ adapter riêng hay gộp (merge) nó vào mô hình nền 4-bit, 16-bit;
# 5. nhìn qua DoRA.
#
# Notebook luôn dùng mô hình tiny, kể cả khi có GPU: cơ chế LoRA không phụ thuộc vào kích thước mô hình,
# còn mọi con số của Qwen2.5-7B được tính từ cấu hình (config) của nó, không cần tải mô hình.
#
# **Quy ước trong cả khóa học** (giống peft): lớp tuyến tính $y = Wx$ có $W$ kích thước `(out, in)`;
# $A$ có kích thước `(r, in)` và được nhân với $x$ trước; $B$ có kích thước `(out, r)`;
# $\Delta W = s\,BA$ với $s = \alpha / r$.

# %%
import copy
import math
import tempfile
import warnings
from pathlib import Path

import torch
import transformers
from torch import nn

transformers.logging.set_verbosity_error()  # bớt các dòng thông báo khi tải mô hình
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Lớp LoRA từ đầu
#
# Bắt đầu với một lớp nhỏ: 6 chiều vào, 4 chiều ra, hạng $r = 2$. Ma trận gốc $W$ đứng yên;
# ta chỉ thêm hai ma trận nhỏ $A$ và $B$.

# %%
d_in, d_out, r, alpha = 6, 4, 2, 4
W = torch.randn(d_out, d_in)  # trọng số đã tiền huấn luyện, đóng băng: (out, in)
x = torch.randn(3, d_in)  # 3 token, mỗi token d_in chiều

A = torch.empty(r, d_in)
nn.init.kaiming_uniform_(A, a=math.sqrt(5))  # đúng cách peft khởi tạo A
B = torch.zeros(d_out, r)  # B bắt đầu bằng 0
s = alpha / r
print("A:", tuple(A.shape), " B:", tuple(B.shape), " s =", s)

# Kaiming-uniform với a = √5 là phân phối đều trên [-1/√in, 1/√in], như nn.Linear mặc định
print("max |A| =", round(A.abs().max().item(), 4), "<= 1/√in =", round(1 / math.sqrt(d_in), 4))
assert A.abs().max() <= 1 / math.sqrt(d_in)

# %% [markdown]
# Vì $B = 0$ nên $\Delta W = s\,BA = 0$: một adapter vừa tạo **không thay đổi gì** đầu ra của mô hình.
# Huấn luyện bắt đầu đúng từ mô hình gốc.

# %%
y_base = x @ W.T
y_lora = x @ W.T + s * (x @ A.T) @ B.T
assert torch.equal(y_lora, y_base)
print("Adapter mới: đầu ra không đổi.")

# %% [markdown]
# Giả lập một adapter đã huấn luyện bằng cách cho $B$ giá trị khác 0. Có hai cách tính cùng một đầu ra:
#
# - **không gộp**: $y = Wx + s\,B(Ax)$. Tính $Ax$ trước (chỉ $r$ số cho mỗi token), rồi nhân với $B$:
#   không bao giờ phải dựng ma trận $(out, in)$ của $\Delta W$;
# - **gộp** (merge): $W' = W + s\,BA$ rồi $y = W'x$: một phép nhân như mô hình gốc, không tốn thêm gì.

# %%
B = torch.randn(d_out, r) * 0.1
y_unmerged = x @ W.T + s * (x @ A.T) @ B.T
W_merged = W + s * B @ A
y_merged = x @ W_merged.T
print("sai khác lớn nhất:", (y_unmerged - y_merged).abs().max().item())
assert torch.allclose(y_unmerged, y_merged, atol=1e-6)

delta_W = s * B @ A
print("hạng của ΔW:", torch.linalg.matrix_rank(delta_W).item(), "(tối đa r =", r, ")")

# %% [markdown]
# Gói lại thành một lớp `nn.Module`: `course_utils.lora.LoRALinear` bọc một `nn.Linear` đóng băng,
# có `lora_A`, `lora_B` (kích thước như peft), `scaling`, `forward` và `merged_weight()`.
# Với `rslora=True`, hệ số là $\alpha/\sqrt{r}$ thay cho $\alpha/r$ (chương 7 giải thích vì sao).

# %%
from course_utils.display import show_source
from course_utils.lora import LoRALinear

show_source(LoRALinear)

# %% [markdown]
# ### So với peft
#
# Ta gắn LoRA của peft vào `q_proj` của lớp decoder đầu tiên trong mô hình tiny, chép đúng $A$, $B$ của peft
# sang `LoRALinear` rồi so đầu ra: trước khi gộp, sau khi gộp, có và không có rsLoRA.
# `q_proj` của Qwen2 có bias: cả hai cách đều giữ bias gốc trong $Wx + b$.

# %%
from peft import LoraConfig, TaskType, get_peft_model

from course_utils.models import load_model_and_tokenizer
from course_utils.profiles import get_profile

profile = get_profile("tiny")
base, tokenizer = load_model_and_tokenizer(profile, quantize=False)  # fp32, không lượng tử hóa


def compare_with_peft(r, alpha, rslora):
    """Relative max difference between LoRALinear and peft's LoRA layer, unmerged and merged."""
    config = LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora, target_modules=["q_proj"],
                        task_type=TaskType.CAUSAL_LM)
    theirs = get_peft_model(copy.deepcopy(base), config).base_model.model.model.layers[0].self_attn.q_proj
    ours = LoRALinear(copy.deepcopy(theirs.base_layer), r=r, alpha=alpha, rslora=rslora)
    with torch.no_grad():
        theirs.lora_B["default"].weight.normal_(std=0.05)  # như một adapter đã huấn luyện
        ours.lora_A.copy_(theirs.lora_A["default"].weight)
        ours.lora_B.copy_(theirs.lora_B["default"].weight)
        x = torch.randn(5, ours.base.in_features)
        y_theirs = theirs(x)
        unmerged = ((ours(x) - y_theirs).abs().max() / y_theirs.abs().max()).item()
        theirs.merge()  # peft cộng ΔW vào trọng số của lớp gốc
        merged = ((ours.merged_weight() - theirs.base_layer.weight).abs().max()
                  / theirs.base_layer.weight.abs().max()).item()
        merged_out = ((x @ ours.merged_weight().T + ours.base.bias - y_theirs).abs().max()
                      / y_theirs.abs().max()).item()
    return ours.scaling, theirs.scaling["default"], unmerged, merged, merged_out


for rslora in (False, True):
    ours_s, peft_s, d_unmerged, d_merged, d_out_merged = compare_with_peft(r=8, alpha=16, rslora=rslora)
    print(f"rslora={rslora!s:<5}  s: {ours_s:.4f} (peft {peft_s:.4f})  sai khác tương đối: "
          f"đầu ra {d_unmerged:.1e}, trọng số gộp {d_merged:.1e}, đầu ra sau gộp {d_out_merged:.1e}")
    assert ours_s == peft_s
    assert max(d_unmerged, d_merged, d_out_merged) < 1e-5

# %% [markdown]
# Sai khác chỉ ở mức làm tròn của float32. Thêm một kiểm tra trên cả mô hình: với cách khởi tạo mặc định của
# peft ($B = 0$), mô hình có adapter cho ra **đúng** các logit của mô hình gốc.

# %%
ids = tokenizer(["Lượng tử hóa 4-bit giúp gì khi tinh chỉnh mô hình?"], return_tensors="pt")


@torch.no_grad()
def logits_of(model):
    model.eval()
    return model(**ids).logits


fresh = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                        task_type=TaskType.CAUSAL_LM))
assert torch.equal(logits_of(fresh), logits_of(base))
print("Adapter mới của peft: logit giống hệt mô hình gốc.")

# %% [markdown]
# ## 2. Đếm tham số
#
# Một lớp $(out, in)$ có $out \cdot in$ trọng số; LoRA hạng $r$ thêm $r \cdot in$ (của $A$) và
# $out \cdot r$ (của $B$), tức $r\,(in + out)$. Ví dụ trong ghi chú của khóa học: ma trận chiếu của một đầu attention
# trong Transformer gốc (Vaswani và cộng sự, 2017) đưa $d_{model} = 512$ chiều về $d_k = 64$ chiều.

# %%
def lora_params(d_out, d_in, r):
    return r * (d_in + d_out)


full = 64 * 512
small = lora_params(64, 512, r=8)
print(f"W: {full:,} tham số;  A: {8 * 512:,} + B: {64 * 8:,} = {small:,};  giảm {1 - small / full:.1%}")

# %% [markdown]
# Với Qwen2.5-7B, `count_lora_params` tính từ cấu hình: kích thước `(out, in)` của 7 lớp tuyến tính trong mỗi
# lớp decoder (`linear_shapes`), nhân với 28 lớp. Chú ý `k_proj`, `v_proj` chỉ có 512 đầu ra
# (4 đầu key/value × 128, do attention nhóm truy vấn).

# %%
from course_utils.configs import linear_shapes, parameter_counts, qwen25_7b_config
from course_utils.configs import count_lora_params

qwen = qwen25_7b_config()
total = parameter_counts(qwen)["total"]
print(linear_shapes(qwen))
TARGETS = {
    "q_proj, v_proj": ("q_proj", "v_proj"),
    "attention (q, k, v, o)": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "all-linear (7 lớp)": "all-linear",
}
print(f"\n{'':24}" + "".join(f"{'r = ' + str(r):>22}" for r in (8, 16, 64)))
for name, targets in TARGETS.items():
    row = "".join(f"{count_lora_params(qwen, r, targets):>13,} ({count_lora_params(qwen, r, targets) / total:.2%})"
                  for r in (8, 16, 64))
    print(f"{name:<24}{row}")
print(f"\nQwen2.5-7B có {total:,} tham số.")

# %% [markdown]
# Cùng một ngân sách tham số có thể dùng theo hai cách: hạng 64 cho riêng `q_proj`, `v_proj`, hoặc hạng 8 cho cả 7 lớp.
# Chương 7 kể lại bài báo QLoRA thấy cách thứ hai tốt hơn.
#
# Kiểm tra `count_lora_params` với số tham số huấn luyện được mà peft đếm trên mô hình tiny thật:

# %%
for name, targets in TARGETS.items():
    config = LoraConfig(r=8, lora_alpha=16, task_type=TaskType.CAUSAL_LM,
                        target_modules=targets if isinstance(targets, str) else list(targets))
    trainable, _ = get_peft_model(copy.deepcopy(base), config).get_nb_trainable_parameters()
    expected = count_lora_params(base.config, 8, targets)
    print(f"{name:<24} peft: {trainable:>7,}   count_lora_params: {expected:>7,}")
    assert trainable == expected

# %% [markdown]
# ## 3. Các trường của `LoraConfig`
#
# Mỗi dòng dưới đây tạo một mô hình peft từ một bản sao của mô hình tiny, với cấu hình gốc
# `r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]` và đúng một trường thay đổi,
# rồi đếm tham số huấn luyện được. Con số mong đợi được tính lại từ cấu hình của mô hình.

# %%
cfg = base.config
L, vocab, hidden = cfg.num_hidden_layers, cfg.vocab_size, cfg.hidden_size
shapes = linear_shapes(cfg)
qv = count_lora_params(cfg, 8, ("q_proj", "v_proj"))


def peft_on_tiny(**fields):
    fields = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
              "task_type": TaskType.CAUSAL_LM} | fields
    return get_peft_model(copy.deepcopy(base), LoraConfig(**fields))


variants = {  # trường thay đổi -> số tham số huấn luyện được mong đợi
    "(cấu hình gốc)": ({}, qv),
    "r=16": ({"r": 16}, 2 * qv),
    "layers_to_transform=[0]": ({"layers_to_transform": [0]}, qv // L),
    'bias="lora_only"': ({"bias": "lora_only"}, qv + (shapes["q_proj"][0] + shapes["v_proj"][0]) * L),
    'bias="all"': ({"bias": "all"}, qv + sum(shapes[n][0] for n in ("q_proj", "k_proj", "v_proj")) * L),
    'modules_to_save=["lm_head"]': ({"modules_to_save": ["lm_head"]}, qv + vocab * hidden),
    "inference_mode=True": ({"inference_mode": True}, 0),
    "use_dora=True": ({"use_dora": True}, qv + (shapes["q_proj"][0] + shapes["v_proj"][0]) * L),
}
for name, (fields, expected) in variants.items():
    trainable, _ = peft_on_tiny(**fields).get_nb_trainable_parameters()
    print(f"{name:<30} {trainable:>9,}")
    assert trainable == expected, (name, trainable, expected)

# %% [markdown]
# - `bias="lora_only"` mở khóa bias có sẵn của các lớp được gắn LoRA (ở đây `q_proj`, `v_proj`);
#   `bias="all"` mở khóa **mọi** bias có sẵn của mô hình (Qwen2 có bias ở `q_proj`, `k_proj`, `v_proj`).
#   Không có bias mới nào được thêm vào.
# - `modules_to_save=["lm_head"]` huấn luyện **toàn bộ** một bản sao của lớp đó và lưu nó cùng adapter:
#   ở đây thêm `vocab_size × hidden_size` tham số. Trường này không "giữ nguyên" lớp gốc mà làm điều ngược lại.
# - `inference_mode=True` đóng băng cả adapter: dùng khi chỉ chạy suy luận.
#
# `task_type` chọn lớp bọc của peft; với mô hình sinh văn bản là `TaskType.CAUSAL_LM`. Viết sai tên
# (ví dụ đảo chỗ hai chữ S và U) thì peft báo lỗi ngay:

# %%
model = peft_on_tiny()
print(type(model).__name__, "| task_type =", model.peft_config["default"].task_type)

typo = "CAUSAL_LM".replace("AUSAL", "ASUAL")
try:
    LoraConfig(task_type=typo)
except ValueError as err:
    print("peft từ chối tên sai:", type(err).__name__)
print("Các giá trị hợp lệ:", [t.value for t in TaskType])

# %% [markdown]
# `target_modules="all-linear"` chọn mọi lớp `nn.Linear` (hay `Linear4bit`) trừ lớp đầu ra `lm_head`;
# `use_rslora=True` đổi hệ số $s$:

# %%
model = peft_on_tiny(target_modules="all-linear")
targeted = sorted({name.split(".")[-1] for name, m in model.named_modules() if hasattr(m, "lora_A")
                   and isinstance(m.lora_A, nn.ModuleDict)})
print("Lớp có LoRA:", targeted)
assert "lm_head" not in targeted and len(targeted) == 7

q = peft_on_tiny(use_rslora=True).base_model.model.model.layers[0].self_attn.q_proj
print(f"use_rslora=True: s = {q.scaling['default']:.3f} = 16/√8;  mặc định: s = 16/8 = {16 / 8}")

# %% [markdown]
# `lora_dropout` chỉ áp lên đầu vào của nhánh LoRA, và chỉ khi huấn luyện (chế độ `train()`):

# %%
q = peft_on_tiny(lora_dropout=0.5).base_model.model.model.layers[0].self_attn.q_proj
print(q.lora_dropout["default"])
with torch.no_grad():
    q.lora_B["default"].weight.normal_(std=0.05)
    x = torch.randn(4, hidden)
    q.train()
    print("train(): hai lần gọi giống nhau?", torch.equal(q(x), q(x)))
    q.eval()
    print("eval():  hai lần gọi giống nhau?", torch.equal(q(x), q(x)))

# %% [markdown]
# ## 4. QLoRA: adapter 32-bit trên nền 4-bit
#
# Trước hết ta cần một adapter đã học được chút gì. Trên CPU, huấn luyện với mô hình nền 4-bit của bitsandbytes
# chậm, nên ta huấn luyện nhanh 10 bước trên nền fp32 bằng `build_trainer` (câu lệnh huấn luyện duy nhất của
# khóa học), chuỗi ngắn 128 token. Adapter lưu ra chỉ gồm $A$, $B$: nạp được vào nền 4-bit hay 16-bit đều như nhau.
# Bài thực hành (chương 9) huấn luyện thật sự trên nền 4-bit.

# %%
from course_utils.data import load_split
from course_utils.train import build_trainer

work = Path(tempfile.mkdtemp(prefix="notebook06-"))
quick = profile.replace(max_length=128, gradient_checkpointing=False, max_steps=10, warmup_steps=2)
model32, _ = load_model_and_tokenizer(quick, quantize=False)
trainer = build_trainer(model32, tokenizer, load_split("train"), load_split("validation"), quick, work / "run",
                        eval_strategy="no", eval_on_start=False, save_strategy="no", disable_tqdm=True,
                        logging_steps=5)
trainer.train()
adapter_dir = work / "adapter"
trainer.model.save_pretrained(adapter_dir)

n_lora = count_lora_params(base.config, quick.lora_r, quick.lora_target_modules)
size = (adapter_dir / "adapter_model.safetensors").stat().st_size
print(f"Adapter: {n_lora:,} tham số fp32 = {4 * n_lora:,} byte; tệp adapter_model.safetensors: {size:,} byte")

# %% [markdown]
# Nạp mô hình nền ở dạng 4-bit (NF4) rồi gắn adapter. Mỗi lớp tuyến tính giờ là một `Linear4bit` đóng băng
# (trọng số là các byte `uint8`, mỗi byte chứa hai mã 4-bit), kèm `lora_A`, `lora_B` ở fp32.
# Gradient đi **qua** lớp 4-bit (để tới các adapter ở lớp trước) nhưng không có gradient nào cho $W$.

# %%
from peft import PeftModel

base4, _ = load_model_and_tokenizer(profile, quantize=True)
bytes_base4 = base4.get_memory_footprint()  # nền 4-bit, chưa có adapter
qlora = PeftModel.from_pretrained(base4, adapter_dir, is_trainable=True)
down = qlora.base_model.model.model.layers[0].mlp.down_proj
print(type(down.base_layer).__name__, down.base_layer.weight.dtype, tuple(down.base_layer.weight.shape),
      "| lora_A:", down.lora_A["default"].weight.dtype, "| lora_B:", down.lora_B["default"].weight.dtype)

batch = tokenizer(["Tinh chỉnh mô hình bằng QLoRA trên GPU T4."], return_tensors="pt")
qlora.train()
qlora(**batch, labels=batch["input_ids"]).loss.backward()
with_grad = {n.split(".")[-3] for n, p in qlora.named_parameters() if p.grad is not None}
print("Tham số có gradient:", sorted(with_grad))
print("W 4-bit cần gradient?", down.base_layer.weight.requires_grad)
assert with_grad == {"lora_A", "lora_B"}
qlora.zero_grad(set_to_none=True)

# %% [markdown]
# ### Giữ adapter riêng, hay gộp vào nền 4-bit?
#
# Mô hình vừa huấn luyện tính $\mathrm{NF4}(W)\,x + s\,B(Ax)$. Giữ adapter riêng thì suy luận cho ra **đúng** mô hình
# đó. Thử gộp bằng `merge_and_unload()` trên nền 4-bit và xem peft làm gì:

# %%
import bitsandbytes as bnb


def dequantized(linear4bit):
    return bnb.functional.dequantize_4bit(linear4bit.weight.data, linear4bit.weight.quant_state)


reference = logits_of(qlora)  # mô hình QLoRA, adapter để riêng
W4 = dequantized(down.base_layer)  # NF4(W), giải lượng tử hóa
dW = down.get_delta_weight("default")  # s·B·A của lớp này

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    merged4 = copy.deepcopy(qlora).merge_and_unload()
print("Cảnh báo của peft:", {str(w.message) for w in caught if "rounding" in str(w.message)})

new = merged4.model.layers[0].mlp.down_proj
print("Sau khi gộp:", type(new).__name__, new.weight.dtype,
      f"| bộ nhớ: {merged4.get_memory_footprint():,} byte (nền 4-bit lúc mới nạp: {bytes_base4:,})")
assert merged4.get_memory_footprint() == bytes_base4

kept = dequantized(new) - W4  # phần ΔW còn lại sau khi lượng tử hóa lại
lost = ((kept - dW).norm() / dW.norm()).item()
print(f"|ΔW| / |W| = {(dW.norm() / W4.norm()).item():.3f}")
print(f"Sai số tương đối của ΔW sau khi gộp: {lost:.2f}  (0 là giữ nguyên, 1 là sai số lớn bằng chính ΔW)")
print(f"Logit: sai khác lớn nhất so với adapter để riêng: {(logits_of(merged4) - reference).abs().max().item():.3f}")

# %% [markdown]
# Với peft 0.21.2, gộp vào nền 4-bit **giải lượng tử hóa** từng ma trận, cộng $\Delta W$, rồi **lượng tử hóa lại**
# về NF4: lớp vẫn là `Linear4bit`, bộ nhớ không tăng, nhưng $\Delta W$ thường nhỏ hơn khoảng cách giữa hai mức NF4
# nên bị làm tròn mất phần lớn. Mô hình sau khi gộp không còn là mô hình bạn đã huấn luyện và đánh giá.
#
# ### Gộp vào nền 16-bit
#
# Cách đúng: nạp mô hình nền **không** lượng tử hóa (fp16 trên T4; ở đây fp32 vì chạy trên CPU), gắn adapter,
# gộp, rồi lưu mô hình đã gộp. Lớp sau khi gộp là `nn.Linear` thường, đầu ra khớp mô hình chưa gộp tới mức làm tròn.

# %%
base32, _ = load_model_and_tokenizer(profile, quantize=False)
lora32 = PeftModel.from_pretrained(base32, adapter_dir)
unmerged32 = logits_of(lora32)
merged32 = lora32.merge_and_unload()
print("Sau khi gộp:", type(merged32.model.layers[0].mlp.down_proj).__name__)
print(f"Gộp vào nền 32-bit, so với chưa gộp:   {(logits_of(merged32) - unmerged32).abs().max().item():.1e}")
print(f"Gộp vào nền 32-bit, so với mô hình QLoRA: {(logits_of(merged32) - reference).abs().max().item():.3f}")

# %% [markdown]
# Sai khác thứ hai không đến từ phép gộp mà từ mô hình nền: adapter được dùng với $\mathrm{NF4}(W)$, giờ lại đi với
# $W$ gốc. Thường đó là điều ta muốn (nền gốc tốt hơn nền đã lượng tử hóa), nhưng hãy đánh giá lại mô hình sau khi gộp.
# Muốn có **đúng** mô hình đã đánh giá ở dạng 16-bit thì giải lượng tử hóa nền 4-bit trước (`dequantize()` của
# transformers) rồi mới gộp:

# %%
base4b, _ = load_model_and_tokenizer(profile, quantize=True)
exact = PeftModel.from_pretrained(base4b.dequantize(), adapter_dir).merge_and_unload()
print(f"Giải lượng tử hóa rồi gộp, so với mô hình QLoRA: {(logits_of(exact) - reference).abs().max().item():.1e}")
assert torch.allclose(logits_of(exact), reference, atol=1e-4)

import shutil

shutil.rmtree(work, ignore_errors=True)  # thư mục tạm của adapter: không cần nữa

# %% [markdown]
# ## 5. DoRA
#
# DoRA tách mỗi ma trận thành độ lớn và hướng: $W' = m \odot \dfrac{W + sBA}{\lVert W + sBA \rVert}$, chuẩn lấy theo
# từng hàng (mỗi đầu ra một số). LoRA học hướng, vector $m$ (khởi tạo bằng chuẩn các hàng của $W$) học độ lớn.
# Trong peft chỉ cần `use_dora=True`; mỗi lớp có thêm `out` tham số.

# %%
dora = peft_on_tiny(use_dora=True)
qd = dora.base_model.model.model.layers[0].self_attn.q_proj
m = qd.lora_magnitude_vector["default"].weight
print("vector độ lớn m:", tuple(m.shape), "| bằng chuẩn các hàng của W:",
      torch.allclose(m, qd.base_layer.weight.norm(dim=1)))
assert torch.allclose(logits_of(dora), logits_of(base), atol=1e-5)
print("DoRA mới tạo cũng không thay đổi đầu ra.")

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-1
# ```
# Lớp `gate_proj` của Qwen2.5-7B có kích thước `(out, in)` = `(18944, 3584)`. Với LoRA hạng $r = 16$,
# lớp này (trong **một** lớp decoder) có bao nhiêu tham số huấn luyện được? Gán kết quả cho `answer`.

# %%
from course_utils.exercises.lora import check_gate_proj_params

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-1
# :class: dropdown
# ```

# %%
out_f, in_f = linear_shapes(qwen)["gate_proj"]
answer = 16 * (in_f + out_f)
assert check_gate_proj_params(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-2
# ```
# Cho lớp `layer` dưới đây (một `LoRALinear` có $B \neq 0$) và đầu vào `x`. **Không gọi** `layer(x)`:
# hãy tính đầu ra từ `layer.base.weight`, `layer.base.bias`, `layer.lora_A`, `layer.lora_B` và `layer.scaling`,
# theo cách không gộp (không dựng ma trận `(out, in)` của $\Delta W$). Gán kết quả cho `answer`.

# %%
from course_utils.exercises.lora import check_lora_output, make_layer

layer, x = make_layer()

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-2
# :class: dropdown
# ```

# %%
with torch.no_grad():
    answer = x @ layer.base.weight.T + layer.base.bias + layer.scaling * (x @ layer.lora_A.T) @ layer.lora_B.T
assert check_lora_output(answer, layer, x)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-3
# ```
# Với peft 0.21.2 và mô hình nền 4-bit của bitsandbytes, những câu nào đúng về `merge_and_unload()`?
# Gán cho `answer` một tập hợp các chữ cái, ví dụ `{"a", "c"}`.
#
# - a. Các lớp sau khi gộp là `nn.Linear` 16-bit, nên mô hình chiếm gấp khoảng bốn lần bộ nhớ.
# - b. Các lớp sau khi gộp vẫn là `Linear4bit`: $W + \Delta W$ được lượng tử hóa lại về NF4.
# - c. Đầu ra sau khi gộp giống hệt đầu ra khi để adapter riêng.
# - d. Phần lớn $\Delta W$ có thể bị làm tròn mất, vì nó nhỏ so với khoảng cách giữa các mức NF4.

# %%
from course_utils.exercises.lora import check_merge_4bit

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-3
# :class: dropdown
# ```

# %%
answer = {"b", "d"}
assert check_merge_4bit(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-4
# ```
# Thí nghiệm nhỏ: trên mô hình tiny, gắn LoRA hạng 4 vào ba lớp của FFN (`gate_proj`, `up_proj`, `down_proj`) nhưng
# chỉ ở hai lớp decoder cuối (`layers_to_transform=[2, 3]`). Trước hết tính bằng tay số tham số huấn luyện được
# (dùng `linear_shapes(base.config)`), gán cho `answer`; rồi kiểm tra lại bằng `get_nb_trainable_parameters()` của peft.

# %%
from course_utils.exercises.lora import check_ffn_last_layers

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-4
# :class: dropdown
# ```

# %%
ffn = ("gate_proj", "up_proj", "down_proj")
answer = 2 * sum(4 * (linear_shapes(base.config)[n][0] + linear_shapes(base.config)[n][1]) for n in ffn)
model = peft_on_tiny(r=4, target_modules=list(ffn), layers_to_transform=[2, 3])
print("peft đếm:", model.get_nb_trainable_parameters()[0], "| tính tay:", answer)
assert check_ffn_last_layers(answer)

# %% [markdown]
# ```{solution-end}
# ```
