"""The authors' flat token layout and HY_Tokenizer API."""

from __future__ import annotations

import pytest
import torch

from codec import HY_Tokenizer
from codec.compat.hy_tokenizer import flatten_codes, unflatten_codes


def test_golden_layout_order_and_offsets():
    # codes[q, f] = 10 * f + q: easy to read back from the flat vector.
    q, f, k = 3, 4, 256
    codes = torch.tensor([[10 * fi + qi for fi in range(f)] for qi in range(q)])
    flat = flatten_codes(codes, k)
    expected = torch.tensor([qi * k + 10 * fi + qi for fi in range(f) for qi in range(q)], dtype=torch.int16)
    assert flat.dtype == torch.int16
    assert torch.equal(flat, expected)
    assert flat[:3].tolist() == [0, 256 + 1, 512 + 2]  # frame 0: layers 0, 1, 2
    assert torch.equal(unflatten_codes(flat, q, k), codes)


def test_full_size_layout_uses_int16_and_int32_when_needed():
    codes = torch.randint(0, 256, (32, 5))
    flat = flatten_codes(codes, 256)
    assert flat.dtype == torch.int16 and int(flat.max()) <= 8191
    assert flatten_codes(torch.randint(0, 4096, (16, 2)), 4096).dtype == torch.int32


@pytest.mark.parametrize(
    "tokens, message",
    [
        (torch.arange(33, dtype=torch.int16), "multiple"),
        (torch.tensor([-1] + [0] * 31, dtype=torch.int16), "layer 0"),
        (torch.tensor([8192] + [0] * 31, dtype=torch.int16), "layer 0"),
        (torch.tensor([0, 5] + [0] * 30, dtype=torch.int16), "layer 1"),  # layer 1 value in layer 0's range
        (torch.zeros(32), "integers"),
        (torch.zeros(0, dtype=torch.int16), "multiple"),
        (torch.zeros(2, 32, dtype=torch.int16), "1-D"),
    ],
)
def test_unflatten_rejects_malformed_tokens(tokens, message):
    with pytest.raises(ValueError, match=message):
        unflatten_codes(tokens, 32, 256)


def test_tokenize_detokenize_round_trip(tiny_release, wav_1s):
    tok = HY_Tokenizer(model=str(tiny_release))
    tokens = tok.tokenize(str(wav_1s))
    assert tokens.dim() == 1 and tokens.dtype == torch.int16
    assert tokens.numel() == 32 * 5  # 1 s -> 5 frames
    assert tok.mask_id == 8192
    before = tokens.clone()
    wav = tok.detokenize(tokens)
    assert torch.equal(tokens, before)  # the original modified its input in place; we must not
    assert wav.shape == (1, 5 * 3200) and wav.dtype == torch.float32
    assert torch.equal(tok.tokenize(tokens), tokens)  # integer 1-D input is returned unchanged


def test_tokenize_accepts_waveform_tensors(tiny_release):
    tok = HY_Tokenizer(model=str(tiny_release))
    wav = torch.randn(16000) * 0.1
    a = tok.tokenize(wav)
    assert torch.equal(a, tok.tokenize(wav[None]))
    assert torch.equal(a, tok.tokenize(wav[None, None]))
    with pytest.raises(ValueError, match="mono"):
        tok.tokenize(torch.randn(2, 16000))
    with pytest.raises(ValueError, match="NaN"):
        tok.tokenize(torch.full((100,), float("nan")))
