"""Strict configs, overrides, and the paper model's size."""

from __future__ import annotations

import pytest

from codec import Codec, CodecConfig
from codec.configio import apply_overrides
from tests.conftest import ROOT, TINY


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text() + "\nnum_layerz: 3\n")
    with pytest.raises(ValueError, match="num_layerz"):
        CodecConfig.load(bad)


def test_unknown_nested_key_lists_allowed():
    with pytest.raises(ValueError, match=r"transformer.*depth.*allowed"):
        CodecConfig.load(TINY, ["transformer.depth=3"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("transformer.num_layers='3'", "integer"),
        ("transformer.num_layers=2.5", "integer"),
        ("encoder=wavlm", "not one of"),
        ("quantizer.dropout_layers=[64]", "outside"),
        ("transformer.causal=3", "true/false"),
        ("seanet.ratios=oops", "list"),
    ],
)
def test_wrong_types_are_errors(override, message):
    with pytest.raises(ValueError, match=message):
        CodecConfig.load(TINY, [override])


def test_overrides_parse_yaml_values():
    cfg = CodecConfig.load(TINY, ["transformer.num_layers=3", "mel.strides=[4, 5]", "transformer.context=null"])
    assert cfg.transformer.num_layers == 3 and cfg.mel.strides == (4, 5) and cfg.transformer.context is None
    with pytest.raises(ValueError, match="key.path=value"):
        apply_overrides({}, ["novalue"])


def test_round_trip_through_dict():
    cfg = CodecConfig.load(ROOT / "configs" / "codec" / "small.yaml")
    assert CodecConfig.from_dict(cfg.to_dict()) == cfg


def test_paper_config_matches_published_parameter_count():
    cfg = CodecConfig.load(ROOT / "configs" / "codec" / "paper.yaml")
    assert (cfg.hop_length, cfg.frame_rate, cfg.bitrate) == (3200, 5.0, 1280.0)
    assert Codec(cfg).num_parameters() == 154_074_562


def test_inconsistent_hops_are_rejected():
    with pytest.raises(ValueError, match="hop"):
        CodecConfig.load(TINY, ["decoder=seanet", "seanet.ratios=[8, 8, 5, 5]"])  # 1600 vs the encoder's 3200
    with pytest.raises(ValueError, match="multiple"):
        CodecConfig.load(TINY, ["mel.mel_hop=100"])  # hop 2000 is not a multiple of the iSTFT hop 160


def test_yaml_1_1_words_stay_strings(tmp_path):
    """``no``/``off``/``yes``/``on`` are strings (YAML 1.2), so ``mixed_precision=no`` reaches its Literal check."""
    from codec.configio import dump_yaml, load_config, read_mapping
    from codec.train_config import CodecExperimentConfig, TrainConfig

    assert apply_overrides({}, ["a=no", "b=on", "c=true", "d=False"]) == {"a": "no", "b": "on", "c": True, "d": False}
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  mixed_precision: no\n", encoding="utf-8")
    cfg = load_config(CodecExperimentConfig, path, ["train.mixed_precision=no"])
    assert cfg.train.mixed_precision == "no"
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(dump_yaml(TrainConfig()), encoding="utf-8")
    assert read_mapping(dumped)["mixed_precision"] == "no"  # and a dump reads back the same
