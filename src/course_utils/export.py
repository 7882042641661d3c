"""After training: merge the adapter onto the 16-bit base one shard at a time, and share it on the Hub.

`merge_streamed` never holds the whole model: it reads the base's safetensors one tensor at a time, adds
(alpha/r)·B·A to each targeted weight in fp32, and writes output shards of at most `max_shard_bytes`. Its peak
memory is about one output shard plus a few copies of the largest weight, whatever the model's size: a 7B merge
fits free Colab's CPU RAM (chapter 9 gives the measured and estimated peaks).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CourseError

# files of a model directory other than weights, copied as they are
COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt", "tokenizer.model",
          "added_tokens.json")


class ExportError(CourseError):
    """An adapter or a base the merge cannot handle; the message says what to do."""


@dataclass
class MergeReport:
    """What merge_streamed did: weights changed, shards written, seconds."""

    merged: int
    shards: int
    seconds: float
    out_dir: Path


def _adapter(adapter_dir: Path) -> tuple[dict, float]:
    """{module name: (A, B)} of a saved LoRA adapter, and its scale alpha/r (alpha/sqrt(r) with rsLoRA)."""
    from safetensors.torch import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    unsupported = [k for k in ("use_dora", "fan_in_fan_out") if config.get(k)]
    unsupported += [k for k in ("rank_pattern", "alpha_pattern", "modules_to_save") if config.get(k)]
    if config.get("bias", "none") != "none":
        unsupported.append("bias")
    if config.get("peft_type", "LORA") != "LORA" or unsupported:
        raise ExportError(f"Phép gộp từng phần chỉ hỗ trợ adapter LoRA thường; adapter này dùng "
                          f"{unsupported or config.get('peft_type')}. Hãy gộp bằng peft: "
                          "PeftModel.from_pretrained(base, adapter_dir).merge_and_unload() trên một máy đủ RAM.")
    r, alpha = config["r"], config["lora_alpha"]
    scale = alpha / r ** 0.5 if config.get("use_rslora") else alpha / r
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, dict] = {}
    for key, value in weights.items():
        # base_model.model.<module>.lora_A.weight -> <module>
        module, _, kind = key.removeprefix("base_model.model.").rpartition(".lora_")
        pairs.setdefault(module, {})[kind.split(".")[0]] = value
    return {m: (p["A"], p["B"]) for m, p in pairs.items()}, scale


def _base_shards(base_dir: Path) -> list[Path]:
    index = base_dir / "model.safetensors.index.json"
    if index.exists():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [base_dir / n for n in names]
    single = base_dir / "model.safetensors"
    if single.exists():
        return [single]
    raise ExportError(f'Không thấy trọng số .safetensors trong "{base_dir}". Cần thư mục mô hình 16-bit như '
                      "save_pretrained ghi ra (model.safetensors hoặc model-0000x-of-0000y.safetensors).")


def resolve_base(base: str | Path, token: str | None = None) -> Path:
    """A local model directory, or the Hub snapshot of a model id (downloaded once, on Colab)."""
    path = Path(base).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    from .models import hub_errors

    with hub_errors(str(base), token):
        return Path(snapshot_download(str(base), token=token, allow_patterns=["*.safetensors", "*.json", "*.jinja",
                                                                               "*.txt", "*.model"]))


def merge_streamed(base: str | Path, adapter_dir: str | Path, out_dir: str | Path, max_shard_bytes: int = 2 * 2**30,
                   token: str | None = None) -> MergeReport:
    """Write base + (alpha/r)·B·A as a plain model directory, one tensor in memory at a time.

    Each targeted weight W (out, in) becomes W + scale · B (out, r) @ A (r, in), computed in fp32 and stored in
    W's own dtype; every other tensor is copied. Output shards hold at most max_shard_bytes each.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    t0 = time.time()
    base_dir, adapter_dir, out_dir = resolve_base(base, token), Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise ExportError(f'Không có adapter trong "{adapter_dir}" (thiếu adapter_config.json).')
    if out_dir.resolve() == base_dir.resolve():
        raise ExportError("Thư mục ra không được trùng thư mục mô hình nền: hãy chọn một thư mục mới.")
    deltas, scale = _adapter(adapter_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pending: dict[str, torch.Tensor] = {}
    pending_bytes, shard_files, weight_map, merged = 0, [], {}, set()

    def flush():
        nonlocal pending, pending_bytes
        if pending:
            name = f"model-{len(shard_files) + 1:05d}.safetensors"
            save_file(pending, str(out_dir / name), metadata={"format": "pt"})
            shard_files.append(name)
            weight_map.update({k: name for k in pending})
            pending, pending_bytes = {}, 0

    for shard in _base_shards(base_dir):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():
                tensor = f.get_tensor(key)
                module = key.removesuffix(".weight")
                if key.endswith(".weight") and module in deltas:
                    A, B = deltas[module]
                    tensor = (tensor.float() + scale * (B.float() @ A.float())).to(tensor.dtype)
                    merged.add(module)
                size = tensor.numel() * tensor.element_size()
                if pending and pending_bytes + size > max_shard_bytes:
                    flush()
                pending[key] = tensor.contiguous()
                pending_bytes += size
    flush()
    missing = sorted(set(deltas) - merged)
    if missing:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise ExportError(f"Adapter nhắm vào {len(missing)} lớp không có trong mô hình nền (ví dụ {missing[0]}): "
                          "adapter này được huấn luyện cho một mô hình khác. Hãy dùng đúng mô hình nền.")
    # the shards' names changed: rename to the usual pattern and write the index
    total = len(shard_files)
    final = {}
    for i, name in enumerate(shard_files, start=1):
        new = "model.safetensors" if total == 1 else f"model-{i:05d}-of-{total:05d}.safetensors"
        (out_dir / name).rename(out_dir / new)
        final[name] = new
    if total > 1:
        index = {"metadata": {}, "weight_map": {k: final[v] for k, v in weight_map.items()}}
        (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    for name in COPIED:
        if (base_dir / name).exists():
            shutil.copy(base_dir / name, out_dir / name)
    return MergeReport(merged=len(merged), shards=total, seconds=time.time() - t0, out_dir=out_dir)


def push_to_hub(folder: str | Path, repo_id: str, token: str | None = None, private: bool = True, api=None) -> str:
    """Upload an adapter (or a merged model) folder to the Hub, as a private repository by default.

    The token comes from the argument, $HF_TOKEN or Colab secrets; it is never printed or written.
    """
    from .env import stored_hf_token

    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f'Không có thư mục "{folder}" để tải lên.')
    token = token or stored_hf_token()
    if not token:
        raise ExportError("Cần token Hugging Face có quyền ghi (write) để tải lên: tạo ở Settings > Access tokens, rồi "
                          "đặt vào Colab Secrets với tên HF_TOKEN (hoặc biến môi trường HF_TOKEN). Không dán token "
                          "vào notebook.")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    return f"https://huggingface.co/{repo_id}"
