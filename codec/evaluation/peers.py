"""The codecs a benchmark compares: ours (any config or release) and the peers EnCodec 24 kHz and SNAC 24 kHz.

Every contestant is wrapped as a :class:`Contestant` with the same two calls, ``encode(wav [1, 1, T]) -> codes``
and ``decode(codes) -> wav``, at its own native sample rate, so the benchmark times exactly the model work and
nothing else. The peers are built with **random weights** from their published architectures (no download is
possible here, and speed does not depend on the weight values):

- EnCodec 24 kHz (``pip install encodec``): the causal SEANet model of Défossez et al., 14.9 M parameters, at
  1.5 kbps (2 RVQ layers at 75 Hz; the bandwidth barely changes compute);
- SNAC 24 kHz (``pip install snac``): Siuzdak's multi-scale speech codec, 19.8 M parameters, 0.98 kbps, with the
  architecture of the released ``snac_24khz`` checkpoint (its ``config.json``, written out below).

``descript-audio-codec`` is deliberately not a peer: installing it downgrades protobuf and onnxruntime, which the
``[eval]`` extra needs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from codec.evaluation.extras import require

PEERS = ("encodec", "snac")
ENCODEC_BANDWIDTH = 1.5  # kbps; the lowest EnCodec 24 kHz setting, the closest to our 1.28 kbps
# Architecture of hubertsiuzdak/snac_24khz (its config.json).
SNAC_24KHZ = dict(sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
                  decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
                  vq_strides=[4, 2, 1], noise=True, depthwise=True)  # fmt: skip


@dataclass
class Contestant:
    """A codec under benchmark, reduced to what the benchmark calls."""

    name: str  # shown in tables
    kind: str  # "ours" or "peer"
    sample_rate: int  # native input/output rate
    bitrate: float  # bits per second of the codes it produces
    num_parameters: int
    encode: Callable[[torch.Tensor], Any]  # wav [1, 1, T] -> codes (any structure)
    decode: Callable[[Any], torch.Tensor]  # codes -> wav [1, 1, T']
    random_init: bool = True  # weights are random (peers always; ours when built from a config)
    spec: str = ""  # what the user named: "encodec", "snac", a config path or a release dir


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_ours(spec: str, device: str = "cpu") -> Contestant:
    """Our codec from a config file (random weights) or a release directory/name."""
    from codec.evaluation.codec_eval import load_codec

    codec, random_init = load_codec(spec, device)
    name = getattr(codec.config, "name", Path(spec).stem)
    return Contestant(
        name=name,
        kind="ours",
        sample_rate=codec.sample_rate,
        bitrate=float(codec.bitrate),
        num_parameters=_count(codec),
        encode=codec.encode,
        decode=codec.decode,
        random_init=random_init,
        spec=str(spec),
    )


def build_encodec(bandwidth: float = ENCODEC_BANDWIDTH) -> Contestant:
    """EnCodec 24 kHz with random weights at ``bandwidth`` kbps.

    Raises:
        MissingExtraError: the ``[bench]`` extra is not installed.
    """
    with warnings.catch_warnings():
        # encodec uses torch.jit.script and the old weight_norm API, both deprecated: noise for our users.
        warnings.filterwarnings("ignore", category=FutureWarning)
        encodec = require("encodec", "bench", "The EnCodec benchmark peer")
        model = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
    model.set_target_bandwidth(bandwidth)
    model.eval()
    return Contestant(
        name="EnCodec 24 kHz",
        kind="peer",
        sample_rate=model.sample_rate,
        bitrate=bandwidth * 1000,
        num_parameters=_count(model),
        encode=model.encode,  # -> list of (codes [B, Q, F], scale) frames; one frame (segment=None at 24 kHz)
        decode=model.decode,
        spec="encodec",
    )


def build_snac() -> Contestant:
    """SNAC 24 kHz with random weights.

    Raises:
        MissingExtraError: the ``[bench]`` extra is not installed.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # snac decorates a function with torch.jit.script
        snac = require("snac", "bench", "The SNAC benchmark peer")
    model = snac.SNAC(**SNAC_24KHZ).eval()
    hop = math.prod(SNAC_24KHZ["encoder_rates"])
    # One code per coarsest frame from each level: frame rate / stride per level, log2(4096) = 12 bits each.
    frame_rate = SNAC_24KHZ["sampling_rate"] / hop
    bitrate = sum(frame_rate / s for s in SNAC_24KHZ["vq_strides"]) * math.log2(SNAC_24KHZ["codebook_size"])
    return Contestant(
        name="SNAC 24 kHz",
        kind="peer",
        sample_rate=SNAC_24KHZ["sampling_rate"],
        bitrate=bitrate,
        num_parameters=_count(model),
        encode=model.encode,  # -> list of LongTensor [B, F_level], one per scale
        decode=model.decode,
        spec="snac",
    )


def build_contestant(spec: str, device: str = "cpu") -> Contestant:
    """``"encodec"``, ``"snac"``, or our codec from a config file / release directory / registered name."""
    if spec == "encodec":
        return build_encodec()
    if spec == "snac":
        return build_snac()
    return build_ours(spec, device)


def bench_signal(seconds: float, sample_rate: int, seed: int = 0) -> torch.Tensor:
    """A deterministic speech-band test signal ``[1, 1, T]``: pitched harmonics with a syllable-rate envelope plus
    a little noise. Its content does not change the compute of any contestant; it only keeps levels realistic."""
    generator = torch.Generator().manual_seed(seed)
    n = int(round(seconds * sample_rate))
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    f0 = 120 + 30 * torch.sin(2 * math.pi * 0.5 * t)  # slow pitch movement around 120 Hz
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 20))
    envelope = 0.5 * (1 + torch.sin(2 * math.pi * 4 * t))  # about 4 syllables per second
    noise = torch.randn(n, generator=generator, dtype=torch.float64)
    wav = 0.1 * envelope * voiced + 0.01 * noise
    return wav.float().clamp(-1, 1)[None, None]
