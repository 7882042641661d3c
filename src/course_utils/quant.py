"""Quantization from scratch: absmax and affine int8, and NF4 exactly as bitsandbytes computes it.

- `absmax_quantize`: symmetric, no zero point, one scale per tensor (or per row, like LLM.int8()).
- `affine_quantize`: a scale and a zero point that cover [min, max] (PyTorch's MinMaxObserver).
- `nf4_quantize` / `nf4_dequantize`: QLoRA's NF4, absmax per block of 64 values, each scaled value
  rounded to the nearest of the 16 levels `NF4_LEVELS`. The codes and absmax equal those of
  `bitsandbytes.functional.quantize_4bit(x, blocksize=64, quant_type="nf4")` (bitsandbytes 0.50,
  CPU), ties and the short last block included.
- `pack_4bit` / `unpack_4bit`: two codes per byte in bitsandbytes' order (first code in the high nibble).
"""

from __future__ import annotations

import torch

NF4_OFFSET = 0.9677083  # bitsandbytes' create_normal_map default: the outermost probability used
_TINY = 1e-38  # bitsandbytes clamps absmax to this before dividing


def absmax_quantize(x: torch.Tensor, bits: int = 8, dim: int | None = None):
    """Symmetric quantization: q = round(x * qmax / absmax), qmax = 2**(bits-1) - 1 (127 for int8).

    dim=None: one absmax for the whole tensor; dim=-1: one per row (LLM.int8()'s vector-wise
    quantization). Returns (q as int8, absmax as float32, kept with its reduced dimension).
    """
    qmax = 2 ** (bits - 1) - 1
    x = x.float()
    absmax = x.abs().amax() if dim is None else x.abs().amax(dim=dim, keepdim=True)
    inverse = torch.where(absmax > 0, qmax / absmax, torch.zeros_like(absmax))  # an all-zero row stays 0
    return torch.round(x * inverse).to(torch.int8), absmax


def absmax_dequantize(q: torch.Tensor, absmax: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """x_hat = q * absmax / qmax."""
    return q.float() * (absmax / (2 ** (bits - 1) - 1))


def affine_quantize(x: torch.Tensor, bits: int = 8):
    """Affine (asymmetric) quantization: q = clamp(round(x / scale) + zero_point, 0, 2**bits - 1).

    The range [min, max] is widened to contain 0, so that 0 is exact (as PyTorch's MinMaxObserver
    does). Returns (q as uint8, scale, zero_point), both float32 scalars.
    """
    qmax = 2**bits - 1
    x = x.float()
    lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
    scale = ((hi - lo) / qmax).clamp(min=_TINY)
    zero_point = torch.round(-lo / scale)
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, qmax)
    return q.to(torch.uint8), scale, zero_point


def affine_dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """x_hat = (q - zero_point) * scale."""
    return (q.float() - zero_point) * scale


def nf4_levels(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NF4 levels, ascending, float32, from -1 to 1, as bitsandbytes' create_normal_map builds them.

    8 positive levels at the N(0, 1) quantiles of 8 probabilities evenly spaced from `offset`
    down to 0.5 (0.5 excluded), 7 negative levels the same way with 7 probabilities, and an exact
    0; all divided by the largest. The probabilities are float32 (torch.linspace), the quantiles
    float64 (scipy's norm.ppf there, Normal.icdf here).
    """
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    positive = normal.icdf(torch.linspace(offset, 0.5, 9)[:-1].double())
    negative = -normal.icdf(torch.linspace(offset, 0.5, 8)[:-1].double())
    levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).float().sort().values
    return levels / levels.max()


# The 16 levels as a float32 tensor (read-only by convention: nf4_quantize uses its own copy).
NF4_LEVELS = nf4_levels()
_LEVELS = NF4_LEVELS.clone()
_MIDPOINTS = (_LEVELS[:-1] + _LEVELS[1:]) / 2  # the 15 decision boundaries, float32


def nf4_quantize(x: torch.Tensor, blocksize: int = 64):
    """NF4 codes (uint8, 0..15, one per element of x in row-major order) and absmax (float32, one per block).

    The last block may be short. As bitsandbytes does: a full block is multiplied by 1/absmax, the
    short last block is divided by its absmax; absmax is clamped to 1e-38 before that (and a short
    all-zero block stores 1e-38); a value exactly halfway between two levels takes the lower code.
    """
    flat = x.reshape(-1).float()
    n = flat.numel()
    full = n - n % blocksize
    blocks = flat[:full].reshape(-1, blocksize)
    absmax = blocks.abs().amax(dim=1)
    scaled = [(blocks * (1.0 / absmax.clamp(min=_TINY)).unsqueeze(1)).reshape(-1)]
    if full < n:
        tail = flat[full:]
        tail_absmax = tail.abs().amax().clamp(min=_TINY)
        absmax = torch.cat([absmax, tail_absmax.reshape(1)])
        scaled.append(tail / tail_absmax)
    scaled = torch.cat(scaled).clamp(-1, 1)
    codes = torch.bucketize(scaled, _MIDPOINTS)  # index of the nearest level; ties go down
    return codes.to(torch.uint8), absmax


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor, shape, blocksize: int = 64,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """x_hat = NF4_LEVELS[code] * absmax of its block, reshaped to `shape` (computed in float32)."""
    values = _LEVELS[codes.reshape(-1).long()]
    n = values.numel()
    pad = -n % blocksize
    values = torch.nn.functional.pad(values, (0, pad)).reshape(-1, blocksize) * absmax.reshape(-1, 1)
    return values.reshape(-1)[:n].reshape(shape).to(dtype)


def pack_4bit(codes: torch.Tensor) -> torch.Tensor:
    """Two codes per byte, first in the high nibble, shape (ceil(n/2), 1) as bitsandbytes stores them.

    An odd count is padded with code 7 (the level 0), as bitsandbytes pads with a zero value.
    """
    flat = codes.reshape(-1).to(torch.uint8)
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_tensor([7])])
    return ((flat[0::2] << 4) | flat[1::2]).unsqueeze(1)


def unpack_4bit(packed: torch.Tensor, n: int) -> torch.Tensor:
    """The n codes stored in bitsandbytes' packed uint8 tensor (high nibble first)."""
    flat = packed.reshape(-1).view(torch.uint8)
    return torch.stack([flat >> 4, flat & 0xF], dim=1).reshape(-1)[:n]


# ---------------------------------------------------------------- how evenly NF4's 16 levels are used

def nf4_bin_probabilities(levels: torch.Tensor = NF4_LEVELS, offset: float = NF4_OFFSET) -> torch.Tensor:
    """P(code = k) for each level k under the construction's own assumption (float64, sums to 1).

    The assumption: a scaled value is x / Phi^-1(offset) with x ~ N(0, 1), rounded to the nearest level
    (bins split at the midpoints; the outermost bins reach to infinity, as clamping does).
    """
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    span = normal.icdf(torch.tensor(offset, dtype=torch.float64))
    lv = levels.double()
    edges = torch.cat([torch.tensor([-torch.inf], dtype=torch.float64), (lv[:-1] + lv[1:]) / 2 * span,
                       torch.tensor([torch.inf], dtype=torch.float64)])
    cdf = normal.cdf(edges)
    return cdf[1:] - cdf[:-1]


def expected_absmax(n: int = 64, steps: int = 200_001) -> float:
    """E[max |x_i|] over n independent N(0, 1) samples: the integral of 1 - (2 Phi(m) - 1)^n over m >= 0."""
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    m = torch.linspace(0.0, 12.0, steps, dtype=torch.float64)
    return torch.trapezoid(1 - (2 * normal.cdf(m) - 1) ** n, m).item()


def nf4_code_shares(x: torch.Tensor, blocksize: int = 64) -> torch.Tensor:
    """The share of the values of x that each of the 16 NF4 codes receives (float64, sums to 1)."""
    codes, _ = nf4_quantize(x, blocksize=blocksize)
    return torch.bincount(codes.long(), minlength=16).double() / codes.numel()
