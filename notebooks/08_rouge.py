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
# # Notebook — ROUGE và đánh giá đúng cho tiếng Việt
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/08_rouge.ipynb)
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
# Notebook này đi cùng chương {doc}`../book/08_rouge`. Ta sẽ:
#
# 1. viết ROUGE-N và ROUGE-L từ đầu, rồi kiểm tra chúng khớp với thư viện `rouge-score`;
# 2. xem bộ tách từ mặc định của `rouge-score` làm hỏng tiếng Việt ra sao, và sửa nó từng bước
#    (giữ chữ có dấu, chuẩn hóa NFC);
# 3. so sánh tách theo âm tiết và theo từ, xem ROUGE-Lsum làm gì với nhiều câu;
# 4. xem những gì ROUGE không thấy, và chấm câu trả lời của một mô hình bằng `evaluate_answers`;
# 5. đo xem một trung bình trên vài chục câu đáng tin đến đâu: khoảng tin cậy bootstrap, và phép so cặp.
#
# Các phần trước `evaluate_answers` không cần mô hình, chạy gần như tức thì.

# %%
import math
import re
import unicodedata
from collections import Counter

import pandas as pd
from rouge_score import rouge_scorer

from course_utils.data import load_split
from course_utils.display import show_source

# %% [markdown]
# ## ROUGE-N và ROUGE-L từ đầu
#
# ROUGE so một câu trả lời của mô hình (*prediction*) với một câu tham chiếu (*reference*) bằng cách đếm
# các đơn vị chung. Ở phần này, token là các âm tiết viết thường, tách bằng khoảng trắng; câu ví dụ không
# có dấu câu nên `split()` là đủ. Ví dụ là cặp câu đã tính tay trong chương: cùng một ý, khác cách diễn đạt.

# %%
reference = "tinh chỉnh giúp mô hình trả lời đúng"
prediction = "mô hình trả lời đúng hơn nhờ tinh chỉnh"
ref_tokens, pred_tokens = reference.split(), prediction.split()
print(len(ref_tokens), ref_tokens)
print(len(pred_tokens), pred_tokens)


# %% [markdown]
# **ROUGE-N** đếm n-gram chung. Một n-gram xuất hiện 2 lần trong câu trả lời nhưng 1 lần trong tham chiếu
# chỉ được tính 1 lần (đếm bị cắt, *clipped*): phép `&` của hai `Counter` lấy đúng giá trị nhỏ hơn.
# Từ số n-gram chung ta có độ chính xác (precision, chia cho số n-gram của câu trả lời), độ phủ (recall,
# chia cho số n-gram của tham chiếu) và F1 (trung bình điều hòa của hai số đó).

# %%
def ngrams(tokens, n):
    """Counts of the n-grams of a token list."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def prf(overlap, n_pred, n_ref):
    """Precision, recall and F1 from an overlap count and the two totals."""
    p = overlap / n_pred if n_pred else 0.0
    r = overlap / n_ref if n_ref else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def rouge_n(pred, ref, n):
    pred_ng, ref_ng = ngrams(pred, n), ngrams(ref, n)
    overlap = sum((pred_ng & ref_ng).values())  # clipped: min of the two counts
    return prf(overlap, sum(pred_ng.values()), sum(ref_ng.values()))


print("unigram chung:", sorted((ngrams(pred_tokens, 1) & ngrams(ref_tokens, 1)).elements()))
print("bigram chung: ", sorted((ngrams(pred_tokens, 2) & ngrams(ref_tokens, 2)).elements()))
for n in (1, 2):
    p, r, f = rouge_n(pred_tokens, ref_tokens, n)
    print(f"ROUGE-{n}: P = {p:.3f}, R = {r:.3f}, F1 = {f:.3f}")


# %% [markdown]
# **ROUGE-L** dùng dãy con chung dài nhất (LCS): các token chung phải giữ đúng thứ tự nhưng không cần
# đứng liền nhau. Độ dài LCS tính bằng quy hoạch động: ô `(i, j)` là LCS của `i` token đầu của tham chiếu
# và `j` token đầu của câu trả lời; hai token bằng nhau thì lấy ô chéo cộng 1, không thì lấy ô lớn hơn
# trong hai ô trên và trái.

# %%
def lcs_table(a, b):
    """table[i][j] = length of the LCS of a[:i] and b[:j]."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, start=1):
        for j, y in enumerate(b, start=1):
            table[i][j] = table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
    return table


def rouge_l(pred, ref):
    lcs = lcs_table(ref, pred)[-1][-1]
    return prf(lcs, len(pred), len(ref))


dp = lcs_table(ref_tokens, pred_tokens)
pd.DataFrame([row[1:] for row in dp[1:]], index=ref_tokens, columns=pred_tokens)

# %%
p, r, f = rouge_l(pred_tokens, ref_tokens)
print(f"LCS = {dp[-1][-1]}: ROUGE-L P = {p:.3f}, R = {r:.3f}, F1 = {f:.3f}")

# %% [markdown]
# ROUGE-1 cho 0,82 vì hầu hết âm tiết đều có mặt; ROUGE-L chỉ còn 0,59 vì "tinh chỉnh" đã đổi chỗ: LCS
# giữ được "mô hình trả lời đúng" nhưng không giữ thêm được "tinh chỉnh" đứng sau.
#
# ### Khớp với `rouge-score` khi cùng token
#
# `rouge_scorer.RougeScorer` nhận tham số `tokenizer=`: một đối tượng có phương thức `tokenize(text)`.
# Đưa cho nó đúng các token ta dùng (ở đây: `split()`), hai cách tính phải cho cùng con số. Ta thử trên
# 27 câu tham chiếu của tập kiểm tra, mỗi câu ghép với câu kế tiếp.

# %%
class SplitTokenizer:
    """The tokens used above: whitespace split, nothing else."""

    def tokenize(self, text):
        return text.split()


test = load_split("test")
refs = [r["output"].lower() for r in test]
pairs = list(zip(refs[1:] + refs[:1], refs))  # (prediction, reference): unrelated answers
scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=SplitTokenizer())
for pred, ref in pairs:
    lib = scorer.score(ref, pred)  # rouge-score takes (target, prediction)
    ours = {"rouge1": rouge_n(pred.split(), ref.split(), 1), "rouge2": rouge_n(pred.split(), ref.split(), 2),
            "rougeL": rouge_l(pred.split(), ref.split())}
    for t, (p, r, f) in ours.items():
        assert math.isclose(p, lib[t].precision) and math.isclose(r, lib[t].recall)
        assert math.isclose(f, lib[t].fmeasure)
print(f"{len(pairs)} cặp × 3 loại ROUGE: P, R, F1 tự viết khớp rouge-score")

# %% [markdown]
# Phần đếm của `rouge-score` đúng. Vấn đề của tiếng Việt nằm ở bước trước đó: cách nó tách token.

# %% [markdown]
# ```{exercise-start}
# :label: bt-08-1
# ```
# **ROUGE tính tay.** Tính **bằng tay** (giấy bút, không chạy hàm) ROUGE-2 F1 và ROUGE-L F1 cho cặp sau, token là các âm
# tiết viết thường:
#
# - tham chiếu: "lora chỉ huấn luyện hai ma trận nhỏ"
# - câu trả lời: "lora huấn luyện hai ma trận rất nhỏ"
#
# Ghi kết quả thành `answer = (rouge2_f1, rougeL_f1)`, rồi kiểm tra bằng `rouge_n`, `rouge_l` ở trên.

# %%
from course_utils.exercises.rouge import check_by_hand

answer = ...  # thay ... bằng câu trả lời của bạn, ví dụ (0.5, 0.25)
check_by_hand(answer);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-08-1
# :class: dropdown
# ```

# %%
# Bigram: mỗi câu có 7; chung: "huấn luyện", "luyện hai", "hai ma", "ma trận" = 4 -> P = R = 4/7.
# LCS: "lora huấn luyện hai ma trận nhỏ" = 7 trên 8 âm tiết mỗi câu -> P = R = 7/8.
answer = (4 / 7, 7 / 8)
ref_bt, pred_bt = "lora chỉ huấn luyện hai ma trận nhỏ".split(), "lora huấn luyện hai ma trận rất nhỏ".split()
print(rouge_n(pred_bt, ref_bt, 2)[2], rouge_l(pred_bt, ref_bt)[2])
assert check_by_hand(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Bộ tách từ mặc định của `rouge-score` làm mất chữ có dấu
#
# Khi không truyền `tokenizer=`, `RougeScorer` dùng `DefaultTokenizer`. Hàm `tokenize` của nó chuyển văn
# bản sang chữ thường, thay mọi ký tự ngoài `[a-z0-9]` bằng khoảng trắng, rồi tách. Đọc mã nguồn của
# chính phiên bản đã cài:

# %%
from rouge_score import tokenize as rouge_tokenize

show_source(rouge_tokenize.tokenize)

# %%
from rouge_score.tokenizers import DefaultTokenizer

default_tokenizer = DefaultTokenizer()  # what RougeScorer uses when given no tokenizer=
default_scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])
for text in ["tiếng Việt", "tôi bán hàng", "tôi bạn hàng", "Đà Nẵng", "ở đó"]:
    print(f"{text!r:16} -> {default_tokenizer.tokenize(text)}")

# %% [markdown]
# Mọi chữ có dấu biến mất: "tiếng" còn `ti ng`, "Đà" và "ở" mất hẳn. "bán" và "bạn" cùng thành `b n`,
# nên hai câu khác nghĩa được chấm như nhau tuyệt đối:

# %%
for t, s in default_scorer.score("tôi bán hàng", "tôi bạn hàng").items():
    print(f"{t:9} F1 = {s.fmeasure:.3f}")

# %% [markdown]
# `evaluate.load("rouge")` của Hugging Face cũng dùng `rouge-score` với bộ tách mặc định này khi bạn không
# truyền `tokenizer=` (hàm đó cần mạng để tải script từ Hub nên notebook không gọi nó).
#
# ### Sửa từng bước
#
# **Bước 1.** Chỉ chuyển chữ thường rồi `split()`: chữ có dấu được giữ, nhưng dấu câu dính vào âm tiết,
# nên "hàng." khác "hàng".

# %%
def tokenize_v1(text):
    return text.lower().split()


print(tokenize_v1("Tôi bán hàng."), tokenize_v1("tôi bán hàng"))

# %% [markdown]
# **Bước 2.** Lấy các dãy chữ cái và chữ số bằng biểu thức chính quy. Trong Python, `\w` nhận chữ của mọi
# bảng chữ (cả chữ Việt có dấu), chữ số và dấu gạch dưới; `[^\W_]` là `\w` trừ dấu gạch dưới.

# %%
TOKEN_RE = re.compile(r"[^\W_]+")


def tokenize_v2(text):
    return TOKEN_RE.findall(text.lower())


print(tokenize_v2("Tôi bán hàng."), tokenize_v2("Đà Nẵng, 2024!"))

# %% [markdown]
# **Bước 3: chuẩn hóa Unicode.** Cùng một chữ "ế" có thể được lưu theo hai cách: một ký tự dựng sẵn
# (dạng NFC) hoặc chữ "e" theo sau là hai dấu kết hợp (dạng NFD). Hai chuỗi hiện ra giống hệt nhau nhưng
# khác nhau khi so sánh.

# %%
nfc = unicodedata.normalize("NFC", "tiếng Việt")
nfd = unicodedata.normalize("NFD", "tiếng Việt")
print(nfc == nfd, len(nfc), len(nfd))
for ch in unicodedata.normalize("NFD", "ế"):
    print(f"U+{ord(ch):04X} {unicodedata.name(ch)}")

# %% [markdown]
# Dấu kết hợp không phải chữ cái, nên `tokenize_v2` cắt đôi âm tiết tại đó; `rouge-score` mặc định còn
# cho ra token khác với dạng NFC:

# %%
print("v2, NFD:     ", tokenize_v2(nfd))
print("mặc định NFC:", default_tokenizer.tokenize(nfc))
print("mặc định NFD:", default_tokenizer.tokenize(nfd))


# %% [markdown]
# Văn bản NFD (hoặc trộn hai dạng) không hiếm: nó có thể đến từ tên tệp tạo trên macOS, từ một số bộ gõ
# và bảng mã "Unicode tổ hợp", hay từ văn bản chép ra khỏi PDF. Câu trả lời của mô hình và câu tham chiếu
# có thể đến từ hai nguồn khác nhau, nên phải đưa cả hai về cùng một dạng trước khi so. Ta chọn NFC.

# %%
def tokenize_v3(text):
    return TOKEN_RE.findall(unicodedata.normalize("NFC", text.lower()))


print(tokenize_v3(nfd), tokenize_v3(nfc))

# %% [markdown]
# Đó là `vi_tokenize` của `course_utils.metrics`. Bản hoàn chỉnh giữ thêm các dấu kết hợp còn sót lại sau
# NFC dính vào âm tiết, và đổi chữ "ð" (eth của tiếng Iceland, trông giống "đ", hay gặp trong văn bản
# tiếng Việt chuyển từ bảng mã cũ) thành "đ":

# %%
from course_utils.metrics import vi_tokenize

show_source(vi_tokenize)

# %%
texts = [r[k] for split in ("train", "validation", "test") for r in load_split(split) for k in ("instruction", "output")]
for text in texts:
    assert vi_tokenize(text) == tokenize_v3(text) == vi_tokenize(unicodedata.normalize("NFD", text))
print(f"{len(texts)} văn bản của bộ dữ liệu: vi_tokenize = tokenize_v3, dạng NFC và NFD cho cùng token")

# %% [markdown]
# ### `rouge_vi`: `rouge-score` đếm, `vi_tokenize` tách
#
# `rouge_vi` không tự viết lại LCS: nó trao `vi_tokenize` cho `RougeScorer` (bọc trong một đối tượng có
# phương thức `tokenize`), lấy F1 của từng cặp, chọn tham chiếu tốt nhất nếu có nhiều tham chiếu, rồi
# lấy trung bình. Hàm còn kiểm tra đầu vào (hai danh sách phải dài bằng nhau, không rỗng) và xử lý một
# trường hợp biên: khi cả hai văn bản không có gì để đếm (ví dụ ROUGE-2 của hai câu một âm tiết),
# `rouge-score` trả 0, còn ở đây điểm là 1 nếu hai văn bản có cùng token.

# %%
from course_utils.metrics import rouge_scores, rouge_vi

show_source(rouge_scores)

# %%
show_source(rouge_vi)

# %% [markdown]
# Kiểm tra với thư viện: trên các cặp ở trên (giờ với văn bản gốc, có hoa thường và dấu câu), điểm của
# `rouge_vi` phải bằng điểm `RougeScorer` tính với cùng bộ tách, và bằng hàm tự viết chạy trên
# `vi_tokenize`.

# %%
class SyllableTokenizer:
    def tokenize(self, text):
        return vi_tokenize(text)


vi_scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=SyllableTokenizer())
raw = [r["output"] for r in test]
raw_pairs = list(zip(raw[1:] + raw[:1], raw))
ours = rouge_scores([p for p, _ in raw_pairs], [r for _, r in raw_pairs], ("rouge1", "rouge2", "rougeL"))
for (pred, ref), s in zip(raw_pairs, ours):
    lib = vi_scorer.score(ref, pred)
    toks_p, toks_r = vi_tokenize(pred), vi_tokenize(ref)
    scratch = {"rouge1": rouge_n(toks_p, toks_r, 1)[2], "rouge2": rouge_n(toks_p, toks_r, 2)[2],
               "rougeL": rouge_l(toks_p, toks_r)[2]}
    for t in s:
        assert math.isclose(s[t], lib[t].fmeasure) and math.isclose(s[t], scratch[t])
print("rouge_vi = RougeScorer(tokenizer=vi_tokenize) = hàm tự viết, trên", len(raw_pairs), "cặp")

# %% [markdown]
# ### Trước và sau khi sửa
#
# Ba trường hợp, cùng một câu lệnh chấm: hai câu khác một dấu thanh, cùng một câu ở dạng NFC và NFD, và
# 27 câu trả lời của tập kiểm tra, mỗi câu ghép với tham chiếu của một câu hỏi khác (không liên quan,
# nên điểm đúng phải thấp).

# %%
def default_rouge(predictions, references):
    """Mean F1 with rouge-score's default tokenizer (the pitfall)."""
    scores = [default_scorer.score(r, p) for p, r in zip(predictions, references)]
    return {t: sum(s[t].fmeasure for s in scores) / len(scores) for t in scores[0]}


sentence = "Tinh chỉnh giúp mô hình trả lời đúng bằng tiếng Việt."
cases = {
    "bán hàng / bạn hàng": (["tôi bạn hàng"], ["tôi bán hàng"]),
    "cùng câu, NFD / NFC": ([unicodedata.normalize("NFD", sentence)], [sentence]),
    "không liên quan (tập kiểm tra)": ([p for p, _ in raw_pairs], [r for _, r in raw_pairs]),
}
rows = []
for name, (preds, refs_) in cases.items():
    before, after = default_rouge(preds, refs_), rouge_vi(preds, refs_)
    rows.append({"trường hợp": name, "ROUGE-1 mặc định": before["rouge1"], "ROUGE-1 rouge_vi": after["rouge1"],
                 "ROUGE-2 mặc định": before["rouge2"], "ROUGE-2 rouge_vi": after["rouge2"]})
pd.DataFrame(rows).set_index("trường hợp").round(3)

# %% [markdown]
# Bộ tách mặc định sai theo cả hai chiều: chấm 1 cho hai câu khác nghĩa, chấm dưới 0,5 cho hai câu giống
# hệt nhau, và cho các câu trả lời không liên quan ROUGE-1 gấp khoảng bốn lần, vì các mảnh như `t`, `h`,
# `ng`, `nh` còn sót lại trùng nhau ở khắp nơi.

# %% [markdown]
# ```{exercise-start}
# :label: bt-08-2
# ```
# **Bộ tách mặc định thổi phồng bao nhiêu.** Một thí nghiệm nhỏ trên tập kiểm định (`load_split("validation")`): ghép câu trả lời mẫu thứ `i` với
# câu tham chiếu thứ `i + 1` (câu cuối ghép với câu đầu), như ta đã làm với tập kiểm tra. Tính ROUGE-1 F1
# trung bình với bộ tách mặc định (`default_rouge`) và với `rouge_vi`. Bộ tách mặc định thổi phồng điểm
# của các cặp không liên quan lên bao nhiêu lần? Ghi `answer = rouge1_mặc_định / rouge1_rouge_vi`.

# %%
from course_utils.exercises.rouge import check_inflation

answer = ...  # thay ... bằng câu trả lời của bạn
check_inflation(answer);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-08-2
# :class: dropdown
# ```

# %%
val = [r["output"] for r in load_split("validation")]
val_preds, val_refs = val, val[1:] + val[:1]  # answer i vs reference i + 1
before, after = default_rouge(val_preds, val_refs)["rouge1"], rouge_vi(val_preds, val_refs)["rouge1"]
answer = before / after
print(f"mặc định {before:.3f}, rouge_vi {after:.3f}, gấp {answer:.1f} lần")
assert check_inflation(answer)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: bt-08-3
# ```
# **Hai kiểu đặt dấu thanh.** Chuẩn hóa NFC không giải quyết mọi khác biệt. Tiếng Việt có hai cách đặt dấu thanh: kiểu cũ "hoá",
# "thuỷ" và kiểu mới "hóa", "thủy". Hãy đoán trước, rồi kiểm tra bằng `rouge_vi`: ROUGE-1 F1 của câu trả
# lời "Hoá học" so với tham chiếu "hóa học" là bao nhiêu? Ghi vào `answer`. Sau đó nghĩ xem nên làm gì
# trước khi chấm nếu dữ liệu của bạn trộn hai kiểu.

# %%
from course_utils.exercises.rouge import check_tone_placement

answer = ...  # thay ... bằng câu trả lời của bạn
check_tone_placement(answer);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-08-3
# :class: dropdown
# ```

# %%
print(vi_tokenize("Hoá học"), vi_tokenize("hóa học"))
answer = rouge_vi(["Hoá học"], ["hóa học"])["rouge1"]
print(answer)  # "hoá" và "hóa" là hai token khác nhau, chỉ "học" khớp: P = R = 1/2
assert check_tone_placement(answer)
# Cách xử lý: đưa cả câu trả lời lẫn tham chiếu về cùng một kiểu đặt dấu (ví dụ kiểu mới) trước khi chấm.

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Âm tiết hay từ?
#
# Chữ viết tiếng Việt tách **âm tiết** bằng khoảng trắng, còn một **từ** có thể gồm nhiều âm tiết:
# "học sinh", "máy tính". `vi_tokenize` đếm âm tiết. Cũng có thể đếm theo từ, sau một bước phân đoạn từ
# (word segmentation) nối các âm tiết của một từ bằng dấu gạch dưới. Ở đây không cài công cụ phân đoạn
# nào, nên ta phân đoạn bằng tay; các thư viện như underthesea hay pyvi làm việc này tự động.

# %%
def word_tokenize(text):
    """Tokens of a hand-segmented text: like vi_tokenize, but "_" joins the syllables of a word."""
    return re.findall(r"\w+", unicodedata.normalize("NFC", text.lower()))


syllables = ("Học sinh thích học máy tính.", "Sinh viên thích tính toán trên máy.")
words = ("Học_sinh thích học máy_tính.", "Sinh_viên thích tính_toán trên máy.")
print(word_tokenize(words[0]), word_tokenize(words[1]))
by_syllable = rouge_vi([syllables[1]], [syllables[0]])["rouge1"]
by_word = rouge_vi([words[1]], [words[0]], tokenize=word_tokenize)["rouge1"]
print(f"ROUGE-1 theo âm tiết: {by_syllable:.3f}, theo từ: {by_word:.3f}")

# %% [markdown]
# Cùng một cặp câu, hai con số rất khác nhau: theo âm tiết, "sinh", "máy", "tính" trùng nhau dù thuộc
# các từ khác nghĩa. Không cách nào "đúng" tuyệt đối; điều bắt buộc là **so sánh hai mô hình với cùng
# một cách tách**, và ghi rõ cách tách khi báo cáo. Điểm ROUGE trong một bài báo dùng phân đoạn từ không
# so được với điểm tính theo âm tiết. Khóa học dùng âm tiết vì nó không phụ thuộc công cụ nào.

# %% [markdown]
# ## ROUGE-Lsum: nhiều câu, mỗi câu một dòng
#
# ROUGE-L coi cả văn bản là một dãy token. ROUGE-Lsum tách văn bản thành câu **theo ký tự xuống dòng**
# (`"\n"`, đúng như `rouge-score`), rồi với mỗi câu tham chiếu lấy hợp các LCS của nó với từng câu của văn
# bản sinh ra; tổng số token khớp (mỗi token không được tính nhiều lần hơn số lần nó xuất hiện) chia cho
# số token của hai bên cho P và R. Vì thế đổi thứ tự các câu không làm ROUGE-Lsum giảm.

# %%
ref_sum = "LoRA học hai ma trận nhỏ.\nTrọng số gốc được giữ nguyên."
pred_sum = "Trọng số gốc không đổi.\nLoRA chỉ học hai ma trận."
print(rouge_vi([pred_sum], [ref_sum]))
print("cùng câu, không xuống dòng:", rouge_vi([pred_sum.replace("\n", " ")], [ref_sum.replace("\n", " ")]))

# %% [markdown]
# Khi không có ký tự xuống dòng, cả văn bản là một câu và ROUGE-Lsum bằng ROUGE-L. Muốn ROUGE-Lsum theo
# câu, hãy đặt mỗi câu trên một dòng ở **cả hai** phía (`rouge-score` có tùy chọn `split_summaries=True`
# dùng bộ tách câu của nltk, nhưng nó cần tải dữ liệu `punkt` và được viết cho tiếng Anh).

# %% [markdown]
# ## Những gì ROUGE không thấy
#
# ROUGE đếm token chung, không hiểu nghĩa. Bốn cặp câu: một câu diễn đạt lại đúng ý, hai câu sai sự thật
# chỉ vì một từ, và một câu đảo ngược hết thứ tự của tham chiếu.

# %%
reversed_sentence = " ".join(reversed(reference.split()))
limits = {
    "diễn đạt lại, đúng ý": (prediction, reference),
    "thiếu 'không', sai nghĩa": ("LoRA cập nhật trọng số gốc.", "LoRA không cập nhật trọng số gốc."),
    "sai địa danh": ("Thủ đô của Việt Nam là Đà Nẵng.", "Thủ đô của Việt Nam là Hà Nội."),
    "đảo ngược thứ tự": (reversed_sentence, reference),
}
pd.DataFrame({name: rouge_vi([p], [r]) for name, (p, r) in limits.items()}).T.round(3)

# %% [markdown]
# Câu đúng ý được điểm thấp nhất ở ROUGE-L, câu phủ định ngược nghĩa được ROUGE-1 trên 0,9, và một câu
# vô nghĩa (đảo ngược) vẫn đạt ROUGE-1 bằng 1. ROUGE chỉ có ích khi đi cùng các phép đo khác:
#
# - **khớp chính xác** (exact match) cho câu trả lời ngắn, ví dụ phán quyết "Đúng"/"Sai";
# - **thống kê độ dài**: câu trả lời quá ngắn làm giảm độ phủ, quá dài làm giảm độ chính xác;
# - **người chấm hoặc một LLM làm giám khảo** cho nội dung (xem các lưu ý ở trang của chương).

# %% [markdown]
# ```{exercise-start}
# :label: bt-08-4
# ```
# **Câu trả lời ngắn và một mốc ngây thơ.** Các câu hỏi "Câu sau đúng hay sai" của bộ dữ liệu có câu trả lời mẫu bắt đầu bằng phán quyết ("Sai."
# hoặc "Đúng.") rồi mới giải thích. Giả sử một mô hình chỉ trả lời đúng một chữ "Sai." cho mọi câu loại
# này trong tập kiểm tra.
#
# 1. Tính tỉ lệ phán quyết đúng bằng khớp chính xác: so `vi_tokenize(câu trả lời)[0]` với âm tiết đầu của
#    tham chiếu.
# 2. Tính ROUGE-1 F1 trung bình (`rouge_vi`) của câu trả lời "Sai." so với các tham chiếu đầy đủ.
#
# Ghi `answer = (tỉ_lệ_đúng, rouge1)`. Hai con số nói gì về ROUGE với câu trả lời ngắn? Và một mô hình trả
# lời "Sai." cho mọi câu có thật sự giỏi không?

# %%
from course_utils.exercises.rouge import check_short_answers

answer = ...  # thay ... bằng câu trả lời của bạn, ví dụ (0.5, 0.25)
check_short_answers(answer);

# %% [markdown]
# ```{exercise-end}
# ```

# %% [markdown]
# ```{solution-start} bt-08-4
# :class: dropdown
# ```

# %%
tf_refs = [r["output"] for r in test if r["instruction"].startswith("Câu sau đúng hay sai")]
tf_preds = ["Sai."] * len(tf_refs)
accuracy = sum(vi_tokenize(p)[0] == vi_tokenize(r)[0] for p, r in zip(tf_preds, tf_refs)) / len(tf_refs)
rouge1 = rouge_vi(tf_preds, tf_refs)["rouge1"]
answer = (accuracy, rouge1)
print(f"{len(tf_refs)} câu đúng/sai: phán quyết đúng {accuracy:.0%}, ROUGE-1 {rouge1:.3f}")
assert check_short_answers(answer)
# ROUGE phạt nặng câu trả lời ngắn dù phán quyết đúng: chấm phán quyết riêng bằng khớp chính xác.
# Nhưng ở đây mọi tham chiếu đều là "Sai": một câu trả lời hằng số đạt 100%. Luôn so với một mốc
# ngây thơ như vậy, và cân bằng số câu "Đúng"/"Sai" khi tự tạo dữ liệu.

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Chấm câu trả lời của mô hình: `evaluate_answers`
#
# Bài thực hành ở chương sau chấm mô hình trước và sau khi tinh chỉnh bằng `evaluate_answers`: sinh câu trả
# lời tham lam (greedy) với một ngân sách token cố định cho các bản ghi của tập kiểm tra, dùng đúng system
# prompt như lúc huấn luyện, rồi trả về một bảng từng ví dụ và các giá trị trung bình.

# %%
from course_utils.metrics import evaluate_answers

show_source(evaluate_answers)

# %% [markdown]
# Chạy thử với mô hình của profile hiện tại trên vài câu của tập kiểm tra. Với profile `tiny`, đây là mô
# hình tiny chưa được tinh chỉnh: nó viết ra chữ tiếng Việt nhưng chưa biết trả lời, nên điểm gần 0 là
# điều đúng phải thấy.

# %%
from course_utils.models import load_model_and_tokenizer
from course_utils.profiles import get_profile

profile = get_profile()
model, tokenizer = load_model_and_tokenizer(profile, quantize=not profile.is_tiny)
n_examples = profile.n_eval_examples  # as in the lab: 12 with the tiny profile, 24 with t4
table, means = evaluate_answers(model, tokenizer, test[:n_examples], max_new_tokens=profile.eval_max_new_tokens)
print(f"[{profile.model_id}] {n_examples} câu, tối đa {profile.eval_max_new_tokens} token mới")
print({k: round(v, 3) for k, v in means.items()})

# %%
pd.set_option("display.max_colwidth", 60)
table[["prompt", "answer", "rouge1", "rougeL", "answer_len", "reference_len"]].round(3)

# %%
assert len(table) == n_examples and set(means) >= {"rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match"}
assert all(0.0 <= means[t] <= 1.0 for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"))
assert math.isclose(means["rouge1"], rouge_vi(list(table["answer"]), list(table["reference"]))["rouge1"])
print(f"Notebook này đã chạy với profile '{profile.name}', mô hình {profile.model_id}.")

# %% [markdown]
# ## Đánh giá đáng tin: khoảng tin cậy bootstrap
#
# Trung bình ROUGE trên vài chục câu phụ thuộc vào việc *những câu nào* nằm trong tập kiểm tra: đổi vài câu là
# trung bình đổi theo. Bootstrap (Efron, 1979) đo sự phụ thuộc đó mà không cần thêm dữ liệu: rút lại các câu của
# tập kiểm tra **có hoàn lại**, nhiều lần, tính trung bình của mỗi lần rút, rồi lấy khoảng chứa 95% các trung bình
# đó ({term}`khoảng tin cậy <Khoảng tin cậy>` bootstrap phân vị, *percentile bootstrap*).

# %%
from course_utils.metrics import bootstrap_ci, paired_bootstrap

show_source(bootstrap_ci)

# %% [markdown]
# Khoảng của ROUGE-1 trung bình trong bảng vừa chấm (với profile `tiny`: của mô hình tiny chưa tinh chỉnh):

# %%
mean, low, high = bootstrap_ci(table["rouge1"])
print(f"[{profile.model_id}] ROUGE-1 trung bình trên {len(table)} câu: {mean:.3f}, "
      f"khoảng tin cậy 95%: [{low:.3f}, {high:.3f}]")
assert low <= mean <= high

# %% [markdown]
# Khoảng này chỉ tính đến việc chọn câu hỏi. Một lần huấn luyện khác (hạt giống khác, thứ tự dữ liệu khác) cho
# một mô hình khác, nên sai số thật của "ROUGE sau khi tinh chỉnh" còn lớn hơn.
#
# ### So cặp hay không so cặp
#
# So "trước" và "sau" khi tinh chỉnh là so hai cột điểm trên **cùng** các câu. Các câu khác nhau rất nhiều về độ
# khó, và độ chênh đó nằm trong khoảng tin cậy của từng cột. Phép so **cặp** (paired) rút lại chỉ số câu một lần
# cho cả hai cột, nên độ khó của từng câu triệt tiêu: khoảng tin cậy là của trung bình hiệu `sau − trước`.
#
# Một ví dụ dựng sẵn, không cần mô hình: hai "hệ thống" trả lời mỗi câu hỏi của tập kiểm tra bằng đúng phần đầu
# của câu tham chiếu, hệ A dừng sau 8 âm tiết, hệ B sau 10 âm tiết, giống hai ngân sách token khác nhau. Câu nào
# B cũng không kém A, nhưng điểm của từng hệ trải rộng theo độ dài tham chiếu.

# %%
show_source(paired_bootstrap)

# %%
refs_test = [r["output"] for r in test]


def first_syllables(k):
    """Each test reference cut after its first k syllables: a made-up system with a budget of k syllables."""
    return [" ".join(vi_tokenize(r)[:k]) for r in refs_test]


score_a = [s["rouge1"] for s in rouge_scores(first_syllables(8), refs_test, ("rouge1",))]
score_b = [s["rouge1"] for s in rouge_scores(first_syllables(10), refs_test, ("rouge1",))]
ci_a, ci_b = bootstrap_ci(score_a), bootstrap_ci(score_b)
paired = paired_bootstrap(score_a, score_b)
print(f"hệ A (8 âm tiết):  {ci_a[0]:.3f}  khoảng [{ci_a[1]:.3f}, {ci_a[2]:.3f}]")
print(f"hệ B (10 âm tiết): {ci_b[0]:.3f}  khoảng [{ci_b[1]:.3f}, {ci_b[2]:.3f}]")
print(f"so cặp, B − A:     {paired['mean_diff']:.3f}  khoảng [{paired['low']:.3f}, {paired['high']:.3f}], "
      f"B hơn A trong {paired['share_better']:.0%} số lần rút")
assert all(b >= a for a, b in zip(score_a, score_b))
assert ci_b[1] < ci_a[2]  # unpaired: the two intervals overlap
assert paired["low"] > 0 and paired["share_better"] == 1.0  # paired: the gain is clear

# %% [markdown]
# Nhìn riêng từng cột, hai khoảng tin cậy chồng lên nhau: không thể nói B hơn A. So cặp thì khoảng của hiệu nằm
# hẳn trên 0, và B hơn A trong mọi lần rút. Vì vậy khi so mô hình trước và sau khi tinh chỉnh, hãy chấm cả hai
# trên cùng các câu và dùng `paired_bootstrap` trên hai cột điểm của `evaluate_answers`, thay vì so hai trung bình
# với hai khoảng tin cậy riêng.
#
# Cuối cùng, khoảng tin cậy không cứu được một phép đo sai: điểm ROUGE tiếng Việt trong các bài báo hay bảng xếp
# hạng, nếu tính bằng bộ tách mặc định của `rouge-score` (xóa mọi chữ có dấu, như ở trên), không so được với
# nhau, cũng không so được với `rouge_vi` của khóa học. Trước khi so một con số đã công bố, hãy tìm xem nó được
# tính bằng bộ tách nào.

# %% [markdown]
# ## Mọi con số của chương, tính lại
#
# Mọi con số mà trang của chương và phần chữ của notebook này nêu ra đều được tính lại ở đây bằng các hàm của
# `course_utils` (`course_utils.figures.ch08`); một bài kiểm thử so chúng với phần chữ.

# %%
from course_utils.figures import show_figures

show_figures("08_rouge")
