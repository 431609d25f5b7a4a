"""A phone-input codec's first stack pretrained alone (``ucodec train-phone-stack``) and grafted into a codec
(``ucodec train-codec --init-stack``)."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.content.first_stack import (
    StackTrainConfig,
    graft_first_stack,
    load_first_stack,
    pretrain_first_stack,
)
from codec.content.phone_model import PhoneModel, PhoneModelConfig, save_phone_model
from codec.content.phonemes import CTC_SYMBOLS
from codec.training.experiment import list_checkpoints, load_checkpoint
from tests.conftest import TINY, speechlike, tiny_config
from tests.test_content import espeak_or_skip
from ucodec.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SYMBOLS = json.dumps(list(CTC_SYMBOLS), ensure_ascii=False)
PHONE = ["quantizer.split_levels=2", f"content.symbols={SYMBOLS}", "content.phone_input=true"]
TEXTS = ["Hello there.", "One two three.", "A cat sat.", "...", "Good morning to you."]


def _recognizer(path, seed: int):
    torch.manual_seed(seed)
    save_phone_model(PhoneModel(PhoneModelConfig(symbols=CTC_SYMBOLS)), path)
    return path


@pytest.fixture()
def corpus(tmp_path):
    """Five short utterances, one of them ("...") without phonemes."""
    espeak_or_skip()
    lines = []
    for i, text in enumerate(TEXTS):
        sf.write(tmp_path / f"u{i}.wav", speechlike(1.0 + 0.2 * i, seed=i), 16000)
        row = {"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "speaker": "s", "duration": 1.0 + 0.2 * i}
        row["sample_rate"] = 16000
        lines.append(json.dumps(row))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "m.jsonl"


@pytest.fixture()
def stack(corpus, tmp_path):
    rec = _recognizer(tmp_path / "rec", seed=3)
    out = tmp_path / "stack.safetensors"
    cfg = StackTrainConfig(steps=3, batch_size=2, utterances=0)
    meta = pretrain_first_stack(tiny_config(*PHONE), corpus, out, rec, cfg, dev=corpus, progress=False)
    return out, rec, meta


def test_pretraining_writes_the_codec_named_stack_with_its_metadata(stack):
    out, _, meta = stack
    state, saved = load_first_stack(out)
    assert saved == json.loads(json.dumps(meta)) | {"format": "ucodec-first-stack/1"}
    assert meta["levels"] == 2 and meta["utterances"] == 4  # "..." has no phoneme: left out
    assert isinstance(meta["dev_per"], float) and meta["dev_per"] >= 0
    codec_names = set(Codec(tiny_config(*PHONE)).state_dict())
    assert set(state) <= codec_names
    assert {k.split(".")[2] for k in state if k.startswith("quantizer.")} == {"0", "1"}
    assert any(k.startswith("phone_input.proj.") for k in state)


def test_graft_copies_the_stack_and_starts_its_output_at_zero(stack):
    out, rec, _ = stack
    state, _ = load_first_stack(out)
    torch.manual_seed(0)
    model = Codec(tiny_config(*PHONE))
    model.phone_input.load_recognizer(rec)
    second = model.quantizer.layers[2].codebook.weight.clone()
    assert "levels 1-2" in graft_first_stack(model, out)
    own = model.state_dict()
    for key in ("phone_input.proj.1.weight", "quantizer.layers.1.codebook.weight", "quantizer.layers.0.in_proj.bias"):
        assert torch.equal(own[key], state[key]), key
    for level in (0, 1):  # adds nothing yet: the codec first decodes from its second stack
        assert model.quantizer.layers[level].decode(torch.zeros(1, 3, dtype=torch.long)).abs().max() == 0
    assert torch.equal(model.quantizer.layers[2].codebook.weight, second)


def test_graft_refuses_what_does_not_fit(stack, tmp_path):
    out, rec, _ = stack
    with pytest.raises(ValueError, match="phone input"):
        graft_first_stack(Codec(tiny_config(PHONE[0])), out)
    other = Codec(tiny_config(*PHONE))  # its recognizer is not the one the stack was trained on
    other.phone_input.load_recognizer(_recognizer(tmp_path / "rec2", seed=9))
    with pytest.raises(ValueError, match="another recognizer"):
        graft_first_stack(other, out)
    deeper = Codec(tiny_config("quantizer.split_levels=3", *PHONE[1:]))
    deeper.phone_input.load_recognizer(rec)
    with pytest.raises(ValueError, match="split_levels is 3"):
        graft_first_stack(deeper, out)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a first-stack file"):
        graft_first_stack(other, tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        graft_first_stack(other, tmp_path / "missing.safetensors")


def test_cli_pretrains_then_a_codec_run_starts_from_the_stack(corpus, tmp_path):
    rec = _recognizer(tmp_path / "rec", seed=3)
    out = tmp_path / "s.safetensors"
    sets = sum((["--set", p] for p in PHONE), [])
    base = ["train-phone-stack", str(corpus), "--config", str(TINY), "--phone-model", str(rec), "--no-progress"]
    assert main([*base[:2], str(tmp_path / "s.pt"), *base[2:], *sets, "--steps", "2"]) == 2  # not .safetensors
    assert main([*base[:2], str(out), *base[2:], "--steps", "2"]) == 2  # the config has no phone input
    assert not list(tmp_path.glob("s.*"))
    assert main([*base[:2], str(out), *base[2:], *sets, "--steps", "2", "--utterances", "3"]) == 0
    assert load_first_stack(out)[1]["utterances"] in (2, 3)  # a random 3 of the 5, less any without phonemes

    fast = ["train.batch_size=2", "train.crop_seconds=0.4", "train.num_workers=0", "train.eval_every=0"]
    codec_sets = sum((["--set", f"model.{p}"] for p in PHONE), []) + sum((["--set", f] for f in fast), [])
    exp = tmp_path / "exp"
    common = ["train-codec", "--config", str(TINY), "--train", str(corpus), "--cpu", "--out", str(exp), *codec_sets]
    rec_set = ["--set", f"train.phone_model={rec}", "--set", "train.frozen=['quantizer.layers.[0-1].codebook.*']"]
    assert main([*common, *rec_set, "--init-stack", str(out), "--max-steps", "1"]) == 0
    state = load_checkpoint(list_checkpoints(exp)[-1])["model"]
    stack_state, _ = load_first_stack(out)
    for level in (0, 1):  # frozen: still the stack's codebooks after a step
        key = f"quantizer.layers.{level}.codebook.weight"
        torch.testing.assert_close(state[key], stack_state[key])
    resume = ["train-codec", "--train", str(corpus), "--out", str(exp), "--cpu", "--resume", "--init-stack", str(out)]
    assert main([*resume, "--max-steps", "2"]) == 2
