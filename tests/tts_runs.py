"""Shared pieces of the TTS training tests: a tiny corpus tokenized into a store, a fast experiment config, and
a 4-step run. The fixtures ``tts_store`` and ``tts_run`` (tests/conftest.py) are built from them."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from codec.store.writer import tokenize
from tests.conftest import ROOT, speechlike
from tts.train import TTSTrainer, prepare_tts_experiment
from tts.train_config import load_tts_experiment

TINY_TTS = str(ROOT / "configs" / "tts" / "tiny.yaml")
TEXTS = ["hello there", "a short one", "more words here", "the last line", "yes", "no way", "quite so", "fine"]
FAST = [
    "train.max_tokens=120",
    "train.num_workers=0",
    "train.log_every=1",
    "train.eval_every=0",
    "train.warmup_steps=1",
    "train.checkpoint_every=100",
    "train.lr=3e-3",
]


def write_folder(root: Path, speakers: dict[str, list[int]]) -> Path:
    """``root/<speaker>/<n>.wav + .txt`` (the layout of ``ucodec prepare folder``)."""
    for spk, items in speakers.items():
        (root / spk).mkdir(parents=True, exist_ok=True)
        for n in items:
            sf.write(root / spk / f"{n}.wav", speechlike(1.0 + 0.2 * (n % 4), seed=n), 16000)
            (root / spk / f"{n}.txt").write_text(TEXTS[n % len(TEXTS)] + "\n")
    return root


def make_store(tmp_path_factory, tiny_release) -> Path:
    """Two speakers, four short utterances each, tokenized with ``tiny_release`` → the store's directory."""
    root = tmp_path_factory.mktemp("tts_corpus")
    write_folder(root / "wav", {"s1": [0, 1, 2, 3], "s2": [4, 5, 6, 7]})
    lines = []
    for wav in sorted((root / "wav").rglob("*.wav")):
        text = wav.with_suffix(".txt").read_text().strip()
        item = {"id": f"{wav.parent.name}-{wav.stem}", "audio": str(wav), "text": text, "speaker": wav.parent.name}
        lines.append(json.dumps({**item, "duration": sf.info(wav).duration, "sample_rate": 16000}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    tokenize(tiny_release, root / "manifest.jsonl", root / "tokens", progress=False)
    return root / "tokens"


def experiment(tiny_release, *extra: str):
    return load_tts_experiment(TINY_TTS, None, [*FAST, f"train.codec={tiny_release}", *extra])


def run(store, tiny_release, out, steps, *extra, resume=False, dev=None) -> TTSTrainer:
    cfg = prepare_tts_experiment(str(out), experiment(tiny_release, *extra), resume)
    trainer = TTSTrainer(cfg, str(store), dev, str(out), cpu=True)
    trainer.fit(max_steps=steps, resume=resume)
    return trainer


def run_straight(store, tiny_release, tmp_path_factory) -> TTSTrainer:
    """4 steps in one go, with a dev loss and one dev sample every 2 steps (which must not disturb training)."""
    evals = ["train.eval_every=2", "train.eval_samples=1", "train.eval_wer=false"]
    return run(store, tiny_release, tmp_path_factory.mktemp("straight") / "exp", 4, *evals, dev=str(store))
