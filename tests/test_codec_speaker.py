"""The codec's voice conditioner: exact warm start, reference handling, streaming, training data and the TTS's
own voice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.crops import CropDataset, read_manifest_entries
from codec.train import CodecTrainer
from codec.train_config import load_experiment_config
from tests.conftest import TINY, speechlike, tiny_config
from tts.voice import reference_codes, voice_from_meta, voice_to_meta

HOP = 3200


def voiced_pair(seed: int = 0) -> tuple[Codec, Codec]:
    """A codec without and one with a voice conditioner, sharing every other weight; the conditioner's output
    layer is then made non-zero so that it changes the decode."""
    torch.manual_seed(seed)
    plain = Codec(tiny_config()).eval()
    voiced = Codec(tiny_config("speaker_hidden=16")).eval()
    missing, unexpected = voiced.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("speaker.") for k in missing)
    return plain, voiced


def test_a_fresh_conditioner_leaves_the_decoder_unchanged_and_keeps_the_tokens():
    plain, voiced = voiced_pair()
    codes = torch.randint(0, 256, (2, 32, 6))
    ref = torch.randint(0, 256, (2, 32, 4))
    torch.testing.assert_close(voiced.decode(codes[:, :4], reference=ref), plain.decode(codes[:, :4]))
    assert voiced.tokens_id() == plain.tokens_id()  # a decoder-side module: a TTS on its tokens still fits
    assert voiced.has_speaker and not plain.has_speaker
    assert torch.equal(plain.decode(codes, reference=ref), plain.decode(codes))  # ignored without a conditioner


def trained_looking(voiced: Codec) -> Codec:
    with torch.no_grad():
        for p in voiced.speaker.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return voiced


def test_the_reference_sets_the_voice_and_defaults_to_the_codes_themselves():
    _, voiced = voiced_pair(1)
    voiced = trained_looking(voiced)
    codes = torch.randint(0, 256, (1, 32, 5))
    a, b = torch.randint(0, 256, (1, 32, 4)), torch.randint(0, 256, (1, 32, 4))
    ya, yb = voiced.decode(codes[:, :4], reference=a), voiced.decode(codes[:, :4], reference=b)
    assert not torch.allclose(ya, yb)
    torch.testing.assert_close(voiced.decode(codes), voiced.decode(codes, reference=codes))
    # one reference serves a batch; a batch of references must match the codes
    pair = codes.repeat(2, 1, 1)[:, :4]
    torch.testing.assert_close(voiced.decode(pair, reference=a)[0], ya[0])
    with pytest.raises(ValueError, match="references"):
        voiced.decode(pair, reference=torch.randint(0, 256, (3, 32, 4)))
    with pytest.raises(ValueError, match="code values"):
        voiced.decode(pair, reference=torch.full((1, 32, 4), 999))


@pytest.mark.parametrize("chunk", [1, 2])
def test_streamed_decode_with_a_reference_equals_offline(chunk):
    _, voiced = voiced_pair(2)
    voiced = trained_looking(voiced)
    codes, ref = torch.randint(0, 256, (1, 32, 7)), torch.randint(0, 256, (1, 32, 3))
    offline = voiced.decode(codes[:, :4], reference=ref)
    streamed = torch.cat(list(voiced.decode_stream(codes[:, :4], chunk, reference=ref)), dim=-1)
    torch.testing.assert_close(streamed, offline, rtol=1e-5, atol=1e-6)
    alone = torch.cat(list(voiced.decode_stream(codes, chunk)), dim=-1)  # no reference: all of codes, as offline
    torch.testing.assert_close(alone, voiced.decode(codes), rtol=1e-5, atol=1e-6)


@pytest.fixture()
def two_voices(tmp_path):
    """Two speakers, three utterances each; every utterance is a constant of its own level, so a crop tells which
    utterance it came from."""
    lines = []
    for i in range(6):
        speaker = "a" if i < 3 else "b"
        level = 0.01 * (i + 1)
        sf.write(tmp_path / f"u{i}.wav", np.full(16000, level, np.float32), 16000)
        item = {"id": f"u{i}", "audio": f"u{i}.wav", "text": "t", "speaker": speaker, "duration": 1.0}
        lines.append(json.dumps({**item, "sample_rate": 16000}))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_each_crop_gets_a_reference_from_another_utterance_of_its_speaker(two_voices):
    entries = read_manifest_entries(two_voices)
    data = CropDataset(entries, 16000, HOP, gain_jitter_db=0.0, reference_samples=2 * HOP)
    for index in range(6):
        for seed in range(5):
            item = data[index, seed]
            assert item["wav"].shape == (1, HOP) and item["reference"].shape == (1, 2 * HOP)
            assert torch.equal(item["wav"], data[index, seed]["wav"])  # deterministic, as resume needs
    picks = {(i, s): data._reference_source(i, s)[0] for i in range(6) for s in range(20)}
    for (i, _s), j in picks.items():
        assert j != i and entries[j]["speaker"] == entries[i]["speaker"]
    assert len({j for (i, _s), j in picks.items() if i == 0}) == 2  # both other utterances of speaker a occur


def test_a_training_step_trains_the_conditioner_from_the_reference(two_voices):
    fast = ["train.batch_size=2", "train.crop_seconds=0.4", "train.num_workers=0", "train.eval_every=0"]
    cfg = load_experiment_config(str(TINY), None, fast + ["model.speaker_hidden=16", "train.reference_seconds=0.4"])
    trainer = CodecTrainer(cfg, str(two_voices), None, "/tmp/unused", cpu=True)
    wav = torch.from_numpy(speechlike(0.4))[None, None].repeat(2, 1, 1)
    ref = torch.from_numpy(speechlike(0.4, seed=3))[None, None].repeat(2, 1, 1)
    trainer.train_step({"wav": wav, "reference": ref})
    last = trainer.model.speaker.net[-1].weight
    assert last.abs().sum() > 0  # the zero-initialised output layer moved
    assert not trainer.model.reference_latent(ref).requires_grad  # the reference reaches nothing but the conditioner


def test_the_release_voice_round_trips_and_a_prompt_takes_precedence():
    codes = torch.randint(0, 256, (32, 4))
    meta = {"voice": voice_to_meta(codes, "v.wav")}
    assert torch.equal(voice_from_meta(json.loads(json.dumps(meta)), 32, 256, "x"), codes)
    assert voice_from_meta({}, 32, 256, "x") is None
    for bad in ({"codes": [[1, 2]]}, {"codes": "x"}, {"codes": [[300] * 4] * 32}, {}):
        with pytest.raises(ValueError, match="voice"):
            voice_from_meta({"voice": bad}, 32, 256, "x")
    generated, prompt = torch.randint(0, 256, (1, 32, 6)), torch.randint(0, 256, (32, 3))
    assert torch.equal(reference_codes(prompt, codes, generated), prompt[None])
    assert torch.equal(reference_codes(None, codes, generated), codes[None])
    assert torch.equal(reference_codes(None, None, generated), generated)


@pytest.mark.parametrize("chunk", [1, 3])
def test_a_decoder_transformer_at_the_stft_rate_streams_and_starts_as_the_plain_decoder(chunk):
    torch.manual_seed(3)
    plain = Codec(tiny_config("transformer.context=4")).eval()
    deep = Codec(tiny_config("transformer.context=4", "istft.transformer_layers=1")).eval()
    missing, _ = deep.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("decoder.transformer.") for k in missing)
    assert deep.tokens_id() == plain.tokens_id()
    codes = torch.randint(0, 256, (1, 32, 6))
    offline = deep.decode(codes)
    streamed = torch.cat(list(deep.decode_stream(codes, chunk_frames=chunk)), dim=-1)
    torch.testing.assert_close(streamed, offline, rtol=1e-5, atol=1e-6)
    # layer scale starts the new layers near the identity: a warm start begins close to the plain decoder
    assert (offline - plain.decode(codes)).abs().max() < 0.2 * plain.decode(codes).abs().max()
