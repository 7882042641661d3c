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
# # Notebook — LoRA và QLoRA
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/06_lora_qlora.ipynb)
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
# Notebook này đi cùng chương {doc}`../book/06_lora_qlora`. Ta sẽ:
#
# 1. dựng lớp LoRA từ đầu bằng vài phép nhân ma trận, rồi so với lớp LoRA của thư viện peft;
# 2. đếm số tham số huấn luyện được, cho ví dụ nhỏ và cho Qwen2.5-7B;
# 3. thử từng trường của `LoraConfig` trên mô hình tiny;
# 4. huấn luyện vài bước QLoRA thật trên mô hình tiny nạp ở 4-bit, rồi so: giữ adapter riêng, gộp (merge) vào nền
#    4-bit, gộp vào nền không lượng tử hóa;
# 5. thử các biến thể mà peft có sẵn: DoRA, IA³, tinh chỉnh tiền tố, PiSSA, LoRA+, và nhiều adapter trên một nền.
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
# ## Lớp LoRA từ đầu
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
# Với `rslora=True`, hệ số là $\alpha/\sqrt{r}$ thay cho $\alpha/r$ (chương {doc}`../book/07_rank_alpha` giải thích vì sao).

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
    """Logits of the prompt `ids`, on the CPU (a 4-bit model sits on the GPU when there is one)."""
    model.eval()
    return model(**{k: v.to(model.device) for k, v in ids.items()}).logits.cpu()


fresh = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                        task_type=TaskType.CAUSAL_LM))
assert torch.equal(logits_of(fresh), logits_of(base))
print("Adapter mới của peft: logit giống hệt mô hình gốc.")

# %% [markdown]
# ## Đếm tham số
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
# Cùng một ngân sách tham số có thể dùng theo hai cách: hạng 64 cho riêng `q_proj`, `v_proj`, hoặc hạng 8 cho cả 7 lớp
# (hai ô của bảng trên bằng nhau). Chưa bài báo nào được trích trong chương so đúng hai cách này. Bằng chứng cùng ngân
# sách là Bảng 5 của bài báo LoRA (Hu và cộng sự, 2021), chỉ trong các ma trận attention của GPT-3: chia ngân sách cho
# nhiều loại ma trận ở hạng thấp tốt bằng hoặc hơn dồn vào một loại ở hạng cao. Bài báo QLoRA so "mọi lớp tuyến tính"
# với "chỉ $W_q$, $W_v$" ở siêu tham số mặc định của nó, không giữ cùng số tham số.
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
# ## Các trường của `LoraConfig`
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
# ## QLoRA: huấn luyện adapter trên nền 4-bit
#
# Nạp mô hình tiny ở dạng 4-bit (NF4 với lượng tử hóa kép, cấu hình của khóa học): mỗi lớp tuyến tính giờ là một
# `Linear4bit` đóng băng, trọng số là các byte `uint8`, mỗi byte chứa hai mã 4-bit. bitsandbytes chạy NF4 được trên
# CPU, nên ta huấn luyện QLoRA thật, vài bước, bằng `build_trainer` (câu lệnh huấn luyện duy nhất của khóa học), với
# chuỗi ngắn để notebook chạy nhanh. `build_trainer` gắn LoRA theo profile (mọi lớp tuyến tính) và giữ adapter ở fp32.

# %%
from course_utils.data import load_split
from course_utils.train import build_trainer

work = Path(tempfile.mkdtemp(prefix="notebook06-"))
quick = profile.replace(max_length=96, per_device_train_batch_size=4, gradient_checkpointing=False, max_steps=8,
                        warmup_steps=1)
base4, _ = load_model_and_tokenizer(quick, quantize=True)  # nền NF4, chưa có adapter
bytes_base4 = base4.get_memory_footprint()
trainer = build_trainer(base4, tokenizer, load_split("train"), load_split("validation")[:16], quick, work / "run",
                        eval_strategy="no", eval_on_start=False, save_strategy="no", disable_tqdm=True,
                        logging_steps=4)
trainer.train()
adapter_dir = work / "adapter"
trainer.model.save_pretrained(adapter_dir)

n_lora = count_lora_params(base.config, quick.lora_r, quick.lora_target_modules)
size = (adapter_dir / "adapter_model.safetensors").stat().st_size
print(f"Adapter: {n_lora:,} tham số fp32 = {4 * n_lora:,} byte; tệp adapter_model.safetensors: {size:,} byte")

# %% [markdown]
# Mỗi lớp tuyến tính là một `Linear4bit` đóng băng kèm `lora_A`, `lora_B` ở fp32. Gradient đi **qua** lớp 4-bit (để
# tới các adapter ở lớp trước) nhưng không có gradient nào cho $W$:

# %%
trained = trainer.model  # PeftModel: nền 4-bit + adapter vừa huấn luyện
down = trained.base_model.model.model.layers[0].mlp.down_proj
print(type(down.base_layer).__name__, down.base_layer.weight.dtype, tuple(down.base_layer.weight.shape),
      "| lora_A:", down.lora_A["default"].weight.dtype, "| lora_B:", down.lora_B["default"].weight.dtype)

batch = tokenizer(["Tinh chỉnh mô hình bằng QLoRA trên GPU T4."], return_tensors="pt")
trained.train()
batch = batch.to(trained.device)
trained(**batch, labels=batch["input_ids"]).loss.backward()
with_grad = {n.split(".")[-3] for n, p in trained.named_parameters() if p.grad is not None}
print("Tham số có gradient:", sorted(with_grad))
print("W 4-bit cần gradient?", down.base_layer.weight.requires_grad)
assert with_grad == {"lora_A", "lora_B"} and down.lora_A["default"].weight.dtype == torch.float32
trained.zero_grad(set_to_none=True)

# %% [markdown]
# Từ đây ta dùng adapter đã lưu, như sau khi huấn luyện xong thật: nạp lại nền 4-bit rồi
# `PeftModel.from_pretrained(nen, thu_muc_adapter)`. Để so các cách dùng adapter, ta đo **loss kiểm định** trên đúng
# các batch mà trainer dùng để đánh giá (16 bản ghi của tập kiểm định, loss chỉ tính trên câu trả lời):

# %%
from peft import PeftModel

qlora = PeftModel.from_pretrained(load_model_and_tokenizer(profile, quantize=True)[0], adapter_dir)
down = qlora.base_model.model.model.layers[0].mlp.down_proj
eval_batches = [{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
                for batch in trainer.get_eval_dataloader()]


@torch.no_grad()
def val_loss(model):
    """Token-weighted mean loss on the answer tokens of eval_batches."""
    model.eval()
    total, count = 0.0, 0
    for batch in eval_batches:
        n = int((batch["labels"][:, 1:] != -100).sum())
        total += model(**{k: v.to(model.device) for k, v in batch.items()}).loss.item() * n
        count += n
    return total / count


losses = {"QLoRA: nền 4-bit + adapter": val_loss(qlora)}
with qlora.disable_adapter():
    losses["nền 4-bit, không adapter"] = val_loss(qlora)
for name, value in losses.items():
    print(f"{name:<30} {value:.4f}")
assert losses["QLoRA: nền 4-bit + adapter"] < losses["nền 4-bit, không adapter"]  # huấn luyện có tác dụng

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
losses["gộp vào nền 4-bit"] = val_loss(merged4)
print(f"Loss kiểm định: gộp vào nền 4-bit {losses['gộp vào nền 4-bit']:.4f}, "
      f"adapter để riêng {losses['QLoRA: nền 4-bit + adapter']:.4f}")
assert lost > 0.5 and losses["gộp vào nền 4-bit"] > losses["QLoRA: nền 4-bit + adapter"]

# %% [markdown]
# Với peft 0.21.2, gộp vào nền 4-bit **giải lượng tử hóa** từng ma trận, cộng $\Delta W$, rồi **lượng tử hóa lại**
# về NF4: lớp vẫn là `Linear4bit`, bộ nhớ không tăng, nhưng $\Delta W$ thường nhỏ hơn khoảng cách giữa hai mức NF4
# nên bị làm tròn mất phần lớn. Mô hình sau khi gộp không còn là mô hình bạn đã huấn luyện và đánh giá: trên mô hình
# tiny, loss kiểm định của nó tệ hơn mô hình để adapter riêng.
#
# ### Gộp vào nền không lượng tử hóa
#
# Nạp mô hình nền **không** lượng tử hóa (fp16 trên T4; ở đây fp32 vì chạy trên CPU), gắn adapter, gộp, rồi lưu mô
# hình đã gộp. Lớp sau khi gộp là `nn.Linear` thường, và đầu ra khớp mô hình trước khi gộp tới mức làm tròn. Nhưng
# adapter được huấn luyện cùng $\mathrm{NF4}(W)$, giờ lại đi với $W$: mô hình gộp là một mô hình **khác** mô hình QLoRA
# đã đánh giá. Ta đo loss kiểm định của nó, và của chính nền fp32 khi chưa có adapter:

# %%
lora32 = PeftModel.from_pretrained(copy.deepcopy(base), adapter_dir)  # base: mô hình tiny fp32, chưa bị sửa
with lora32.disable_adapter():
    losses["nền fp32, không adapter"] = val_loss(lora32)
unmerged32 = logits_of(lora32)
merged32 = lora32.merge_and_unload()
losses["gộp vào nền fp32"] = val_loss(merged32)
print("Sau khi gộp:", type(merged32.model.layers[0].mlp.down_proj).__name__)
print(f"Gộp vào nền fp32, so với chưa gộp:    {(logits_of(merged32) - unmerged32).abs().max().item():.1e}")
print(f"Gộp vào nền fp32, so với mô hình QLoRA: {(logits_of(merged32) - reference).abs().max().item():.3f}")
print()
for name, value in losses.items():
    print(f"loss kiểm định  {name:<30} {value:.4f}")

gain = losses["nền 4-bit, không adapter"] - losses["QLoRA: nền 4-bit + adapter"]  # phần huấn luyện mang lại
shift = losses["gộp vào nền fp32"] - losses["QLoRA: nền 4-bit + adapter"]  # gộp vào W thay cho NF4(W)
bases = losses["nền 4-bit, không adapter"] - losses["nền fp32, không adapter"]  # NF4(W) so với W, chưa có adapter
print(f"\nhuấn luyện: -{gain:.4f};  gộp vào nền fp32 thay vì dùng nền 4-bit: {shift:+.4f};  "
      f"hai nền khi chưa có adapter: {bases:+.4f}")
assert abs(shift) < 0.1 * gain and abs(shift) < abs(bases)

# %% [markdown]
# Trên mô hình tiny, ở lần chạy này: mô hình gộp vào nền fp32 có loss kiểm định gần như bằng mô hình QLoRA (ô trên in
# chiều của chênh lệch), chênh lệch nhỏ hơn nhiều so với phần mà huấn luyện mang lại, và nhỏ hơn cả chênh lệch giữa hai
# nền khi chưa có adapter: nền chính xác hơn không tự động làm mô hình gộp tốt lên tương ứng. Đó là một phép đo trên
# một mô hình tiny sau vài bước huấn luyện, không phải quy luật cho mô hình 7B; chiều và độ lớn của chênh lệch có thể
# khác. Vì vậy, sau khi gộp, **hãy đánh giá lại** trên đúng tập kiểm định đã dùng.
#
# Muốn có **đúng** mô hình đã đánh giá ở dạng không lượng tử hóa thì giải lượng tử hóa nền 4-bit trước (`dequantize()`
# của transformers) rồi mới gộp:

# %%
base4b, _ = load_model_and_tokenizer(profile, quantize=True)
exact = PeftModel.from_pretrained(base4b.dequantize(), adapter_dir).merge_and_unload()
print(f"Giải lượng tử hóa rồi gộp, so với mô hình QLoRA: {(logits_of(exact) - reference).abs().max().item():.1e}")
assert torch.allclose(logits_of(exact), reference, atol=1e-4)

# %% [markdown]
# ## Bản đồ rộng hơn
#
# peft có sẵn nhiều biến thể của LoRA và nhiều cách khác để tinh chỉnh ít tham số. Ta thử vài cách trên mô hình tiny.
#
# ### Số tham số: LoRA, DoRA, IA³, tinh chỉnh tiền tố
#
# - **DoRA** (`use_dora=True`) tách mỗi ma trận thành độ lớn và hướng: $W' = m \odot \dfrac{W + sBA}{\lVert W + sBA
#   \rVert}$, chuẩn lấy theo từng hàng. LoRA học hướng, vector $m$ (khởi tạo bằng chuẩn các hàng của $W$) học độ lớn:
#   mỗi lớp thêm `out` tham số.
# - **IA³** (`IA3Config`) chỉ học một vector nhân vào đầu ra của mỗi lớp được chọn (với lớp FFN: nhân vào đầu vào).
# - **Tinh chỉnh tiền tố** (`PrefixTuningConfig`) học `num_virtual_tokens` vector key và value cho mỗi lớp attention.
#
# Số tham số huấn luyện được mà peft đếm, và công thức của từng cách:

# %%
from peft import IA3Config, PrefixTuningConfig
from peft.utils import (TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as IA3_FF,
                        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as IA3_TARGETS)

from course_utils.configs import head_dim

ia3_targets, ia3_ff = IA3_TARGETS[cfg.model_type], IA3_FF[cfg.model_type]
n_virtual = 16
methods = {
    "LoRA r=8, all-linear": (LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type=TaskType.CAUSAL_LM),
                             count_lora_params(cfg, 8, "all-linear")),
    "DoRA r=8, all-linear": (LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", use_dora=True,
                                        task_type=TaskType.CAUSAL_LM),
                             count_lora_params(cfg, 8, "all-linear") + sum(o for o, _ in shapes.values()) * L),
    f"IA³ ({', '.join(ia3_targets)})": (IA3Config(task_type=TaskType.CAUSAL_LM),
                                        sum(shapes[n][1] if n in ia3_ff else shapes[n][0] for n in ia3_targets) * L),
    f"tiền tố, {n_virtual} token ảo": (PrefixTuningConfig(num_virtual_tokens=n_virtual, task_type=TaskType.CAUSAL_LM),
                                       n_virtual * L * 2 * cfg.num_key_value_heads * head_dim(cfg)),
}
variants_out, peft_models = {}, {}
for name, (config, expected) in methods.items():
    model = peft_models[name] = get_peft_model(copy.deepcopy(base), config)
    trainable, _ = model.get_nb_trainable_parameters()
    variants_out[name] = torch.allclose(logits_of(model), logits_of(base), atol=1e-5)
    print(f"{name:<34} {trainable:>7,} tham số   công thức {expected:>7,}   "
          f"lúc mới tạo, đầu ra không đổi: {variants_out[name]}")
    assert trainable == expected
assert list(variants_out.values()) == [True, True, True, False]  # tiền tố ngẫu nhiên: đầu ra đã khác
qd = peft_models["DoRA r=8, all-linear"].base_model.model.model.layers[0].self_attn.q_proj
assert torch.allclose(qd.lora_magnitude_vector["default"].weight, qd.base_layer.weight.norm(dim=1))

# %% [markdown]
# DoRA, IA³ mới tạo không thay đổi đầu ra (vector $m$ bằng chuẩn các hàng của $W$; vector của IA³ bằng 1); tiền tố thì
# khởi tạo ngẫu nhiên nên đầu ra đã khác ngay từ đầu. Với IA³, peft dùng danh sách lớp mặc định theo kiến trúc (ô trên
# in ra cho Qwen2).
#
# ### PiSSA: khởi tạo từ các thành phần chính của $W$
#
# `init_lora_weights="pissa"` lấy $r$ thành phần kỳ dị lớn nhất của $W$ làm $B$, $A$, và thay $W$ bằng phần dư
# $W_{res} = W - sBA$. Đầu ra lúc đầu vì thế không đổi, dù $B \neq 0$:

# %%
pissa = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, init_lora_weights="pissa",
                                                       target_modules=["q_proj", "v_proj"], task_type=TaskType.CAUSAL_LM))
qp = pissa.base_model.model.model.layers[0].self_attn.q_proj
W_orig = base.model.layers[0].self_attn.q_proj.weight
W_res = qp.base_layer.weight
B_p, A_p = qp.lora_B["default"].weight, qp.lora_A["default"].weight
print(f"|B| = {B_p.norm():.3f} (LoRA thường: 0);  |W_res - W| / |W| = {((W_res - W_orig).norm() / W_orig.norm()):.3f}")
print(f"W_res + s·B·A so với W: sai khác lớn nhất {(W_res + qp.scaling['default'] * B_p @ A_p - W_orig).abs().max():.1e}")
print(f"logit so với mô hình gốc: sai khác lớn nhất {(logits_of(pissa) - logits_of(base)).abs().max():.1e}")
assert B_p.abs().max() > 0 and not torch.equal(W_res, W_orig)
assert torch.allclose(W_res + qp.scaling["default"] * B_p @ A_p, W_orig, atol=1e-5)
assert torch.allclose(logits_of(pissa), logits_of(base), atol=1e-4)

# %% [markdown]
# Vì trọng số nền đã bị sửa, một adapter PiSSA chỉ đúng với $W_{res}$ của nó; peft có
# `save_pretrained(..., path_initial_model_for_weight_conversion=...)` để đổi nó thành adapter LoRA thường cho $W$ gốc.
#
# ### LoRA+: tốc độ học riêng cho $B$
#
# `create_loraplus_optimizer` chia tham số thành nhóm $A$ (tốc độ học `lr`) và nhóm $B$ (tốc độ học
# `lr × loraplus_lr_ratio`); bộ tối ưu đó truyền cho trainer qua `optimizers=(optimizer, None)`:

# %%
from peft.optimizers import create_loraplus_optimizer

lp_model = peft_on_tiny()
optimizer = create_loraplus_optimizer(lp_model, torch.optim.AdamW, lr=2e-4, loraplus_lr_ratio=16)
names = {id(p): n for n, p in lp_model.named_parameters()}
for group in optimizer.param_groups:
    if group["params"]:
        kinds = sorted({names[id(p)].split(".")[-3] for p in group["params"]})
        print(f"lr = {group['lr']:.1e}: {len(group['params'])} tensor ({', '.join(kinds)})")
lr_of = {names[id(p)].split(".")[-3]: g["lr"] for g in optimizer.param_groups for p in g["params"]}
assert lr_of["lora_B"] == 16 * lr_of["lora_A"]

# %% [markdown]
# ### Nhiều adapter trên một mô hình nền
#
# Một mô hình nền, hai adapter: adapter QLoRA vừa huấn luyện, và một adapter thứ hai (ở đây tạo ngẫu nhiên cho nhanh).
# `load_adapter` nạp thêm, `set_adapter` chọn adapter đang chạy, `disable_adapter()` chạy mô hình nền.

# %%
other = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                       init_lora_weights=False, task_type=TaskType.CAUSAL_LM))
other.save_pretrained(work / "adapter_khac")

served = PeftModel.from_pretrained(copy.deepcopy(base), adapter_dir, adapter_name="qlora")
served.load_adapter(work / "adapter_khac", adapter_name="khac")
outputs = {}
for name in ("qlora", "khac"):
    served.set_adapter(name)
    outputs[name] = logits_of(served)
    print(f"adapter đang chạy: {served.active_adapter}")
with served.disable_adapter():
    outputs["nền"] = logits_of(served)
assert torch.allclose(outputs["qlora"], unmerged32, atol=1e-5)  # đúng mô hình "nền fp32 + adapter" ở trên
assert not torch.allclose(outputs["qlora"], outputs["khac"]) and torch.equal(outputs["nền"], logits_of(base))
print("Hai adapter cho hai đầu ra khác nhau trên cùng một mô hình nền; tắt adapter thì về đúng mô hình nền.")

import shutil

shutil.rmtree(work, ignore_errors=True)  # thư mục tạm của các adapter: không cần nữa

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-1
# ```
# **Tham số LoRA của một lớp.** Lớp `gate_proj` của Qwen2.5-7B có kích thước `(out, in)` = `(18944, 3584)`. Với LoRA
# hạng $r = 16$, lớp này (trong **một** lớp decoder) có bao nhiêu tham số huấn luyện được? Gán vào `gate_params`.

# %%
from course_utils.exercises.lora import check_gate_proj_params

gate_params = ...  # thay ... bằng câu trả lời của bạn
check_gate_proj_params(gate_params);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-1
# :class: dropdown
# ```

# %%
out_f, in_f = linear_shapes(qwen)["gate_proj"]
gate_params = 16 * (in_f + out_f)  # A: r·in, B: out·r
assert check_gate_proj_params(gate_params)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-2
# ```
# **Đầu ra của LoRA, không gộp.** Cho lớp `layer` dưới đây (một `LoRALinear` có $B \neq 0$) và đầu vào `x`. **Không
# gọi** `layer(x)`: hãy tính đầu ra từ `layer.base.weight`, `layer.base.bias`, `layer.lora_A`, `layer.lora_B` và
# `layer.scaling`, theo cách không gộp (không dựng ma trận `(out, in)` của $\Delta W$). Gán vào `y_lora`.

# %%
from course_utils.exercises.lora import check_lora_output, make_layer

layer, x = make_layer()
y_lora = ...  # thay ... bằng câu trả lời của bạn
check_lora_output(y_lora, layer, x);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-2
# :class: dropdown
# ```

# %%
with torch.no_grad():
    y_lora = x @ layer.base.weight.T + layer.base.bias + layer.scaling * (x @ layer.lora_A.T) @ layer.lora_B.T
assert check_lora_output(y_lora, layer, x)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-3
# ```
# **Gộp vào nền 4-bit.** Với peft 0.21.2 và mô hình nền 4-bit của bitsandbytes, những câu nào đúng về
# `merge_and_unload()`? Gán vào `merge_facts` một tập hợp các chữ cái, ví dụ `{"a", "c"}`.
#
# - a. Các lớp sau khi gộp là `nn.Linear` 16-bit, nên mô hình chiếm gấp khoảng bốn lần bộ nhớ.
# - b. Các lớp sau khi gộp vẫn là `Linear4bit`: $W + \Delta W$ được lượng tử hóa lại về NF4.
# - c. Đầu ra sau khi gộp giống hệt đầu ra khi để adapter riêng.
# - d. Phần lớn $\Delta W$ có thể bị làm tròn mất, vì nó nhỏ so với khoảng cách giữa các mức NF4.

# %%
from course_utils.exercises.lora import check_merge_4bit

merge_facts = ...  # thay ... bằng câu trả lời của bạn
check_merge_4bit(merge_facts);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-3
# :class: dropdown
# ```

# %%
merge_facts = {"b", "d"}
assert check_merge_4bit(merge_facts)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-4
# ```
# **LoRA chỉ ở FFN của hai lớp cuối.** Thí nghiệm nhỏ: trên mô hình tiny, gắn LoRA hạng 4 vào ba lớp của FFN
# (`gate_proj`, `up_proj`, `down_proj`) nhưng chỉ ở hai lớp decoder cuối (`layers_to_transform=[2, 3]`). Tính bằng tay số
# tham số huấn luyện được (dùng `linear_shapes(base.config)`), gán vào `ffn_params`; rồi kiểm tra lại bằng
# `get_nb_trainable_parameters()` của peft.

# %%
from course_utils.exercises.lora import check_ffn_last_layers

ffn_params = ...  # thay ... bằng câu trả lời của bạn
check_ffn_last_layers(ffn_params);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-4
# :class: dropdown
# ```

# %%
ffn = ("gate_proj", "up_proj", "down_proj")
ffn_params = 2 * sum(4 * (linear_shapes(base.config)[n][0] + linear_shapes(base.config)[n][1]) for n in ffn)
model = peft_on_tiny(r=4, target_modules=list(ffn), layers_to_transform=[2, 3])
print("peft đếm:", model.get_nb_trainable_parameters()[0], "| tính tay:", ffn_params)
assert check_ffn_last_layers(ffn_params)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-06-5
# ```
# **DoRA thêm bao nhiêu tham số?** So với LoRA cùng hạng trên mọi lớp tuyến tính của Qwen2.5-7B, DoRA thêm bao nhiêu
# tham số huấn luyện được cho cả mô hình? Dùng `linear_shapes(qwen)` và số lớp decoder `qwen.num_hidden_layers`. Gán vào
# `dora_extra`.

# %%
from course_utils.exercises.lora import check_dora_extra

dora_extra = ...  # thay ... bằng câu trả lời của bạn
check_dora_extra(dora_extra);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-06-5
# :class: dropdown
# ```

# %%
# vector độ lớn m: một số cho mỗi đầu ra (mỗi hàng của W), ở mỗi lớp tuyến tính của mỗi lớp decoder
dora_extra = sum(out for out, _ in linear_shapes(qwen).values()) * qwen.num_hidden_layers
assert check_dora_extra(dora_extra)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Mọi con số của chương, tính lại
#
# Bảng dưới là mọi con số mà chương này và notebook này viết ra, tính lại bằng chính các hàm của khóa học
# (`course_utils.figures`); một bài kiểm thử bảo đảm trang không có con số nào khác.

# %%
from course_utils.figures import show_figures

show_figures("06_lora_qlora")
