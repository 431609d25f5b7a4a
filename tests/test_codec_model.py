"""The codec contract: frame counts, causality, streaming == offline, releases, quantizer lookup."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from codec import Codec
from codec.nn.quantizer import FactorizedVQ
from tests.conftest import tiny_config, tiny_seanet_config

HOP = 3200


@pytest.mark.parametrize("length", [1, 3199, 3200, 3201, int(16000 * 3.3)])
def test_frame_count_and_output_length(tiny_codec, length):
    wav = torch.randn(2, 1, length) * 0.1
    codes = tiny_codec.encode(wav)
    frames = math.ceil(length / HOP)
    assert codes.shape == (2, 32, frames)
    assert codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 256
    assert tiny_codec.decode(codes).shape == (2, 1, frames * HOP)


@pytest.mark.parametrize("make_config", [tiny_config, tiny_seanet_config], ids=["mel-istft", "seanet"])
def test_causality_of_codes_and_audio(make_config):
    torch.manual_seed(0)
    model = Codec(make_config()).eval()
    wav = torch.randn(1, 1, HOP * 6) * 0.1
    changed = wav.clone()
    changed[..., HOP * 3 :] = torch.randn(1, 1, HOP * 3) * 0.1
    a, b = model.encode(wav), model.encode(changed)
    assert torch.equal(a[..., :3], b[..., :3])
    with torch.no_grad():
        za, zb = model.encode_latent(wav), model.encode_latent(changed)
    torch.testing.assert_close(za[..., :3], zb[..., :3], rtol=0, atol=0)
    assert not torch.allclose(za[..., 3:], zb[..., 3:])  # the change is visible where it happened
    # Decoder: changing future frames leaves past samples untouched.
    codes = a.clone()
    codes[..., 4:] = (codes[..., 4:] + 7) % 256
    ya, yb = model.decode(a), model.decode(codes)
    torch.testing.assert_close(ya[..., : 4 * HOP], yb[..., : 4 * HOP])
    assert not torch.allclose(ya[..., 4 * HOP :], yb[..., 4 * HOP :])


@pytest.mark.parametrize("make_config", [tiny_config, tiny_seanet_config], ids=["mel-istft", "seanet"])
@pytest.mark.parametrize("chunk", [1, 3])
def test_streaming_decode_equals_offline(make_config, chunk):
    torch.manual_seed(1)
    model = Codec(make_config("transformer.context=4")).eval()  # context < F exercises the window in the cache
    codes = torch.randint(0, 256, (2, 32, 10))
    offline = model.decode(codes)
    streamed = torch.cat(list(model.decode_stream(codes, chunk_frames=chunk)), dim=-1)
    torch.testing.assert_close(streamed, offline, rtol=1e-5, atol=1e-6)


def test_streaming_state_is_dropped_between_streams(tiny_codec):
    codes = torch.randint(0, 256, (1, 32, 4))
    first = torch.cat(list(tiny_codec.decode_stream(codes)), dim=-1)
    second = torch.cat(list(tiny_codec.decode_stream(codes)), dim=-1)
    torch.testing.assert_close(first, second)


def test_prefix_depth_decodes_and_differs(tiny_codec):
    wav = torch.randn(1, 1, HOP * 3) * 0.1
    c8 = tiny_codec.encode(wav, num_codebooks=8)
    assert c8.shape == (1, 8, 3)
    assert torch.equal(c8, tiny_codec.encode(wav)[:, :8])
    assert tiny_codec.decode(c8).shape == (1, 1, 3 * HOP)


def test_save_load_round_trip_is_bit_exact(tiny_codec, tiny_release):
    loaded = Codec.from_pretrained(tiny_release)
    for (name, a), (_, b) in zip(tiny_codec.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    wav = torch.randn(1, 1, 8000) * 0.1
    assert torch.equal(tiny_codec.encode(wav), loaded.encode(wav))
    assert loaded.release_id != tiny_codec.config_hash()


def test_fp16_release_loads_as_float32(tmp_path, tiny_codec):
    tiny_codec.save_pretrained(tmp_path / "half", dtype=torch.float16)
    loaded = Codec.from_pretrained(tmp_path / "half")
    assert next(loaded.parameters()).dtype == torch.float32
    for name, a in tiny_codec.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], a.half().float(), msg=name)


def test_quantizer_picks_the_cosine_nearest_code():
    torch.manual_seed(0)
    vq = FactorizedVQ(dim=4, codebook_size=5, codebook_dim=2, norm="none")
    with torch.no_grad():
        # Row 1 is long but points the same way as the query; row 0 is close in Euclidean terms but at 40 degrees.
        vq.codebook.weight.copy_(torch.tensor([[1.0, 0.8], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    query = torch.tensor([[1.0, 0.1]])
    assert int(vq.lookup(query)) == 1
    cos = F.normalize(query, dim=-1) @ F.normalize(vq.codebook.weight, dim=-1).t()
    assert int(vq.lookup(query)) == int(cos.argmax())


def test_quantizer_dropout_keeps_configured_depths():
    torch.manual_seed(0)
    model = Codec(tiny_config("quantizer.dropout_prob=1.0")).train()
    out = model(torch.randn(16, 1, HOP * 2) * 0.1)
    assert set(out.num_layers.tolist()) <= {8, 16, 32}
    assert out.codes.shape == (16, 32, 2)
    assert out.audio.shape == (16, 1, HOP * 2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(1, 32, 3), "integer"),
        (torch.zeros(1, 33, 3, dtype=torch.long), "codebooks"),
        (torch.full((1, 32, 3), 256), "code values"),
        (torch.full((1, 32, 3), -1), "code values"),
        (torch.zeros(32, 3, dtype=torch.long), "shape"),
    ],
)
def test_decode_rejects_bad_codes(tiny_codec, bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_codec.decode(bad)


@pytest.mark.parametrize(
    "bad", [torch.zeros(1, 2, 100), torch.zeros(1, 1, 0), torch.zeros(100), torch.zeros(1, 1, 10, dtype=torch.long)]
)
def test_encode_rejects_bad_waveforms(tiny_codec, bad):
    with pytest.raises(ValueError):
        tiny_codec.encode(bad)


def test_properties(tiny_codec):
    assert tiny_codec.sample_rate == 16000
    assert tiny_codec.hop_length == HOP
    assert tiny_codec.frame_rate == 5
    assert (tiny_codec.num_codebooks, tiny_codec.codebook_size) == (32, 256)
    assert tiny_codec.bitrate == 1280
