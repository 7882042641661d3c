"""course_utils.lora: the LoRA layer against peft, parameter counts (configs) against peft, the Adam toys."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from course_utils.configs import count_lora_params
from course_utils.lora import LoRALinear, adam_delta_w, first_step_change, lora_scaling, toy_regression

peft = pytest.importorskip("peft")
from peft import LoraConfig, TaskType, get_peft_model  # noqa: E402

RTOL = 1e-5  # float32 rounding


@pytest.fixture(scope="module")
def tiny_model():
    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile

    model, _ = load_model_and_tokenizer(get_profile("tiny"), quantize=False)
    return model


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def peft_layer(model, r, alpha, rslora, target="q_proj"):
    config = LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora, target_modules=[target],
                        task_type=TaskType.CAUSAL_LM)
    peft_model = get_peft_model(copy.deepcopy(model), config)
    return getattr(peft_model.base_model.model.model.layers[1].self_attn, target)


@pytest.mark.parametrize("rslora", [False, True])
@pytest.mark.parametrize("r,alpha", [(1, 1), (8, 16), (16, 32), (64, 16)])
def test_lora_linear_matches_peft(tiny_model, r, alpha, rslora):
    theirs = peft_layer(tiny_model, r, alpha, rslora)
    ours = LoRALinear(copy.deepcopy(theirs.base_layer), r=r, alpha=alpha, rslora=rslora)
    assert ours.scaling == theirs.scaling["default"] == pytest.approx(
        alpha / math.sqrt(r) if rslora else alpha / r)
    assert ours.lora_A.shape == theirs.lora_A["default"].weight.shape == (r, ours.base.in_features)
    assert ours.lora_B.shape == theirs.lora_B["default"].weight.shape == (ours.base.out_features, r)
    torch.manual_seed(1)
    with torch.no_grad():
        theirs.lora_B["default"].weight.normal_(std=0.05)
        ours.lora_A.copy_(theirs.lora_A["default"].weight)
        ours.lora_B.copy_(theirs.lora_B["default"].weight)
        x = torch.randn(2, 7, ours.base.in_features)
        y = theirs(x)
        assert rel_diff(ours(x), y) < RTOL
        assert rel_diff(ours.delta_weight(), theirs.get_delta_weight("default")) < RTOL
        theirs.merge()
        assert rel_diff(ours.merged_weight(), theirs.base_layer.weight) < RTOL
        merged_out = x @ ours.merged_weight().T + ours.base.bias
        assert rel_diff(merged_out, y) < RTOL
        assert rel_diff(theirs(x), y) < RTOL  # peft's merged layer gives the unmerged output too


def test_fresh_lora_linear_is_identity_and_initialised_like_peft():
    torch.manual_seed(0)
    base = nn.Linear(48, 20)
    layer = LoRALinear(base, r=4, alpha=8)
    x = torch.randn(5, 48)
    assert torch.equal(layer(x), base(x))
    assert torch.count_nonzero(layer.lora_B) == 0
    bound = 1 / math.sqrt(48)  # kaiming_uniform_(a=√5) on (r, in): U(-1/√in, 1/√in)
    assert layer.lora_A.abs().max() <= bound and layer.lora_A.abs().max() > 0.5 * bound
    assert [p for p in layer.parameters() if p.requires_grad] == [layer.lora_A, layer.lora_B]


def test_lora_linear_gradients_only_reach_adapter():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 4), r=2, alpha=4)
    layer(torch.randn(3, 6)).sum().backward()
    assert layer.base.weight.grad is None
    assert layer.lora_B.grad is not None and layer.lora_B.grad.abs().sum() > 0
    assert torch.count_nonzero(layer.lora_A.grad) == 0  # B = 0: no gradient reaches A on the first step


def test_lora_linear_rejects_bad_rank():
    with pytest.raises(ValueError, match="r phải"):
        LoRALinear(nn.Linear(4, 4), r=0, alpha=1)


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj"),
                                     ("gate_proj", "up_proj", "down_proj"), "all-linear"])
@pytest.mark.parametrize("r", [1, 8, 16])
def test_count_lora_params_matches_peft(tiny_model, targets, r):
    config = LoraConfig(r=r, lora_alpha=2 * r, task_type=TaskType.CAUSAL_LM,
                        target_modules=targets if isinstance(targets, str) else list(targets))
    trainable, _ = get_peft_model(copy.deepcopy(tiny_model), config).get_nb_trainable_parameters()
    assert trainable == count_lora_params(tiny_model.config, r, targets)


def test_count_lora_params_matches_peft_on_4bit_model():
    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile

    model, _ = load_model_and_tokenizer(get_profile("tiny"), quantize=True)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type=TaskType.CAUSAL_LM)
    trainable, _ = get_peft_model(model, config).get_nb_trainable_parameters()
    assert trainable == count_lora_params(model.config, 16, "all-linear")


def test_count_lora_params_qwen_known_values():
    from course_utils.configs import qwen25_7b_config

    qwen = qwen25_7b_config()
    # r (in + out) summed by hand for one Qwen2.5-7B layer: q, k, v, o, gate, up, down
    per_layer_r1 = (3584 + 3584) + 2 * (3584 + 512) + (3584 + 3584) + 3 * (3584 + 18944)
    assert count_lora_params(qwen, 1) == 28 * per_layer_r1
    assert count_lora_params(qwen, 16, "all-linear") == 16 * 28 * per_layer_r1
    with pytest.raises(ValueError):
        count_lora_params(qwen, 8, ("wq",))


def test_lora_scaling():
    assert lora_scaling(16, 32) == 2
    assert lora_scaling(16, 32, rslora=True) == 8
    assert lora_scaling(64, 16) == 0.25


def _toy_problem():
    return toy_regression()


@pytest.mark.parametrize("k", [4.0, 3.0])
def test_alpha_lr_equivalence_under_adam(k):
    W, A0, X, Y = _toy_problem()
    ref = adam_delta_w(W, A0, X, Y, alpha=16, lr=1e-2, steps=60)
    same = adam_delta_w(W, A0 / math.sqrt(k), X, Y, alpha=16 * k, lr=1e-2 / math.sqrt(k), steps=60)
    alpha_only = adam_delta_w(W, A0, X, Y, alpha=16 * k, lr=1e-2, steps=60)
    scale = max(d.abs().max().item() for d in ref)
    assert max((a - b).abs().max().item() for a, b in zip(ref, same)) < 1e-9 * scale
    assert max((a - b).abs().max().item() for a, b in zip(ref, alpha_only)) > 1e-2 * scale


def test_alpha_lr_equivalence_breaks_with_large_eps():
    W, A0, X, Y = _toy_problem()
    k = 4.0
    ref = adam_delta_w(W, A0, X, Y, alpha=16, lr=1e-2, steps=60, eps=1e-3)
    same = adam_delta_w(W, A0 / math.sqrt(k), X, Y, alpha=16 * k, lr=1e-2 / math.sqrt(k), steps=60, eps=1e-3)
    assert max((a - b).abs().max().item() for a, b in zip(ref, same)) > 1e-6


def test_first_step_scales_with_rank_as_the_chapter_says():
    """One step at a fixed alpha, from r = 1 to r = 64: how the change of the layer's output grows with r.

    Adam on one input: constant with alpha / r, about sqrt(r) times larger with rsLoRA; SGD: constant with
    rsLoRA, about r times smaller with alpha / r; Adam on many independent inputs: it shrinks with alpha / r.
    """
    def growth(rslora, optimizer, n_inputs=1):
        return first_step_change(64, rslora, optimizer, n_inputs) / first_step_change(1, rslora, optimizer, n_inputs)

    assert 0.5 < growth(False, "adam") < 2
    assert 4 < growth(True, "adam") < 16
    assert 0.5 < growth(True, "sgd") < 2
    assert growth(False, "sgd") < 1 / 16
    assert growth(False, "adam", n_inputs=64) < 0.5
    assert 0.5 < growth(True, "adam", n_inputs=64) < 4
    with pytest.raises(ValueError, match="adam"):
        first_step_change(4, False, "adamw")


# ---------------------------------------------------------------- the fused LoRA sum (profile lever lora_fused_sum)

@pytest.fixture(scope="module")
def peft_4bit():
    """The tiny model in 4-bit (bitsandbytes on the CPU) with LoRA on every linear layer, B not zero."""
    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile
    from course_utils.train import lora_config

    profile = get_profile("tiny").replace(lora_dropout=0.0)
    model, _ = load_model_and_tokenizer(profile)
    model = get_peft_model(model, lora_config(profile))
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(p, std=0.02)
    return model


def loss_and_grads(model, ids):
    model.zero_grad()
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    return out.logits.detach().float(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def count_addmm(fn):
    calls = []
    addmm = torch.addmm
    torch.addmm = lambda *a, **k: calls.append(1) or addmm(*a, **k)
    try:
        return fn(), len(calls)
    finally:
        torch.addmm = addmm


def test_fused_lora_sum_matches_peft(peft_4bit):
    from course_utils.lora import fuse_lora_sum

    model = copy.deepcopy(peft_4bit)
    ids = torch.randint(3, 500, (2, 29), generator=torch.Generator().manual_seed(1))
    l0, g0 = loss_and_grads(model, ids)
    kinds = {type(m).__name__ for m in model.modules() if hasattr(m, "lora_A")}
    n = 7 * model.config.num_hidden_layers
    assert fuse_lora_sum(model) == n
    assert {type(m).__name__ for m in model.modules() if hasattr(m, "lora_A")} == {f"Fused{k}" for k in kinds}
    (l1, g1), calls = count_addmm(lambda: loss_and_grads(model, ids))
    assert calls == n  # every LoRA layer took the fused path
    assert rel_diff(l1, l0) < 1e-5
    assert max(rel_diff(g1[k], g0[k]) for k in g0) < 1e-4


def test_fused_lora_sum_under_autocast(peft_4bit):
    """As in fp16 training on a GPU: inputs in the autocast dtype, fp32 adapters (here bf16, the CPU's autocast)."""
    from course_utils.lora import fuse_lora_sum

    peft_layer_ = peft_4bit.base_model.model.model.layers[0].mlp.gate_proj
    fused = copy.deepcopy(peft_layer_)
    fuse_lora_sum(fused)
    x = torch.randn(2, 11, fused.in_features, generator=torch.Generator().manual_seed(3)).bfloat16()
    results = []
    for layer in (peft_layer_, fused):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            (y, calls) = count_addmm(lambda: layer(xi))
        y.float().square().sum().backward()
        results.append((y, calls, xi.grad, layer.lora_B["default"].weight.grad))
        layer.zero_grad()
    (y0, c0, gx0, gb0), (y1, c1, gx1, gb1) = results
    assert (c0, c1) == (0, 1) and y1.dtype == y0.dtype == torch.bfloat16
    assert rel_diff(y1.float(), y0.float()) < 2e-2  # bf16 rounds at different places
    assert rel_diff(gx1.float(), gx0.float()) < 5e-2 and rel_diff(gb1, gb0) < 5e-2
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fp32 inputs under autocast: peft's forward, its dtype
        (y2, calls) = count_addmm(lambda: fused(x.float()))
    assert calls == 0 and y2.dtype == torch.float32


def test_fused_lora_sum_leaves_other_cases_to_peft(peft_4bit):
    from course_utils.lora import fuse_lora_sum

    model = copy.deepcopy(peft_4bit)
    ids = torch.randint(3, 500, (1, 17), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    fuse_lora_sum(model)
    with torch.no_grad():
        with model.disable_adapter():
            assert torch.equal(model(input_ids=ids).logits, base)  # adapters off: the base model
        assert rel_diff(model(input_ids=ids).logits, plain) < 1e-5
        assert rel_diff(plain, base) > 1e-3  # the adapters do change the output


def test_fused_lora_sum_leaves_a_lora_bias_to_peft(tiny_model):
    from course_utils.lora import fuse_lora_sum

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], lora_bias=True, task_type=TaskType.CAUSAL_LM)
    model = get_peft_model(copy.deepcopy(tiny_model), config)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_(std=0.05)
        layer.lora_B["default"].bias.normal_(std=0.05)
    x = torch.randn(1, 5, layer.in_features)
    expected = layer(x)
    fuse_lora_sum(model)
    out, calls = count_addmm(lambda: layer(x))
    assert calls == 0 and torch.equal(out, expected)


def test_build_trainer_fuses_when_asked(tmp_path):
    from course_utils.data import load_split
    from course_utils.models import load_model_and_tokenizer
    from course_utils.profiles import get_profile
    from course_utils.train import build_trainer

    records = load_split("train")[:8]
    for fused in (False, True):
        profile = get_profile("tiny").replace(lora_fused_sum=fused, max_steps=1)
        model, tok = load_model_and_tokenizer(profile)
        trainer = build_trainer(model, tok, records, None, profile, tmp_path / str(fused))
        names = {type(m).__name__ for m in trainer.model.modules() if hasattr(m, "lora_A")}
        assert all(n.startswith("Fused") for n in names) == fused and names
        trainer.train()
        assert math.isfinite(trainer.state.log_history[-1]["train_loss"])
