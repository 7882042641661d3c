"""The rank x alpha sweep of the rank/alpha chapter, on the tiny model, with the learning rate tuned per cell.

A cell is (scaling rule, rank r). Each cell is trained at every learning rate of a small grid and keeps its best
validation loss: under Adam, changing alpha is (up to the scale of A's initialisation) changing the learning
rate, so comparing ranks or rules at one learning rate compares learning rates as much as ranks.

The runs use a plain PyTorch loop on peft's LoRA, not `course_utils.train.build_trainer`: the sweep trains
hundreds of 16-step runs, and on 2 CPU cores a step of TRL's trainer was measured at about three times the step
itself (0.2 s against 0.07 s).

    python -m course_utils.sweep                           # the notebook's small grid, printed
    python -m course_utils.sweep --full --out PATH.jsonl   # the chapter's grid (the committed results file)
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from pathlib import Path

import torch

from .lora import lora_scaling

# name -> (alpha, use_rslora) as a function of the rank r and the hidden size h
SCALINGS = {
    "alpha = r": lambda r, h: (r, False),
    "alpha = 2r": lambda r, h: (2 * r, False),
    "alpha = 16": lambda r, h: (16, False),
    "rsLoRA, alpha = 16": lambda r, h: (16, True),
    "alpha = √hidden, rsLoRA": lambda r, h: (math.sqrt(h), True),
}
BASE_LR = 2e-3  # the tiny profile's learning rate
FULL_RANKS = (1, 4, 16, 64)
FULL_LRS = tuple(BASE_LR * 2.0 ** k for k in range(-2, 6))  # 5e-4 ... 6.4e-2, a factor 2 apart
FULL_SEEDS = (0, 1, 2)
SMALL_RANKS = (64,)  # the notebook's grid: 2 rules x 3 learning rates at r = 64, 6 runs
SMALL_RULES = ("alpha = 16", "alpha = 2r")
SMALL_LRS = (BASE_LR / 4, BASE_LR, BASE_LR * 4)
STEPS, BATCH_SIZE, MAX_LENGTH = 16, 8, 128
RESULTS = Path(__file__).parent / "data" / "sweep_rank_alpha.jsonl"


def scaling_of(name: str, r: int, hidden: int) -> float:
    """The factor s that multiplies B A for one scaling rule of SCALINGS."""
    alpha, rslora = SCALINGS[name](r, hidden)
    return lora_scaling(r, alpha, rslora)


# ---------------------------------------------------------------- data and one run

def tokenize_chat(records, tokenizer, max_length: int) -> list[dict]:
    """Alpaca records -> input_ids and labels (-100 outside the assistant's answer, as TRL's
    assistant_only_loss), cut at max_length."""
    from .data import alpaca_to_messages
    from .templates import assistant_mask

    rows = []
    for record in records:
        ids, mask = assistant_mask(tokenizer, alpaca_to_messages(record))
        ids, mask = ids[:max_length], mask[:max_length]
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
    """One run: peft LoRA (all linear layers, no dropout) on a copy of base_model, plain Adam at a constant
    learning rate (no weight decay, no warmup), one pass over train_batches; returns the validation loss
    (inf when training diverged)."""
    import copy

    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(seed)  # the same A at the same rank for every scaling rule and learning rate
    config = LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora, target_modules="all-linear",
                        lora_dropout=0.0, bias="none", task_type=TaskType.CAUSAL_LM)
    model = get_peft_model(copy.deepcopy(base_model), config)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for batch in train_batches:
        loss = model(**batch).loss
        if not torch.isfinite(loss):
            return math.inf
        opt.zero_grad()
        loss.backward()
        opt.step()
    loss = mean_loss(model, eval_batches)
    return loss if math.isfinite(loss) else math.inf


def sweep_data(steps: int = STEPS, batch_size: int = BATCH_SIZE, max_length: int = MAX_LENGTH, seed: int = 0):
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


# ---------------------------------------------------------------- the sweep

@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Run the block with n CPU threads for torch (None, or a GPU: unchanged), then restore the previous number."""
    if n is None or torch.cuda.is_available():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def sweep_rank_alpha(ranks=SMALL_RANKS, scalings=SMALL_RULES, lrs=SMALL_LRS, seeds=(0,), steps: int = STEPS,
                     batch_size: int = BATCH_SIZE, max_length: int = MAX_LENGTH, verbose: bool = True,
                     out: str | Path | None = None, threads: int | None = 1) -> list[dict]:
    """Every run of a grid: one dict per (seed, rule, r, lr) with its validation loss, plus one "base" row per
    seed (the loss before training, r = 0).

    Every run of a seed sees the same batches in the same order and starts from the same A at a given rank;
    only r, s and the learning rate change. Cells with the same r and s are the same run: trained once.
    The base stays in fp32 (LoRA, not QLoRA: the choice of r and alpha does not depend on how the frozen base
    is stored). With `out`, each row is also appended to that JSONL file as soon as it is computed.
    On a CPU the runs use `threads` threads (one by default: the tiny model gains little from more, and on a
    machine shared with other jobs, extra threads mostly wait on each other).
    """
    with cpu_threads(threads):
        return _sweep(ranks, scalings, lrs, seeds, steps, batch_size, max_length, verbose, out)


def _sweep(ranks, scalings, lrs, seeds, steps, batch_size, max_length, verbose, out) -> list[dict]:
    rows = []

    def keep(row):
        rows.append(row)
        if out is not None:
            write_results([row], out, append=True)

    t0 = time.time()
    for seed in seeds:
        model, train_batches, eval_batches = sweep_data(steps, batch_size, max_length, seed)
        hidden = model.config.hidden_size
        keep({"seed": seed, "rule": "base", "r": 0, "s": 0.0, "lr": 0.0, "steps": 0,
              "loss": mean_loss(model, eval_batches)})
        done: dict[tuple, float] = {}  # (r, s, lr) -> loss
        for name in scalings:
            for r in ranks:
                alpha, rslora = SCALINGS[name](r, hidden)
                s = lora_scaling(r, alpha, rslora)
                for lr in lrs:
                    key = (r, round(s, 9), lr)
                    if key not in done:
                        done[key] = train_lora_run(model, r, alpha, rslora, train_batches, eval_batches, lr, seed)
                    keep({"seed": seed, "rule": name, "r": r, "s": s, "lr": lr, "steps": steps, "loss": done[key]})
            if verbose:
                best = best_per_cell([x for x in rows if x["seed"] == seed and x["rule"] == name])
                cells = "  ".join(f"r={r}: {loss:.3f}" for (_, r), (_, loss) in best.items())
                print(f"seed {seed}  {name:<24} {cells}   ({time.time() - t0:.0f} s)")
    if verbose:
        print(f"{len({(x['seed'], x['r'], round(x['s'], 9), x['lr']) for x in rows if x['r']})} lần huấn luyện; "
              f"loss kiểm định trước khi huấn luyện: {rows[0]['loss']:.3f}")
    return rows


def losses(rows, seed: int | None = None) -> dict:
    """{(rule, r, lr): validation loss}, the mean over the seeds (or only `seed`'s); a diverged run counts as inf."""
    runs: dict[tuple, list[float]] = {}
    for x in rows:
        if x["rule"] != "base" and (seed is None or x["seed"] == seed):
            runs.setdefault((x["rule"], x["r"], x["lr"]), []).append(x["loss"])
    return {key: sum(v) / len(v) for key, v in runs.items()}


def best_per_cell(rows, seed: int | None = None) -> dict:
    """{(rule, r): (best learning rate, its loss)}: the learning rate of the lowest mean loss over the seeds
    (or of `seed`'s loss)."""
    out: dict[tuple, tuple[float, float]] = {}
    for (rule, r, lr), loss in sorted(losses(rows, seed).items()):
        if (rule, r) not in out or loss < out[(rule, r)][1]:
            out[(rule, r)] = (lr, loss)
    return out


def at_lr(rows, lr: float, seed: int | None = None) -> dict:
    """{(rule, r): loss} of every cell at one learning rate (mean over the seeds, or one seed)."""
    return {(rule, r): loss for (rule, r, x), loss in losses(rows, seed).items() if math.isclose(x, lr)}


def seed_spread(rows) -> dict:
    """{(rule, r): max - min of the seeds' losses at the cell's best learning rate}: the noise of one cell."""
    best = best_per_cell(rows)
    out: dict[tuple, list[float]] = {}
    for x in rows:
        if x["rule"] != "base" and math.isclose(x["lr"], best[(x["rule"], x["r"])][0]):
            out.setdefault((x["rule"], x["r"]), []).append(x["loss"])
    return {cell: max(v) - min(v) for cell, v in out.items()}


def base_loss(rows) -> float:
    """The validation loss before training (the same for every seed: the base model and the split are fixed)."""
    return sum(x["loss"] for x in rows if x["rule"] == "base") / sum(x["rule"] == "base" for x in rows)


def load_results(path: str | Path = RESULTS) -> list[dict]:
    """The committed runs of the chapter's grid (written by `python -m course_utils.sweep --full`)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{**x, "loss": math.inf if x["loss"] is None else x["loss"]} for x in rows]  # None: diverged


def write_results(rows, path: str | Path, append: bool = False) -> None:
    """One JSON object per line: a run (seed, rule, r, s, lr, steps, loss), or a seed's base loss (rule "base")."""
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for x in rows:
            f.write(json.dumps({**x, "loss": x["loss"] if math.isfinite(x["loss"]) else None},
                               ensure_ascii=False) + "\n")


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Quét rank × hệ số alpha × tốc độ học trên mô hình tiny.")
    parser.add_argument("--full", action="store_true",
                        help=f"lưới của chương: r {FULL_RANKS}, 5 quy tắc, tốc độ học {FULL_LRS}, hạt giống {FULL_SEEDS}")
    parser.add_argument("--ranks", type=int, nargs="+", help="thay các giá trị r của lưới")
    parser.add_argument("--rules", nargs="+", choices=list(SCALINGS), help="thay các quy tắc của lưới")
    parser.add_argument("--lrs", type=float, nargs="+", help="thay các tốc độ học của lưới")
    parser.add_argument("--seeds", type=int, nargs="+", help="thay các hạt giống")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--out", type=Path, help="ghi mọi lần chạy vào tệp JSONL này")
    args = parser.parse_args(argv)
    ranks, rules, lrs, seeds = ((FULL_RANKS, tuple(SCALINGS), FULL_LRS, FULL_SEEDS) if args.full
                                else (SMALL_RANKS, SMALL_RULES, SMALL_LRS, (0,)))
    if args.out:
        args.out.write_text("", encoding="utf-8")
    rows = sweep_rank_alpha(ranks=tuple(args.ranks or ranks), scalings=tuple(args.rules or rules),
                            lrs=tuple(args.lrs or lrs), seeds=tuple(args.seeds or seeds), steps=args.steps, out=args.out)
    if args.out:
        print(f"Đã ghi {len(rows)} dòng vào {args.out}")


if __name__ == "__main__":
    main()
