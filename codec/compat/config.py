"""The architecture of an authors' checkpoint, as a :class:`CodecConfig`.

Three sources, combined field by field (flat dotted names such as ``"seanet.ratios"``):

1. **Tensor shapes** — always read: strides (encoder strided-conv kernels are ``2r``, in reversed ``ratios`` order),
   ``n_filters``, ``dimension``, residual blocks per stage, ``compress``, kernel sizes, transformer depth/width/MLP,
   norm type (LayerNorm ``weight``+``bias`` vs RMS ``alpha``), layer scale presence, RVQ depth/size/dimension.
2. **A config file** (``--config``) — the authors' json5 (``tokenizer_conf``/``wave_decoder_conf`` sections), or
   one of ours (YAML, JSON, or a release's ``config.json``). A value that contradicts the tensors is an error naming
   both, so a wrong config can never produce a silently broken model.
3. **Assumptions** — what neither shapes nor a file tell: heads, attention context, RoPE period, causality, sample
   rate, dilation base. They take the authors' published defaults and are reported with an
   :class:`OriginalConfigWarning`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from codec.compat import json5_lite
from codec.config import CodecConfig

ENC = "tokenizer.encoder.model."
ENC_LAYERS = "tokenizer.encoder_transformer.transformer.layers."
VQ = "tokenizer.vq.layers."

# Not recoverable from tensor shapes; the values of the published model (num_heads: --num-heads overrides).
ASSUMED: dict[str, Any] = {
    "transformer.num_heads": 8,
    "transformer.context": 250,
    "transformer.max_period": 10000.0,
    "transformer.causal": True,
    "sample_rate": 16000,
    "seanet.dilation_base": 2,
}


class OriginalConfigWarning(UserWarning):
    """Some architecture values were assumed rather than read from the checkpoint or a config file."""


@dataclass(frozen=True)
class ResolvedConfig:
    """Result of :func:`resolve_config`.

    Attributes:
        config: the architecture, with ``norm="none"`` (weight norm is folded on conversion).
        assumed: fields that the tensors and the config file left open, with the value used for each.
    """

    config: CodecConfig
    assumed: dict[str, Any]


# ------------------------------------------------------------------------------------------ shapes
def _indices(state: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def _shape(state: Mapping[str, torch.Tensor], base: str) -> tuple[int, ...]:
    """Shape of ``base.weight``, or of ``base.weight_v`` (weight norm keeps the full shape in ``v``)."""
    for name in (f"{base}.weight", f"{base}.weight_v", base):
        if name in state:
            return tuple(state[name].shape)
    raise ValueError(f"cannot infer the architecture: tensor {base}.weight (or .weight_v) is missing")


def infer_from_shapes(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture fields readable from the tensors of an authors' checkpoint (names without ``module.``).

    Returns:
        Flat ``{"seanet.ratios": [...], "dimension": 512, ...}``; ``transformer.layer_scale`` is 0.01 when layer
        scale is present (its value lives in the weights) and None otherwise.

    Raises:
        ValueError: the tensors do not follow the SEANet / Transformer / RVQ layout.
    """
    top = _indices(state, rf"{re.escape(ENC)}(\d+)\.conv\.conv\.weight(?:_v)?$")
    if len(top) < 3 or top[0] != 0:
        raise ValueError(
            f"cannot infer the architecture: no SEANet encoder convs found (expected '{ENC}0.conv.conv.weight_v' "
            f"and more); found encoder convs at {top}"
        )
    strided, n_res = top[1:-1], top[1] - 2
    n_stages = len(strided)
    expected = [(s + 1) * (n_res + 2) for s in range(n_stages)] + [n_stages * (n_res + 2) + 2]
    if top[1:] != expected or n_res < 0:
        raise ValueError(f"encoder convs at {top} do not follow the SEANet layout (expected 0 and {expected})")
    n_filters, _, kernel_size = _shape(state, f"{ENC}0.conv.conv")
    strides = []
    for s, i in enumerate(strided):
        out_c, in_c, k = _shape(state, f"{ENC}{i}.conv.conv")
        if k % 2 or in_c != n_filters * 2**s or out_c != 2 * in_c:
            raise ValueError(
                f"{ENC}{i}: weight {(out_c, in_c, k)} is not a strided SEANet conv [2C, C, 2r] "
                f"with C = {n_filters * 2**s}"
            )
        strides.append(k // 2)
    dimension, _, last_kernel = _shape(state, f"{ENC}{top[-1]}.conv.conv")
    fields: dict[str, Any] = {
        "dimension": dimension,
        "seanet.n_filters": n_filters,
        "seanet.ratios": strides[::-1],  # the encoder downsamples by ratios reversed
        "seanet.n_residual_layers": n_res,
        "seanet.kernel_size": kernel_size,
        "seanet.last_kernel_size": last_kernel,
    }
    if n_res:
        hidden, channels, res_kernel = _shape(state, f"{ENC}1.block.1.conv.conv")
        fields["seanet.compress"] = channels // hidden
        fields["seanet.residual_kernel_size"] = res_kernel

    layers = _indices(state, rf"{re.escape(ENC_LAYERS)}(\d+)\.")
    fields["transformer.num_layers"] = layers[-1] + 1 if layers else 0
    if layers:
        p = f"{ENC_LAYERS}{layers[0]}."
        fields["transformer.d_model"] = _shape(state, p + "self_attn.in_proj_weight")[1]
        fields["transformer.dim_feedforward"] = _shape(state, p + "linear1")[0]
        if p + "norm1.alpha" in state:
            fields["transformer.norm"] = "rms_norm"
        elif p + "norm1.weight" in state:
            fields["transformer.norm"] = "layer_norm"
        else:
            raise ValueError(f"cannot infer the transformer norm: neither {p}norm1.weight nor {p}norm1.alpha exists")
        fields["transformer.layer_scale"] = 0.01 if p + "layer_scale_1.scale" in state else None

    books = _indices(state, rf"{re.escape(VQ)}(\d+)\._codebook\.weight$")
    if not books:
        raise ValueError(f"cannot infer the quantizer: no '{VQ}<q>._codebook.weight' tensors")
    codebook_size, codebook_dim = state[f"{VQ}{books[0]}._codebook.weight"].shape
    fields.update(
        {
            "quantizer.num_codebooks": books[-1] + 1,
            "quantizer.codebook_size": codebook_size,
            "quantizer.codebook_dim": codebook_dim,
        }
    )
    return fields


# ------------------------------------------------------------------------------------------ config files
_SEANET_KEYS = (
    "n_filters",
    "ratios",
    "n_residual_layers",
    "kernel_size",
    "residual_kernel_size",
    "last_kernel_size",
    "compress",
    "dilation_base",
)
# Their seanet_conf / transformer_conf keys → our fields. Both SEANets map onto our single `seanet` section, and
# SEANet causality onto the model-wide `transformer.causal`, so the sections must agree (checked when merging).
_SEANET_FIELDS = {**{k: f"seanet.{k}" for k in _SEANET_KEYS}, "dimension": "dimension", "causal": "transformer.causal"}
_SEANET_ALLOWED = {
    "channels": (1,),
    "activation": ("ELU",),
    "pad_mode": ("constant",),
    "true_skip": (True,),
    "lstm": (0,),
    "norm": ("weight_norm", "none"),
    "final_activation": (None,),
}
_TRANSFORMER_FIELDS = {
    k: f"transformer.{k}"
    for k in ("num_layers", "d_model", "num_heads", "dim_feedforward", "causal", "context", "layer_scale", "max_period")
}
_TRANSFORMER_ALLOWED = {
    "positional_embedding": ("rope",),
    "gating": ("none",),
    "bias_ff": (False,),
    "bias_attn": (False,),
    "cross_attention": (False,),
}
_NORMS = {
    "layer_norm": "layer_norm",
    "layer_norm_f32": "layer_norm",
    "rms_norm": "rms_norm",
    "rms_norm_f32": "rms_norm",
}


def _same(key: str, a: Any, b: Any) -> bool:
    if key == "transformer.layer_scale":  # the shapes only say whether layer scale exists
        return (a is None) == (b is None)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def merge_fields(base: dict[str, Any], override: dict[str, Any], base_name: str, override_name: str) -> dict[str, Any]:
    """``base`` updated with ``override``; a key on which they disagree is a ``ValueError`` naming both sources."""
    for key, value in override.items():
        if key in base and not _same(key, base[key], value):
            raise ValueError(f"{key}: {base_name} say {base[key]!r} but {override_name} says {value!r}")
    return {**base, **override}


def _map_section(conf: Any, names: dict[str, str], allowed: dict[str, tuple], where: str) -> dict[str, Any]:
    if not isinstance(conf, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(conf).__name__}")
    for key, ok in allowed.items():
        if key in conf and conf[key] not in ok:
            raise ValueError(f"{where}.{key} = {conf[key]!r} is not supported by ucodec (allowed: {list(ok)})")
    out = {field: conf[key] for key, field in names.items() if key in conf}
    if "norm" in conf and names == _TRANSFORMER_FIELDS:
        if conf["norm"] not in _NORMS:
            raise ValueError(f"{where}.norm = {conf['norm']!r} is not supported (allowed: {sorted(_NORMS)})")
        out["transformer.norm"] = _NORMS[conf["norm"]]
    params = conf.get("activation_params") or {}
    if not isinstance(params, dict) or params.get("alpha", 1.0) != 1.0:
        raise ValueError(f"{where}.activation_params: only ELU with alpha 1.0 is supported")
    return out


def _find_model_section(data: Any, depth: int = 3) -> dict | None:
    """The dict holding ``tokenizer_conf`` (the authors' ``model`` section), searched a few levels deep."""
    if not isinstance(data, dict):
        return None
    if "tokenizer_conf" in data:
        return data
    if depth == 0:
        return None
    for value in data.values():
        found = _find_model_section(value, depth - 1)
        if found is not None:
            return found
    return None


def fields_from_original(model: dict, where: str) -> dict[str, Any]:
    """Map the authors' ``model`` config section (``tokenizer_conf`` + ``wave_decoder_conf``) to our fields.

    Raises:
        ValueError: an option ucodec cannot represent (extra down/upsampling, LSTM, reflect padding, non-RoPE
            positions, encoder and decoder with different settings, ...).
    """
    tok = model["tokenizer_conf"]
    dec = model.get("wave_decoder_conf") or {}
    for name, conf in (("tokenizer_conf", tok), ("wave_decoder_conf", dec)):
        if not isinstance(conf, dict):
            raise ValueError(f"{where}: {name} must be a mapping, got {type(conf).__name__}")
    for conf, key, name in ((tok, "ds_rate", "tokenizer_conf"), (dec, "up_rate", "wave_decoder_conf")):
        if conf.get(key, 1) != 1:
            raise ValueError(f"{where}: {name}.{key} = {conf[key]} (extra resampling layers) is not supported")
    fields: dict[str, Any] = {}
    for name, conf in (("tokenizer_conf", tok), ("wave_decoder_conf", dec)):
        for sub, names, allowed in (
            ("seanet_conf", _SEANET_FIELDS, _SEANET_ALLOWED),
            ("transformer_conf", _TRANSFORMER_FIELDS, _TRANSFORMER_ALLOWED),
        ):
            if sub in conf:
                part = _map_section(conf[sub], names, allowed, f"{where}: {name}.{sub}")
                fields = merge_fields(fields, part, "earlier sections", f"{name}.{sub}")
    if "in_channels" in dec:
        fields = merge_fields(fields, {"dimension": dec["in_channels"]}, "the seanet configs", "in_channels")
    if "sample_rate" in tok:
        fields["sample_rate"] = tok["sample_rate"]
    vq = tok.get("vq_conf") or {}
    for key, field in (
        ("num_quantizers", "quantizer.num_codebooks"),
        ("n_q", "quantizer.num_codebooks"),
        ("codebook_size", "quantizer.codebook_size"),
        ("codebook_dim", "quantizer.codebook_dim"),
        ("commitment", "quantizer.commitment_weight"),
        ("dim", "dimension"),
    ):
        if key in vq:
            fields = merge_fields(fields, {field: vq[key]}, "earlier sections", f"vq_conf.{key}")
    return fields


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Fields from a config file: the authors' json5 config, or a ucodec config (YAML/JSON/release config.json).

    Raises:
        FileNotFoundError: missing file.
        ValueError: unparsable, unsupported options, or a ucodec config that is not seanet/seanet.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not a text file (expected a json5/JSON/YAML config)") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    else:
        data = json5_lite.loads(text, where=str(p))  # JSON is a subset of JSON5
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    model = _find_model_section(data)
    if model is not None:
        return fields_from_original(model, str(p))
    if "kind" in data and isinstance(data.get("config"), dict):  # a ucodec release's config.json
        data = data["config"]
    cfg = CodecConfig.from_dict(data, where=p.name)
    if (cfg.encoder, cfg.decoder) != ("seanet", "seanet"):
        raise ValueError(f"{p}: original checkpoints need encoder/decoder 'seanet', got {cfg.encoder}/{cfg.decoder}")
    flat = _flatten({k: v for k, v in cfg.to_dict().items() if k not in ("encoder", "decoder", "norm", "mel", "istft")})
    return flat


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _unflatten(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _matters(key: str, fields: dict[str, Any]) -> bool:
    """Whether an assumed value changes the converted model's output (only those are reported)."""
    if key == "seanet.dilation_base":
        return fields["seanet.n_residual_layers"] > 1
    if key.startswith("transformer.") and key != "transformer.causal":  # causality also drives the convs
        return fields["transformer.num_layers"] > 0
    return True


def resolve_config(
    state: Mapping[str, torch.Tensor],
    config_path: str | Path | None = None,
    num_heads: int | None = None,
    name: str = "ucodec-original",
) -> ResolvedConfig:
    """The :class:`CodecConfig` (``norm="none"``) of an authors' checkpoint.

    Args:
        state: their state dict (``module.`` prefixes already stripped).
        config_path: optional config file (see :func:`read_config_file`); its values must agree with the tensors.
        num_heads: attention heads, overriding the config file and the assumed 8.
        name: the release name when the config file gives none.

    Raises:
        ValueError: contradictions between file and tensors, unsupported options, or an invalid combination.
    """
    fields = infer_from_shapes(state)
    if config_path is not None:
        fields = merge_fields(fields, read_config_file(config_path), "the checkpoint's tensors", str(config_path))
    if num_heads is not None:
        fields["transformer.num_heads"] = num_heads
    assumed = {}
    for key, value in ASSUMED.items():
        if key in fields:
            continue
        fields[key] = value
        if _matters(key, fields):
            assumed[key] = value
    fields.setdefault("name", name)
    config = CodecConfig.from_dict(
        _unflatten({"encoder": "seanet", "decoder": "seanet", "norm": "none", **fields}), where="converted config"
    )
    if assumed:
        listed = ", ".join(f"{k}={v}" for k, v in assumed.items())
        warnings.warn(
            f"not stored in the checkpoint, assumed: {listed}. Pass the authors' json5 config with --config "
            "(or --num-heads) if these differ; wrong heads/context/RoPE give a model that loads but sounds wrong.",
            OriginalConfigWarning,
            stacklevel=2,
        )
    return ResolvedConfig(config=config, assumed=assumed)
