"""A frozen phoneme recognizer feeding the first quantizer stack (``model.content.phone_input``)."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.chunked_encode import can_stream, encode_file
from codec.content.phone_model import PhoneModel, PhoneModelConfig, load_phone_model, save_phone_model
from codec.content.phonemes import CTC_SYMBOLS
from codec.training.experiment import list_checkpoints, load_checkpoint
from tests.conftest import TINY, speechlike, tiny_config
from ucodec.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SYMBOLS = json.dumps(list(CTC_SYMBOLS), ensure_ascii=False)
PHONE = ["quantizer.split_levels=2", f"content.symbols={SYMBOLS}", "content.phone_input=true"]


def _wav(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(speechlike(seconds, seed=seed))[None, None]


@pytest.fixture()
def recognizer(tmp_path):
    torch.manual_seed(3)
    model = PhoneModel(PhoneModelConfig(symbols=CTC_SYMBOLS))
    save_phone_model(model, tmp_path / "phones")
    return tmp_path / "phones"


def test_config_needs_a_split_and_symbols():
    with pytest.raises(ValueError, match="split_levels"):
        tiny_config(*PHONE[1:])
    with pytest.raises(ValueError, match="symbols"):
        tiny_config(PHONE[0], PHONE[2])
    with pytest.raises(ValueError, match="phone_features"):
        tiny_config(*PHONE, "content.phone_features=logits")


@pytest.mark.parametrize("features", ["log_probs", "posteriors"])
def test_first_stack_reads_the_phone_input_and_the_second_the_latent(features):
    torch.manual_seed(0)
    codec = Codec(tiny_config(*PHONE, f"content.phone_features={features}")).eval()
    wav = _wav(1.3)
    codes = codec.encode(wav)
    assert codes.shape == (1, codec.num_codebooks, 7)
    assert torch.equal(codec(wav).codes, codes)  # the training pass picks the same codes
    with torch.no_grad():
        codec.phone_input.proj[1].weight.mul_(-1.0)  # another phone input ...
    moved = codec.encode(wav)
    assert not torch.equal(moved[:, :2], codes[:, :2])  # ... moves the first stack's codes
    assert torch.equal(moved[:, 2:], codes[:, 2:])  # and not the second stack's
    assert not can_stream(codec)


def test_recognizer_stays_frozen_and_in_eval_mode():
    codec = Codec(tiny_config(*PHONE)).train()
    assert not codec.phone_input.recognizer.training and codec.phone_input.proj.training
    out = codec(_wav(1.0))
    (out.audio.pow(2).mean() + out.commitment_loss).backward()
    assert all(p.grad is None for p in codec.phone_input.recognizer.parameters())
    grad = codec.phone_input.proj[1].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def _grads(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def test_content_only_split_stops_the_reconstruction_gradient_at_the_first_stack_codes():
    with pytest.raises(ValueError, match="content_only_split"):
        tiny_config(*PHONE, "content.content_only_split=true")  # no content levels to learn from
    wav = _wav(1.0)
    outs = {}
    for only in (False, True):
        torch.manual_seed(0)
        codec = Codec(tiny_config(*PHONE, "content.levels=2", f"content.content_only_split={only}")).train()
        torch.manual_seed(1)
        out = codec(wav)
        outs[only] = out.audio.detach()
        out.audio.pow(2).mean().backward(retain_graph=True)  # reconstruction only
        first = codec.quantizer.layers[0]
        assert _grads(first.out_proj) > 0  # the decoder still learns how to read the phonetic codes
        assert (_grads(codec.phone_input.proj) == 0) == only  # ... but not which codes they are
        assert (_grads(first.in_proj) == 0) == only
        assert _grads(codec.quantizer.layers[2].in_proj) > 0  # the acoustic stack is unchanged
        codec.zero_grad()
        out.prefix.pow(2).mean().backward()  # the content heads' path keeps the straight-through gradient
        assert _grads(codec.phone_input.proj) > 0 and _grads(first.in_proj) > 0
    torch.testing.assert_close(outs[True], outs[False])  # the forward pass is the same


def test_recognizer_weights_load_and_must_match(recognizer, tmp_path):
    codec = Codec(tiny_config(*PHONE))
    assert "recognizer weights" in codec.phone_input.load_recognizer(recognizer)
    ref = load_phone_model(recognizer)  # the codec now holds exactly the saved (fp16) weights
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(codec.phone_input.recognizer.state_dict()[name], value, msg=name)
    save_phone_model(PhoneModel(PhoneModelConfig(symbols=("a", "b"))), tmp_path / "other")
    with pytest.raises(ValueError, match="does not match"):
        codec.phone_input.load_recognizer(tmp_path / "other")
    with pytest.raises(FileNotFoundError):
        codec.phone_input.load_recognizer(tmp_path / "missing")


def test_init_from_a_codec_without_phone_input_starts_the_first_stack_fresh(tmp_path):
    from codec.content.train import init_weights_from

    torch.manual_seed(4)
    source = Codec(tiny_config(PHONE[0]))
    source.save_pretrained(tmp_path / "src")
    model = Codec(tiny_config(*PHONE))
    msg = init_weights_from(model, None, tmp_path / "src")
    assert "phone_input.proj" in msg and "read the phone input" in msg
    for level in (0, 1):  # fresh, and adding nothing yet: the warm start decodes from the second stack alone
        assert not torch.equal(
            model.quantizer.layers[level].codebook.weight, source.quantizer.layers[level].codebook.weight
        )
        assert model.quantizer.layers[level].decode(torch.zeros(1, 3, dtype=torch.long)).abs().max() == 0
    assert torch.equal(model.quantizer.layers[2].codebook.weight, source.quantizer.layers[2].codebook.weight)


def test_init_from_another_split_moves_the_second_stack_behind_a_fresh_first_stack(tmp_path):
    from codec.content.train import init_weights_from

    torch.manual_seed(5)
    source = Codec(tiny_config(*PHONE)).eval()  # levels 0-1 phonetic, 2.. over the latent
    source.save_pretrained(tmp_path / "src")
    model = Codec(tiny_config(*PHONE, "quantizer.split_levels=3"))
    msg = init_weights_from(model, None, tmp_path / "src")
    assert "3-level first stack" in msg
    layers, src = model.quantizer.layers, source.quantizer.layers
    for level in range(3, model.num_codebooks):  # the source's second-stack level i - 1
        assert torch.equal(layers[level].codebook.weight, src[level - 1].codebook.weight)
    for level in range(3):  # fresh, adding nothing yet
        assert layers[level].decode(torch.zeros(1, 3, dtype=torch.long)).abs().max() == 0
    assert not torch.equal(layers[2].codebook.weight, src[2].codebook.weight)
    model.eval()
    z, z_split = torch.randn(1, model.config.dimension, 5), torch.randn(1, model.config.dimension, 5)
    codes, ref = model.quantizer.encode(z, z_split=z_split), source.quantizer.encode(z, z_split=z_split)
    assert torch.equal(codes[:, 3:], ref[:, 2:-1])  # the same tokens behind the split, one level fewer
    # and the warm start decodes them as the source's second stack does (its last level dropped)
    second = sum(src[i].decode(ref[:, i]) for i in range(2, source.num_codebooks - 1))
    torch.testing.assert_close(model.quantizer.decode(codes), second.transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_release_round_trip_and_whole_file_encode(tmp_path):
    torch.manual_seed(1)
    codec = Codec(tiny_config(*PHONE)).eval()
    codec.save_pretrained(tmp_path / "rel")
    loaded = Codec.from_pretrained(tmp_path / "rel")
    wav = _wav(2.1, seed=2)
    assert torch.equal(loaded.encode(wav), codec.encode(wav))
    sf.write(tmp_path / "a.wav", wav[0, 0].numpy(), 16000)
    # a small chunk size must not split the file: the recognizer reads whole utterances
    assert torch.equal(encode_file(codec, tmp_path / "a.wav", chunk_seconds=0.4).codes, codec.encode(wav)[0])


def test_train_codec_starts_from_the_saved_recognizer(recognizer, tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    lines = []
    for i in range(3):
        sf.write(root / f"u{i}.wav", speechlike(1.0, seed=i), 16000)
        lines.append(json.dumps({"id": f"u{i}", "audio": f"u{i}.wav", "text": "t", "speaker": "s", "duration": 1.0}))
    (root / "m.jsonl").write_text("\n".join(lines) + "\n")
    fast = ["train.batch_size=2", "train.crop_seconds=0.4", "train.num_workers=0", "train.eval_every=0"]
    sets = sum((["--set", f"model.{p}"] for p in PHONE), []) + sum((["--set", f] for f in fast), [])
    common = ["train-codec", "--config", str(TINY), "--train", str(root / "m.jsonl"), "--cpu", *sets]
    missing = [*common, "--out", str(tmp_path / "bad"), "--set", f"train.phone_model={tmp_path / 'none'}"]
    assert main([*missing, "--max-steps", "1"]) == 2  # no recognizer: one error line, no run
    exp = tmp_path / "exp"
    assert main([*common, "--out", str(exp), "--set", f"train.phone_model={recognizer}", "--max-steps", "1"]) == 0
    state = load_checkpoint(list_checkpoints(exp)[-1])["model"]
    ref = load_phone_model(recognizer)
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(state[f"phone_input.recognizer.{name}"], value, msg=name)


def test_probe_also_reads_the_phone_input_before_quantization(tmp_path):
    from codec.evaluation.codec_report import content_table
    from codec.evaluation.content import ProbeProtocol, content_scores
    from codec.manifest import read_manifest
    from tests.test_content import espeak_or_skip

    espeak_or_skip()
    lines = []
    for i, text in enumerate(["Hello there.", "One two three."]):
        sf.write(tmp_path / f"u{i}.wav", speechlike(1.0, seed=i), 16000)
        lines.append(
            json.dumps(
                {
                    "id": f"u{i}",
                    "audio": f"u{i}.wav",
                    "text": text,
                    "speaker": "s",
                    "duration": 1.0,
                    "sample_rate": 16000,
                }
            )
        )
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    utts = read_manifest(tmp_path / "m.jsonl")
    got = content_scores(Codec(tiny_config(*PHONE)).eval(), utts, utts, ProbeProtocol(levels=(1,), steps=2), False)
    assert got["input_per"] >= 0 and "before quantization" in content_table(got)
    plain = content_scores(Codec(tiny_config(PHONE[0])).eval(), utts, utts, ProbeProtocol(levels=(1,), steps=2), False)
    assert "input_per" not in plain and "before quantization" not in content_table(plain)
