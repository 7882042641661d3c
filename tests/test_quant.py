"""course_utils.quant against bitsandbytes (CPU) and PyTorch: same codes, same constants, same bytes."""

from __future__ import annotations

import math
import zlib

import pytest
import torch

bnb_functional = pytest.importorskip("bitsandbytes.functional")

from course_utils.memory import bits_per_param_4bit  # noqa: E402
from course_utils.quant import (  # noqa: E402
    NF4_LEVELS,
    absmax_dequantize,
    absmax_quantize,
    affine_dequantize,
    affine_quantize,
    nf4_dequantize,
    nf4_levels,
    nf4_quantize,
    pack_4bit,
    unpack_4bit,
)

MIDPOINTS = (NF4_LEVELS[:-1] + NF4_LEVELS[1:]) / 2


def bnb_nf4(x: torch.Tensor, blocksize: int = 64):
    """bitsandbytes' NF4 codes (unpacked) and absmax for x."""
    packed, state = bnb_functional.quantize_4bit(x, blocksize=blocksize, quant_type="nf4")
    return unpack_4bit(packed, x.numel()), state.absmax, packed


def assert_same_as_bnb(x: torch.Tensor, blocksize: int = 64):
    codes, absmax = nf4_quantize(x, blocksize)
    ref_codes, ref_absmax, _ = bnb_nf4(x, blocksize)
    assert codes.dtype == torch.uint8 and absmax.dtype == torch.float32
    assert codes.shape == (x.numel(),)
    assert absmax.shape == (math.ceil(x.numel() / blocksize),)
    mismatch = (codes != ref_codes).nonzero().flatten()
    assert mismatch.numel() == 0, f"{mismatch.numel()} codes differ, first at {mismatch[:5].tolist()}"
    assert torch.equal(absmax, ref_absmax)


# --- the NF4 table -------------------------------------------------------------------------------

def test_levels_equal_bitsandbytes_table():
    table = bnb_functional.get_4bit_type("nf4", device="cpu")
    assert NF4_LEVELS.dtype == torch.float32 and NF4_LEVELS.shape == (16,)
    assert (NF4_LEVELS - table).abs().max().item() < 1e-6
    assert torch.equal(NF4_LEVELS, table)  # in fact bit for bit
    assert torch.equal(nf4_levels(), table)


def test_levels_shape_of_the_type():
    assert torch.all(NF4_LEVELS[1:] > NF4_LEVELS[:-1])
    assert NF4_LEVELS[0] == -1 and NF4_LEVELS[-1] == 1 and NF4_LEVELS[7] == 0
    assert (NF4_LEVELS < 0).sum() == 7 and (NF4_LEVELS > 0).sum() == 8


def test_levels_depend_on_offset():
    other = nf4_levels(offset=0.99)
    assert other[0] == -1 and other[-1] == 1
    assert not torch.allclose(other, NF4_LEVELS)


# --- NF4 codes and absmax equal bitsandbytes' ----------------------------------------------------

SIZES = [1, 2, 63, 64, 65, 127, 128, 129, 1000, 4096 + 7]
SHAPES = [(n,) for n in SIZES] + [(3, 5), (7, 64), (4, 96), (129, 3), (2, 3, 11), (5, 7, 9), (2, 64, 33), (1, 1, 1)]


def make(shape, kind: str, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    flat = x.view(-1)
    if kind == "zeros":
        flat[torch.rand(flat.shape, generator=g) < 0.3] = 0
    elif kind == "outliers":
        flat[torch.randint(0, flat.numel(), (3,), generator=g)] *= 80
    elif kind == "zero_blocks":
        flat[:64] = 0
        flat[-5:] = 0
    elif kind == "uniform":
        x = torch.rand(shape, generator=g) * 2 - 1
    elif kind == "tiny":
        x = x * 1e-30
    elif kind == "negative_max":
        flat[::64] = -10
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["normal", "zeros", "outliers", "zero_blocks", "uniform", "tiny", "negative_max"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nf4_quantize_equals_bitsandbytes(shape, kind, dtype):
    x = make(shape, kind, seed=zlib.crc32(f"{shape}{kind}".encode())).to(dtype)
    assert_same_as_bnb(x)


@pytest.mark.parametrize("blocksize", [32, 128, 256, 4096])
def test_other_block_sizes(blocksize):
    for n in (1, blocksize - 1, blocksize, blocksize + 1, 3 * blocksize + 5):
        assert_same_as_bnb(torch.randn(n), blocksize)


def test_random_sizes_fuzz():
    g = torch.Generator().manual_seed(1234)
    for _ in range(60):
        n = int(torch.randint(1, 5000, (1,), generator=g))
        scale = float(torch.rand(1, generator=g)) * 10 ** int(torch.randint(-6, 4, (1,), generator=g))
        assert_same_as_bnb(torch.randn(n, generator=g) * scale)


def test_all_zero_tensors():
    for n in (1, 3, 64, 65, 128):
        assert_same_as_bnb(torch.zeros(n))
    codes, absmax = nf4_quantize(torch.zeros(65))
    assert torch.all(codes == 7)  # level 0
    assert absmax[0] == 0  # a full all-zero block stores 0 ...
    assert absmax[1] == torch.tensor(1e-38)  # ... a short one the clamp value


def test_special_values_and_layouts():
    assert_same_as_bnb(torch.randn(100) * 1e-39)  # subnormal: absmax below the 1e-38 clamp
    assert_same_as_bnb(torch.full((65,), -0.0))
    assert_same_as_bnb(torch.randn(7, 9).t())  # not contiguous: row-major order of the logical shape
    assert_same_as_bnb(torch.randn(2, 70)[:, ::2])
    for special in (float("inf"), float("-inf"), float("nan")):
        x = torch.randn(150)
        x[3] = special
        codes, absmax = nf4_quantize(x)
        ref_codes, ref_absmax, _ = bnb_nf4(x)
        assert torch.equal(codes, ref_codes)
        assert torch.equal(absmax.nan_to_num(0), ref_absmax.nan_to_num(0))
        assert torch.equal(absmax.isnan(), ref_absmax.isnan())


def test_values_on_midpoints_take_the_lower_code():
    g = torch.Generator().manual_seed(0)
    x = MIDPOINTS[torch.randint(0, 15, (64 * 40,), generator=g)]
    x[::64] = 1.0  # absmax 1 in every block: the scaled values are the midpoints themselves
    codes, _ = nf4_quantize(x)
    on_midpoint = torch.ones_like(x, dtype=torch.bool)
    on_midpoint[::64] = False
    expected = torch.bucketize(x, MIDPOINTS, right=False)
    assert torch.equal(codes.long(), expected)
    below = NF4_LEVELS[codes.long()][on_midpoint]
    assert torch.all(below < x[on_midpoint])  # the level chosen is the one below the midpoint
    assert_same_as_bnb(x)
    assert_same_as_bnb(-x)


def find_reciprocal_disagreement():
    """A pair (absmax, value) where value * (1/absmax) and value / absmax fall on two sides of a midpoint."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(100_000, generator=g) * 3 + 0.01
    x = MIDPOINTS[torch.randint(0, 15, (100_000,), generator=g)] * a
    by_mul = torch.bucketize((x * (1.0 / a)).clamp(-1, 1), MIDPOINTS)
    by_div = torch.bucketize((x / a).clamp(-1, 1), MIDPOINTS)
    i = int((by_mul != by_div).nonzero()[0])
    return a[i], x[i], int(by_mul[i]), int(by_div[i])


def test_full_blocks_multiply_short_block_divides():
    a, v, code_mul, code_div = find_reciprocal_disagreement()
    assert code_mul != code_div
    full = torch.zeros(64)
    full[0], full[1] = a, v
    short = full[:10].clone()
    assert int(nf4_quantize(full)[0][1]) == code_mul == int(bnb_nf4(full)[0][1])
    assert int(nf4_quantize(short)[0][1]) == code_div == int(bnb_nf4(short)[0][1])
    # the same pair in a tensor of 64 + 10 values: the first block multiplies, the last divides
    both = torch.cat([full, short])
    assert_same_as_bnb(both)


def test_real_weights_of_a_layer():
    g = torch.Generator().manual_seed(7)
    w = torch.randn(384, 128, generator=g) * 0.04
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert_same_as_bnb(w.to(dtype))


# --- packing, dequantization ----------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 1001])
def test_pack_equals_bitsandbytes_bytes(n):
    x = torch.randn(n)
    codes, _ = nf4_quantize(x)
    _, _, packed = bnb_nf4(x)
    assert torch.equal(pack_4bit(codes), packed)
    assert torch.equal(unpack_4bit(pack_4bit(codes), n), codes)
    assert int(packed[0, 0]) >> 4 == int(codes[0])  # first value in the high nibble


def test_odd_count_is_padded_with_code_seven():
    x = torch.randn(3)
    _, _, packed = bnb_nf4(x)
    assert int(packed[-1, 0]) & 0xF == 7


@pytest.mark.parametrize("shape", [(64,), (1000,), (7, 64), (384, 128), (3, 128), (2, 3, 64)], ids=str)
def test_dequantize_equals_bitsandbytes(shape):
    x = torch.randn(shape)
    packed, state = bnb_functional.quantize_4bit(x, blocksize=64, quant_type="nf4")
    ref = bnb_functional.dequantize_4bit(packed, state, quant_type="nf4")
    codes, absmax = nf4_quantize(x)
    mine = nf4_dequantize(codes, absmax, x.shape)
    assert mine.shape == x.shape
    assert torch.equal(mine, ref.reshape(x.shape))


@pytest.mark.parametrize("shape", [(4, 96), (5, 7, 9), (4103,), (65,)], ids=str)
def test_dequantize_equals_bitsandbytes_reference_kernel(shape):
    # bitsandbytes' own torch kernel (not its CPU C++ one, which assumes blocks inside a row)
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute

    kernel = getattr(_dequantize_4bit_compute, "__wrapped__", _dequantize_4bit_compute)
    x = torch.randn(shape)
    packed, state = bnb_functional.quantize_4bit(x, blocksize=64, quant_type="nf4")
    ref = kernel(packed.reshape(-1), state.absmax, state.code, 64, x.shape, torch.float32)
    codes, absmax = nf4_quantize(x)
    assert torch.equal(nf4_dequantize(codes, absmax, x.shape), ref)


def test_dequantization_error_is_at_most_half_a_gap():
    x = torch.randn(50, 64)
    codes, absmax = nf4_quantize(x)
    err = (nf4_dequantize(codes, absmax, x.shape) - x).abs()
    half_gap = (NF4_LEVELS[1:] - NF4_LEVELS[:-1]).max() / 2
    assert torch.all(err <= half_gap * absmax.reshape(-1, 1) * (1 + 1e-6))


def test_nf4_beats_fp4_on_normal_weights():
    x = torch.randn(256, 256, generator=torch.Generator().manual_seed(3))
    errors = {}
    for kind in ("nf4", "fp4"):
        packed, state = bnb_functional.quantize_4bit(x, blocksize=64, quant_type=kind)
        errors[kind] = (bnb_functional.dequantize_4bit(packed, state, quant_type=kind) - x).pow(2).mean()
    codes, absmax = nf4_quantize(x)
    mine = (nf4_dequantize(codes, absmax, x.shape) - x).pow(2).mean()
    assert torch.isclose(mine, errors["nf4"])
    assert errors["nf4"] < errors["fp4"]


# --- double quantization: what bitsandbytes stores ------------------------------------------------

def stored_bytes(packed, state) -> dict[str, int]:
    parts = {"codes": packed.nbytes, "absmax": state.absmax.nbytes}
    if state.nested:
        parts["nested_absmax"] = state.state2.absmax.nbytes
        parts["offset"] = state.offset.nbytes
    return parts


@pytest.mark.parametrize("double_quant", [False, True])
def test_bits_per_parameter_match_memory_module(double_quant):
    n = 4096 * 1024
    x = torch.randn(n)
    packed, state = bnb_functional.quantize_4bit(x, blocksize=64, quant_type="nf4",
                                                 compress_statistics=double_quant)
    parts = stored_bytes(packed, state)
    if double_quant:
        assert state.absmax.dtype == torch.uint8 and state.state2.blocksize == 256
        assert state.state2.absmax.dtype == torch.float32
    else:
        assert state.absmax.dtype == torch.float32
    per_block = sum(v for k, v in parts.items() if k != "offset")
    assert per_block * 8 / n == bits_per_param_4bit(double_quant)
    assert bits_per_param_4bit(True) == pytest.approx(4.127, abs=5e-4)
    assert bits_per_param_4bit(False) == 4.5


# --- absmax and affine int8 ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_absmax_rows_equal_llm_int8(dtype):
    x = torch.randn(300, 128).to(dtype)
    ref_q, ref_absmax, _ = bnb_functional.int8_vectorwise_quant(x.clone(), threshold=0.0)
    q, absmax = absmax_quantize(x, dim=-1)
    assert torch.equal(q, ref_q)
    assert torch.equal(absmax.squeeze(1), ref_absmax)


def test_absmax_roundtrip_and_zero_rows():
    x = torch.randn(10, 64)
    x[3] = 0
    q, absmax = absmax_quantize(x, dim=-1)
    assert torch.all(q[3] == 0)
    err = (absmax_dequantize(q, absmax) - x).abs()
    assert torch.all(err <= absmax / 127 / 2 + 1e-7)
    q, absmax = absmax_quantize(x)
    assert absmax.ndim == 0 and q.abs().max() == 127


@pytest.mark.parametrize("kind", ["normal", "positive", "shifted"])
def test_affine_equals_pytorch_min_max_observer(kind):
    g = torch.Generator().manual_seed(5)
    x = {"normal": torch.randn(5000, generator=g),
         "positive": torch.relu(torch.randn(5000, generator=g)),
         "shifted": torch.randn(5000, generator=g) * 0.02 + 0.05}[kind]
    observer = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)
    observer(x)
    scale, zero_point = observer.calculate_qparams()
    q, s, z = affine_quantize(x)
    assert s.item() == scale.item() and z.item() == zero_point.item()
    ref = torch.fake_quantize_per_tensor_affine(x, scale.item(), int(zero_point), 0, 255)
    assert torch.equal(affine_dequantize(q, s, z), ref)


def test_affine_beats_absmax_on_one_sided_data():
    x = torch.relu(torch.randn(10_000, generator=torch.Generator().manual_seed(1)))
    q, absmax = absmax_quantize(x)
    err_absmax = (absmax_dequantize(q, absmax) - x).pow(2).mean()
    q, s, z = affine_quantize(x)
    err_affine = (affine_dequantize(q, s, z) - x).pow(2).mean()
    assert err_affine < err_absmax / 3  # half the codes wasted: step twice as large


# ---------------------------------------------------------------- how evenly NF4's levels are used

def test_bin_probabilities_sum_to_one_and_are_not_equal():
    from course_utils.quant import nf4_bin_probabilities

    p = nf4_bin_probabilities()
    assert p.shape == (16,) and abs(p.sum().item() - 1) < 1e-12 and (p > 0).all()
    assert p.max() - p.min() > 0.01  # roughly 1/16 each, not exactly
    # the asymmetric construction: 7 negative levels spread over the same range as 8 positive ones, so each gets more
    assert p[:7].mean() > p[8:].mean() and p.argmax() < 7


def test_bin_probabilities_match_sampling():
    from course_utils.quant import NF4_LEVELS, NF4_OFFSET, nf4_bin_probabilities

    span = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(NF4_OFFSET)).item()
    x = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0)) / span
    mids = (NF4_LEVELS[:-1] + NF4_LEVELS[1:]) / 2
    sampled = torch.bincount(torch.bucketize(x.clamp(-1, 1), mids), minlength=16).double() / x.numel()
    assert torch.allclose(sampled, nf4_bin_probabilities(), atol=1e-3)


def test_expected_absmax():
    from course_utils.quant import expected_absmax

    assert abs(expected_absmax(1) - math.sqrt(2 / math.pi)) < 1e-6  # E|x| of one N(0, 1) sample
    blocks = torch.randn(200_000, 64, generator=torch.Generator().manual_seed(1)).abs().amax(dim=1)
    assert abs(blocks.mean().item() - expected_absmax(64)) < 0.005
    assert expected_absmax(256) > expected_absmax(64) > expected_absmax(16)  # grows with the block size


def test_code_shares_of_normal_blocks():
    from course_utils.quant import nf4_bin_probabilities, nf4_code_shares

    x = torch.randn(512, 1024, generator=torch.Generator().manual_seed(2))
    shares = nf4_code_shares(x)
    assert abs(shares.sum().item() - 1) < 1e-12
    # each block's absmax lands on code 0 or 15: at least 1/64 of the values
    assert shares[0] + shares[15] >= 1 / 64
    # values divided by a block absmax crowd towards 0: outer codes rarer, inner codes more common than assumed
    p = nf4_bin_probabilities()
    assert shares[0] + shares[15] < p[0] + p[15] and shares[6:10].sum() > p[6:10].sum()
