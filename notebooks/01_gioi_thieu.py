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
# # Notebook — Giới thiệu: LLM, tinh chỉnh và hệ sinh thái Hugging Face
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/01_gioi_thieu.ipynb)
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
# Notebook này đi cùng trang lý thuyết của chương. Nó không huấn luyện gì cả; nó làm những việc mà trang chỉ kể:
#
# 1. điểm danh các thư viện Hugging Face mà khóa học dùng;
# 2. dữ liệu: chuyển một bản ghi giữa Alpaca và ShareGPT, xem mô hình thực sự đọc gì, kiểm tra rằng ba tập dữ liệu
#    không lọt vào nhau, xem mặt nạ của loss có chứa token kết thúc lượt, và xem các mẫu ghép (packing) có nhìn
#    thấy nhau không;
# 3. đếm tham số của Qwen2.5-7B chỉ từ file cấu hình, rồi đối chiếu với transformers và peft;
# 4. tính bộ nhớ cần để huấn luyện mô hình đó theo ba cách: tinh chỉnh toàn bộ, LoRA và QLoRA.
#
# Mọi phép tính về mô hình 7B ở đây chỉ dùng cấu hình (`config.json`), không tải trọng số, nên chạy
# được trên CPU. Mọi phép thử trên mô hình thật dùng mô hình tiny.

# %% [markdown]
# ## Các thư viện
#
# Mỗi thư viện lo một việc; khóa học dùng cả bảy.

# %%
import importlib

roles = {
    "transformers": "kiến trúc mô hình, from_pretrained, Trainer, chat template",
    "datasets": "bảng dữ liệu (Dataset), đọc JSON/CSV/Parquet, map, chia tập",
    "tokenizers": "bộ tách từ viết bằng Rust, dùng bên dưới các tokenizer 'Fast'",
    "accelerate": "đặt mô hình lên thiết bị, mixed precision, huấn luyện nhiều GPU",
    "peft": "LoRA và các phương pháp tinh chỉnh tiết kiệm tham số khác",
    "trl": "SFTTrainer (tinh chỉnh có giám sát), DPO, GRPO...",
    "bitsandbytes": "lượng tử hóa 8-bit và 4-bit (NF4), bộ tối ưu 8-bit",
}
for name, role in roles.items():
    module = importlib.import_module(name)
    print(f"{name:<13} {module.__version__:<9} {role}")

# %% [markdown]
# ## Dữ liệu
#
# ### Alpaca, ShareGPT và thứ mô hình thực sự đọc
#
# Bộ dữ liệu của khóa học được lưu ở định dạng **Alpaca**: mỗi bản ghi có `instruction`, `input` (có thể rỗng)
# và `output`.

# %%
from course_utils.data import SPLITS, alpaca_to_messages, alpaca_to_sharegpt, load_split, sharegpt_to_alpaca

splits = {split: load_split(split) for split in SPLITS}
train = splits["train"]
print({split: len(records) for split, records in splits.items()})
print("có input:", {split: sum(bool(r["input"]) for r in records) for split, records in splits.items()})
record = next(r for r in train if r["input"])  # một bản ghi có cả input
record

# %% [markdown]
# Định dạng **ShareGPT** là một danh sách lượt hội thoại; mỗi lượt có `from` (`system`, `human`, `gpt`)
# và `value`. Khi chuyển từ Alpaca, `input` được nối vào sau `instruction` thành lượt của người dùng.

# %%
sharegpt = alpaca_to_sharegpt(record)
sharegpt

# %% [markdown]
# Chiều ngược lại chỉ làm được với hội thoại **một lượt**: Alpaca không có chỗ cho lượt thứ hai.
# Sau một vòng Alpaca → ShareGPT → Alpaca, `instruction` và `input` đã bị gộp làm một, nên bản ghi
# không còn y hệt ban đầu dù nội dung vẫn đủ:

# %%
back = sharegpt_to_alpaca(sharegpt)
print(back["input"] == "", back["instruction"] == record["instruction"] + "\n\n" + record["input"])
assert back["output"] == record["output"]

# %% [markdown]
# Mô hình không đọc JSON. Trước khi huấn luyện, bản ghi được đổi thành danh sách tin nhắn
# (`role`, `content`) rồi ghép thành **một chuỗi** theo *chat template* của mô hình. Ở đây là ChatML,
# mẫu của Qwen2.5, mà tokenizer của mô hình tiny dùng lại. (Lần đầu dùng trên một máy mới, `course_utils`
# dựng mô hình tiny, mất khoảng một phút.)

# %%
from course_utils.models import load_tokenizer
from course_utils.profiles import get_profile

tiny = get_profile("tiny")
tokenizer = load_tokenizer(tiny)
messages = alpaca_to_messages(record)  # lượt system là SYSTEM_PROMPT của khóa học
text = tokenizer.apply_chat_template(messages, tokenize=False)
print(text)

# %%
ids = tokenizer.apply_chat_template(messages)["input_ids"]
print(f"{len(ids)} token. 16 token đầu: {[tokenizer.decode([i]) for i in ids[:16]]}")
assert tokenizer.decode(ids) == text  # chuỗi và dãy token là một, chỉ khác cách nhìn

# %% [markdown]
# Bộ tách từ của mô hình tiny được học trên một đoạn văn tiếng Việt ngắn: nhiều âm tiết tiếng Việt (kèm dấu
# cách đứng trước) là một token, còn từ tiếng Anh `system` bị cắt vụn. Đó cũng là lý do Vistral mở rộng bộ tách từ
# của Mistral bằng token tiếng Việt: cùng một câu, ít token hơn thì chuỗi ngắn hơn, huấn luyện và sinh nhanh hơn.

# %% [markdown]
# ### Ba tập dữ liệu không lọt vào nhau
#
# Một câu hỏi của tập kiểm định mà đã có trong tập huấn luyện thì loss kiểm định đo trí nhớ, không đo khả năng
# tổng quát hóa. Ta so từng cặp tập: cùng `instruction`, cùng `output`, hay cùng cả hai sau khi chuẩn hóa (NFC,
# chữ thường, gộp khoảng trắng) để bắt cả những bản gần trùng chỉ khác hoa thường hay dấu cách.

# %%
import re
import unicodedata
from itertools import combinations


def normalized(text):
    """NFC, lower case, one space between words: two texts that differ only in that compare equal."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text).lower()).strip()


keys = {
    "instruction": lambda r: normalized(r["instruction"]),
    "output": lambda r: normalized(r["output"]),
    "instruction + input": lambda r: normalized(r["instruction"] + " " + r["input"]),
}
for a, b in combinations(SPLITS, 2):
    shared = {name: len({key(r) for r in splits[a]} & {key(r) for r in splits[b]}) for name, key in keys.items()}
    print(f"{a} ∩ {b}: {shared}")
    assert not any(shared.values()), f"có bản ghi lọt giữa {a} và {b}"

# %% [markdown]
# Không có bản ghi nào chung giữa các tập. Phép kiểm tra này chỉ bắt được bản trùng hoặc gần trùng về chữ; hai câu
# hỏi cùng ý nhưng diễn đạt khác nhau thì nó không thấy.
#
# ### Token kết thúc lượt nằm trong mặt nạ
#
# `assistant_mask` trả về dãy token của một hội thoại và mặt nạ của loss: 1 ở những token mà loss tính đến (câu trả
# lời của trợ lý), 0 ở chỗ còn lại. Ta in các token có mặt nạ 1 ở cuối câu trả lời.

# %%
from course_utils.templates import assistant_mask

ids, mask = assistant_mask(tokenizer, messages)
trained = [tokenizer.decode([i]) for i, m in zip(ids, mask) if m]
print(f"{sum(mask)} trên {len(ids)} token nằm trong loss; 6 token cuối trong loss: {trained[-6:]}")
im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
last_answer_token = max(i for i, m in enumerate(mask) if m)
assert ids[last_answer_token] == im_end  # token kết thúc lượt là token cuối cùng mà loss dạy
assert tokenizer.decode([i for i, m in zip(ids, mask) if m]) == record["output"] + "<|im_end|>"

# %% [markdown]
# Mặt nạ gồm đúng câu trả lời cộng `<|im_end|>`: mô hình học cả việc *dừng*. Phần hệ thống, câu hỏi và tiêu đề
# `<|im_start|>assistant` nằm ngoài loss.
#
# ### Packing: các mẫu ghép có nhìn thấy nhau không?
#
# Với `packing_strategy="bfd"`, collator của TRL nối các mẫu thành một hàng, đếm lại `position_ids` từ 0 ở đầu mỗi
# mẫu và không gửi `attention_mask`. Ta dùng đúng collator ấy với hai mẫu, rồi so logits của mẫu thứ hai khi đứng
# một mình và khi nằm sau mẫu thứ nhất, trên mô hình tiny với attention SDPA (cái mà một T4 dùng).

# %%
import torch
from transformers import AutoModelForCausalLM
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from course_utils.models import model_path

tiny_dir = model_path(tiny)
tiny_sdpa = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
first, second = (tokenizer(r["output"], add_special_tokens=False)["input_ids"][:20] for r in train[:2])

collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
batch = collator([{"input_ids": first}, {"input_ids": second}])
print("collator trả về:", sorted(batch), "\nposition_ids:", batch["position_ids"].tolist())

with torch.no_grad():
    alone = tiny_sdpa(input_ids=torch.tensor([second]), use_cache=False).logits[0]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    packed = tiny_sdpa(**inputs, use_cache=False).logits[0, len(first):]
    ones = torch.ones_like(batch["input_ids"])  # một attention_mask toàn số 1, như khi ghép kiểu "wrapped"
    mixed = tiny_sdpa(input_ids=batch["input_ids"], attention_mask=ones, use_cache=False).logits[0, len(first):]
packed_gap, mixed_gap = (packed - alone).abs().max().item(), (mixed - alone).abs().max().item()
print(f"sai khác lớn nhất so với khi đứng một mình: ghép kiểu bfd {packed_gap:.1e}, có attention_mask toàn 1 {mixed_gap:.2f}")
assert "attention_mask" not in batch and packed_gap < 1e-4 and mixed_gap > 0.1

# %% [markdown]
# Với các phiên bản mà khóa học ghim, SDPA giữ các mẫu ghép tách nhau nhờ `position_ids`: transformers dựng một mặt
# nạ khối chéo từ chúng. Khi lời gọi có `attention_mask` toàn số 1, mẫu thứ hai nhìn thấy mẫu thứ nhất và logits của
# nó đổi hẳn. Khóa học vẫn đặt `packing=False`: mỗi mẫu một hàng, không phụ thuộc vào chi tiết ấy.

# %% [markdown]
# ## Qwen2.5-7B có bao nhiêu tham số?
#
# Ghi chú gốc của khóa học chép cấu hình Qwen 7B là hidden 4096, 32 head. Đó là số của Qwen1/Qwen1.5-7B,
# Llama-2-7B và Mistral-7B, không phải của Qwen2.5-7B. `qwen25_7b_config()` chứa đúng các giá trị trong
# `config.json` của `Qwen/Qwen2.5-7B-Instruct` (lưu sẵn trong `course_utils` để không phải tải):

# %%
from course_utils.configs import qwen25_7b_config

cfg = qwen25_7b_config()
for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "vocab_size", "tie_word_embeddings"):
    print(f"{key:<22} {getattr(cfg, key)}")

# %% [markdown]
# Ta đếm tham số từng khối. Mỗi lớp decoder có attention (bốn phép chiếu `q_proj`, `k_proj`, `v_proj`,
# `o_proj`) và MLP (ba phép chiếu `gate_proj`, `up_proj`, `down_proj`), cộng hai lớp RMSNorm.
# Qwen2.5-7B dùng *grouped-query attention*: 28 head cho query nhưng chỉ 4 head cho key và value,
# nên `k_proj` và `v_proj` hẹp hơn `q_proj` bảy lần. Riêng Qwen2 có bias ở `q_proj`, `k_proj`, `v_proj`.

# %%
h, n_layers, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
head_dim = h // cfg.num_attention_heads  # 128
q_out = cfg.num_attention_heads * head_dim  # 3584
kv_out = cfg.num_key_value_heads * head_dim  # 512

attention = (h * q_out + q_out) + 2 * (h * kv_out + kv_out) + q_out * h  # q, k, v có bias; o thì không
mlp = 3 * h * cfg.intermediate_size
norms = 2 * h  # RMSNorm trước attention và trước MLP
per_layer = attention + mlp + norms

embed = vocab * h
lm_head = 0 if cfg.tie_word_embeddings else vocab * h  # Qwen2.5-7B không dùng chung embedding và lm_head
total = embed + n_layers * per_layer + h + lm_head  # + h: RMSNorm cuối
print(f"head_dim={head_dim}, q_proj ra {q_out}, k_proj/v_proj ra {kv_out}")
print(f"Một lớp decoder: {per_layer:,} tham số (MLP chiếm {mlp / per_layer:.0%})")
print(f"Tổng: {total:,} tham số; bỏ embedding và lm_head: {total - embed - lm_head:,}")

# %% [markdown]
# Hàm `parameter_counts` của `course_utils` làm đúng phép đếm đó, chia theo nhóm:

# %%
from course_utils.configs import linear_shapes, parameter_counts
from course_utils.display import show_source

show_source(parameter_counts)

# %%
counts = parameter_counts(cfg)
print({k: f"{v:,}" for k, v in counts.items()})
assert counts["total"] == total

# %% [markdown]
# Đối chiếu với thư viện thật: dựng `Qwen2ForCausalLM` của transformers trên thiết bị `meta`
# (chỉ có hình dạng tensor, không cấp phát bộ nhớ) rồi đếm.

# %%
import torch
from transformers import Qwen2ForCausalLM

with torch.device("meta"):
    qwen_meta = Qwen2ForCausalLM(cfg)
n_real = sum(p.numel() for p in qwen_meta.parameters())
print(f"transformers đếm được {n_real:,} tham số")
assert n_real == counts["total"]

# %% [markdown]
# LoRA thêm hai ma trận nhỏ A (r × in) và B (out × r) cạnh mỗi lớp tuyến tính, tức r·(in + out)
# tham số mỗi lớp. Với r = 16 trên cả bảy lớp tuyến tính của mọi lớp decoder (cấu hình `t4` của khóa học):

# %%
from course_utils.configs import count_lora_params

t4 = get_profile("t4")
shapes = linear_shapes(cfg)
n_lora = n_layers * sum(t4.lora_r * (out_f + in_f) for out_f, in_f in shapes.values())
print(f"LoRA r={t4.lora_r}: {n_lora:,} tham số huấn luyện, {n_lora / total:.2%} của mô hình nền")
assert n_lora == count_lora_params(cfg, t4.lora_r, "all-linear")

# %% [markdown]
# Và đối chiếu với peft: gắn LoRA thật vào mô hình `meta` ở trên.

# %%
from peft import get_peft_model

from course_utils.train import lora_config

peft_model = get_peft_model(qwen_meta, lora_config(t4))
trainable, _ = peft_model.get_nb_trainable_parameters()
print(f"peft: {trainable:,} tham số huấn luyện")
assert trainable == n_lora
del peft_model, qwen_meta

# %% [markdown]
# ## Bộ nhớ khi huấn luyện
#
# Trong một bước huấn luyện, bộ nhớ GPU chứa năm thứ:
#
# - **trọng số** của mô hình;
# - **gradient** của những tham số được huấn luyện;
# - **trạng thái bộ tối ưu** (optimizer state): AdamW giữ hai con số (mô-men bậc một và bậc hai) cho mỗi tham số được huấn luyện;
# - **activation**: các giá trị trung gian của lượt truyền xuôi mà lượt lan truyền ngược cần dùng lại;
# - **bộ nhớ tạm**: logits, hàm mất mát, các tensor sống trong chốc lát (xem phần logits bên dưới).
#
# Ba phần đầu tỉ lệ với số tham số; hai phần sau tỉ lệ với số token trong batch.
#
# ### Trọng số: 2 byte, 1 byte hay nửa byte
#
# Ở 16 bit mỗi tham số chiếm 2 byte. `weight_memory` tính cho ba mức: 16 bit, 8 bit (LLM.int8) và
# 4 bit (NF4). Ở 8 và 4 bit chỉ các lớp tuyến tính của decoder được lượng tử hóa; embedding, `lm_head`
# và các lớp norm vẫn ở 16 bit, đúng như bitsandbytes làm trong transformers.

# %%
from course_utils.memory import GIB, bits_per_param_4bit, weight_memory

for bits in (16, 8, 4):
    w = weight_memory(cfg, bits=bits)
    print(f"{bits:>2} bit: {w['total'] / GIB:6.2f} GiB  (lớp tuyến tính {w['linear'] / GIB:5.2f} GiB, "
          f"embedding + lm_head {(w['embed_tokens'] + w['lm_head']) / GIB:4.2f} GiB)")
print(f"NF4 với lượng tử hóa kép: {bits_per_param_4bit(True):.3f} bit mỗi tham số (4 bit + hằng số của khối)")

# %% [markdown]
# Embedding và `lm_head` của Qwen2.5-7B lớn (từ vựng 152.064 token, không dùng chung trọng số) và không
# được lượng tử hóa, nên ở 4 bit chúng chiếm 39% bộ nhớ trọng số. Chương 5 giải thích NF4 và lượng tử hóa kép.
#
# Đối chiếu với thư viện: nạp mô hình tiny ở fp16 rồi cộng số byte của các tham số.

# %%
from transformers import AutoConfig

tiny_cfg = AutoConfig.from_pretrained(tiny_dir)
tiny_fp16 = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float16)
param_bytes = sum(p.numel() * p.element_size() for p in tiny_fp16.parameters())
print(f"Mô hình tiny ở fp16: {param_bytes:,} byte tham số; weight_memory: {weight_memory(tiny_cfg, 16)['total']:,}")
assert param_bytes == weight_memory(tiny_cfg, 16)["total"]

# %% [markdown]
# ### Trạng thái bộ tối ưu: 8 byte hay 2 byte mỗi tham số
#
# AdamW của PyTorch giữ `exp_avg` và `exp_avg_sq` ở fp32: 8 byte mỗi tham số. Bộ tối ưu 8-bit của
# bitsandbytes lưu hai trạng thái đó ở 8 bit, lượng tử hóa theo khối 256 giá trị: 2 byte, cộng một hằng
# số fp32 (`absmax`) mỗi khối cho mỗi trạng thái. Đo trực tiếp trên một lớp 4096 × 4096 sau một bước:

# %%
import bitsandbytes as bnb

device = "cuda" if torch.cuda.is_available() else "cpu"


def state_bytes(optimizer_class):
    """Bytes of each optimizer state tensor, per parameter of a 4096 x 4096 layer, after one step."""
    layer = torch.nn.Linear(4096, 4096, bias=False, device=device)
    optimizer = optimizer_class(layer.parameters(), lr=1e-3)
    layer(torch.randn(2, 4096, device=device)).sum().backward()
    optimizer.step()
    n = layer.weight.numel()
    return {k: v.numel() * v.element_size() / n for k, v in optimizer.state[layer.weight].items() if torch.is_tensor(v)}


torch.manual_seed(0)
measured = {cls.__name__: state_bytes(cls) for cls in (torch.optim.AdamW, bnb.optim.AdamW8bit)}
for name, per_param in measured.items():
    print(f"{name:<10} {sum(per_param.values()):.4f} byte/tham số: {({k: round(v, 5) for k, v in per_param.items()})}")
assert round(sum(measured["AdamW"].values()), 3) == 8.0
assert round(sum(measured["AdamW8bit"].values()), 1) == 2.0

# %% [markdown]
# `step` và `qmap` (bảng 256 mức của lượng tử hóa) có kích thước cố định, không đáng kể. Phần `absmax` thì tỉ lệ
# với số tham số; so phép đo với cách tính của khóa học (một số fp32 cho mỗi khối 256 giá trị, mỗi trạng thái):

# %%
from course_utils.figures.ch01 import absmax_share

eight = measured["AdamW8bit"]
absmax = sum(v for k, v in eight.items() if k.startswith("absmax"))
states = absmax + sum(v for k, v in eight.items() if k.startswith("state"))
print(f"absmax: {absmax / states:.2%} của hai trạng thái (đo); {absmax_share():.2%} (tính)")
assert abs(absmax / states - absmax_share()) < 1e-4

# %% [markdown]
# `course_utils` tính trạng thái 8-bit là đúng 2 byte mỗi tham số, bỏ qua phần `absmax`: khoảng 1,5% của trạng thái.

# %% [markdown]
# ### Tinh chỉnh toàn bộ: 16 byte mỗi tham số, trước cả activation
#
# Cách tính kinh điển của huấn luyện mixed precision với Adam (bài báo ZeRO): trọng số fp16 (2 byte), bản
# sao fp32 để cập nhật (4 byte), gradient fp16 (2 byte), hai trạng thái Adam fp32 (8 byte).

# %%
bytes_per_param = {"trọng số fp16": 2, "bản sao fp32": 4, "gradient fp16": 2, "Adam m và v (fp32)": 8}
full_states = total * sum(bytes_per_param.values())
print(f"{sum(bytes_per_param.values())} byte × {total:,} tham số = {full_states / GIB:.2f} GiB")
print(f"Với bộ tối ưu 8-bit (2 byte thay cho 8): {total * (2 + 4 + 2 + 2) / GIB:.2f} GiB")

# %% [markdown]
# ### Ba cách huấn luyện, cùng một mô hình
#
# `estimate_training_memory` ghép đủ năm phần cho một bước huấn luyện với công thức cơ bản của profile `t4`
# (batch 2, `max_length` 1024, gradient checkpointing, AdamW 8-bit; chưa có kernel của Liger và offload
# activation mà chương thực hành QLoRA bật thêm). Activation là đầu vào của mỗi lớp cộng activation của một lớp
# được tính lại; khối logits chỉ được cộng phần vượt quá nó. Cách tính được kiểm bằng phép đo thật (xem chương thực
# hành QLoRA). Ngân sách 14,5 GiB là phần dùng
# được của một T4 16 GB; dòng "Cần" cộng thêm 5% cho bộ cấp phát bộ nhớ của PyTorch (mức dự phòng đo được, chương 9).

# %%
from course_utils.memory import estimate_training_memory

plain = t4.replace(use_liger_kernel=False, offload_activations=False)  # the plain recipe
plans = {m: estimate_training_memory(cfg, plain, method=m) for m in ("full", "lora", "qlora")}
for method, plan in plans.items():
    print(f"=== {method} ===")
    print(plan.table(), end="\n\n")

# %% [markdown]
# Đọc bảng:
#
# - **full**: bản sao fp32 và gradient đã vượt xa một T4, dù bộ tối ưu đã là 8-bit.
# - **lora**: gradient và trạng thái bộ tối ưu gần như biến mất (chỉ 40 triệu tham số LoRA được huấn
#   luyện), nhưng riêng trọng số 16-bit đã 14,19 GiB: không vừa T4 dù batch nhỏ đến đâu.
# - **qlora**: trọng số gốc ở 4 bit, phần còn lại như LoRA: vừa T4 với dư địa.

# %%
for method, plan in plans.items():
    print(f"{method:<6} tổng {plan.total / GIB:6.2f} GiB, cần {plan.needed_bytes / GIB:6.2f} GiB: "
          f"{'vừa' if plan.fits else 'không vừa'} ngân sách {t4.memory_budget_gib} GiB")
assert [p.fits for p in plans.values()] == [False, False, True]

# %% [markdown]
# ### Logits: điều TRL thực sự làm
#
# Một lượt truyền xuôi thông thường trả về logits cho mọi vị trí trên toàn bộ từ vựng, và hàm mất mát của
# transformers đổi chúng sang fp32. Với Qwen2.5-7B và profile `t4`, riêng tensor fp32 ấy đã là:

# %%
from course_utils.figures.ch01 import naive_logits_bytes

for batch_size in (1, t4.per_device_train_batch_size):
    print(f"batch {batch_size} × {t4.max_length} token × {cfg.vocab_size:,} × 4 byte = "
          f"{naive_logits_bytes(cfg, batch_size, t4.max_length) / 2**20:,.0f} MiB")

# %% [markdown]
# `SFTTrainer` của TRL không giữ tensor ấy. Nó gắn vào mô hình một đầu LM hợp nhất (`add_fused_lm_head`): khi được
# gọi với `fused_lm_head=True`, mô hình chiếu qua `lm_head` từng khối token một và chỉ trả về log-xác suất của token
# đúng ở mỗi vị trí. Thử trên mô hình tiny, với nhãn chỉ ở câu trả lời (ngoài mặt nạ là -100):

# %%
from trl.trainer.utils import add_fused_lm_head

fused = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
add_fused_lm_head(fused)
x = torch.tensor([ids])
labels = torch.tensor([[i if m else -100 for i, m in zip(ids, mask)]])
with torch.no_grad():
    plain = fused(input_ids=x, labels=labels)  # lượt truyền xuôi thông thường
    tiled = fused(input_ids=x, labels=labels, fused_lm_head=True)  # như SFTTrainer gọi
print(f"thông thường: logits {tuple(plain.logits.shape)}, loss {plain.loss:.4f}")
print(f"hợp nhất: các trường {list(tiled.keys())}, loss {tiled.loss:.4f}")
assert "logits" not in tiled and torch.allclose(plain.loss, tiled.loss, atol=1e-5)

# %% [markdown]
# Cùng một loss, nhưng không có tensor logits (batch, độ dài, từ vựng) nào được giữ. Trên GPU CUDA có Triton, TRL
# chỉ chiếu những vị trí có nhãn khác -100, nên bộ nhớ của phần này tăng theo số token của câu trả lời; dòng
# "Logits và hàm mất mát" của bảng trên là ước lượng của khóa học cho một khối như vậy.

# %% [markdown]
# ### Siêu tham số và bộ nhớ
#
# **Bộ tối ưu 8-bit.** Tiết kiệm bao nhiêu phụ thuộc vào số tham số được huấn luyện:

# %%
for method in ("full", "qlora"):
    fp32 = estimate_training_memory(cfg, t4.replace(optim="adamw_torch"), method=method).parts["optimizer"]
    int8 = plans[method].parts["optimizer"]
    print(f"{method:<6} AdamW fp32 {fp32 / GIB:6.2f} GiB → 8-bit {int8 / GIB:5.2f} GiB (bớt {(fp32 - int8) / GIB:.2f} GiB)")

# %% [markdown]
# **Độ dài ngữ cảnh.** Activation tăng theo số token trong batch (batch × `max_length`), còn trọng số
# thì không:

# %%
for length in (512, 1024, 2048, 4096):
    plan = estimate_training_memory(cfg, t4.replace(max_length=length), method="qlora")
    print(f"max_length {length:>4}: activation {plan.parts['activations'] / GIB:5.2f} GiB, "
          f"tổng {plan.total / GIB:5.2f} GiB, {'vừa' if plan.fits else 'không vừa'}")

# %% [markdown]
# **Tốc độ học.** Profile `t4` dùng `learning_rate` = 2e-4, giá trị mà các script huấn luyện của bài báo QLoRA
# dùng cho mô hình 7B và 13B (trang của chương ghi nguồn).
# Profile `tiny` dùng 2e-3: mô hình tiny và vài chục bước huấn luyện là một chế độ khác hẳn, đừng
# mang con số đó sang mô hình 7B.

# %%
for name in ("t4", "tiny"):
    p = get_profile(name)
    print(f"{name:<5} lr={p.learning_rate:g}, optim={p.optim}, max_length={p.max_length}, "
          f"batch={p.per_device_train_batch_size} × tích lũy {p.gradient_accumulation_steps}, r={p.lora_r}, alpha={p.lora_alpha}")

# %% [markdown]
# ## Bài tập

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-1
# ```
# **Ba nguồn tín hiệu học.** Ghép mỗi mô tả với cách tinh chỉnh: `"tự giám sát"`, `"có giám sát"` hay `"tăng cường"`.
#
# - (a) Huấn luyện tiếp Mistral-7B trên hàng tỉ token văn bản tiếng Việt thô, dự đoán token tiếp theo.
# - (b) Huấn luyện trên các cặp câu hỏi – câu trả lời mẫu của khóa học.
# - (c) Người chấm xếp hạng hai câu trả lời; mô hình được tối ưu để được chấm điểm cao hơn.
#
# Gán cho `ways` một từ điển `{"a": ..., "b": ..., "c": ...}` rồi chạy ô kiểm tra.

# %%
from course_utils.exercises.gioi_thieu import check_fine_tuning_ways

ways = ...  # thay ... bằng câu trả lời của bạn
check_fine_tuning_ways(ways);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-01-1
# :class: dropdown
# ```

# %%
ways = {"a": "tự giám sát", "b": "có giám sát", "c": "tăng cường"}
assert check_fine_tuning_ways(ways)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-2
# ```
# **Tham số của Vistral-7B-Chat.** Đếm số tham số của Vistral-7B-Chat từ `vistral_7b_config()` theo đúng cách đếm
# Qwen2.5-7B ở trên, không dùng `parameter_counts`, và gán kết quả cho `n_vistral`. Lưu ý: kiến trúc Mistral không
# có bias ở `q_proj`, `k_proj`, `v_proj`.

# %%
from course_utils.configs import vistral_7b_config
from course_utils.exercises.gioi_thieu import check_vistral_params

vcfg = vistral_7b_config()
n_vistral = ...  # thay ... bằng câu trả lời của bạn
check_vistral_params(n_vistral);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-01-2
# :class: dropdown
# ```

# %%
vh, vd = vcfg.hidden_size, vcfg.hidden_size // vcfg.num_attention_heads
v_q, v_kv = vcfg.num_attention_heads * vd, vcfg.num_key_value_heads * vd
v_layer = vh * v_q + 2 * vh * v_kv + v_q * vh + 3 * vh * vcfg.intermediate_size + 2 * vh
n_vistral = 2 * vcfg.vocab_size * vh + vcfg.num_hidden_layers * v_layer + vh
print(f"{n_vistral:,}")
assert check_vistral_params(n_vistral)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-3
# ```
# **Alpaca sang ShareGPT bằng tay.** Viết tay bản ghi ShareGPT (không có lượt system) tương ứng với bản ghi Alpaca
# `alpaca` dưới đây, gán cho `my_sharegpt`, rồi kiểm tra. Sau đó trả lời cho chính mình: vì sao một hội thoại
# ShareGPT ba lượt hỏi – đáp không chuyển được sang Alpaca?

# %%
from course_utils.exercises.gioi_thieu import check_sharegpt_record

alpaca = {"instruction": "Dịch sang tiếng Anh.", "input": "Tinh chỉnh", "output": "Fine-tuning"}
my_sharegpt = ...  # thay ... bằng câu trả lời của bạn
check_sharegpt_record(my_sharegpt, alpaca);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-01-3
# :class: dropdown
# ```

# %%
my_sharegpt = {"conversations": [
    {"from": "human", "value": "Dịch sang tiếng Anh.\n\nTinh chỉnh"},
    {"from": "gpt", "value": "Fine-tuning"},
]}
assert check_sharegpt_record(my_sharegpt, alpaca)

# %% [markdown]
# Alpaca chỉ có một chỗ cho câu hỏi và một chỗ cho câu trả lời; các lượt trước phải bỏ đi, hoặc nhồi
# vào `input`, và khi đó mô hình không còn học được cấu trúc hội thoại.

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-01-4
# ```
# **`max_length` lớn nhất cho QLoRA trên T4.** Một thử nghiệm nhỏ với `estimate_training_memory`: giữ batch của
# profile `t4` (với các đòn bẩy của nó, kể cả activation offload sang RAM), phương pháp QLoRA; trong các giá trị
# của `QLORA_LENGTHS`, `max_length` lớn nhất mà ước lượng vẫn vừa (`plan.fits`: vừa GPU, và phần offload vừa RAM) là
# bao nhiêu? Gán nó cho `best_length`.

# %%
from course_utils.exercises.gioi_thieu import QLORA_LENGTHS, check_qlora_max_length

print(QLORA_LENGTHS)
best_length = ...  # thay ... bằng câu trả lời của bạn
check_qlora_max_length(best_length);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-01-4
# :class: dropdown
# ```

# %%
fitting = [n for n in QLORA_LENGTHS if estimate_training_memory(cfg, t4.replace(max_length=n), method="qlora").fits]
best_length = max(fitting)
print(best_length)
assert check_qlora_max_length(best_length)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Các con số của chương
#
# Mọi con số mà trang của chương và notebook này nêu, tính lại bằng `course_utils` (hằng số trích từ tài liệu
# có ghi nguồn trong `course_utils.figures.ch01`):

# %%
import pandas as pd

from course_utils.figures import show_figures

pd.set_option("display.max_rows", 100)  # cả bảng, không cắt ở giữa
show_figures("01_gioi_thieu")
