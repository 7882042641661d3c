"""LoRA: the LoRA layer from scratch, and the rank/alpha experiments.

(Parameter counts from a config: course_utils.configs.count_lora_params.)
- `LoRALinear(base, r, alpha, rslora=False)`: y = W x + s * B A x with peft's shapes and initialisation.
- `adam_delta_w(...)`: the trajectory of delta W under Adam (the alpha / learning-rate equivalence).
- `sweep_rank_alpha(...)`: final validation loss of the tiny model for ranks x scaling rules.

    python -m course_utils.lora --full-grid   # the whole rank x scaling grid from the command line
    python -m course_utils.lora --lr 1e-2     # the reduced grid at another learning rate
"""

from __future__ import annotations

import functools
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


# ---------------------------------------------------------------- the rank x alpha sweep on the tiny model

# name -> (alpha, use_rslora) as a function of the rank r and the hidden size h
SCALINGS = {
    "alpha = r": lambda r, h: (r, False),
    "alpha = 2r": lambda r, h: (2 * r, False),
    "alpha = 16": lambda r, h: (16, False),
    "rsLoRA, alpha = 16": lambda r, h: (16, True),
    "alpha = √hidden, rsLoRA": lambda r, h: (math.sqrt(h), True),
}
FULL_RANKS = (1, 2, 4, 8, 16, 32, 64)
REDUCED_RANKS = (1, 16, 64)


def scaling_of(name: str, r: int, hidden: int) -> float:
    """The factor s that multiplies B A for one scaling rule of SCALINGS."""
    alpha, rslora = SCALINGS[name](r, hidden)
    return lora_scaling(r, alpha, rslora)


def distinct_runs(ranks, scalings=tuple(SCALINGS), hidden: int = 128) -> set:
    """The (r, s) pairs of a grid: cells with the same r and s are the same training run."""
    return {(r, round(scaling_of(name, r, hidden), 9)) for name in scalings for r in ranks}


def tokenize_chat(records, tokenizer, max_length: int) -> list[dict]:
    """Alpaca records -> input_ids and labels (-100 outside the assistant's answer), cut at max_length.

    Needs a chat template with {% generation %} markers (the tiny model's has them).
    """
    from .data import alpaca_to_messages

    rows = []
    for record in records:
        enc = tokenizer.apply_chat_template(alpaca_to_messages(record), tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids = enc["input_ids"][:max_length]
        mask = enc["assistant_masks"][:max_length]
        rows.append({"input_ids": ids, "labels": [t if m else -100 for t, m in zip(ids, mask)]})
    return rows


def collate(rows, pad_id: int, device="cpu") -> dict:
    """Pad a list of tokenized rows on the right into one batch."""
    length = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), length), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        attention[i, :n] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": attention.to(device)}


@torch.no_grad()
def mean_loss(model, batches) -> float:
    """Token-weighted mean cross-entropy over the assistant tokens of the batches."""
    total, count = 0.0, 0
    model.eval()
    for batch in batches:
        n = int((batch["labels"][:, 1:] != -100).sum())
        total += model(**batch).loss.item() * n
        count += n
    return total / count


def train_lora_run(base_model, r: int, alpha: float, rslora: bool, train_batches, eval_batches, lr: float,
                   seed: int = 0) -> float:
    """One run of the sweep: peft LoRA (all linear layers, no dropout) on a copy of base_model,
    plain Adam at a constant learning rate (no weight decay, no warmup), one pass over train_batches;
    return the validation loss."""
    import copy

    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(seed)  # the same A at the same rank for every scaling rule
    config = LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora, target_modules="all-linear",
                        lora_dropout=0.0, bias="none", task_type=TaskType.CAUSAL_LM)
    model = get_peft_model(copy.deepcopy(base_model), config)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for batch in train_batches:
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mean_loss(model, eval_batches)


def sweep_data(steps: int = 16, batch_size: int = 8, max_length: int = 128, seed: int = 0):
    """The tiny model (fp32, on the GPU if there is one) and the fixed batches of the sweep.

    Returns (model, train_batches, eval_batches): `steps` training batches drawn from the course's train split
    in a shuffled order fixed by `seed`, and the whole validation split. Cached: the runs copy the model.
    """
    return _sweep_data(steps, batch_size, max_length, seed)


@functools.lru_cache(maxsize=2)
def _sweep_data(steps: int, batch_size: int, max_length: int, seed: int):
    import random

    from .data import load_split
    from .models import load_model_and_tokenizer
    from .profiles import get_profile

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_model_and_tokenizer(get_profile("tiny"), quantize=False)
    model.to(device)
    train_rows = tokenize_chat(load_split("train"), tokenizer, max_length)
    eval_rows = tokenize_chat(load_split("validation"), tokenizer, max_length)
    order = list(range(len(train_rows)))
    random.Random(seed).shuffle(order)
    order = (order * (1 + steps * batch_size // len(order)))[: steps * batch_size]
    train_batches = [collate([train_rows[i] for i in order[k : k + batch_size]], tokenizer.pad_token_id, device)
                     for k in range(0, len(order), batch_size)]
    eval_batches = [collate(eval_rows[k : k + batch_size], tokenizer.pad_token_id, device)
                    for k in range(0, len(eval_rows), batch_size)]
    return model, train_batches, eval_batches


def sweep_rank_alpha(ranks=REDUCED_RANKS, scalings=tuple(SCALINGS), steps: int = 16, lr: float = 2e-3,
                     batch_size: int = 8, max_length: int = 128, seed: int = 0, verbose: bool = True) -> dict:
    """Final validation loss of the tiny model for every (scaling rule, rank): {(name, r): loss}.

    Every run sees the same batches in the same order, the same learning rate and the same number of steps;
    only r and the scaling s change. Two cells with the same r and the same s are the same run: it is
    trained once. The base model stays in fp32 (LoRA, not QLoRA: the choice of r and alpha does not depend
    on how the frozen base is stored). results[("base", 0)] is the loss before any training.
    """
    import time

    model, train_batches, eval_batches = sweep_data(steps, batch_size, max_length, seed)
    hidden = model.config.hidden_size
    results = {("base", 0): mean_loss(model, eval_batches)}
    done: dict[tuple[int, float], float] = {}  # (r, s) -> loss
    t0 = time.time()
    for name in scalings:
        for r in ranks:
            alpha, rslora = SCALINGS[name](r, hidden)
            key = (r, round(lora_scaling(r, alpha, rslora), 9))
            if key not in done:
                done[key] = train_lora_run(model, r, alpha, rslora, train_batches, eval_batches, lr, seed)
            results[(name, r)] = done[key]
        if verbose:
            row = "  ".join(f"r={r}: {results[(name, r)]:.3f}" for r in ranks)
            print(f"{name:<24} {row}   ({time.time() - t0:.0f} s)")
    if verbose:
        print(f"{len(done)} lần huấn luyện cho {len(ranks) * len(scalings)} ô; "
              f"loss kiểm định trước khi huấn luyện: {results[('base', 0)]:.3f}")
    return results


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Quét rank x hệ số alpha trên mô hình tiny.")
    parser.add_argument("--full-grid", action="store_true", help=f"mọi rank {FULL_RANKS}")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args(argv)
    ranks = FULL_RANKS if args.full_grid else REDUCED_RANKS
    sweep_rank_alpha(ranks=ranks, steps=args.steps, lr=args.lr)


if __name__ == "__main__":
    main()
