"""One loader for every model (the tiny one, a hub id, a local directory), and greedy generation with the chat template."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import torch

from .env import EnvironmentProblem, check_gpu, get_hf_token, is_hub_id
from .errors import CourseError
from .profiles import Profile



class ModelNotFound(CourseError):
    """The model id is neither a local directory nor a model the Hub gives us."""


def model_path(profile: Profile) -> str:
    """The local directory (the tiny model's, built on first use, or the learner's) or the hub id of a profile.

    A path that does not exist, or a name that is no hub id, is refused with what to do.
    """
    if profile.is_tiny:
        from .tiny import tiny_model_dir

        return str(tiny_model_dir())
    model_id = str(profile.model_id)
    path = Path(model_id).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelNotFound(f'"{model_id}" là một tệp, không phải thư mục mô hình. Hãy trỏ --model-id tới thư mục '
                            "chứa config.json (và các tệp .safetensors), hoặc dùng tên mô hình trên Hub như "
                            '"Qwen/Qwen2.5-7B-Instruct".')
    if not is_hub_id(model_id):
        raise ModelNotFound(f'Không có thư mục "{model_id}", và đây cũng không phải tên mô hình trên Hugging Face Hub '
                            '(dạng "tổ-chức/tên", ví dụ "Qwen/Qwen2.5-7B-Instruct"). Kiểm tra lại đường dẫn hoặc tên.')
    return model_id


@contextlib.contextmanager
def hub_errors(model_id: str, token: str | None):
    """Turn the Hub's errors (English, with a traceback) into one Vietnamese message that says what to do."""
    from huggingface_hub.errors import GatedRepoError, HFValidationError, LocalEntryNotFoundError

    try:
        yield
    except GatedRepoError:
        raise EnvironmentProblem(
            f'"{model_id}" là mô hình có kiểm soát truy cập (gated)'
            + (" và token hiện tại chưa được cấp quyền" if token else " và chưa có token Hugging Face")
            + ". Hãy đăng nhập huggingface.co, chấp nhận điều khoản ở trang mô hình, tạo token (Settings > Access "
            "tokens), rồi đặt nó vào biến môi trường HF_TOKEN hoặc Colab Secrets (tên HF_TOKEN).") from None
    except (LocalEntryNotFoundError, HFValidationError, OSError) as e:
        if Path(model_id).is_dir():
            raise ModelNotFound(f'Thư mục "{model_id}" không phải một mô hình transformers đọc được ({type(e).__name__}: '
                                f"{str(e).splitlines()[0][:200]}). Thư mục cần có config.json và trọng số "
                                "(.safetensors), như save_pretrained ghi ra.") from None
        from huggingface_hub import constants

        offline = constants.HF_HUB_OFFLINE or isinstance(e, LocalEntryNotFoundError)
        raise ModelNotFound(
            f'Không tải được mô hình "{model_id}" từ Hugging Face Hub'
            + (" (máy đang ngoại tuyến và chưa có bản lưu sẵn)" if offline else " (sai tên, hoặc không có mạng)")
            + ". Kiểm tra tên trên huggingface.co, kết nối mạng, hoặc trỏ --model-id tới một thư mục mô hình "
            "trên máy.") from None


def load_config(profile: Profile, token: str | None = None):
    """The model's config.json alone (a few KB): enough for the memory plan, before any weight is loaded."""
    from transformers import AutoConfig

    path = model_path(profile)
    with hub_errors(path, token):
        return AutoConfig.from_pretrained(path, token=token)


def bnb_config(profile: Profile):
    """The 4-bit quantization settings of a profile (NF4, double quantization, compute in profile.dtype)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=profile.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=profile.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, profile.dtype),
    )


def load_tokenizer(profile: Profile, token: str | None = None):
    from transformers import AutoTokenizer

    path = model_path(profile)
    with hub_errors(path, token):
        tokenizer = AutoTokenizer.from_pretrained(path, token=token)
    if tokenizer.pad_token is None:  # Mistral- and Llama-family tokenizers have none
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def device_index() -> int:
    """The GPU of this process: its local rank under `accelerate launch` (one GPU per process), else 0."""
    return int(os.environ.get("LOCAL_RANK", 0))


def apply_cuda_settings(profile: Profile) -> None:
    """The profile's process-wide CUDA settings (allocator, SDPA backends); nothing without a GPU."""
    if not torch.cuda.is_available():
        return
    if profile.expandable_segments:
        # the documented switch is PYTORCH_CUDA_ALLOC_CONF, read when torch starts: too late in a notebook that
        # has imported torch; this call (the one PyTorch's own tests use) applies to the segments made from now on
        torch.cuda.memory._set_allocator_settings("expandable_segments:True")
    torch.backends.cuda.enable_cudnn_sdp(profile.sdpa_cudnn)


def load_model_and_tokenizer(profile: Profile, quantize: bool = True, token: str | None = None):
    """Load model and tokenizer with `from_pretrained`, the same call for the tiny directory, a local one or a hub id.

    quantize=True loads the linear layers in 4 bits (bitsandbytes Linear4bit); the rest
    (embeddings, lm_head, norms) in profile.dtype. On a GPU each process takes its own device (device_index).
    """
    from transformers import AutoModelForCausalLM

    from .compat import CompatNotice, causal_skip_at_window, keep_cpu_4bit_trainable

    check_gpu(profile)
    apply_cuda_settings(profile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompatNotice)  # a transformers with the fix: nothing to do
        causal_skip_at_window()  # Mistral/Vistral at max_length == its sliding window: SDPA's causal kernels
    if token is None:
        token = get_hf_token(profile)
    kwargs = {"dtype": getattr(torch, profile.dtype), "token": token}
    if quantize and profile.load_in_4bit:
        kwargs["quantization_config"] = bnb_config(profile)
    if profile.needs_gpu:
        kwargs["device_map"] = {"": device_index()}
    tokenizer = load_tokenizer(profile, token=token)
    path = model_path(profile)
    with hub_errors(path, token):
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if not profile.needs_gpu and quantize and profile.load_in_4bit:
        keep_cpu_4bit_trainable(model)
    return model, tokenizer


def from_gguf(gguf_file: str | Path, out_dir: str | Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Convert a GGUF checkpoint (llama.cpp's format) into a model directory that the Trainer accepts.

    transformers reads GGUF (with the `gguf` package) but marks the model as GGUF-quantized, and the Trainer and
    save_pretrained refuse such a model: its weights are copied into a plain model of the same config and saved.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    out_dir = Path(out_dir)
    kwargs = {"gguf_file": gguf_file.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=dtype, **kwargs)
    config = AutoConfig.from_pretrained(gguf_file.parent, **kwargs)
    for key in ("quantization_config",):
        if hasattr(config, key):
            delattr(config, key)
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def describe_model(model) -> dict:
    """Parameter count, 4-bit layer count and memory footprint of a loaded model."""
    import bitsandbytes as bnb

    n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    # a Linear4bit stores two 4-bit values per byte: count elements of its weight, not bytes
    n_params = 0
    for m in model.modules():
        for p in m.parameters(recurse=False):
            n_params += p.numel() * (2 if isinstance(m, bnb.nn.Linear4bit) and p is m.weight else 1)
    return {
        "parameters": n_params,
        "linear4bit_layers": n4,
        "footprint_bytes": model.get_memory_footprint(),
        "device": str(next(model.parameters()).device),
    }


def as_messages(prompt, system: str | None = None) -> list[dict]:
    """A prompt string (or a list of messages already) as chat messages."""
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = list(prompt)
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}] + messages
    return messages


@torch.no_grad()
def generate_answers(model, tokenizer, prompts, max_new_tokens: int = 64, batch_size: int = 8,
                     system: str | None = None) -> list[str]:
    """Greedy answers to prompts (strings or message lists), formatted with the chat template."""
    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only: pad on the left so that answers start together
    answers: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = [as_messages(p, system) for p in prompts[start : start + batch_size]]
            texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in chunk]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            new = out[:, enc["input_ids"].shape[1] :]
            answers.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return answers


def stream_answer(model, tokenizer, prompt, max_new_tokens: int = 256, system: str | None = None,
                  print_fn=print) -> str:
    """Answer one prompt greedily, printing the answer token by token as it is generated; return it."""
    from threading import Thread

    from transformers import TextIteratorStreamer

    was_training = model.training
    model.eval()
    text = tokenizer.apply_chat_template(as_messages(prompt, system), tokenize=False, add_generation_prompt=True)
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                  streamer=streamer)
    worker = Thread(target=torch.no_grad()(model.generate), kwargs=kwargs)
    worker.start()
    pieces = []
    try:
        for piece in streamer:
            pieces.append(piece)
            print_fn(piece, end="", flush=True)
    finally:
        worker.join()
        model.train(was_training)
    print_fn("", flush=True)
    return "".join(pieces).strip()
