"""Each workaround of course_utils.compat: the upstream behaviour is reproduced (the test fails once upstream
changes it, so the workaround can go), and the workaround undoes it."""

import warnings

import pytest
import torch

from course_utils import compat
from course_utils.data import load_split
from course_utils.profiles import get_profile

TINY = get_profile("tiny")


def _tiny_4bit():
    """The tiny model loaded in 4 bits straight from transformers, without any course workaround."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.models import bnb_config, model_path

    path = model_path(TINY)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, quantization_config=bnb_config(TINY))
    return model, AutoTokenizer.from_pretrained(path)


def test_bitsandbytes_repacks_cpu_weights_in_eval_mode():
    import bitsandbytes as bnb
    from bitsandbytes.functional import has_avx512bf16

    if not has_avx512bf16():
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes takes no packed path here")
    model, tok = _tiny_4bit()
    layer = next(m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
    model.eval()
    with torch.no_grad():
        model(**tok("Xin chào", return_tensors="pt"))
    assert getattr(layer.weight.quant_state, "packing_format_for_cpu", False)  # upstream: repacked, never undone

    model, tok = _tiny_4bit()
    assert compat.keep_cpu_4bit_trainable(model) == sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    layer = next(m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
    model.eval()
    with torch.no_grad():
        model(**tok("Xin chào", return_tensors="pt"))
    assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)


def test_trl_casts_the_adapters_of_a_quantized_model_to_bf16(tmp_path):
    from trl import SFTConfig, SFTTrainer

    from course_utils.data import to_training_dataset
    from course_utils.train import lora_config

    model, tok = _tiny_4bit()
    compat.keep_cpu_4bit_trainable(model)
    trainer = SFTTrainer(model=model, processing_class=tok, peft_config=lora_config(TINY),
                         train_dataset=to_training_dataset(load_split("train")[:4]),
                         args=SFTConfig(output_dir=str(tmp_path), report_to="none", max_steps=1, bf16=False))
    dtypes = {p.dtype for p in trainer.model.parameters() if p.requires_grad}
    assert dtypes == {torch.bfloat16}  # upstream behaviour (trl >= 0.26)
    assert compat.adapters_to_fp32(trainer.model) > 0
    assert {p.dtype for p in trainer.model.parameters() if p.requires_grad} == {torch.float32}
    with warnings.catch_warnings():
        warnings.simplefilter("error", compat.CompatNotice)
        with pytest.raises(compat.CompatNotice):  # nothing left to undo on a quantized model: the notice says so
            compat.adapters_to_fp32(trainer.model)


def test_transformers_resume_from_the_final_checkpoint_trains_one_step_more(tmp_path):
    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import build_trainer, last_checkpoint

    small = TINY.replace(max_steps=2, save_steps=2, eval_steps=2, logging_steps=1, per_device_train_batch_size=2)
    data = load_split("train")[:8]
    model, tok = load_model_and_tokenizer(small)
    first = build_trainer(model, tok, data, None, small, tmp_path, disable_tqdm=True)
    first.train()
    checkpoint = last_checkpoint(tmp_path)
    assert checkpoint.endswith("checkpoint-2")
    model, tok = load_model_and_tokenizer(small)
    again = build_trainer(model, tok, data, None, small, tmp_path, disable_tqdm=True)
    assert compat.finished_checkpoint_state(again, checkpoint).global_step == 2
    again.train(resume_from_checkpoint=checkpoint)
    assert again.state.global_step == 3  # upstream behaviour: one step past max_steps


def test_peft_reads_the_deprecated_gradient_checkpointing_flag():
    from peft import get_peft_model

    from course_utils.train import lora_config

    model, _ = _tiny_4bit()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        get_peft_model(model, lora_config(TINY))
    assert any(compat.PEFT_GC_DEPRECATION in str(w.message) for w in caught)  # upstream behaviour
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compat.quiet_logs()
        warnings.warn(f"{compat.PEFT_GC_DEPRECATION} and will be removed", FutureWarning)
        warnings.warn("another deprecation", FutureWarning)
    assert [str(w.message) for w in caught] == ["another deprecation"]  # only the named warning is hidden


def test_accelerate_cpu_launch_starts_one_process(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "world.py"
    script.write_text("from accelerate import PartialState\nprint('WORLD', PartialState().num_processes)\n")
    out = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script)],
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.split().count("WORLD") == 1 and "WORLD 1" in out.stdout  # upstream: one process, not two


# torch/autograd/graph.py save_on_cpu before https://github.com/pytorch/pytorch/pull/175421 (torch 2.11)
TORCH_211_PACK = '''
        def pack_to_cpu(tensor):
            if not pin_memory:
                return (tensor.device, tensor.cpu())
            packed = torch.empty(
                tensor.size(),
                dtype=tensor.dtype,
                layout=tensor.layout,
                pin_memory=(device_module.is_available() and not tensor.is_sparse),
            )
            packed.copy_(tensor)
            return (tensor.device, packed)

        def unpack_from_cpu(packed):
'''


def test_torch_offload_copy_blocks_only_before_the_fix():
    """The course's CPU torch has the fix (the workaround then does nothing and says so); torch 2.11, which the
    benchmark GPU and older Colab images run, has the blocking copy. Fails once transformers stops offloading through
    torch's save_on_cpu (the workaround would then patch nothing)."""
    import inspect

    import transformers.modeling_utils as modeling_utils

    assert compat._offload_pack_blocks(TORCH_211_PACK)
    fixed = not compat._offload_pack_blocks(inspect.getsource(torch.autograd.graph.save_on_cpu))
    assert modeling_utils.save_on_cpu is torch.autograd.graph.save_on_cpu
    if fixed:
        with pytest.warns(compat.CompatNotice):
            assert compat.offload_without_waiting() is False
        assert modeling_utils.save_on_cpu is torch.autograd.graph.save_on_cpu


def test_offload_without_waiting_patches_a_blocking_torch(monkeypatch):
    import transformers.modeling_utils as modeling_utils

    monkeypatch.setattr(compat, "_offload_pack_blocks", lambda source: True)
    monkeypatch.setattr(modeling_utils, "save_on_cpu", torch.autograd.graph.save_on_cpu)
    assert compat.offload_copies_wait()
    assert compat.offload_without_waiting() is True
    assert not compat.offload_copies_wait()
    assert modeling_utils.save_on_cpu is compat.save_on_cpu_nonblocking
    assert compat.offload_without_waiting() is False  # once is enough


@pytest.mark.parametrize("pin_memory", [False, True])
def test_save_on_cpu_nonblocking_keeps_the_gradients(pin_memory):
    if pin_memory and not torch.cuda.is_available():
        pytest.skip("pinned memory needs a GPU")
    w = torch.randn(6, 5, requires_grad=True)
    x = torch.randn(3, 6)

    def grad(hooks):
        w.grad = None
        with hooks:
            y = torch.tanh(x @ w).square().sum()
        y.backward()
        return w.grad.clone()

    assert torch.equal(grad(compat.save_on_cpu_nonblocking(pin_memory=pin_memory, device_type="cpu")),
                       grad(torch.autograd.graph.save_on_cpu(pin_memory=pin_memory, device_type="cpu")))


# ---------------------------------------------------------------- transformers: a sliding window as long as the batch

def _unpatched(masking_utils):
    """transformers' own function, also after the course loaded a model (which applies the workaround)."""
    f = masking_utils._ignore_causal_mask_sdpa
    return getattr(f, "__wrapped__", f)


def _tiny_mistral(window: int):
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=window,
                           attn_implementation="sdpa")
    return MistralForCausalLM(config).eval()


def test_transformers_masks_a_batch_as_long_as_the_window(monkeypatch):
    """transformers 5.23 builds an explicit mask at exactly the window's length (fails once upstream skips it)."""
    from transformers import masking_utils

    monkeypatch.setattr(masking_utils, "_ignore_causal_mask_sdpa", _unpatched(masking_utils))
    assert compat.window_mask_needed(8, 8)
    assert not compat.window_mask_needed(7, 8)


def test_causal_skip_at_window_changes_the_mask_not_the_output(monkeypatch):
    from transformers import masking_utils

    monkeypatch.setattr(masking_utils, "_ignore_causal_mask_sdpa", _unpatched(masking_utils))
    model = _tiny_mistral(window=8)
    ids = torch.randint(0, 64, (2, 8))
    masked = model(ids).logits
    calls = []
    original_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs.get("attn_mask") is None and kwargs.get("is_causal"))
        return original_sdpa(*args, **kwargs)

    assert compat.causal_skip_at_window() is True
    assert compat.causal_skip_at_window() is False  # once is enough
    assert not compat.window_mask_needed(8, 8)
    assert compat.window_mask_needed(9, 8)  # longer than the window: the mask hides keys, so it stays
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    causal = model(ids).logits
    assert calls and all(calls)  # every layer took SDPA's causal path, no mask
    torch.testing.assert_close(causal, masked, rtol=1e-5, atol=1e-5)
    # past the window the mask is real: the output must still differ from plain causal attention
    longer = torch.randint(0, 64, (1, 12))
    calls.clear()
    windowed = model(longer).logits
    assert calls and not any(calls)
    full = _tiny_mistral(window=None)
    full.load_state_dict(model.state_dict())
    assert not torch.allclose(windowed[:, 8:], full(longer).logits[:, 8:])


def _embeddings_alive() -> int:
    import gc

    gc.collect()
    return sum(isinstance(o, torch.nn.Embedding) for o in gc.get_objects())


def test_an_8bit_optimizer_keeps_the_embedding_alive_until_released(tmp_path):
    """transformers registers the model's embeddings with bitsandbytes' global manager, which keeps them after the
    model is gone (upstream behaviour); release_optim_overrides drops them."""
    from bitsandbytes.optim import GlobalOptimManager
    from trl import SFTConfig, SFTTrainer

    from course_utils.data import to_training_dataset
    from course_utils.train import lora_config

    compat.release_optim_overrides()
    before = _embeddings_alive()
    model, tok = _tiny_4bit()
    compat.keep_cpu_4bit_trainable(model)
    trainer = SFTTrainer(model=model, processing_class=tok, peft_config=lora_config(TINY),
                         train_dataset=to_training_dataset(load_split("train")[:4]),
                         args=SFTConfig(output_dir=str(tmp_path), report_to="none", max_steps=1, bf16=False,
                                        optim="adamw_8bit"))
    trainer.create_optimizer()
    triples = GlobalOptimManager.get_instance().module_weight_config_triple
    assert [type(t[0]) for t in triples] == [torch.nn.Embedding]  # upstream: the model's embedding, registered
    del trainer, model
    assert _embeddings_alive() == before + 1  # upstream: the model is gone, its embedding is not
    assert compat.release_optim_overrides() == 1 and triples == []
    assert _embeddings_alive() == before


def test_release_optim_overrides_drops_only_the_given_model():
    from bitsandbytes.optim import GlobalOptimManager

    compat.release_optim_overrides()
    mine, other = torch.nn.Sequential(torch.nn.Embedding(4, 2)), torch.nn.Sequential(torch.nn.Embedding(4, 2))
    manager = GlobalOptimManager.get_instance()
    for model in (mine, other):
        manager.register_module_override(model[0], "weight", {"optim_bits": 32})
    assert compat.release_optim_overrides(mine) == 1
    assert [t[0] for t in manager.module_weight_config_triple] == [other[0]]
    assert compat.release_optim_overrides() == 1


def test_release_optim_overrides_says_when_upstream_keeps_no_list(monkeypatch):
    from bitsandbytes.optim import GlobalOptimManager

    monkeypatch.setattr(GlobalOptimManager, "get_instance", classmethod(lambda cls: object()))
    with pytest.warns(compat.CompatNotice):
        assert compat.release_optim_overrides() == 0
