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
