"""The Gradio demo as a person and a client use it: served on 127.0.0.1, driven with ``gradio_client``, launched by
``ucodec demo`` in a subprocess, and photographed by headless Chromium (skipped when it is not installed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.compat.hy_tokenizer import unflatten_codes
from tests.conftest import ROOT, speechlike
from tests.test_server import free_port, tiny_tts
from ucodec.cli import main

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from demo.app import build_app, launch  # noqa: E402 - after the skip: gradio is an optional extra
from demo.codec_tab import MAX_CODEC_SECONDS, round_trip  # noqa: E402
from demo.screenshot import find_browser, screenshot  # noqa: E402
from demo.speech import MAX_TEXT_CHARS  # noqa: E402
from demo.tts_tab import Synthesizer, examples  # noqa: E402

# gradio's queue calls pandas options that pandas 3 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated)")

PROMPT = ROOT / "docs" / "samples" / "prompt.wav"
SAMPLING = (0.8, 50, 0.95, 0)  # temperature, top-k, top-p, seed


@pytest.fixture(scope="module")
def tts():
    return tiny_tts()


@pytest.fixture(scope="module")
def live(tts):
    app = build_app(tts, stream=False)
    url = launch(app, port=free_port())
    yield url
    app.close()


@pytest.fixture(scope="module")
def client(live):
    return gradio_client.Client(live, verbose=False)


def read(path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32")
    assert data.ndim == 1 and data.size > 0 and np.isfinite(data).all()
    return data, rate


def test_text_to_speech_through_the_client(client):
    audio, stats = client.predict("Hello there. Bye!", None, "", *SAMPLING, api_name="/synthesize")
    data, rate = read(audio)
    assert rate == 16000 and "RTF" in stats and f"{data.size / rate:.2f} s" in stats


def test_text_to_speech_with_a_voice_prompt(client):
    transcript = (ROOT / "docs" / "samples" / "prompt.txt").read_text().strip()
    audio, _ = client.predict(
        "Hi.", gradio_client.handle_file(str(PROMPT)), transcript, *SAMPLING, api_name="/synthesize"
    )
    read(audio)


def test_codec_round_trip_through_the_client(client, tts):
    audio, stats, codes_file, grid, spec = client.predict(
        gradio_client.handle_file(str(PROMPT)), "8", api_name="/codec_round_trip"
    )
    data, rate = read(audio)
    frames = -(-sf.info(PROMPT).frames * 16000 // sf.info(PROMPT).samplerate // tts.codec.hop_length)
    assert rate == 16000 and f"{8 * frames} tokens" in stats and "320 bit/s" in stats
    flat = torch.load(codes_file)
    assert flat.dtype == torch.int16 and flat.numel() == 8 * frames  # the HY flat layout, 8 layers
    codes = unflatten_codes(flat, 8, tts.codec.codebook_size)
    assert codes.shape == (8, frames)
    for image in (grid, spec):
        assert Path(image).suffix == ".png" and Path(image).stat().st_size > 10_000


@pytest.mark.parametrize(
    ("text", "message"), [("", "empty"), ("   ", "empty"), ("x" * (MAX_TEXT_CHARS + 1), str(MAX_TEXT_CHARS))]
)
def test_bad_text_is_a_clear_message(client, text, message):
    with pytest.raises(Exception, match=message):
        client.predict(text, None, "", *SAMPLING, api_name="/synthesize")


def test_bad_audio_is_a_clear_message(client, tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"this is not a wav file")
    with pytest.raises(Exception, match="not_audio.wav"):
        client.predict(gradio_client.handle_file(str(bad)), "8", api_name="/codec_round_trip")
    with pytest.raises(Exception, match="not_audio.wav"):
        client.predict("Hi.", gradio_client.handle_file(str(bad)), "", *SAMPLING, api_name="/synthesize")


def test_codec_round_trip_limits(tts, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(int((MAX_CODEC_SECONDS + 1) * 8000), np.float32), 8000)
    with pytest.raises(ValueError, match="limit"):
        round_trip(tts.codec, str(long), 8)
    with pytest.raises(ValueError, match="upload"):
        round_trip(tts.codec, None, 8)
    short = tmp_path / "short.wav"
    sf.write(short, speechlike(0.5), 16000)
    result = round_trip(tts.codec, str(short), 32)
    assert result.codes.shape == (32, 3) and result.reconstructed.shape == result.original.shape


def test_streaming_handler_yields_chunks_then_stats(tts):
    synth = Synthesizer(tts, stream=True)
    updates = list(synth.run("Hi there. Bye.", None, "", *SAMPLING))
    chunks = [audio for audio, _ in updates[:-1]]
    assert len(chunks) > 1 and all(rate == 16000 and pcm.dtype == np.int16 for rate, pcm in chunks)
    assert "first audio after" in updates[-1][1]
    offline = tts.synthesize("Hi there. Bye.", temperature=0.8, top_k=50, top_p=[0.95, 1.0], seed=0)
    assert sum(pcm.size for _, pcm in chunks) == offline.shape[-1]


def test_examples_work_offline():
    rows = examples()
    assert all(row[1] is None or Path(row[1]).is_file() for row in rows) and len(rows) == 2


def test_cli_demo_serves_quickly(tts, tmp_path):
    release = tts.save_pretrained(tmp_path / "tiny-tts")
    port = free_port()
    cmd = [sys.executable, "-m", "ucodec", "demo", "--model", str(release), "--port", str(port), "--threads", "1"]
    start = time.perf_counter()
    # A suite started as a background job (`pytest &`) runs with SIGINT ignored, and the child would inherit that;
    # Python then never raises KeyboardInterrupt and the demo could not be stopped by the SIGINT below.
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, preexec_fn=default_sigint
    )
    client = None
    try:
        line = proc.stdout.readline()
        ready = time.perf_counter() - start
        assert "demo ready at http://127.0.0.1:" in line, line + proc.stdout.read()
        print(f"ucodec demo ready after {ready:.1f} s")
        assert ready < 30, ready  # issue #10 asks for 10 s; a loaded 2-core CI machine gets some slack
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        audio, _ = client.predict("Hello.", None, "", *SAMPLING, api_name="/synthesize")
        read(audio)
    finally:
        if client is not None:
            client.close()  # stops its heartbeat thread
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@pytest.mark.parametrize("verb", ["demo", "serve"])
def test_cli_without_the_default_model_is_one_clear_line(verb, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("UCODEC_MODELS", str(tmp_path))
    assert main([verb]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tts-small" in err and "--model" in err


@pytest.mark.skipif(find_browser() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_screenshot_of_the_demo(live, tmp_path):
    out = screenshot(live, tmp_path / "demo.png", window=(1000, 800))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one
    assert not list(tmp_path.glob(".demo.png.*")), "temporary file left behind"
