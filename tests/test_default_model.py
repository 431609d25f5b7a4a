"""The shipped default TTS (``models/tts-small``) loads and speaks: shape, non-silence, END reached — not quality.

These run the real committed release on purpose (the README's first command uses it); quality is measured by
``ucodec eval tts`` into docs/tts_eval.md, not here.
"""

from __future__ import annotations

import pytest
import torch

from tts.generate import generate
from tts.pipeline import TTS

SENTENCE = "The birch canoe slid on the smooth planks."


@pytest.fixture(scope="module")
def tts() -> TTS:
    torch.set_num_threads(2)
    return TTS.from_pretrained("default")


def test_default_release_is_complete(tts):
    assert tts.config.num_codebooks == tts.codec.num_codebooks == 32
    assert tts.codec.frame_rate == 5.0 and tts.sample_rate == 16000
    assert tts.codec_release_id == TTS.from_pretrained("default").codec_release_id  # deterministic load


def test_default_model_speaks_a_short_sentence_and_reaches_end(tts):
    """Four seeds in one batch: most end by END (not a length guard), at a plausible length, and are not silent.

    A sampled model may miss END on an unlucky seed; "most" keeps this a property of the model, not of one seed.
    """
    seeds = [0, 1, 2, 3]
    ids, lengths = tts._sentences(SENTENCE, None)
    params, limit = tts._settings(None, None, None, None)
    prefix, options = tts._generate(ids * 4, lengths * 4, [None] * 4, params, limit, seeds)
    out = generate(tts.model, prefix, **options)
    ended = [i for i, why in enumerate(out.reasons) if why == "end"]
    assert len(ended) >= 3, out.reasons
    assert all(5 <= out.lengths[i] for i in ended), out.lengths  # at least 1 s for an 8-word sentence

    wavs = tts.synthesize_batch([SENTENCE] * 4, seed=0)  # text j uses seed j: the same four sequences
    for i, wav in enumerate(wavs):
        assert wav.dim() == 2 and wav.shape[0] == 1 and torch.isfinite(wav).all()
        assert wav.shape[1] == out.lengths[i] * tts.codec.hop_length  # one sentence: no cross-fade, same frames
    loud = [wav.pow(2).mean().sqrt().item() > 1e-3 for wav in wavs]
    assert sum(loud) >= 3, loud  # not silence


def test_default_model_clones_a_prompt(tts):
    """The README's cloning example: a 7.7 s prompt with its transcript (longer than the model's transcribed prompts,
    so it is cut to 3 s and the transcript is not used — with a warning) gives speech, not an immediate END."""
    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "docs" / "samples"
    prompt_text = (sample / "prompt.txt").read_text(encoding="utf-8").strip()
    with pytest.warns(UserWarning, match="transcript is not used"):
        wavs = tts.synthesize_batch([SENTENCE] * 4, prompt_wav=sample / "prompt.wav", prompt_text=prompt_text)
    long_enough = [w.shape[1] >= tts.sample_rate for w in wavs]  # >= 1 s each
    loud = [w.pow(2).mean().sqrt().item() > 1e-3 for w in wavs]
    assert sum(long_enough) >= 3 and sum(loud) >= 3, (long_enough, loud)


def test_the_voice_release_speaks_in_the_prompts_voice_else_its_own():
    """``models/tts-small-voice`` (the README's cloning example): the same generated codes decode differently in the
    prompt's voice and in the release's own voice, and a prompt gives speech."""
    from pathlib import Path

    voice = TTS.from_pretrained("tts-small-voice")
    assert voice.codec.has_speaker and voice.voice is not None and voice.decode_levels == 4
    assert voice.codec.tokens_id() == TTS.from_pretrained("default").codec.tokens_id()  # the same LM tokens
    prompt = Path(__file__).resolve().parent.parent / "docs" / "samples" / "prompt.wav"
    codes, _ = voice.prepare_prompt(prompt, None)
    own, cloned = voice.decode(codes[None]), voice.decode(codes[None], codes)
    assert own.shape == cloned.shape and (own - cloned).abs().mean() > 0.1 * cloned.abs().mean()
    wav = voice.synthesize(SENTENCE, prompt_wav=prompt, seed=0)
    assert wav.shape[1] >= 16000 and wav.pow(2).mean().sqrt() > 1e-3
