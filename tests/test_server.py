"""The speech server as a client sees it: a real uvicorn on a loopback port, called with httpx.

Covers the OpenAI request shape (wav/flac/pcm, voices, speed), streaming pcm, every refusal as a JSON error with its
status, and 20 concurrent clients against 1 worker + 2 waiting places: each gets 200 or a clean 503, and the
server's memory does not grow with the load.
"""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec
from demo.server import MAX_BODY_BYTES, create_app
from demo.speech import MAX_INPUT_CHARS, change_speed, to_pcm16
from demo.voices import VoiceStore
from tests.conftest import ROOT, speechlike, tiny_config
from tts import TTS
from tts.config import TTSConfig

uvicorn = pytest.importorskip("uvicorn")

SPEECH = "/v1/audio/speech"


def tiny_tts() -> TTS:
    """A random tiny TTS (fast: ~0.1 s a sentence on one core)."""
    torch.manual_seed(0)
    return TTS.from_config(TTSConfig.load("configs/tts/tiny.yaml"), Codec(tiny_config()).eval())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("voices")
    sf.write(root / "anna.wav", speechlike(1.0, 22050, seed=1), 22050)  # any rate: resampled on load
    (root / "anna.txt").write_text("A short prompt.\n", encoding="utf-8")
    sf.write(root / "bob.flac", speechlike(0.8, 16000, seed=2), 16000)  # no transcript
    return root


@pytest.fixture(scope="module")
def server(voices_dir):
    tts = tiny_tts()
    app = create_app(tts, VoiceStore(voices_dir, tts.sample_rate), workers=1, max_queue=2)
    with LiveServer(app) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def test_health_lists_model_and_voices(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"] == "ucodec-tts-tiny" and body["sample_rate"] == 16000
    assert body["voices"] == ["default", "anna", "bob"] and body["response_formats"] == ["flac", "pcm", "wav"]


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_speech_returns_an_audio_file(client, fmt):
    r = client.post(SPEECH, json={"model": "tts-1", "input": "Hello there.", "voice": "anna", "response_format": fmt})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"audio/{fmt}" and r.headers["x-ucodec-model"] == "ucodec-tts-tiny"
    data, rate = sf.read(io.BytesIO(r.content), dtype="float32")
    assert rate == 16000 and data.ndim == 1 and data.size > 0 and np.isfinite(data).all()


def test_pcm_is_streamed_and_equals_the_wav(client):
    request = {"input": "Hi. Bye now.", "voice": "bob", "seed": 3}
    chunks = []
    with client.stream("POST", SPEECH, json={**request, "response_format": "pcm"}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/pcm"
        assert r.headers["x-sample-rate"] == "16000"
        chunks = [c for c in r.iter_raw() if c]
    pcm = b"".join(chunks)
    assert len(chunks) > 1, "pcm must arrive in several chunks as it is generated"
    assert len(pcm) % 2 == 0
    wav = client.post(SPEECH, json={**request, "response_format": "wav"})
    data, _ = sf.read(io.BytesIO(wav.content), dtype="int16")
    streamed = np.frombuffer(pcm, "<i2").astype(np.int32)
    assert streamed.shape == data.shape  # same seed: stream == offline, up to float rounding of the decoders
    assert np.abs(streamed - data).max() <= 1


def test_speed_keeps_pitch_and_changes_length(client):
    def seconds(speed):
        r = client.post(SPEECH, json={"input": "Hello there.", "speed": speed, "response_format": "wav"})
        assert r.status_code == 200, r.text
        return sf.info(io.BytesIO(r.content)).frames

    normal, fast = seconds(1.0), seconds(2.0)
    assert abs(fast - normal / 2) <= 1
    tone = torch.sin(2 * torch.pi * 200 * torch.arange(16000) / 16000)[None]
    slow = change_speed(tone, 0.5)
    assert slow.shape[-1] == 32000
    peak = torch.fft.rfft(slow[0, 4000:-4000]).abs().argmax().item() / (slow.shape[-1] - 8000) * 16000
    assert abs(peak - 200) < 5, peak  # a time stretch, not a resample


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"input": ""}, 400, "empty"),
        ({"input": "   \n"}, 400, "empty"),
        ({"input": "a" * (MAX_INPUT_CHARS + 1)}, 400, str(MAX_INPUT_CHARS)),
        ({"input": "Hi.", "voice": "alloy"}, 400, "available: default, anna, bob"),
        ({"input": "Hi.", "response_format": "mp3"}, 400, "flac"),
        ({"input": "Hi.", "speed": 10}, 400, "speed"),
        ({"input": "Hi.", "top_p": 0}, 400, "top_p"),
        ({"input": "Hi.", "voices": "anna"}, 400, "voices"),  # a typo is refused, not ignored
        ({"voice": "anna"}, 400, "input"),
        ({"input": 5}, 400, "input"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_requests_get_json_errors(client, body, status, needle):
    r = client.post(SPEECH, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and needle in error["message"], error


def test_malformed_and_oversized_bodies(client):
    r = client.post(SPEECH, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    huge = json.dumps({"input": "x" * (MAX_BODY_BYTES + 10)}).encode()
    r = client.post(SPEECH, content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and str(MAX_BODY_BYTES) in r.json()["error"]["message"]
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux only)")
def test_twenty_concurrent_clients_get_200_or_a_clean_503(server, client):
    def call(i):
        fmt = "pcm" if i % 2 else "wav"
        with httpx.Client(base_url=server.url, timeout=120) as c:
            r = c.post(SPEECH, json={"input": "Hello there, how are you?", "seed": i, "response_format": fmt})
            return r.status_code, r.content if r.status_code == 200 else r.json()

    def burst():
        with ThreadPoolExecutor(20) as ex:
            return list(ex.map(call, range(20)))

    burst()  # warm-up: allocator pools and thread stacks reach their working size
    before = _rss_bytes()
    results = burst() + burst()
    growth = _rss_bytes() - before
    codes = [status for status, _ in results]
    print(f"40 requests: {codes.count(200)} x 200, {codes.count(503)} x 503, RSS growth {growth / 2**20:.1f} MiB")
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 3 * 2, codes  # 1 worker + 2 waiting places admit at least three per burst
    for status, body in results:
        if status == 503:
            assert body["error"]["type"] == "server_overloaded" and "retry" in body["error"]["message"]
        else:
            assert len(body) > 0
    assert growth < 64 * 2**20, f"RSS grew {growth / 2**20:.0f} MiB over two bursts"
    assert client.get("/health").json()["in_flight"] == 0  # every place was given back


def test_voice_store_refuses_bad_folders(tmp_path):
    with pytest.raises(NotADirectoryError):
        VoiceStore(tmp_path / "missing", 16000)
    sf.write(tmp_path / "default.wav", speechlike(0.5), 16000)
    with pytest.raises(ValueError, match="reserved"):
        VoiceStore(tmp_path, 16000)
    (tmp_path / "default.wav").unlink()
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match="broken.wav"):
        VoiceStore(tmp_path, 16000)


def test_pcm16_is_little_endian_and_clipped():
    pcm = to_pcm16(torch.tensor([[0.0, 1.0, -1.0, 2.0]]))
    assert np.frombuffer(pcm, "<i2").tolist() == [0, 32767, -32767, 32767]


def test_cli_serve(tmp_path, voices_dir):
    release = tiny_tts().save_pretrained(tmp_path / "tiny-tts")
    port = free_port()
    cmd = [sys.executable, "-m", "ucodec", "serve", "--model", str(release), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--voices", str(voices_dir), "--max-workers", "2", "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        assert "voices: default, anna, bob" in proc.stdout.readline()
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not come up"
                time.sleep(0.2)
        assert health["workers"] == 2 and health["voices"] == ["default", "anna", "bob"]
        r = httpx.post(f"http://127.0.0.1:{port}{SPEECH}", json={"input": "Hi.", "voice": "anna"}, timeout=60)
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--max-workers", "0"], "--max-workers"), (["--port", "0"], "--port"), (["--voices", "/nonexistent"], "voices")],
)
def test_cli_serve_user_errors(args, message, capsys, tmp_path):
    release = tmp_path / "tiny-tts"
    tiny_tts().save_pretrained(release)
    from ucodec.cli import main

    assert main(["serve", "--model", str(release), *args]) == 2
    assert message in capsys.readouterr().err
