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
# # Notebook 4: Mô hình ngôn ngữ nhân quả và causal mask
#
# [![Mở trong Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tinh-chinh-llm/tinh-chinh-llm/blob/main/notebooks/04_causal_lm.ipynb)
#
# :::{note}
# Trên trang web này, notebook đã được chạy lúc dựng trang với profile `tiny`: mô hình Qwen2 tí hon của khóa học (khoảng 1,3 triệu tham số), trên CPU. Mọi đầu ra của mô hình ở đây đến từ mô hình tí hon đó, không phải từ một mô hình 7B.
# :::

# %% tags=["colab-install"]
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
# (Notebook đang được viết.)
