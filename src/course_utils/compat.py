"""Every workaround of an upstream behaviour, in one place.

Each is a small named function whose docstring gives the upstream reference, the versions it applies to, and its
guard: where the behaviour it works around is gone (an attribute missing, a version past the fix), it does nothing
and says so with a `CompatNotice` warning, so that the workaround can be removed. tests/test_compat.py reproduces
each upstream behaviour and fails once upstream changes it. Nothing here runs at import.
"""

from __future__ import annotations

import logging
import warnings

from packaging.version import Version


class CompatNotice(UserWarning):
    """A workaround found nothing to work around: upstream changed; remove the workaround."""


def _version(package: str) -> Version:
    from importlib.metadata import version

    return Version(version(package))


# ---------------------------------------------------------------- quiet logs (notebooks call this once)

# bitsandbytes/backends/cpu/ops.py (0.50): at import, on a CPU with AVX512-BF16, logs a warning when the optional
# `kernels` package cannot fetch "kernels-community/quantization-bitsandbytes" from the Hub (always, offline).
# The course never uses that inference kernel on the CPU (see keep_cpu_4bit_trainable).
BNB_CPU_KERNEL_LOGGER = "bitsandbytes.backends.cpu.ops"
# peft 0.21.2 (peft_model.py, PeftModel.__init__) reads `model.is_gradient_checkpointing`, which transformers 5.23
# deprecates (modeling_utils.py): a FutureWarning on every get_peft_model, nothing a learner can act on.
PEFT_GC_DEPRECATION = "`is_gradient_checkpointing` is deprecated"
# tqdm.autonotebook (imported by datasets) warns in a notebook without ipywidgets that it falls back to text bars.
TQDM_WIDGETS = "IProgress not found"


def quiet_logs() -> None:
    """Hide what a learner cannot act on: the three messages above and the loading progress bars.

    Call it before importing bitsandbytes (the notebooks' first cell does).
    """
    warnings.filterwarnings("ignore", message=TQDM_WIDGETS)
    import datasets
    import transformers

    logging.getLogger(BNB_CPU_KERNEL_LOGGER).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=PEFT_GC_DEPRECATION, category=FutureWarning)
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


# ---------------------------------------------------------------- bitsandbytes: 4-bit training on a CPU

def keep_cpu_4bit_trainable(model) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for bf16 CPU inference in eval mode; return the layers set.

    Upstream: bitsandbytes 0.50 `Linear4bit.forward` (bitsandbytes/nn/modules.py, CPU fused kernel of
    https://github.com/bitsandbytes-foundation/bitsandbytes/pull/1804): on a CPU with AVX512-BF16, a forward in eval
    mode without gradients converts the weight to a packed inference layout (`packing_format_for_cpu`) and never
    converts it back; training after an evaluation then fails ("a view of a leaf Variable ... in-place operation").
    No upstream issue found (checked 2026-12-03). Applies: bitsandbytes 0.50.x on CPU.
    Guard: Linear4bit without the `support_avx512bf16_for_cpu` attribute (upstream changed): nothing set, a notice.
    """
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    if layers and not hasattr(layers[0], "support_avx512bf16_for_cpu"):
        warnings.warn("bitsandbytes Linear4bit has no support_avx512bf16_for_cpu any more: "
                      "compat.keep_cpu_4bit_trainable can go.", CompatNotice, stacklevel=2)
        return 0
    for module in layers:
        module.support_avx512bf16_for_cpu = False
    return len(layers)


# ---------------------------------------------------------------- TRL: adapters cast to bf16

TRL_BF16_CAST_SINCE = Version("0.26")


def adapters_to_fp32(model) -> int:
    """Cast the trainable parameters back to fp32; return how many were not fp32.

    Upstream: TRL >= 0.26 (`SFTTrainer.__init__`, trl/trainer/sft_trainer.py, "the PEFT adapter weights are
    converted to bf16") casts the adapters of a quantized model to bf16 (https://github.com/huggingface/trl/pull/4577,
    because peft cannot keep them in fp32 on quantized models: https://github.com/huggingface/peft/issues/2889).
    A T4 has no bf16, and the fp16 GradScaler then fails at the first step:
    "_amp_foreach_non_finite_check_and_unscale_cuda" not implemented for 'BFloat16'
    (https://github.com/huggingface/trl/issues/4901). Applies: trl >= 0.26 (1.16 pinned).
    Guard: an older TRL has no cast to undo; where none was bf16, a notice says the cast is gone.
    """
    import torch

    if _version("trl") < TRL_BF16_CAST_SINCE:
        return 0
    changed = 0
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
            changed += 1
    quantized = getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_quantized", False)
    if quantized and changed == 0:
        warnings.warn("TRL left the adapters of a quantized model in fp32: compat.adapters_to_fp32 may go.",
                      CompatNotice, stacklevel=2)
    return changed


# ---------------------------------------------------------------- transformers + bitsandbytes: 8-bit optimizers

def release_optim_overrides(model=None) -> int:
    """Drop bitsandbytes' process-wide references to the modules of `model` (of every model when None); return how
    many were dropped.

    Upstream: transformers 5.23 `Trainer.create_optimizer` (src/transformers/trainer.py, since
    https://github.com/huggingface/transformers/pull/15622) registers every nn.Embedding of the model with
    bitsandbytes' `GlobalOptimManager` singleton whenever the optimizer is one of its 8-bit ones (adamw_8bit,
    paged_adamw_8bit): `register_module_override(module, "weight", {"optim_bits": 32})`. The manager appends
    (module, name, config) to a list it never empties (bitsandbytes/optim/optimizer.py), so the embedding outlives its
    model: 1 GiB in fp16 for Qwen2.5-7B, one more for each trainer built in the same process (measured on the GPU: a
    second lab run peaked one embedding higher, chapter 9). bitsandbytes reads the list only at the optimizer's first
    step (`Optimizer8bit.check_overrides`). No upstream issue found (checked 2026-12-03). Applies: transformers 4.18
    to 5.23 with bitsandbytes up to 0.50. Used at the end of every training (course_utils.train) and by
    course_utils.lab.free_memory.
    Guard: a manager without `module_weight_config_triple` (upstream changed): nothing dropped, a notice.
    """
    try:
        from bitsandbytes.optim import GlobalOptimManager
    except ImportError:
        return 0
    manager = GlobalOptimManager.get_instance()
    triples = getattr(manager, "module_weight_config_triple", None)
    if triples is None:
        warnings.warn("bitsandbytes' GlobalOptimManager keeps no module list any more: "
                      "compat.release_optim_overrides can go.", CompatNotice, stacklevel=2)
        return 0
    mine = None if model is None else {id(m) for m in model.modules()}
    kept = [t for t in triples if mine is not None and id(t[0]) not in mine]
    dropped = len(triples) - len(kept)
    triples[:] = kept
    return dropped


# ---------------------------------------------------------------- transformers: resume from the final checkpoint

def finished_checkpoint_state(trainer, checkpoint: str):
    """The TrainerState of `checkpoint` when it already reached the trainer's max_steps, else None.

    Upstream: transformers 5.23 `Trainer.train(resume_from_checkpoint=...)` from a checkpoint saved at max_steps
    trains one more optimizer step (global_step ends at max_steps + 1) and saves it. No upstream issue found
    (checked 2026-12-03). Applies: transformers 5.23 (pinned). Used by course_utils.train.train_with_resume, which
    then loads the finished run instead of calling train(). tests/test_compat.py reproduces the overshoot.
    """
    import os

    from transformers import TrainerState

    state = TrainerState.load_from_json(os.path.join(checkpoint, "trainer_state.json"))
    if 0 < trainer.args.max_steps <= state.global_step:
        return state
    return None


# ---------------------------------------------------------------- accelerate: several processes on a CPU

def cpu_processes_use_gloo() -> bool:
    """Under `accelerate launch` on a machine without CUDA, tell accelerate and transformers that the processes are
    CPU processes (gloo), so that they train data-parallel instead of each alone; True when it set that.

    Upstream: accelerate 1.15 `accelerate launch --cpu --num_processes N` (and a config with use_cpu) goes through
    its simple launcher, which starts one process unless mpirun is configured (accelerate/commands/launch.py,
    simple_launcher; accelerate/utils/launch.py, prepare_simple_launcher_cmd_env). The course's CPU config
    (course_utils/accelerate/cpu-2proc.yaml) uses the multi-GPU launcher (torchrun) instead, whose processes then
    need ACCELERATE_USE_CPU to pick the CPU and gloo (transformers 5.23 TrainingArguments._setup_devices).
    Guard: nothing where CUDA exists or outside a multi-process launch. No upstream issue found (checked 2026-12-03).
    """
    import os

    import torch

    if torch.cuda.is_available() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    os.environ.setdefault("ACCELERATE_USE_CPU", "true")
    return True


# ---------------------------------------------------------------- torch: activation offload waits on every copy

def _offload_pack_blocks(source: str) -> bool:
    """Whether save_on_cpu's source copies to pinned memory without non_blocking (the host waits for the GPU)."""
    pack = source[source.find("def pack_to_cpu"):source.find("def unpack_from_cpu")]
    return "pin_memory" in pack and "non_blocking" not in pack


def save_on_cpu_nonblocking(pin_memory: bool = False, device_type: str = "cuda"):
    """torch's save_on_cpu as fixed upstream: the copy to pinned CPU memory does not wait for the GPU."""
    import torch

    device_module = getattr(torch, device_type, torch.cuda)

    def pack(tensor):
        if not pin_memory:
            return tensor.device, tensor.cpu()
        pinnable = device_module.is_available() and not tensor.is_sparse
        packed = torch.empty(tensor.size(), dtype=tensor.dtype, layout=tensor.layout, pin_memory=pinnable)
        packed.copy_(tensor, non_blocking=pinnable)
        return tensor.device, packed

    def unpack(packed):
        device, tensor = packed
        return tensor.to(device, non_blocking=pin_memory)

    return torch.autograd.graph.saved_tensors_hooks(pack, unpack)


def offload_copies_wait() -> bool:
    """Whether transformers' activation offload, as set now, makes the CPU wait on each copy (see below)."""
    import inspect

    import torch
    import transformers.modeling_utils as modeling_utils

    return getattr(modeling_utils, "save_on_cpu", None) is not save_on_cpu_nonblocking and _offload_pack_blocks(
        inspect.getsource(torch.autograd.graph.save_on_cpu))


def offload_without_waiting() -> bool:
    """Make transformers' activation offload copy without waiting for the GPU; True when it changed anything.

    Upstream: torch `save_on_cpu(pin_memory=True)` (torch/autograd/graph.py) copied each saved tensor to pinned
    memory with a blocking copy: one cudaStreamSynchronize per offloaded tensor (165 per step on the 7B shape,
    chapter 9), so the CPU cannot queue work ahead of the GPU. Fixed by https://github.com/pytorch/pytorch/pull/175421
    (2026-02); present in torch 2.11 (the benchmark GPU's), gone in 2.13 (this course's CPU pin).
    transformers 5.23 `_activation_checkpointing_enable` (modeling_utils.py) wraps each checkpoint in it.
    Guard: a torch whose save_on_cpu already copies without blocking (or a transformers without that import):
    nothing changed, a notice.
    """
    import transformers.modeling_utils as modeling_utils

    if getattr(modeling_utils, "save_on_cpu", None) is save_on_cpu_nonblocking:
        return False
    if not hasattr(modeling_utils, "save_on_cpu") or not offload_copies_wait():
        warnings.warn("torch's save_on_cpu copies without blocking (or transformers no longer uses it): "
                      "compat.offload_without_waiting can go.", CompatNotice, stacklevel=2)
        return False
    modeling_utils.save_on_cpu = save_on_cpu_nonblocking
    return True


# ---------------------------------------------------------------- transformers: a sliding window as long as the batch

def window_mask_needed(kv_length: int, window: int) -> bool:
    """Whether transformers 5.23 builds an explicit SDPA mask for a causal batch with no padding and `window`."""
    from transformers import masking_utils

    return not masking_utils._ignore_causal_mask_sdpa(None, kv_length, kv_length, 0, 0, window)


def causal_skip_at_window() -> bool:
    """Let SDPA's is_causal path take a batch exactly as long as the sliding window; True when it changed anything.

    Upstream: transformers 5.23 `masking_utils._ignore_causal_mask_sdpa` keeps the explicit mask when
    `kv_length >= local_attention_size`
    (https://github.com/huggingface/transformers/blob/main/src/transformers/masking_utils.py, still so on main,
    checked 2026-12-03; no upstream issue found). A sliding window of W tokens hides key j from query i only when
    i - j >= W, which needs more than W tokens: at exactly W (Vistral/Mistral-7B, window 4096, at max_length 4096)
    the mask hides nothing, yet it is built (W x W) and forces SDPA off its fused causal kernels.
    The patch skips the mask in that one case only: no cache offset (training, a prompt), query as long as the keys.
    Guard: a transformers that already skips there (or lacks the function): nothing changed, a notice.
    """
    from transformers import masking_utils

    original = getattr(masking_utils, "_ignore_causal_mask_sdpa", None)
    if original is None or getattr(original, "_course_patched", False):
        return False
    if not window_mask_needed(8, 8):
        warnings.warn("transformers already skips the SDPA mask when the batch is as long as the sliding window: "
                      "compat.causal_skip_at_window can go.", CompatNotice, stacklevel=2)
        return False

    def skip(padding_mask, q_length, kv_length, q_offset, kv_offset, local_attention_size=None):
        if (local_attention_size is not None and kv_length == local_attention_size == q_length
                and isinstance(q_offset, int) and q_offset == 0 and kv_offset == 0):
            local_attention_size = None  # the window hides nothing: as if there were none
        return original(padding_mask, q_length, kv_length, q_offset, kv_offset, local_attention_size)

    skip._course_patched = True
    skip.__wrapped__ = original
    masking_utils._ignore_causal_mask_sdpa = skip
    return True
