"""LoRA from scratch: the layer of the LoRA chapter, and the alpha / learning-rate toy of the rank/alpha chapter.

- `LoRALinear(base, r, alpha, rslora=False)`: y = W x + s * B A x with peft's shapes and initialisation.
- `adam_delta_w(...)`: the trajectory of delta W under Adam on `toy_regression()` (the alpha / learning-rate
  equivalence).
- `fuse_lora_sum(model)`: peft's LoRA layers compute W x + s * B (A x) as one `torch.addmm` (the profile's
  `lora_fused_sum` lever, chapter 9).

Elsewhere: parameter counts from a config in course_utils.configs (count_lora_params); the rank x alpha sweep
on the tiny model in course_utils.sweep.
"""

from __future__ import annotations

import math

import torch
from torch import nn


# ---------------------------------------------------------------- the LoRA layer from scratch

def lora_scaling(r: int, alpha: float, rslora: bool = False) -> float:
    """s = alpha / r, or alpha / sqrt(r) with rsLoRA (peft's use_rslora=True)."""
    return alpha / math.sqrt(r) if rslora else alpha / r


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a low-rank update: y = W x + b + s * B (A x).

    Shapes as in peft: W is (out, in), lora_A is (r, in), lora_B is (out, r).
    A starts Kaiming-uniform (like nn.Linear and peft), B starts at zero: a fresh adapter changes nothing.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, rslora: bool = False):
        super().__init__()
        if r <= 0:
            raise ValueError(f"r phải là số nguyên dương, nhận được r={r}.")
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha = r, alpha
        self.scaling = lora_scaling(r, alpha, rslora)
        factory = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x @ A^T is (..., r): the (out, in) matrix B A is never formed
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """delta W = s * B A, of shape (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def merged_weight(self) -> torch.Tensor:
        """W + s * B A: one matrix that gives the same output as the layer, with no extra cost."""
        return self.base.weight + self.delta_weight()


# ---------------------------------------------------------------- alpha and the learning rate under Adam

def toy_regression(out_features: int = 5, in_features: int = 7, r: int = 3, n: int = 32, seed: int = 0):
    """A small float64 regression for one LoRA layer: (W, A0, X, Y), where Y needs a delta W to be learnt.

    A0 is initialised as peft initialises lora_A (Kaiming-uniform, a = sqrt(5)).
    """
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(out_features, in_features, generator=g, dtype=torch.float64) / 3
    A0 = torch.empty(r, in_features, dtype=torch.float64)
    nn.init.kaiming_uniform_(A0, a=math.sqrt(5), generator=g)
    X = torch.randn(n, in_features, generator=g, dtype=torch.float64)
    Y = X @ (W + 0.3 * torch.randn(out_features, in_features, generator=g, dtype=torch.float64)).T
    return W, A0, X, Y


def adam_delta_w(base_weight, A0, X, Y, alpha: float, lr: float, steps: int, eps: float = 1e-16,
                 rslora: bool = False) -> list:
    """Train B and A of one LoRALinear with Adam on the loss mean((W + s B A) X^T - Y^T)^2; return delta W by step.

    base_weight (out, in) and A0 (r, in) set the starting point; no weight decay. In float64 and with a tiny eps,
    Adam ignores the scale of the gradients, which makes the equivalence of the chapter exact.
    """
    out_features, in_features = base_weight.shape
    base = nn.Linear(in_features, out_features, bias=False, dtype=base_weight.dtype)
    base.weight.data.copy_(base_weight)
    layer = LoRALinear(base, r=A0.shape[0], alpha=alpha, rslora=rslora)
    layer.lora_A.data.copy_(A0)
    opt = torch.optim.Adam([layer.lora_A, layer.lora_B], lr=lr, eps=eps)
    deltas = []
    for _ in range(steps):
        loss = ((layer(X) - Y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        deltas.append(layer.delta_weight().detach().clone())
    return deltas


def first_step_change(r: int, rslora: bool, optimizer: str = "adam", n_inputs: int = 1, alpha: float = 16.0,
                      lr: float = 1e-3, features: int = 64, seed: int = 0) -> float:
    """How much one training step moves a LoRA layer's output on its own inputs: ||X delta_W^T|| / ||X||.

    A float64 LoRALinear (features -> features, rank r, s = alpha/r or alpha/sqrt(r)) takes one step of "adam" or
    "sgd" at learning rate lr on a random regression of n_inputs inputs. With one input (or aligned inputs) the r
    terms of B (A x) add with the same sign; with many independent inputs they partly cancel.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f'optimizer phải là "adam" hoặc "sgd", không phải {optimizer!r}.')
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(features, features, generator=g, dtype=torch.float64) / math.sqrt(features)
    X = torch.randn(n_inputs, features, generator=g, dtype=torch.float64)
    Y = X @ (W + 0.1 * torch.randn(features, features, generator=g, dtype=torch.float64)).T
    base = nn.Linear(features, features, bias=False, dtype=torch.float64)
    base.weight.data.copy_(W)
    torch.manual_seed(seed)
    layer = LoRALinear(base, r=r, alpha=alpha, rslora=rslora)
    params = [layer.lora_A, layer.lora_B]
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr)
    loss = ((layer(X) - Y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        return ((X @ layer.delta_weight().T).norm() / X.norm()).item()


# ---------------------------------------------------------------- the LoRA sum in one addmm (a speed lever)

class FusedLoRASum:
    """Mixin for a peft LoRA layer: result + s * (A x) B^T as one `torch.addmm`.

    peft 0.21's forward clones the 4-bit layer's output, multiplies B (A x) by s and adds: three passes over an
    output-sized tensor forward, one more backward. addmm adds the low-rank product into the output inside the
    matrix product, with s as its `alpha`. Any case but one plain adapter goes to peft's own forward.
    """

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        names = self.active_adapters
        name = names[0] if len(names) == 1 else None
        if (self.disable_adapters or self.merged or kwargs.get("adapter_names") is not None or args
                or name not in self.lora_A or name in self.lora_variant or getattr(self, "fan_in_fan_out", False)):
            return super().forward(x, *args, **kwargs)
        lora_A, lora_B = self.lora_A[name], self.lora_B[name]
        if lora_B.bias is not None:  # lora_bias=True: peft adds B's bias too
            return super().forward(x, *args, **kwargs)
        device = x.device.type
        want = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else lora_A.weight.dtype
        if x.dtype != want:  # e.g. fp16 inputs, fp32 adapters, no autocast (generation): peft casts
            return super().forward(x, *args, **kwargs)
        result = self.base_layer(x, **kwargs)
        low = lora_A(self.lora_dropout[name](x))
        out = torch.addmm(result.reshape(-1, result.shape[-1]), low.reshape(-1, low.shape[-1]), lora_B.weight.t(),
                          alpha=self.scaling[name])
        return out.view(result.shape)


_FUSED: dict[type, type] = {}


def fuse_lora_sum(model) -> int:
    """Give every peft LoRA linear layer of `model` the FusedLoRASum forward; return how many were changed."""
    from peft.tuners.lora import Linear as LoraLinear

    kinds = [LoraLinear]
    try:
        from peft.tuners.lora.bnb import Linear4bit, Linear8bitLt

        kinds += [Linear4bit, Linear8bitLt]
    except ImportError:  # peft without bitsandbytes
        pass
    changed = 0
    for module in model.modules():
        kind = type(module)
        if kind in kinds:
            if kind not in _FUSED:
                _FUSED[kind] = type(f"Fused{kind.__name__}", (FusedLoRASum, kind), {"__module__": __name__})
            module.__class__ = _FUSED[kind]
            changed += 1
    return changed
