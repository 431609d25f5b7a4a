"""The TTS through a voice-conditioned codec: the prompt, else the release's own voice, sets the decoder's voice;
offline equals streamed; the own voice survives a release round trip (``export-tts --voice``: test_tts_export)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.testing import assert_close

from codec import Codec
from tests.conftest import speechlike, tiny_config
from tts import TTS
from tts.config import TTSConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def voiced_tts(tmp_path_factory) -> TTS:
    """A tiny TTS whose codec has a (non-trivial) voice conditioner and decodes 4 of 32 levels."""
    torch.manual_seed(0)
    codec = Codec(tiny_config("speaker_hidden=16")).eval()
    with torch.no_grad():
        for p in codec.speaker.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    cfg = TTSConfig.load("configs/tts/tiny.yaml", ["decode_levels=4"])
    return TTS.from_config(cfg, codec)


def test_decode_speaks_in_the_prompt_else_the_own_voice_else_the_generated_one(voiced_tts):
    tts = voiced_tts
    codes = torch.randint(0, 256, (1, 32, 5))
    prompt, voice = torch.randint(0, 256, (32, 3)), torch.randint(0, 256, (32, 4))
    assert_close(tts.decode(codes, prompt), tts.codec.decode(codes[:, :4], reference=prompt[None])[0])
    assert_close(tts.decode(codes), tts.codec.decode(codes[:, :4], reference=codes)[0])
    tts.voice = voice
    try:
        assert_close(tts.decode(codes), tts.codec.decode(codes[:, :4], reference=voice[None])[0])
        assert not torch.allclose(tts.decode(codes), tts.decode(codes, prompt))
    finally:
        tts.voice = None


def test_streamed_equals_offline_with_a_prompt_and_with_the_own_voice(voiced_tts):
    tts = voiced_tts
    prompt = torch.from_numpy(speechlike(0.6))[None]
    offline = tts.synthesize("Hello there. Bye.", prompt_wav=prompt, seed=3)
    assert_close(torch.cat(list(tts.stream("Hello there. Bye.", prompt_wav=prompt, seed=3)), -1), offline)
    tts.voice = torch.randint(0, 256, (32, 4))
    try:
        offline = tts.synthesize("Hello there.", seed=4)
        assert_close(torch.cat(list(tts.stream("Hello there.", seed=4)), -1), offline, rtol=1e-4, atol=1e-5)
    finally:
        tts.voice = None


def test_the_own_voice_survives_a_release_round_trip(voiced_tts, tmp_path):
    voiced_tts.voice, voiced_tts.voice_source = torch.randint(0, 256, (32, 4)), "v.wav"
    try:
        out = voiced_tts.save_pretrained(tmp_path / "rel")
        loaded = TTS.from_pretrained(out)
        assert torch.equal(loaded.voice, voiced_tts.voice) and loaded.voice_source == "v.wav"
        assert torch.equal(loaded.synthesize("Hi.", seed=1), voiced_tts.synthesize("Hi.", seed=1))
    finally:
        voiced_tts.voice, voiced_tts.voice_source = None, ""
    meta = json.loads((out / "config.json").read_text())
    meta["voice"]["codes"] = [[999]]
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="voice"):
        TTS.from_pretrained(out)
