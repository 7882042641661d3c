"""The exercise checkers of chapter 5: right answers pass, typical wrong answers fail, the placeholder `...` too."""

from __future__ import annotations

import torch

from course_utils.exercises import NO_ANSWER
from course_utils.exercises import quant as ex
from course_utils.quant import NF4_LEVELS, nf4_dequantize, nf4_quantize


def test_bnb_fields(capsys):
    assert ex.check_bnb_fields({"a", "b", "c", "e", "g"})
    assert not ex.check_bnb_fields({"a", "b", "c"})  # the llm_int8_* names that also act on 4 bits forgotten
    assert "llm_int8_skip_modules" in capsys.readouterr().out
    assert not ex.check_bnb_fields({"a", "b", "c", "e", "g", "f"})  # a field that does not exist
    assert not ex.check_bnb_fields({"a", "b", "c", "d", "e", "g"})  # the 8-bit threshold
    assert not ex.check_bnb_fields(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_bits_per_param(capsys):
    assert ex.check_bits_per_param(4 + 8 / 128 + 32 / (128 * 256))
    assert not ex.check_bits_per_param(4 + 32 / 128)  # no double quantization
    assert not ex.check_bits_per_param(4 + 8 / 64 + 32 / (64 * 256))  # blocks of 64
    assert not ex.check_bits_per_param(...)
    assert NO_ANSWER in capsys.readouterr().out


def test_nf4_codes(capsys):
    x = torch.randn(100, generator=torch.Generator().manual_seed(5))
    right, _ = nf4_quantize(x)
    assert ex.check_nf4_codes(right, x)
    mids = (NF4_LEVELS[:-1] + NF4_LEVELS[1:]) / 2
    one_absmax = torch.bucketize(x / x.abs().max(), mids)  # one absmax for both blocks
    assert not ex.check_nf4_codes(one_absmax, x)
    assert "khối cuối" in capsys.readouterr().out
    assert not ex.check_nf4_codes(right[:64], x)  # the short last block forgotten
    assert not ex.check_nf4_codes(right.tolist(), x)  # not a tensor
    assert not ex.check_nf4_codes(..., x)
    assert NO_ANSWER in capsys.readouterr().out


def test_blocksize_errors(capsys):
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))
    right = ex.blocksize_errors(w)
    assert ex.check_blocksize_errors(right, w)
    assert not ex.check_blocksize_errors(list(reversed(right)), w)  # wrong order
    absolute = []
    for b in ex.BLOCK_SIZES:  # absolute instead of relative errors
        c, a = nf4_quantize(w, blocksize=b)
        absolute.append((w - nf4_dequantize(c, a, w.shape, blocksize=b)).norm().item())
    assert not ex.check_blocksize_errors(absolute, w)
    assert not ex.check_blocksize_errors("sai số", w)
    assert not ex.check_blocksize_errors(..., w)
    assert NO_ANSWER in capsys.readouterr().out


def test_skipped_steps(capsys):
    assert ex.skipped_steps(3.0, 2.0**20) == 6  # 2^14 · 3 = 49152 fits fp16, 2^15 · 3 does not
    assert ex.skipped_steps(1.0, 2.0**16) == 1  # the default start already overflows a gradient of 1
    assert ex.check_skipped_steps(6, 3.0, 2.0**20)
    assert not ex.check_skipped_steps(5, 3.0, 2.0**20)  # one halving short
    assert "65504" in capsys.readouterr().out
    assert not ex.check_skipped_steps(20, 3.0, 2.0**20)
    assert not ex.check_skipped_steps(..., 3.0, 2.0**20)
    assert NO_ANSWER in capsys.readouterr().out
