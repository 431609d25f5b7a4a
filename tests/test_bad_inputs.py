"""The bad-input matrix: every entry point × every kind of messy input gets a correct result or one clear error.

One table, :data:`CASES`: each row names an entry point (a CLI verb run in-process through ``ucodec.cli.main``, a
Python API call, or a demo/server handler), an input built in a fresh temporary folder, and the expected outcome —
``OK`` (the result is checked) or a regular expression the one-line error must match. For the CLI a refusal also
means exit code 2, exactly one ``error: ...`` line on stderr, no traceback, and no output (or temporary) file left
behind. ``docs/reliability.md`` lists every row; :func:`test_doc_lists_every_case` keeps the two in step, and
``python -m tests.test_bad_inputs`` prints the table for it.

The 1-hour file is encoded in a subprocess whose peak RSS is read from ``getrusage`` and must stay under 1.5 GB.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import ROOT, TINY, speechlike

OK = "ok"
HOP = 3200
SR = 16000
DOC = ROOT / "docs" / "reliability.md"


@dataclass(frozen=True)
class Case:
    """One row of the matrix.

    Attributes:
        entry: key of :data:`ENTRIES` (the entry point).
        input: key of the input builders (what is fed to it).
        expect: ``OK`` or a regex that the one-line error must match.
    """

    entry: str
    input: str
    expect: str

    @property
    def id(self) -> str:
        return f"{self.entry}:{self.input}"


# ================================================================================================= inputs
# Each builder gets a fresh folder and returns what the entry point is given (a path, a tensor or a string).


def _wav(data: np.ndarray, rate: int = SR, subtype: str | None = None, suffix: str = ".wav", fmt: str | None = None):
    def build(tmp: Path) -> Path:
        path = tmp / f"input{suffix}"
        sf.write(path, data, rate, subtype=subtype, format=fmt)
        return path

    return build


def _bytes(content: bytes, name: str = "input.wav"):
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content)
        return path

    return build


def _truncated(tmp: Path, keep: int = 1000) -> Path:
    """A wav cut after ``keep`` bytes: 1000 keeps the header and ~30 ms (read as what is there), 30 cuts the
    header."""
    good = tmp / "good.wav"
    sf.write(good, speechlike(1.0), SR)
    path = tmp / "input.wav"
    path.write_bytes(good.read_bytes()[:keep])
    good.unlink()
    return path


def _with(value: float, at: int = 100) -> np.ndarray:
    x = speechlike(0.5)
    x[at] = value
    return x


def _channels(n: int) -> np.ndarray:
    return np.stack([speechlike(0.5, seed=i) for i in range(n)], axis=1)


AUDIO = {
    "half-second": _wav(speechlike(0.5)),
    "empty-file": _bytes(b""),
    "zero-samples": _wav(np.zeros(0, np.float32)),
    "one-sample": _wav(np.full(1, 0.1, np.float32)),
    "nan": _wav(_with(np.nan), subtype="FLOAT"),
    "inf": _wav(_with(np.inf), subtype="FLOAT"),
    "clipped": _wav(np.sign(speechlike(0.5)) * 1.0),
    "dc-only": _wav(np.full(8000, 0.5, np.float32)),
    "silence": _wav(np.zeros(8000, np.float32)),
    "stereo": _wav(_channels(2)),
    "5.1": _wav(_channels(6)),
    "9-channels": _wav(_channels(9)),
    "8kHz": _wav(speechlike(0.5, 8000), 8000),
    "22.05kHz": _wav(speechlike(0.5, 22050), 22050),
    "44.1kHz": _wav(speechlike(0.5, 44100), 44100),
    "48kHz": _wav(speechlike(0.5, 48000), 48000),
    "uint8": _wav(speechlike(0.5), subtype="PCM_U8"),
    "int24": _wav(speechlike(0.5), subtype="PCM_24"),
    "int32": _wav(speechlike(0.5), subtype="PCM_32"),
    "float32": _wav(speechlike(0.5), subtype="FLOAT"),
    "float64": _wav(speechlike(0.5), subtype="DOUBLE"),
    "flac": _wav(speechlike(0.5), suffix=".flac"),
    "ogg": _wav(speechlike(0.5), suffix=".ogg"),
    "mp3": _wav(speechlike(0.5), suffix=".mp3", fmt="MP3"),
    "text-named-wav": _bytes(b"hello, I am a text file\n" * 10),
    "truncated-data": _truncated,
    "truncated-header": lambda tmp: _truncated(tmp, 30),
    "missing-file": lambda tmp: tmp / "missing.wav",
    "directory": lambda tmp: tmp,
}
AUDIO_ERRORS = {
    "empty-file": r"input\.wav.*not a readable audio file",
    "zero-samples": r"input\.wav.*empty \(0 samples\)",
    "nan": r"input\.wav.*NaN or Inf",
    "inf": r"input\.wav.*NaN or Inf",
    "9-channels": r"input\.wav.*9 channels; 1 to 8 allowed",
    "text-named-wav": r"input\.wav.*not a readable audio file",
    "truncated-header": r"input\.wav.*not a readable audio file",
    "missing-file": r"not found.*missing\.wav",
    "directory": r"not found",
}
AUDIO_ENTRIES = ("load_audio", "cli-encode", "tts-prompt", "server-voice", "demo-codec")


def _flat(values, dtype=torch.int16):
    return lambda tmp: torch.tensor(values, dtype=dtype)


VALID_FLAT = [q * 256 + (7 * q) % 256 for q in range(32)] * 2  # two frames of the 32 x 256 layout
TOKENS = {
    "valid-int16": _flat(VALID_FLAT),
    "valid-int32": _flat(VALID_FLAT, torch.int32),
    "valid-int64": _flat(VALID_FLAT, torch.int64),
    "wrong-length": _flat(VALID_FLAT[:33]),
    "empty": _flat([]),
    "negative": _flat([-1, *VALID_FLAT[1:]]),
    "out-of-range": _flat([*VALID_FLAT[:-1], 8192]),
    "other-layers-range": _flat([5, 0, *VALID_FLAT[2:]]),
    "float": _flat(VALID_FLAT, torch.float32),
    "bool": lambda tmp: torch.ones(64, dtype=torch.bool),
    "2-d": lambda tmp: torch.tensor(VALID_FLAT, dtype=torch.int16).reshape(2, 32),
}
TOKEN_ERRORS = {
    "wrong-length": "token count 33 is not a positive multiple of num_codebooks=32",
    "empty": "token count 0 is not a positive multiple",
    "negative": r"token 0 has value -1; layer 0 tokens must be in \[0, 255\]",
    "out-of-range": r"token 63 has value 8192; layer 31",
    "other-layers-range": "token 1 has value 0; layer 1",
    "float": "tokens must be integers",
    "bool": "tokens must be integers",
    "2-d": "expected a 1-D token tensor",
}
TOKEN_ENTRIES = ("detokenize", "cli-decode-npy", "cli-decode-pt")


def _grid(shape, dtype=torch.long, fill: int | None = None):
    def build(tmp: Path) -> torch.Tensor:
        if fill is not None:
            return torch.full(shape, fill, dtype=dtype)
        return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0)).to(dtype)

    return build


GRIDS = {
    "grid-valid": _grid((1, 32, 3)),
    "grid-8-layers": _grid((1, 8, 3)),
    "grid-uint8": _grid((1, 32, 3), torch.uint8),
    "grid-int16": _grid((1, 32, 3), torch.int16),
    "grid-33-layers": _grid((1, 33, 3)),
    "grid-zero-frames": _grid((1, 32, 0)),
    "grid-empty-batch": _grid((0, 32, 3)),
    "grid-negative": _grid((1, 32, 3), fill=-1),
    "grid-256": _grid((1, 32, 3), fill=256),
    "grid-float": _grid((1, 32, 3), torch.float32),
    "grid-2-d": _grid((32, 3)),
}
GRID_ERRORS = {
    "grid-33-layers": "codes have 33 codebooks; this model has 1 to 32",
    "grid-zero-frames": "cannot decode empty codes",
    "grid-empty-batch": "cannot decode empty codes",
    "grid-negative": r"code values must be in \[0, 256\)",
    "grid-256": r"code values must be in \[0, 256\)",
    "grid-float": "codes must be an integer tensor",
    "grid-2-d": r"expected codes of shape \[B, Q, F\]",
}
CODES_FILES = {
    "safetensors-float-codes": lambda tmp: _safetensors(tmp, {"codes": torch.zeros(32, 2)}),
    "safetensors-no-codes": lambda tmp: _safetensors(tmp, {"other": torch.zeros(32, 2, dtype=torch.int16)}),
    "safetensors-3-d": lambda tmp: _safetensors(tmp, {"codes": torch.zeros(1, 32, 2, dtype=torch.int16)}),
    "safetensors-corrupt": _bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json", "codes.safetensors"),
    "npy-object-array": lambda tmp: _npy_objects(tmp),
    "pt-pickle-payload": lambda tmp: _evil_torch_file(tmp, tmp / "codes.pt"),
    "wrong-suffix": _bytes(b"0 1 2", "codes.txt"),
}
CODES_FILE_ERRORS = {
    "safetensors-float-codes": "codes must be integers",
    "safetensors-no-codes": "no 'codes' tensor",
    "safetensors-3-d": r"codes must be \[Q, F\]",
    "safetensors-corrupt": "unreadable codes file",
    "npy-object-array": "unreadable codes file",
    "pt-pickle-payload": "unreadable codes file",
    "wrong-suffix": "unsupported codes file type",
}


def _safetensors(tmp: Path, tensors: dict) -> Path:
    from safetensors.torch import save_file

    path = tmp / "codes.safetensors"
    save_file(tensors, str(path))
    return path


def _npy_objects(tmp: Path) -> Path:
    path = tmp / "codes.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


MARKER = "pickle-ran.txt"


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran. A safe loader must refuse it first."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil_torch_file(tmp: Path, path: Path, wrap: Callable[[Any], Any] = lambda p: p) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(wrap(_Payload(tmp / MARKER)), path)
    return path


LONG_TEXT = "This sentence is spoken again and again. " * 244  # 10,004 characters, 244 sentences
TEXTS = {
    "plain": "Hello there.",
    "empty": "",
    "whitespace": " \n\t ",
    "punctuation-only": "... !?",
    "10000-chars": LONG_TEXT,
    "chinese": "你好，世界。",
    "cyrillic": "Привет, мир.",
    "arabic-with-digits": "مرحبا 123",
    "accented-latin": "Café déjà vu, naïve façade.",
    "emoji-only": "😀🎉👍",
    "emoji-in-text": "Hello 😀 world!",
    "control-chars": "Hello\x00\x07 world\x1b.",
    "numbers-and-money": "It cost $3.50 on May 1st, 1999 at 3:30.",
}
TEXT_ERRORS = {
    "empty": "empty",
    "whitespace": "empty",
    "punctuation-only": "empty after normalisation",
    "chinese": "empty after normalisation",
    "cyrillic": "empty after normalisation",
    "emoji-only": "empty after normalisation",
}
TEXT_LIMITS = {"server-speech": "4096", "demo-tts": "2000"}  # the front ends cap the text length
TEXT_ENTRIES = ("synthesize", "cli-synthesize", "server-speech", "demo-tts")


def _config(changes: dict | None = None, raw: str | bytes | None = None):
    """A model config file: the tiny config with ``changes`` merged into its sections, or ``raw`` content."""

    def build(tmp: Path) -> Path:
        from codec.configio import read_mapping

        path = tmp / "model.yaml"
        if raw is not None:
            path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
            return path
        data = read_mapping(TINY)
        for key, value in (changes or {}).items():
            merge = isinstance(value, dict) and isinstance(data.get(key), dict)
            data[key] = {**data[key], **value} if merge else value
        path.write_text(json.dumps(data))  # JSON is YAML
        return path

    return build


CONFIGS = {
    "valid": _config(),
    "unknown-key": _config({"colour": "red"}),
    "unknown-nested-key": _config({"transformer": {"num_layerz": 2}}),
    "wrong-type-int": _config({"dimension": "thirty-two"}),
    "wrong-type-bool": _config({"transformer": {"causal": 3}}),
    "wrong-type-list": _config({"mel": {"strides": 5}}),
    "bad-literal": _config({"encoder": "wavenet"}),
    "zero-heads": _config({"transformer": {"num_heads": 0}}),
    "not-a-mapping": _config(raw="- a\n- b\n"),
    "invalid-yaml": _config(raw="transformer: [1, 2\n"),
    "empty-file": _config(raw=""),
    "binary-file": _config(raw=b"\xff\xfe\x00\x01garbage"),
}
CONFIG_ERRORS = {
    "unknown-key": r"unknown key\(s\) \['colour'\]; allowed:",
    "unknown-nested-key": r"transformer: unknown key\(s\) \['num_layerz'\]",
    "wrong-type-int": "dimension: expected an integer, got 'thirty-two'",
    "wrong-type-bool": "causal: expected true/false, got 3",
    "wrong-type-list": "strides: expected a list, got 5",
    "bad-literal": r"encoder: 'wavenet' is not one of \['seanet', 'mel'\]",
    "zero-heads": "num_heads must be >= 1",
    "not-a-mapping": "expected a mapping at the top level",
    "invalid-yaml": "not valid YAML",
    "empty-file": "expected a mapping at the top level",
    "binary-file": "not valid YAML",
}
CONFIG_ENTRIES = ("config-load", "cli-info", "cli-train-codec")

RELEASES = (
    "valid",
    "missing-dir",
    "no-config",
    "config-not-json",
    "wrong-kind",
    "format-version-99",
    "no-weights",
    "truncated-weights",
    "garbage-weights-no-hash",
    "pickle-as-safetensors",
    "other-architecture",
    "other-codec-bundled",
)
RELEASE_ERRORS = {
    "missing-dir": "neither a directory nor a shipped release",
    "no-config": r"not a release directory \(config\.json missing\)",
    "config-not-json": "config.json: not valid JSON",
    "wrong-kind": "release, expected a",
    "format-version-99": "format_version 99 is not supported",
    "no-weights": "model.safetensors missing",
    "truncated-weights": "SHA-256 does not match",
    "garbage-weights-no-hash": "unreadable safetensors file",
    "pickle-as-safetensors": "unreadable safetensors file",
    "other-architecture": "weights do not match the config",
    "other-codec-bundled": "trained with codec",
}
RELEASE_ENTRIES = ("codec-from-pretrained", "cli-encode-model", "tts-from-pretrained", "cli-synthesize-model")

CHECKPOINTS = {
    "pickle-checkpoint": "not a loadable training checkpoint",
    "pickle-in-state-dict": "not a loadable training checkpoint",
    "not-a-checkpoint": r"not a training checkpoint \(no 'model'/'step'\)",
}


def _skip(entry: str, name: str) -> bool:
    """Combinations that do not exist (a codec has no bundled codec to swap)."""
    return name == "other-codec-bundled" and entry in ("codec-from-pretrained", "cli-encode-model")


FAMILY = {
    **dict.fromkeys(AUDIO_ENTRIES, "audio"),
    **dict.fromkeys(TOKEN_ENTRIES, "tokens"),
    "codec-decode": "grid",
    "cli-decode-file": "codes-file",
    **dict.fromkeys(TEXT_ENTRIES, "text"),
    **dict.fromkeys(CONFIG_ENTRIES, "config"),
    **dict.fromkeys(RELEASE_ENTRIES, "release"),
    "cli-export": "checkpoint",
}
CASES: list[Case] = (
    [Case(e, a, AUDIO_ERRORS.get(a, OK)) for a in AUDIO for e in AUDIO_ENTRIES]
    + [Case(e, t, TOKEN_ERRORS.get(t, OK)) for t in TOKENS for e in TOKEN_ENTRIES]
    + [Case("codec-decode", g, GRID_ERRORS.get(g, OK)) for g in GRIDS]
    + [Case("cli-decode-file", f, CODES_FILE_ERRORS[f]) for f in CODES_FILES]
    + [
        Case(e, t, TEXT_ERRORS.get(t) or (TEXT_LIMITS.get(e, OK) if t == "10000-chars" else OK))
        for t in TEXTS
        for e in TEXT_ENTRIES
    ]
    + [Case(e, c, CONFIG_ERRORS.get(c, OK)) for c in CONFIGS for e in CONFIG_ENTRIES]
    + [Case(e, r, RELEASE_ERRORS.get(r, OK)) for r in RELEASES for e in RELEASE_ENTRIES if not _skip(e, r)]
    + [Case("cli-export", c, m) for c, m in CHECKPOINTS.items()]
)


# ================================================================================================= fixtures


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models(tiny_release, tmp_path_factory):
    """The tiny codec release, a tiny random TTS release bundling it, and the loaded models."""
    from codec import Codec
    from tts import TTS
    from tts.config import TTSConfig

    torch.manual_seed(0)
    codec = Codec.from_pretrained(tiny_release)
    tts = TTS.from_config(TTSConfig.load("configs/tts/tiny.yaml"), codec)
    tts.codec_dir = tiny_release
    tts_release = tts.save_pretrained(tmp_path_factory.mktemp("tts") / "tiny-tts")
    return {"codec": codec, "tts": tts, "codec_release": tiny_release, "tts_release": tts_release}


@pytest.fixture(scope="module")
def server(models):
    from fastapi.testclient import TestClient

    from demo.server import create_app

    with TestClient(create_app(models["tts"])) as client:
        yield client


# ================================================================================================= entry points


class Refused(Exception):
    """An entry point answered with an error message (CLI: already checked to be exactly one line)."""


def _cli(args: list[str], tmp: Path, capsys, out: Path | None = None) -> str:
    """Run ``ucodec ARGS`` in-process. Returns stdout; raises :class:`Refused` with the error line on exit 2."""
    from ucodec.cli import main

    before = set(tmp.rglob("*"))
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    if code == 0:
        return captured.out
    err = captured.err.strip()
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    if out is not None:
        assert not out.exists(), f"{out} left behind after a refusal"
    leftovers = [p for p in set(tmp.rglob("*")) - before if ".tmp" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    raise Refused(err.removeprefix("error: "))


def _frames(seconds: float) -> int:
    return math.ceil(round(seconds * SR) / HOP)


def run_audio(entry: str, path: Path, tmp: Path, models, capsys, server) -> None:
    """Feed an audio file to one entry point; on success check the result."""
    codec, tts = models["codec"], models["tts"]
    if entry == "load_audio":
        from codec.audio import load_audio

        wav = load_audio(path, SR)
        assert wav.dtype == torch.float32 and wav.dim() == 2 and wav.shape[0] == 1 and wav.shape[1] >= 1
        assert torch.isfinite(wav).all() and wav.abs().max() <= 1.0 + 1e-6
        expected = round(sf.info(str(path)).duration * SR)
        assert abs(wav.shape[1] - expected) <= 1, (wav.shape, expected)
    elif entry == "cli-encode":
        out = tmp / "out" / "codes.safetensors"
        _cli(["encode", path, out, "--model", models["codec_release"]], tmp, capsys, out)
        from safetensors.torch import load_file

        codes = load_file(str(out))["codes"]
        assert codes.shape == (32, math.ceil(round(sf.info(str(path)).duration * SR) / HOP))
    elif entry == "tts-prompt":
        wav = tts.synthesize("Hi.", prompt_wav=path, max_seconds=0.4, seed=0)
        assert wav.shape[0] == 1 and torch.isfinite(wav).all()
    elif entry == "server-voice":
        from demo.voices import VoiceStore

        folder = tmp / "voices"
        folder.mkdir()
        voice = folder / (path.name if path.suffix in (".wav", ".flac", ".ogg") else "input.wav")
        if path.is_file():
            shutil.copy(path, voice)
        else:
            voice.symlink_to(path)  # a missing file or a directory behind a voice name
        store = VoiceStore(folder, SR)
        assert store.names == ["default", "input"] and store.get("input").wav.shape[1] >= 1
    elif entry == "demo-codec":
        pytest.importorskip("gradio")
        from demo.codec_tab import round_trip

        result = round_trip(codec, str(path), 8)
        assert result.codes.shape[0] == 8 and result.reconstructed.shape == result.original.shape
    else:
        raise AssertionError(entry)


def run_tokens(entry: str, tokens: torch.Tensor, tmp: Path, models, capsys) -> None:
    from codec import HY_Tokenizer

    if entry == "detokenize":
        before = tokens.clone()
        wav = HY_Tokenizer(model=models["codec"]).detokenize(tokens)
        assert torch.equal(tokens, before)
        assert wav.shape == (1, tokens.numel() // 32 * HOP)
        return
    if entry == "cli-decode-npy":
        src = tmp / "tokens.npy"
        np.save(src, tokens.numpy())
    else:
        src = tmp / "tokens.pt"
        torch.save(tokens, src)
    out = tmp / "out" / "decoded.wav"
    _cli(["decode", src, out, "--model", models["codec_release"]], tmp, capsys, out)
    assert sf.info(str(out)).frames == tokens.numel() // 32 * HOP


def run_text(entry: str, text: str, tmp: Path, models, capsys, server) -> None:
    tts = models["tts"]
    if entry == "synthesize":
        wav = tts.synthesize(text, max_seconds=0.4, seed=0)
        assert wav.shape[0] == 1 and wav.shape[1] > 0 and torch.isfinite(wav).all()
    elif entry == "cli-synthesize":
        text_file = tmp / "text.txt"
        text_file.write_text(text, encoding="utf-8")
        out = tmp / "out" / "speech.wav"
        args = ["synthesize", "--text-file", text_file, "-o", out, "--model", models["tts_release"]]
        _cli([*args, "--max-seconds", "0.4"], tmp, capsys, out)
        assert sf.info(str(out)).frames > 0
    elif entry == "server-speech":
        r = server.post("/v1/audio/speech", json={"input": text, "seed": 0})
        if r.status_code != 200:
            assert r.status_code == 400, r.text
            raise Refused(r.json()["error"]["message"])
        assert r.content[:4] == b"RIFF"
    elif entry == "demo-tts":
        gr = pytest.importorskip("gradio")
        from demo.tts_tab import Synthesizer

        try:
            updates = list(Synthesizer(tts, stream=False).run(text, None, "", 0.8, 50, 0.95, 0))
        except gr.Error as exc:
            raise Refused(exc.message) from None
        (rate, pcm), stats = updates[-1]
        assert rate == SR and pcm.size > 0 and "RTF" in stats
    else:
        raise AssertionError(entry)


def run_config(entry: str, path: Path, tmp: Path, capsys) -> None:
    from codec.config import CodecConfig

    if entry == "config-load":
        assert CodecConfig.load(path) == CodecConfig.load(TINY)
    elif entry == "cli-info":
        assert "1280 bps" in _cli(["info", path], tmp, capsys)
    elif entry == "cli-train-codec":
        manifest = tmp / "train.jsonl"
        sf.write(tmp / "u.wav", speechlike(0.5), SR)
        item = {"id": "u", "audio": "u.wav", "text": "t", "speaker": "s", "duration": 0.5, "sample_rate": SR}
        manifest.write_text(json.dumps(item) + "\n")
        out = tmp / "exp"
        args = ["train-codec", "--config", path, "--train", manifest, "--out", out, "--max-steps", "0"]
        _cli([*args, "--set", "train.num_workers=0", "--set", "train.batch_size=1"], tmp, capsys, out)
        assert (out / "config.yaml").is_file()
    else:
        raise AssertionError(entry)


def make_release(name: str, entry: str, tmp: Path, models) -> Path:
    """A damaged copy of the codec or TTS release (the kind ``entry`` loads)."""
    from codec import Codec
    from codec.release import CONFIG_NAME, WEIGHTS_NAME
    from tests.conftest import tiny_config

    tts_entry = entry in ("tts-from-pretrained", "cli-synthesize-model")
    src = models["tts_release"] if tts_entry else models["codec_release"]
    root = tmp / "release"
    if name == "missing-dir":
        return root
    shutil.copytree(src, root)
    cfg_path, weights = root / CONFIG_NAME, root / WEIGHTS_NAME
    meta = json.loads(cfg_path.read_text())

    def rewrite(**changes):
        meta.update(changes)
        cfg_path.write_text(json.dumps(meta))

    if name == "no-config":
        cfg_path.unlink()
    elif name == "config-not-json":
        cfg_path.write_text("{kind: codec")
    elif name == "wrong-kind":
        rewrite(kind="codec" if tts_entry else "tts")
    elif name == "format-version-99":
        rewrite(format_version=99)
    elif name == "no-weights":
        weights.unlink()
    elif name == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif name == "garbage-weights-no-hash":
        weights.write_bytes(os.urandom(256))
        rewrite(sha256=None)
    elif name == "pickle-as-safetensors":
        _evil_torch_file(tmp, weights)
        rewrite(sha256=None)
    elif name == "other-architecture":
        cfg = dict(meta["config"])
        if tts_entry:
            cfg["global_model"] = {**cfg["global_model"], "dim_feedforward": 48}
        else:
            cfg["transformer"] = {**cfg["transformer"], "dim_feedforward": 48}
        rewrite(config=cfg)  # the hash still matches: only the architecture disagrees with the weights
    elif name == "other-codec-bundled":
        torch.manual_seed(1)
        shutil.rmtree(root / "codec")
        Codec(tiny_config()).save_pretrained(root / "codec")
    return root


def run_release(entry: str, name: str, tmp: Path, models, capsys, wav: Path) -> None:
    root = make_release(name, entry, tmp, models)
    if entry == "codec-from-pretrained":
        from codec import Codec

        codec = Codec.from_pretrained(root)
        assert codec.release_id == models["codec"].release_id
    elif entry == "tts-from-pretrained":
        from tts import TTS

        tts = TTS.from_pretrained(root)
        assert tts.codec_release_id == models["tts"].codec_release_id
    elif entry == "cli-encode-model":
        out = tmp / "out" / "codes.safetensors"
        _cli(["encode", wav, out, "--model", root], tmp, capsys, out)
    elif entry == "cli-synthesize-model":
        out = tmp / "out" / "speech.wav"
        _cli(["synthesize", "Hi.", "-o", out, "--model", root, "--max-seconds", "0.4"], tmp, capsys, out)
    else:
        raise AssertionError(entry)


def run_checkpoint(name: str, tmp: Path, models, capsys) -> None:
    """``ucodec export`` of an experiment whose checkpoint is hostile or not a checkpoint."""
    from codec.configio import dump_yaml
    from codec.train_config import load_experiment_config

    exp = tmp / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "config.yaml").write_text(dump_yaml(load_experiment_config(str(TINY), None, [])))
    ckpt = exp / "checkpoints" / "step_0000001.pt"
    if name == "pickle-checkpoint":
        _evil_torch_file(tmp, ckpt)
    elif name == "pickle-in-state-dict":
        _evil_torch_file(tmp, ckpt, wrap=lambda p: {"model": {"w": p}, "step": 1})
    else:
        torch.save({"weights": torch.zeros(2)}, ckpt)
    out = tmp / "release"
    _cli(["export", exp, out], tmp, capsys, out)


# ================================================================================================= the matrix


@pytest.mark.filterwarnings("ignore:dropped characters", "ignore:dropped symbols")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, models, server, tmp_path, capsys):
    if case.input == "mp3" and "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write mp3 (needs >= 1.1)")
    tmp = tmp_path
    try:
        family = FAMILY[case.entry]
        if family == "audio":
            run_audio(case.entry, AUDIO[case.input](tmp), tmp, models, capsys, server)
        elif family == "tokens":
            run_tokens(case.entry, TOKENS[case.input](tmp), tmp, models, capsys)
        elif family == "grid":
            wav = models["codec"].decode(GRIDS[case.input](tmp))
            grid = GRIDS[case.input](tmp)
            assert wav.shape == (grid.shape[0], 1, grid.shape[2] * HOP)
        elif family == "codes-file":
            src = CODES_FILES[case.input](tmp)
            out = tmp / "out" / "decoded.wav"
            _cli(["decode", src, out, "--model", models["codec_release"]], tmp, capsys, out)
        elif family == "text":
            run_text(case.entry, TEXTS[case.input], tmp, models, capsys, server)
        elif family == "config":
            run_config(case.entry, CONFIGS[case.input](tmp), tmp, capsys)
        elif family == "release":
            wav = tmp / "in.wav"
            sf.write(wav, speechlike(0.5), SR)
            run_release(case.entry, case.input, tmp, models, capsys, wav)
        elif family == "checkpoint":
            run_checkpoint(case.input, tmp, models, capsys)
        else:
            raise AssertionError(case)
    except (Refused, ValueError, FileNotFoundError, NotADirectoryError) as exc:
        message = exc.args[0] if isinstance(exc, Refused) else str(exc)
        assert case.expect != OK, f"expected a result, got the error: {message}"
        assert "\n" not in message.strip(), message
        assert re.search(case.expect, message), f"{message!r} does not match {case.expect!r}"
    else:
        assert case.expect == OK, f"expected an error matching {case.expect!r}, got a result"
    assert not (tmp / MARKER).exists(), "a pickle payload was executed"


# ================================================================================================= one hour


def test_one_hour_file_is_encoded_in_bounded_memory(tiny_release, tmp_path):
    """``ucodec encode`` streams: the peak RSS of the whole process stays under 1.5 GB for an hour of audio."""
    path = tmp_path / "hour.wav"
    block = (0.1 * np.sin(np.arange(60 * SR) * 0.05)).astype(np.float32)
    with sf.SoundFile(path, "w", SR, 1, "PCM_16") as fh:
        for _ in range(60):
            fh.write(block)
    out = tmp_path / "hour.safetensors"
    script = (
        "import resource, sys; from ucodec.cli import main; rc = main(sys.argv[1:]); "
        "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = ["encode", str(path), str(out), "--model", str(tiny_release)]
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak = int(re.search(r"peak_rss_kb (\d+)", proc.stdout).group(1)) * 1024
    print(f"1-hour encode: peak RSS {peak / 2**30:.2f} GiB")
    assert peak <= 1.5 * 2**30, f"peak RSS {peak / 2**30:.2f} GiB"
    from safetensors.torch import load_file

    assert load_file(str(out))["codes"].shape == (32, 3600 * 5)


# ================================================================================================= the doc


def table() -> str:
    """The markdown table of every case (pasted into docs/reliability.md)."""
    rows = ["| case | expected outcome |", "|---|---|"]
    for c in CASES:
        outcome = "result (checked)" if c.expect == OK else "error: `" + c.expect.replace("\\", "") + "`"
        rows.append(f"| `{c.id}` | {outcome.replace('|', '/')} |")
    return "\n".join(rows)


def test_doc_lists_every_case():
    text = DOC.read_text(encoding="utf-8")
    missing = [c.id for c in CASES if f"`{c.id}`" not in text]
    assert not missing, f"docs/reliability.md lacks {missing[:10]}; regenerate with python -m tests.test_bad_inputs"


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    print(table())
