"""course_utils.export: the streamed merge equals base + adapter; sharing on the Hub never shows the token."""

import json

import pytest
import torch

from course_utils.export import ExportError, merge_streamed, push_to_hub


def random_adapter(base_dir, out_dir, dtype=torch.float32, **config):
    """A LoRA adapter on all linear layers with random (non-zero) A and B, saved like trainer.save_model saves it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", **config))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    peft_model.save_pretrained(out_dir)
    return out_dir


def logits_pair(base_dir, adapter_dir, merged_dir, dtype=torch.float32):
    """Logits of base + adapter (peft, not merged) and of the merged model, on the same Vietnamese input."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    enc = tok(["Tinh chỉnh mô hình ngôn ngữ bằng LoRA trên một GPU T4."], return_tensors="pt")
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
        with_adapter = PeftModel.from_pretrained(base, str(adapter_dir))(**enc).logits.float()
        merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=dtype)(**enc).logits.float()
        plain = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)(**enc).logits.float()
    return with_adapter, merged, plain


def relative(a, b) -> float:
    return float((a - b).norm() / b.norm())


def test_streamed_merge_equals_base_plus_adapter_on_the_tiny_model(tiny_dir, tmp_path):
    adapter = random_adapter(tiny_dir, tmp_path / "adapter")
    report = merge_streamed(tiny_dir, adapter, tmp_path / "merged", max_shard_bytes=2**20)  # force several shards
    n_linear = 7 * json.loads((tiny_dir / "config.json").read_text())["num_hidden_layers"]
    assert report.merged == n_linear and report.shards > 1
    index = json.loads((tmp_path / "merged" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == report.shards
    with_adapter, merged, plain = logits_pair(tiny_dir, adapter, tmp_path / "merged")
    assert relative(merged, with_adapter) < 1e-3  # the acceptance: 1e-3 relative, fp32
    assert relative(plain, with_adapter) > 1e-2  # the adapter does change the output: the test can fail


def test_streamed_merge_on_smollm2(smollm2_dir, tmp_path):
    adapter = random_adapter(smollm2_dir, tmp_path / "adapter", dtype=torch.bfloat16)
    merge_streamed(smollm2_dir, adapter, tmp_path / "merged")
    with_adapter, merged, plain = logits_pair(smollm2_dir, adapter, tmp_path / "merged")
    # weights stored in bf16 (as SmolLM2 ships): within a 16-bit float's rounding of each merged weight
    assert relative(merged, with_adapter) < 2e-2 < relative(plain, with_adapter)


def test_what_the_merge_refuses(tiny_dir, tmp_path):
    dora = random_adapter(tiny_dir, tmp_path / "dora", use_dora=True)
    with pytest.raises(ExportError, match="merge_and_unload"):
        merge_streamed(tiny_dir, dora, tmp_path / "out")
    with pytest.raises(ExportError, match="adapter_config.json"):
        merge_streamed(tiny_dir, tmp_path, tmp_path / "out2")
    adapter = random_adapter(tiny_dir, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    from safetensors.torch import load_file, save_file

    weights = load_file(str(adapter / "adapter_model.safetensors"))
    save_file({k.replace("layers.0.", "layers.99."): v for k, v in weights.items()},
              str(renamed / "adapter_model.safetensors"))
    (renamed / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="mô hình khác"):  # an adapter of another model
        merge_streamed(tiny_dir, renamed, tmp_path / "out3")
    assert not (tmp_path / "out3").exists()


class FakeHub:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, private, exist_ok):
        self.calls.append(("create", repo_id, private))

    def upload_folder(self, folder_path, repo_id):
        self.calls.append(("upload", repo_id, folder_path))


def test_push_to_hub_uses_a_private_repo_and_never_prints_the_token(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ExportError, match="HF_TOKEN"):
        push_to_hub(tmp_path, "me/adapter", api=FakeHub())
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 34)
    hub = FakeHub()
    url = push_to_hub(tmp_path, "me/adapter", api=hub)
    assert url == "https://huggingface.co/me/adapter"
    assert hub.calls == [("create", "me/adapter", True), ("upload", "me/adapter", str(tmp_path))]
    assert "hf_" not in capsys.readouterr().out
