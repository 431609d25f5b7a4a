"""The original-checkpoint converter: every tensor consumed, strict load, and the folded model computes the same
function as our weight-norm model holding the same g/v (the proof that the mapping is right)."""

from __future__ import annotations

import argparse
import json
import warnings

import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from codec import Codec, CodecConfig, cli
from codec.compat.config import OriginalConfigWarning, resolve_config
from codec.compat.convert import (
    convert_original,
    convert_state_dict,
    fold_weight_norm,
    load_original_checkpoint,
    unwrap_state_dict,
)
from tests.original_helpers import (
    PAPER,
    architecture,
    from_original,
    manifest,
    original_config,
    perturbed_model,
    random_original_state,
    small_config,
    to_json5,
    to_original,
)

# Tests that check the assumption warnings capture them explicitly; elsewhere they are expected noise.
pytestmark = pytest.mark.filterwarnings("ignore::codec.compat.config.OriginalConfigWarning")

WRAPPINGS = {
    "raw": lambda sd: sd,
    "model": lambda sd: {"model": sd, "step": torch.tensor(650000)},
    "module": lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these models are small or single-shot, and on busy cores OpenMP's spinning threads made
    them 10-40x slower than one thread (measured)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def main(argv: list[str]) -> int:
    """``ucodec`` with only the convert-original command registered, so unrelated command modules cannot break it."""
    assert "codec.compat.cli" in cli.CODEC_COMMANDS
    return cli.run(cli.build_parser(("codec.compat.cli",)), argv)


def assert_same_function(a: torch.Tensor, b: torch.Tensor) -> None:
    """Equal up to float32 rounding, relative to the signal's scale."""
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()) + 1e-7)


# ------------------------------------------------------------------------------------------ paper size
@pytest.fixture(scope="module")
def paper_state() -> dict[str, torch.Tensor]:
    """The 486 tensors of ``state_dict_manifest.json`` with random values."""
    return random_original_state(manifest(), seed=0)


@pytest.fixture(scope="module")
def paper_wn_model(paper_state) -> Codec:
    """Our weight-norm paper model holding the checkpoint's g and v as they are."""
    model = Codec(CodecConfig.load(PAPER))
    model.load_state_dict(from_original(paper_state), strict=True)
    return model.eval()


def test_manifest_is_our_paper_layout(paper_wn_model):
    ours = paper_wn_model.state_dict()
    assert {k: list(v.shape) for k, v in to_original(ours).items()} == manifest()
    assert len(ours) == 486 and sum(v.numel() for v in ours.values()) == 154_074_562


def test_all_wrappings_give_the_same_state(paper_state):
    for wrapping in WRAPPINGS.values():
        state = unwrap_state_dict(wrapping(paper_state))
        assert list(state) == list(paper_state)
        assert all(state[k] is paper_state[k] for k in state)


def test_paper_conversion_is_equivalent(paper_state, paper_wn_model):
    with pytest.warns(OriginalConfigWarning, match="transformer.num_heads=8"):
        resolved = resolve_config(paper_state)
    assert architecture(resolved.config) == architecture(CodecConfig.load(PAPER))
    # Raises if a single tensor is missing, left over or misshaped; loads with strict=True.
    converted, folded = convert_state_dict(paper_state, resolved.config)
    assert folded == 98 and len(converted.state_dict()) == 486 - 98
    assert converted.config.norm == "none" and not any("parametrizations" in k for k in converted.state_dict())

    wav = torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.inference_mode():
        latent = converted.encode_latent(wav)
        assert_same_function(latent, paper_wn_model.encode_latent(wav))
        codes = converted.quantizer.encode(latent)
        assert codes.shape == (1, 32, 5)
        torch.testing.assert_close(codes, paper_wn_model.quantizer.encode(latent), rtol=0, atol=0)
        audio = converted.decode(codes)
        assert audio.shape == (1, 1, 16000)
        assert_same_function(audio, paper_wn_model.decode(codes))


# ------------------------------------------------------------------------------------------ small models
def _convert_small(tmp_path, config, reference, with_config, num_heads=None):
    """Save ``reference`` as an authors' checkpoint and convert it; returns (converted model, warnings raised)."""
    ckpt = tmp_path / "generator.pt"
    torch.save({"model": to_original(reference.state_dict())}, ckpt)
    cfg_path = None
    if with_config:
        cfg_path = tmp_path / "config.json5"
        cfg_path.write_text(to_json5(original_config(config)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = convert_original(ckpt, tmp_path / "out", config=cfg_path, num_heads=num_heads, overwrite=True)
    assert result.num_tensors == len(reference.state_dict())
    return Codec.from_pretrained(result.path), [w for w in caught if w.category is OriginalConfigWarning]


@pytest.mark.parametrize(
    ("variant", "with_config", "num_heads"),
    [("ln", False, 2), ("ln", True, None), ("rms", False, 4), ("odd", True, None)],
    ids=["ln-inferred", "ln-json5", "rms-inferred", "odd-json5"],
)
def test_small_conversion_is_equivalent(tmp_path, variant, with_config, num_heads):
    config = small_config(variant)
    reference = perturbed_model(config, seed=3)
    converted, warned = _convert_small(tmp_path, config, reference, with_config, num_heads)
    assert bool(warned) != with_config  # assumptions are reported exactly when no config file was given
    wav = torch.randn(2, 1, 960, generator=torch.Generator().manual_seed(2)) * 0.3
    codes = converted.encode(wav)
    torch.testing.assert_close(codes, reference.encode(wav), rtol=0, atol=0)
    with torch.inference_mode():
        assert_same_function(converted.encode_latent(wav), reference.encode_latent(wav))
        assert_same_function(converted.decode(codes), reference.decode(codes))


def test_equivalence_check_detects_wrong_assumptions(tmp_path):
    """Without its config, "odd" converts (shapes match) but computes another function: the check has teeth."""
    config = small_config("odd")
    reference = perturbed_model(config, seed=3)
    converted, warned = _convert_small(tmp_path, config, reference, with_config=False, num_heads=4)
    assert "transformer.context=250" in str(warned[0].message)
    wav = torch.randn(1, 1, 960, generator=torch.Generator().manual_seed(2)) * 0.3
    with torch.inference_mode():
        a, b = converted.encode_latent(wav), reference.encode_latent(wav)
    assert (a - b).abs().max() > 1e-3 * b.abs().max()


@pytest.mark.parametrize(
    "module",
    [nn.Conv1d(3, 5, 4), nn.ConvTranspose1d(6, 3, 4, stride=2), nn.Linear(7, 2)],
    ids=["conv", "convtr", "lin"],
)
def test_fold_weight_norm_matches_torch(module):
    wn = weight_norm(module)
    with torch.no_grad():
        wn.parametrizations.weight.original0.mul_(torch.rand_like(wn.parametrizations.weight.original0) + 0.5)
    g, v = wn.parametrizations.weight.original0, wn.parametrizations.weight.original1
    assert g.shape[0] == v.shape[0] and g.shape[1:] == (1,) * (v.dim() - 1)
    torch.testing.assert_close(fold_weight_norm(g, v), wn.weight.detach())


# ------------------------------------------------------------------------------------------ errors
@pytest.fixture()
def small_ckpt(tmp_path) -> tuple[dict[str, torch.Tensor], CodecConfig]:
    config = small_config("ln")
    return to_original(perturbed_model(config).state_dict()), config


def test_missing_extra_and_misshaped_tensors_are_listed(tmp_path, small_ckpt):
    state, _ = small_ckpt
    del state["tokenizer.encoder.model.1.block.3.conv.conv.weight_g"]  # half of a weight-norm pair
    del state["token2wav.decoder_transformer.transformer.layers.1.linear2.weight"]
    state["tokenizer.vq.layers.0._codebook.embed_avg"] = torch.zeros(16, 4)
    state["token2wav.decoder.model.0.conv.conv.bias"] = torch.zeros(3)
    for i in range(7):
        state[f"discriminator.{i}.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as info:
        convert_original(tmp_path / "bad.pt", tmp_path / "out", num_heads=2)
    msg = str(info.value)
    assert "2 missing" in msg and "model.1.block.3.conv.conv.weight_g" in msg and "layers.1.linear2.weight" in msg
    assert "8 unexpected" in msg and "discriminator.0.weight" in msg and "(3 more)" in msg
    assert "1 with the wrong shape" in msg and "token2wav.decoder.model.0.conv.conv.bias: checkpoint [3]" in msg
    assert not (tmp_path / "out").exists()


def test_extra_resampling_layers_are_named(tmp_path, small_ckpt):
    state, _ = small_ckpt
    state["tokenizer.proj.conv.conv.weight"] = torch.zeros(16, 16, 4)
    torch.save(state, tmp_path / "proj.pt")
    with pytest.raises(ValueError, match="tokenizer.proj / token2wav.proj"):
        convert_original(tmp_path / "proj.pt", tmp_path / "out", num_heads=2)


def test_pickle_payload_is_refused(tmp_path, small_ckpt):
    state, _ = small_ckpt
    torch.save({"model": state, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match=r"refused by torch.load\(weights_only=True\): .*argparse.Namespace"):
        load_original_checkpoint(tmp_path / "pickled.pt")


def test_unreadable_inputs(tmp_path):
    for name, content in (
        ("text.pt", b"hello\n"),
        ("noise.pt", torch.randint(0, 256, (4096,)).byte().numpy().tobytes()),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=name):
            load_original_checkpoint(tmp_path / name)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        load_original_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError):
        load_original_checkpoint(tmp_path / "absent.pt")
    torch.save({"model": {"a": 1}}, tmp_path / "scalars.pt")
    with pytest.raises(ValueError, match="not tensors"):
        load_original_checkpoint(tmp_path / "scalars.pt")
    with pytest.raises(ValueError, match="collides"):
        unwrap_state_dict({"module.a": torch.zeros(1), "a": torch.zeros(1)})


def test_cli_fp16_overwrite_and_errors(tmp_path, capsys, small_ckpt):
    state, config = small_ckpt
    ckpt, out = tmp_path / "generator.pt", tmp_path / "out"
    torch.save(state, ckpt)
    assert main(["convert-original", str(ckpt), str(out), "--fp16", "--num-heads", "2"]) == 0
    captured = capsys.readouterr()
    assert "num_heads" not in captured.err and "4x16 RVQ" in captured.out
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys() if "weight" in k)
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["norm"] == "none" and meta["config"]["transformer"]["num_heads"] == 2
    assert Codec.from_pretrained(out).encode(torch.zeros(1, 1, 100)).shape == (1, 4, 4)

    assert main(["convert-original", str(ckpt), str(out), "--num-heads", "2"]) == 2
    assert "already holds a release" in capsys.readouterr().err
    assert main(["convert-original", str(ckpt), str(out), "--num-heads", "2", "--overwrite"]) == 0
    assert main(["convert-original", str(tmp_path / "absent.pt"), str(tmp_path / "o2")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["convert-original", str(ckpt), str(tmp_path / "o3"), "--num-heads", "3"]) == 2
    assert "num_heads" in capsys.readouterr().err
