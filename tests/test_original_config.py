"""Architecture of original checkpoints: JSON5 reading, the authors' config mapping, inference from shapes, and the
errors for contradictions and unsupported options. Tensors live on the meta device: only shapes are read."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
import yaml

from codec import Codec, CodecConfig
from codec.compat import json5_lite
from codec.compat.config import OriginalConfigWarning, infer_from_shapes, resolve_config
from tests.original_helpers import (
    ASSUMED_CONFIG,
    PAPER,
    architecture,
    manifest,
    original_config,
    small_config,
    to_json5,
    to_original,
)


@pytest.fixture(scope="module")
def paper_shapes() -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in manifest().items()}


def shapes_of(config: CodecConfig) -> dict[str, torch.Tensor]:
    """A small model's tensors under the authors' names (built on CPU: tiny, and faster than the meta device)."""
    return to_original(Codec(config).state_dict())


def resolve_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OriginalConfigWarning)
        return resolve_config(*args, **kwargs)


# ------------------------------------------------------------------------------------------ json5
def test_json5_features():
    text = """// header comment
    {
      unquoted: 'single \\'quoted\\'',  /* block
      comment */ "list": [1, +2, -3.5, .5, 5., 0x1F, 1e3, Infinity, -Infinity, NaN, true, false, null,],
      "nested": {"a": "tab\\tand \\u00e9",},
      $key_2: "back\\\\slash // not a comment",
    }
    """
    data = json5_lite.loads(text)
    assert data["unquoted"] == "single 'quoted'"
    values = data["list"]
    assert values[:7] == [1, 2, -3.5, 0.5, 5.0, 31, 1000.0] and isinstance(values[0], int)
    assert values[7] == math.inf and values[8] == -math.inf and math.isnan(values[9])
    assert values[10:] == [True, False, None]
    assert data["nested"] == {"a": "tab\tand é"}
    assert data["$key_2"] == "back\\slash // not a comment"
    assert json5_lite.loads('{"a": [1, 2], "b": {}}') == json.loads('{"a": [1, 2], "b": {}}')


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"a": 1', "1:8"),
        ('{"a" 1}', "1:6"),
        ('{"a": [1 2]}', "1:10"),
        ('{\n  "a": tru\n}', "2:8"),
        ('"unterminated', "1:14"),
        ("{} extra", "1:4"),
        ("/* open", "1:1"),
    ],
)
def test_json5_errors_name_line_and_column(text, where):
    with pytest.raises(ValueError, match=f"cfg.json5:{where}: invalid JSON5"):
        json5_lite.loads(text, where="cfg.json5")


# ------------------------------------------------------------------------------------------ shapes
def test_paper_architecture_is_inferred(paper_shapes):
    with pytest.warns(OriginalConfigWarning) as caught:
        resolved = resolve_config(paper_shapes)
    assert architecture(resolved.config) == architecture(CodecConfig.load(PAPER))
    assert resolved.config.norm == "none"
    assert set(resolved.assumed) == {
        "transformer.num_heads",
        "transformer.context",
        "transformer.max_period",
        "transformer.causal",
        "sample_rate",
    }  # fmt: skip  (dilation_base does not matter with one residual block per stage)
    assert "num_heads=8" in str(caught[0].message)


@pytest.mark.parametrize("variant", ["ln", "rms", "odd"])
def test_small_architectures_are_inferred(variant):
    config = small_config(variant)
    fields = infer_from_shapes(shapes_of(config))
    assert fields["seanet.ratios"] == list(config.seanet.ratios)
    assert fields["seanet.compress"] == config.seanet.compress
    assert fields["seanet.residual_kernel_size"] == config.seanet.residual_kernel_size
    assert fields["transformer.norm"] == config.transformer.norm
    assert (fields["transformer.layer_scale"] is None) == (config.transformer.layer_scale is None)
    assert fields["transformer.d_model"] != config.dimension or variant == "ln"
    resolved = resolve_quietly(shapes_of(config), num_heads=config.transformer.num_heads)
    assert "transformer.num_heads" not in resolved.assumed
    assert ("seanet.dilation_base" in resolved.assumed) == (config.seanet.n_residual_layers > 1)
    if variant != "odd":  # odd differs from the assumptions in what shapes cannot show
        assert architecture(resolved.config) == architecture(config)


def test_not_an_original_checkpoint():
    with pytest.raises(ValueError, match="no SEANet encoder convs found"):
        infer_from_shapes({"encoder.model.0.conv.conv.weight": torch.empty(4, 1, 7, device="meta")})


# ------------------------------------------------------------------------------------------ config files
def test_assumed_config_maps_to_the_paper(paper_shapes):
    with warnings.catch_warnings():
        warnings.simplefilter("error", OriginalConfigWarning)  # a full config leaves nothing to assume
        resolved = resolve_config(paper_shapes, ASSUMED_CONFIG)
    assert resolved.assumed == {}
    assert architecture(resolved.config) == architecture(CodecConfig.load(PAPER))
    assert resolve_config(paper_shapes, ASSUMED_CONFIG, num_heads=16).config.transformer.num_heads == 16


def test_json5_config_sets_what_shapes_cannot(tmp_path):
    config = small_config("odd")
    path = tmp_path / "config.json5"
    path.write_text(to_json5(original_config(config)))
    resolved = resolve_config(shapes_of(config), path)
    assert architecture(resolved.config) == architecture(config)
    assert resolved.config.transformer.context == 16 and resolved.config.seanet.dilation_base == 3


@pytest.mark.parametrize("suffix", [".yaml", ".json", "/config.json"])
def test_our_own_configs_are_accepted(tmp_path, suffix):
    config = small_config("odd")
    data = config.to_dict()
    if suffix == ".yaml":
        path, text = tmp_path / "cfg.yaml", yaml.safe_dump(data)
    elif suffix == ".json":
        path, text = tmp_path / "cfg.json", json.dumps(data)
    else:  # a release directory's config.json
        path, text = tmp_path / "config.json", json.dumps({"kind": "codec", "format_version": 1, "config": data})
    path.write_text(text)
    resolved = resolve_config(shapes_of(config), path)
    assert architecture(resolved.config) == architecture(config) and resolved.config.norm == "none"


def test_config_contradicting_the_tensors_names_both(tmp_path, paper_shapes):
    data = json.loads(ASSUMED_CONFIG.read_text())
    for section in ("tokenizer_conf", "wave_decoder_conf"):
        data["config"]["model"][section]["seanet_conf"]["ratios"] = [8, 5, 5, 4, 2]
    path = tmp_path / "config.json5"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"seanet.ratios: the checkpoint's tensors say \[8, 8, 5, 5, 2\] but .*says"):
        resolve_config(paper_shapes, path)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("seanet_conf", "pad_mode", "reflect", "pad_mode = 'reflect' is not supported"),
        ("seanet_conf", "lstm", 2, "lstm = 2 is not supported"),
        ("transformer_conf", "positional_embedding", "sin", "positional_embedding = 'sin' is not supported"),
        ("transformer_conf", "norm", "weird_norm", "norm = 'weird_norm' is not supported"),
        (None, "ds_rate", 2, "extra resampling layers"),
    ],
)
def test_unsupported_options_are_refused(tmp_path, paper_shapes, section, key, value, message):
    data = json.loads(ASSUMED_CONFIG.read_text())
    tok = data["config"]["model"]["tokenizer_conf"]
    (tok[section] if section else tok)[key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        resolve_config(paper_shapes, path)


def test_encoder_and_decoder_must_agree(tmp_path, paper_shapes):
    data = json.loads(ASSUMED_CONFIG.read_text())
    data["config"]["model"]["wave_decoder_conf"]["transformer_conf"]["num_heads"] = 4
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="transformer.num_heads: .* 8 but wave_decoder_conf.transformer_conf says 4"):
        resolve_config(paper_shapes, path)


def test_config_file_errors(tmp_path, paper_shapes):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        resolve_config(paper_shapes, tmp_path / "absent.json5")
    (tmp_path / "bad.json5").write_text("{model: {tokenizer_conf: }")
    with pytest.raises(ValueError, match="bad.json5:1:"):
        resolve_config(paper_shapes, tmp_path / "bad.json5")
    (tmp_path / "other.yaml").write_text("hello: 1\n")
    with pytest.raises(ValueError, match="unknown key"):
        resolve_config(paper_shapes, tmp_path / "other.yaml")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({"encoder": "mel", "decoder": "istft"}))
    with pytest.raises(ValueError, match="need encoder/decoder 'seanet'"):
        resolve_config(paper_shapes, tmp_path / "tiny.yaml")
