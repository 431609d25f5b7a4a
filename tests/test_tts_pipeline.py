"""The TTS facade and CLI: releases (bit-exact round trip, codec identity), streaming == offline, batching, long text,
``ucodec synthesize`` and ``ucodec bench tts``."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.testing import assert_close

from codec import Codec
from tests.conftest import speechlike, tiny_config
from tts import TTS
from tts.config import TTSConfig
from tts.crossfade import CrossFader, crossfade_join
from ucodec.cli import main

TEXT = "Hello there. This is 2 tests! Bye."


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tts(tiny_release) -> TTS:
    torch.manual_seed(0)
    cfg = TTSConfig.load("configs/tts/tiny.yaml")
    synth = TTS.from_config(cfg, Codec.from_pretrained(tiny_release))
    synth.codec_dir = tiny_release  # as a trainer would pass it: bundled byte for byte
    return synth


@pytest.fixture(scope="module")
def release(tts, tmp_path_factory):
    return tts.save_pretrained(tmp_path_factory.mktemp("tts") / "tiny-tts")


def test_release_round_trip_is_bit_exact(tts, release, tiny_release):
    for name in ("config.json", "model.safetensors", "frontend.json", "codec/model.safetensors"):
        assert (release / name).is_file(), name
    assert (release / "codec/model.safetensors").read_bytes() == (tiny_release / "model.safetensors").read_bytes()
    loaded = TTS.from_pretrained(release)
    assert loaded.config == tts.config and loaded.frontend.symbols == tts.frontend.symbols
    assert loaded.codec_release_id == tts.codec.release_id
    mine, theirs = tts.model.state_dict(), loaded.model.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert torch.equal(loaded.synthesize("Hi.", seed=3), tts.synthesize("Hi.", seed=3))


def test_default_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("UCODEC_MODELS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="tts-small"):
        TTS.from_pretrained("default")


def test_release_refuses_another_codec_and_corrupt_weights(release, tmp_path):
    torch.manual_seed(1)
    other = Codec(tiny_config()).eval()
    with pytest.raises(ValueError, match="trained with codec"):
        TTS.from_pretrained(release, codec=other)
    broken = tmp_path / "broken"
    shutil.copytree(release, broken)
    data = bytearray((broken / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (broken / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        TTS.from_pretrained(broken)


def test_release_accepts_a_codec_that_changed_only_its_decoder(release, tiny_release, tmp_path):
    """A decoder-only fine-tune keeps ``Codec.tokens_id`` (fp16 releases included): the TTS speaks through it and
    its prompts encode to the same codes; a codec whose encoder changed is refused."""
    from tts.pipeline import _same_tokens

    base = Codec.from_pretrained(tiny_release)
    tuned = Codec.from_pretrained(tiny_release)
    with torch.no_grad():
        for p in tuned.decoder.parameters():
            p.add_(0.01)
    tuned.save_pretrained(tmp_path / "dec", dtype=torch.float16)
    tuned = Codec.from_pretrained(tmp_path / "dec")
    assert tuned.release_id != base.release_id and tuned.tokens_id() == base.tokens_id()
    loaded = TTS.from_pretrained(release, codec=tuned)
    assert loaded.codec is tuned
    prompt = torch.from_numpy(speechlike(0.6))[None]
    assert torch.equal(loaded.prompt_codes(prompt), TTS.from_pretrained(release).prompt_codes(prompt))
    assert _same_tokens(release, {}, tuned)  # an older release records no tokens_id: its bundled codec's counts
    with torch.no_grad():
        next(tuned.encoder_transformer.parameters()).add_(0.01)
    assert tuned.tokens_id() != base.tokens_id()
    with pytest.raises(ValueError, match="trained with codec"):
        TTS.from_pretrained(release, codec=tuned)


def test_decode_levels_decode_only_the_first_levels(tts):
    """``decode_levels``: offline, streamed and ``decode`` all hear only the first N levels of what was generated."""
    q = tts.config.num_codebooks
    codes = torch.randint(0, tts.config.codebook_size, (1, q, 6), generator=torch.Generator().manual_seed(0))
    full = tts.decode(codes)
    tts.decode_levels = 2
    try:
        assert torch.equal(tts.decode(codes), tts.codec.decode(codes[:, :2])[0])
        assert not torch.equal(tts.decode(codes), full)
        offline = tts.synthesize(TEXT, seed=7)
        assert_close(torch.cat(list(tts.stream(TEXT, seed=7)), dim=-1), offline, rtol=1e-4, atol=1e-5)
    finally:
        tts.decode_levels = 0
    assert not torch.equal(tts.synthesize(TEXT, seed=7), offline)  # same codes, all levels heard
    with pytest.raises(ValueError, match="decode_levels"):
        TTSConfig.load("configs/tts/tiny.yaml", [f"decode_levels={q + 1}"])


def test_stream_equals_synthesize(tts):
    prompt = torch.from_numpy(speechlike(0.6))[None]
    offline = tts.synthesize(TEXT, prompt_wav=prompt, prompt_text="a prompt", seed=7)
    chunks = list(tts.stream(TEXT, prompt_wav=prompt, prompt_text="a prompt", seed=7))
    assert len(chunks) > 3 and all(c.shape[0] == 1 for c in chunks)
    assert_close(torch.cat(chunks, dim=-1), offline, rtol=1e-4, atol=1e-5)


def test_streamed_text_is_spoken_before_it_ends_and_equals_the_whole(tts):
    """Text pieces as an LLM emits them: the first sentence is spoken once the second has begun, and the audio is
    that of the joined text given at once."""
    events = []

    def pieces():
        for i in range(0, len(TEXT), 4):
            events.append("text")
            yield TEXT[i : i + 4]

    chunks = []
    for chunk in tts.stream(pieces(), seed=7):
        events.append("audio")
        chunks.append(chunk)
    assert events.index("audio") < len(events) - 1 - events[::-1].index("text")  # audio before the last piece
    assert_close(torch.cat(chunks, dim=-1), tts.synthesize(TEXT, seed=7), rtol=1e-4, atol=1e-5)


def test_streamed_text_bad_input_and_a_stream_ending_mid_word(tts):
    cut = torch.cat(list(tts.stream(iter(["Hello the"]), seed=1)), dim=-1)  # ends mid-word: spoken as it is
    assert cut.shape[-1] > 0 and torch.isfinite(cut).all()
    with pytest.warns(UserWarning, match="cannot be spoken"):  # an unspeakable sentence is skipped, as offline
        mixed = torch.cat(list(tts.stream(iter(["Hi there. ", "\u4f60\u597d. ", "Bye."]), seed=2)), dim=-1)
    assert_close(mixed, tts.synthesize("Hi there. \u4f60\u597d. Bye.", seed=2), rtol=1e-4, atol=1e-5)
    for bad, match in ((123, "iterable of strings"), (b"Hi.", "iterable of strings"), (["Hi ", 5], "strings")):
        with pytest.raises(ValueError, match=match):
            list(tts.stream(bad))
    with pytest.raises(ValueError, match="nothing speakable"):
        list(tts.stream(iter(["...", " ", "?!"])))


def test_long_text_is_sentences_joined_with_crossfades(tts):
    sentences = tts.frontend.split(TEXT)
    assert len(sentences) == 3
    alone = [tts.synthesize(s, seed=5 + i) for i, s in enumerate(sentences)]
    joined = tts.synthesize(TEXT, seed=5)
    overlap = int(0.05 * tts.sample_rate)
    assert joined.shape[-1] == sum(a.shape[-1] for a in alone) - overlap * (len(alone) - 1)
    assert_close(joined[..., : alone[0].shape[-1] - overlap], alone[0][..., :-overlap])


def test_synthesize_batch_equals_per_item(tts):
    texts = ["Hello there.", "A longer line of text, with a comma."]
    batch = tts.synthesize_batch(texts, seed=11)
    for j, text in enumerate(texts):
        assert_close(batch[j], tts.synthesize(text, seed=11 + j), rtol=1e-4, atol=1e-5)


def test_prompt_inputs(tts, wav_1s):
    assert tts.prompt_codes(wav_1s).shape == (32, 5)  # a path is loaded and encoded: 1 s at 5 Hz
    with pytest.raises(ValueError, match="empty"):
        tts.prompt_codes(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="tensor or a file path"):
        tts.prompt_codes([0.0, 1.0])
    with pytest.raises(ValueError, match="non-empty list"):
        tts.synthesize_batch("not a list")


def test_prompts_are_cut_like_the_training_prompts(tts):
    """Untranscribed prompts: the middle ``prompt_seconds``; transcribed ones whole up to the limit, else cut and the
    transcript dropped with a warning (the model saw nothing else in training)."""
    sr = tts.sample_rate
    ramp = torch.linspace(-0.5, 0.5, 10 * sr)  # 10 s, every sample distinct
    codes, text = tts.prepare_prompt(ramp, None)
    assert codes.shape == (32, 15) and text is None  # 3 s at 5 Hz
    assert torch.equal(codes, tts.codec.encode(ramp[None, None, 7 * sr // 2 : 13 * sr // 2])[0])  # the middle 3 s
    five = ramp[: 5 * sr]
    codes, text = tts.prepare_prompt(five, "a transcript")
    assert codes.shape == (32, 25) and text == "a transcript"  # whole: 5 s <= 6 s
    with pytest.warns(UserWarning, match="transcript is not used"):
        codes, text = tts.prepare_prompt(ramp, "a transcript")
    assert codes.shape == (32, 15) and text is None
    assert tts.prepare_prompt(None, "kept") == (None, "kept")


def test_crossfader_streaming_equals_join():
    g = torch.Generator().manual_seed(0)
    pieces = [torch.randn(1, n, generator=g) for n in (700, 50, 900)]
    joined = crossfade_join(pieces, 100)
    assert joined.shape[-1] == 700 + 50 + 900 - 100 - 50  # the 50-sample piece shortens its own fade
    fader, out = CrossFader(100), []
    for piece in pieces:
        for part in piece.split(37, dim=-1):
            out.append(fader.push(part))
        fader.end_piece()
    out.append(fader.flush())
    assert_close(torch.cat(out, dim=-1), joined)
    assert torch.equal(crossfade_join(pieces, 0), torch.cat(pieces, dim=-1))


def test_cli_synthesize(release, tmp_path, wav_1s, monkeypatch, capsys):
    out = tmp_path / "out.wav"
    assert main(["synthesize", "Hello there.", "-o", str(out), "--model", str(release), "--seed", "1"]) == 0
    audio, rate = sf.read(out)
    assert rate == 16000 and len(audio) > 0
    assert "wrote" in capsys.readouterr().out
    text_file = tmp_path / "in.txt"
    text_file.write_text("From a file.", encoding="utf-8")
    assert main(["synthesize", "--text-file", str(text_file), "-o", str(out), "--model", str(release)]) == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("From stdin."))
    args = ["synthesize", "-", "-o", str(out), "--model", str(release), "--prompt", str(wav_1s), "--stream"]
    assert main(args + ["--prompt-text", "one second"]) == 0
    assert "first chunk" in capsys.readouterr().out


def test_cli_streamed_stdin_is_read_as_it_arrives(release, tmp_path, monkeypatch, capsys):
    from tts.cli import stdin_pieces

    read, write = os.pipe()
    os.write(write, "Caf\u00e9 one. Two".encode()[:4])  # "Caf" + the first byte of "é"
    os.write(write, "Caf\u00e9 one. Two".encode()[4:])
    os.close(write)
    with os.fdopen(read, "r") as pipe:
        monkeypatch.setattr("sys.stdin", pipe)
        assert "".join(stdin_pieces()) == "Caf\u00e9 one. Two"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(" ... "))
    out = tmp_path / "never.wav"
    assert main(["synthesize", "-", "-o", str(out), "--model", str(release), "--stream"]) == 2
    assert "nothing speakable" in capsys.readouterr().err and not out.exists()


def test_cli_synthesize_per_layer_sampling(release, tmp_path):
    def run(*extra: str) -> np.ndarray:
        out = tmp_path / "out.wav"
        assert main(["synthesize", "Hello there.", "-o", str(out), "--model", str(release), *extra]) == 0
        return sf.read(out)[0]

    greedy = run("--temperature", "0", "--seed", "1")
    assert np.array_equal(run("--temperature", "0,0", "--seed", "2"), greedy)  # a list, every layer greedy
    assert not np.array_equal(run("--temperature", "0,1.5", "--top-k", "0", "--seed", "2"), greedy)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["Hi.", "--prompt-text", "words"], "needs --prompt"),
        (["..."], "empty after normalisation"),
        ([], "exactly one"),
        (["Hi.", "--prompt", "missing.wav"], "not found"),
        (["Hi.", "--top-p", "2"], "top_p"),
        (["Hi.", "--temperature", ",".join(["0.5"] * 40)], "temperature"),
        (["Hi.", "--decode-levels", "99"], "decode_levels"),
        (["Hi.", "--decode-levels", "-1"], "decode_levels"),
    ],
)
def test_cli_synthesize_user_errors(release, tmp_path, capsys, extra, message):
    assert main(["synthesize", *extra, "-o", str(tmp_path / "x.wav"), "--model", str(release)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_missing_model(tmp_path, capsys):
    assert main(["synthesize", "Hi.", "-o", str(tmp_path / "x.wav"), "--model", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["a", "a1", "a4", "b", "c", "f4"])
def test_bench_layouts_of_the_shipped_size_are_valid_configs(key):
    """Every layout derives a valid config from configs/tts/small.yaml (content_levels 4, per-level sampling), not
    only from the test config: layout b's 3 levels once failed there."""
    from tts.evaluation.bench import layout_config

    base = TTSConfig.load("configs/tts/small.yaml")
    assert base.content_levels == 4
    cfg = layout_config(base, key)
    assert cfg.content_levels <= cfg.num_codebooks and cfg.decode_levels <= cfg.num_codebooks
    assert cfg.num_codebooks == {"b": 3, "f4": 4}.get(key, 32)


def test_cli_bench_tts_writes_its_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nHand-written notes stay.\n", encoding="utf-8")
    args = ["bench", "tts", "--config", "configs/tts/tiny.yaml", "--codec", "configs/codec/tiny.yaml",
            "--seconds", "0.4", "--repeats", "1", "--warmup", "0", "--batches", "1,2", "--text-symbols", "8",
            "--prompt-seconds", "0.4", "--threads", "1", "--no-memory", "--no-progress", "--doc", str(doc)]  # fmt: skip
    assert main(args) == 0
    assert main(args + ["--layouts", "a,b"]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "Hand-written notes stay." in text and text.count("## TTS speed") == 1
    assert "(a) global-local 5 Hz x 32" in text and "vs (b)" in text and "first audio chunk" in text
    assert main(args + ["--layouts", "a1,a2,b"]) == 0  # the local-step lever side by side
    text = doc.read_text(encoding="utf-8")
    assert "(a2) global-local 5 Hz x 32 (2 layers a local step)" in text and "(a1) is faster" in text
    assert "(a2) is faster" in text and "did not include" in text
    assert main(args + ["--layouts", "a,f4,b"]) == 0  # a model of the first 4 levels beside one of all 32
    text = doc.read_text(encoding="utf-8")
    assert "(f4) global-local 5 Hz x 4 (first levels only)" in text and "(f4) is faster" in text
    assert main(args + ["--layouts", "f64,b"]) == 2  # more levels than the base config models
    assert main(args + ["--layouts", "a3,b"]) == 2  # 32 layers do not split into steps of 3
    assert main(args + ["--layouts", "a,x"]) == 2
