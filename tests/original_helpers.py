"""Builders of synthetic authors' checkpoints for the converter tests.

The renaming here is written independently of ``codec/compat/convert.py`` (from the facts in
``shared/reference/ucodec_original/README.md``), so the tests check the converter against the format, not against
itself.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import torch

from codec import Codec, CodecConfig
from codec.config import QuantizerConfig, SeanetConfig, TransformerConfig

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "configs" / "codec" / "paper.yaml"
# The authors' state-dict manifest and assumed config (tensor names/shapes only, no weights), vendored from the
# project's shared reference folder so the suite runs on a clone without it.
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "ucodec_original"
MANIFEST = REFERENCE / "state_dict_manifest.json"
ASSUMED_CONFIG = REFERENCE / "assumed_config.json"

_TO_THEIRS = (
    ("encoder_transformer.", "tokenizer.encoder_transformer."),
    ("encoder.", "tokenizer.encoder."),
    ("quantizer.", "tokenizer.vq."),
    ("decoder_transformer.", "token2wav.decoder_transformer."),
    ("decoder.", "token2wav.decoder."),
)


def manifest() -> dict[str, list[int]]:
    """``{their name: shape}`` of the 486 tensors of the authors' generator (assumed config)."""
    return json.loads(MANIFEST.read_text())


def to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our weight-norm state dict → the authors' names (``parametrizations.weight.original0/1`` → ``weight_g/_v``)."""
    out = {}
    for name, value in state.items():
        for ours, theirs in _TO_THEIRS:
            if name.startswith(ours):
                name = theirs + name[len(ours) :]
                break
        name = re.sub(r"\.codebook\.weight$", "._codebook.weight", name)
        name = name.replace(".parametrizations.weight.original0", ".weight_g")
        name = name.replace(".parametrizations.weight.original1", ".weight_v")
        out[name] = value
    return out


def from_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`to_original` (for loading their g/v into our weight-norm model)."""
    out = {}
    for name, value in state.items():
        for ours, theirs in _TO_THEIRS:
            if name.startswith(theirs):
                name = ours + name[len(theirs) :]
                break
        name = name.replace("._codebook.weight", ".codebook.weight")
        name = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", name)
        name = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", name)
        out[name] = value
    return out


def random_original_state(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the given shapes, scaled like a trained model (gains ~1, weights ~0.05, norms ~1)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith("weight_g"):
            out[name] = torch.rand(shape, generator=gen) + 0.5
        elif re.search(r"norm\d\.(weight|alpha)$", name):
            out[name] = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("layer_scale_1.scale") or name.endswith("layer_scale_2.scale"):
            out[name] = torch.rand(shape, generator=gen) * 0.5 + 0.1
        else:
            out[name] = torch.randn(shape, generator=gen) * 0.05
    return out


def small_config(variant: str) -> CodecConfig:
    """Small seanet codecs with weight norm (our layout) covering the options the converter must infer.

    ``"ln"``: LayerNorm, layer scale, d_model == dimension, one residual block per stage.
    ``"rms"``: RMSNorm, no layer scale, d_model != dimension (input/output projections), two residual blocks,
    compress 4. ``"odd"``: ``"rms"`` with values that shapes cannot reveal set away from the assumed defaults
    (attention context 16, RoPE period 500, dilation base 3) — only a config file can convert it correctly.
    """
    if variant == "ln":
        seanet = SeanetConfig(n_filters=4, ratios=(4, 4, 2), n_residual_layers=1, kernel_size=7, last_kernel_size=3)
        transformer = TransformerConfig(num_layers=2, d_model=16, num_heads=2, dim_feedforward=32)
        dimension = 16
    elif variant in ("rms", "odd"):
        odd = variant == "odd"
        seanet = SeanetConfig(
            n_filters=8, ratios=(3, 2), n_residual_layers=2, kernel_size=5, residual_kernel_size=5,
            last_kernel_size=3, compress=4, dilation_base=3 if odd else 2,
        )  # fmt: skip
        transformer = TransformerConfig(
            num_layers=2, d_model=24, num_heads=4, dim_feedforward=40, layer_scale=None, norm="rms_norm",
            context=16 if odd else 250, max_period=500.0 if odd else 10000.0,
        )  # fmt: skip
        dimension = 12
    else:
        raise ValueError(variant)
    quantizer = QuantizerConfig(num_codebooks=4, codebook_size=16, codebook_dim=4)
    return CodecConfig(
        name=f"small-{variant}", dimension=dimension, norm="weight_norm", seanet=seanet, transformer=transformer,
        quantizer=quantizer,
    )  # fmt: skip


def perturbed_model(config: CodecConfig, seed: int = 0) -> Codec:
    """Our weight-norm model with every parameter moved off its init, so that g != ||v|| (a converter that dropped
    g would otherwise pass) and norms/layer scales are not identities."""
    torch.manual_seed(seed)
    model = Codec(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("original0"):
                p.mul_(torch.rand_like(p) + 0.5)
            elif name.endswith(".scale"):
                p.copy_(torch.rand_like(p) * 0.5 + 0.2)
            elif re.search(r"norm\d\.(weight|alpha)$", name):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.add_(0.02 * torch.randn_like(p))
    return model.eval()


def original_config(config: CodecConfig) -> dict:
    """The authors' config layout (as in ``assumed_config.json``) describing ``config``."""
    s, t, q = config.seanet, config.transformer, config.quantizer
    seanet = {
        "channels": 1, "dimension": config.dimension, "causal": t.causal, "n_filters": s.n_filters,
        "n_residual_layers": s.n_residual_layers, "activation": "ELU", "compress": s.compress,
        "dilation_base": s.dilation_base, "kernel_size": s.kernel_size, "residual_kernel_size": s.residual_kernel_size,
        "last_kernel_size": s.last_kernel_size, "norm": "weight_norm", "pad_mode": "constant",
        "ratios": list(s.ratios), "true_skip": True,
    }  # fmt: skip
    transformer = {
        "d_model": t.d_model, "num_heads": t.num_heads, "num_layers": t.num_layers, "causal": t.causal,
        "layer_scale": t.layer_scale, "context": t.context, "conv_layout": True, "max_period": t.max_period,
        "gating": "none", "norm": t.norm, "positional_embedding": "rope", "dim_feedforward": t.dim_feedforward,
    }  # fmt: skip
    vq = {"num_quantizers": q.num_codebooks, "dim": config.dimension, "codebook_size": q.codebook_size,
          "codebook_dim": q.codebook_dim, "commitment": q.commitment_weight}  # fmt: skip
    return {
        "model": {
            "type": "TokenizerGANWrapper",
            "tokenizer_conf": {
                "sample_rate": config.sample_rate,
                "ds_rate": 1,
                "seanet_conf": seanet,
                "transformer_conf": transformer,
                "vq_conf": vq,
            },  # fmt: skip
            "wave_decoder_conf": {
                "in_channels": config.dimension,
                "up_rate": 1,
                "seanet_conf": dict(seanet),
                "transformer_conf": dict(transformer),
            },  # fmt: skip
        },
        "train": {"lr": 1e-4},
    }


def to_json5(data: dict) -> str:
    """JSON text made JSON5-only: comments, trailing commas and an unquoted key, as the authors' files have."""
    text = json.dumps(data, indent=2)
    text = re.sub(r"([^\[{,\s])\n(\s*[}\]])", r"\1,\n\2", text)  # trailing commas
    text = text.replace('"type":', "type:", 1)
    return "// U-Codec generator config\n/* 16 kHz, 5 Hz */\n" + text.replace("\n", "  // a comment\n", 1)


def architecture(config: CodecConfig) -> dict:
    """The fields that define the weights and the function (not the name, norm or training options)."""
    data = dataclasses.asdict(config)
    for key in ("name", "norm", "mel", "istft"):
        data.pop(key)
    for key in ("commitment_weight", "codebook_weight", "dropout_layers", "dropout_prob", "dead_code_threshold"):
        data["quantizer"].pop(key)
    return data
