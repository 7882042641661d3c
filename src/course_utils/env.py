"""Where the notebook runs: Colab or not, GPU or not, and the Hugging Face token for gated models."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import CourseError

# "org/name", as the Hugging Face Hub spells the ids of models and datasets
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name: str) -> bool:
    """Whether `name` reads as a Hub id ("org/name"), not a relative or absolute path."""
    return bool(HUB_ID.match(name)) and not name.startswith((".", "/", "~"))


class EnvironmentProblem(CourseError):
    """The runtime cannot run this profile (no GPU, no token, ...); the message says what to do."""


def in_colab() -> bool:
    try:
        import google.colab  # noqa: F401 - only its presence matters
    except ImportError:
        return False
    return True


def check_gpu(profile) -> None:
    """Refuse a GPU profile on a machine without CUDA, saying what to do."""
    import torch

    if not profile.needs_gpu:
        return
    if not torch.cuda.is_available():
        raise EnvironmentProblem(
            f'Profile "{profile.name}" cần GPU nhưng máy này không có GPU CUDA. '
            "Trên Colab: Runtime > Change runtime type > chọn T4 GPU, rồi chạy lại từ đầu. "
            'Không có GPU thì dùng profile "tiny" (COURSE_PROFILE=tiny).'
        )


def gpu_summary() -> str:
    """One line about the GPU (or its absence), for the top of a notebook."""
    import torch

    if not torch.cuda.is_available():
        return "Không có GPU: chạy trên CPU."
    p = torch.cuda.get_device_properties(0)
    cc = f"{p.major}.{p.minor}"
    bf16 = "có" if p.major >= 8 else "không (chỉ fp16)"
    return f"GPU: {p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {cc}, bf16 gốc: {bf16}."


def stored_hf_token() -> str | None:
    """$HF_TOKEN, else the Colab secret HF_TOKEN; None when neither is there. Never printed."""
    token = os.environ.get("HF_TOKEN")
    if not token and in_colab():
        try:
            from google.colab import userdata

            token = userdata.get("HF_TOKEN")
        except Exception:  # secret missing or access not granted
            token = None
    return token or None


def get_hf_token(profile, prompt: bool = True) -> str | None:
    """The Hugging Face token, only for a gated model: $HF_TOKEN, Colab secrets, then getpass.

    The token is returned, never printed or written anywhere.
    """
    if not profile.gated or Path(profile.model_id).is_dir():  # a local copy needs no token
        return os.environ.get("HF_TOKEN") or None  # still used when there is one (another model id may be gated)
    token = stored_hf_token()
    if not token and prompt:
        from getpass import getpass

        token = getpass(f"Mô hình {profile.model_id} cần token Hugging Face (không hiển thị khi gõ): ").strip()
    if not token:
        raise EnvironmentProblem(
            f"Mô hình {profile.model_id} là mô hình có kiểm soát truy cập (gated). "
            "Hãy: (1) đăng nhập huggingface.co và chấp nhận điều khoản ở trang mô hình; "
            "(2) tạo token ở Settings > Access tokens; (3) trên Colab, thêm token vào Secrets với tên HF_TOKEN "
            "(biểu tượng chìa khóa ở thanh bên trái) và bật quyền truy cập cho notebook, hoặc đặt biến môi trường HF_TOKEN."
        )
    return token
