"""Fine-tune a released TTS model on one speaker's recordings: a folder of wav + txt in, a release out.

    recipes/finetune/run.sh SPEAKER_DIR OUT_DIR [--base RELEASE] [--steps N] [--set train.lr=5e-5 ...]
    python -m recipes.finetune SPEAKER_DIR OUT_DIR ...

Stages (icefall style: ``--stage``/``--stop-stage``; each is skipped when its result exists, so re-running the
command after an interruption continues where it stopped):

1. ``ucodec prepare folder SPEAKER_DIR OUT/data``: check every file, write ``OUT/data/manifest.jsonl`` and a report
   of unusable files; warn when there is less audio than recommended.
2. ``ucodec tokenize --model BASE/codec``: the codec bundled with the base release, so the tokens are the ones the
   base model was trained on.
3. ``ucodec train-tts --init-from BASE --train-config configs/tts/finetune_cpu.yaml``: resumes from ``OUT/exp``.
4. ``ucodec export-tts OUT/exp OUT/model``: the fine-tuned release (``ucodec synthesize --model OUT/model``).

Every stage is the ordinary ``ucodec`` command run in-process; this file only decides their arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recipes.stages import latest_step

ROOT = Path(__file__).resolve().parent.parent.parent
FINETUNE_CONFIG = ROOT / "configs" / "tts" / "finetune_cpu.yaml"
RECOMMENDED_SECONDS = 300.0  # 5 minutes: below this the voice moves little and the model starts to overfit
MIN_UTTERANCES = 2  # a prompt is always another utterance of the speaker
STAGES = ("prepare", "tokenize", "train", "export")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recipes/finetune/run.sh",
        description="Fine-tune a TTS release on a folder of one speaker's wav + txt files (see README.md there).",
    )
    p.add_argument("speaker_dir", help="folder of <name>.wav (or .flac) + <name>.txt transcripts")
    p.add_argument("out_dir", help="work and output folder (data/, tokens/, exp/, model/)")
    p.add_argument("--base", default="default", help="TTS release to start from (default: the shipped model)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: train.max_steps of the config)")
    p.add_argument("--train-config", default=str(FINETUNE_CONFIG), help="training YAML (default: %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.lr=5e-5")
    p.add_argument("--stage", type=int, default=1, help="first stage: 1 prepare, 2 tokenize, 3 train, 4 export")
    p.add_argument("--stop-stage", type=int, default=4, help="last stage (default 4)")
    p.add_argument("--workers", type=int, default=2, help="processes for checking and tokenizing (default 2)")
    p.add_argument("--device", default="cpu", help="device for tokenizing (cpu, cuda, auto; default cpu)")
    return p


def check_amount(manifest: Path) -> float:
    """Seconds of audio in the manifest; prints a warning below :data:`RECOMMENDED_SECONDS`.

    Raises:
        ValueError: fewer than :data:`MIN_UTTERANCES` usable utterances.
    """
    lines = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    seconds = sum(float(item["duration"]) for item in lines)
    if len(lines) < MIN_UTTERANCES:
        raise ValueError(
            f"{manifest}: {len(lines)} usable utterance(s); fine-tuning needs at least {MIN_UTTERANCES} (the voice "
            f"prompt of an utterance is another one), and {RECOMMENDED_SECONDS / 60:g} minutes are recommended"
        )
    print(f"{len(lines)} utterances, {seconds / 60:.1f} min of audio")
    if seconds < RECOMMENDED_SECONDS:
        print(
            f"warning: {seconds:.0f} s is less than the recommended {RECOMMENDED_SECONDS / 60:g} min; expect a weak "
            "likeness and watch for overfitting (fewer --steps)"
        )
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run the stages; returns the exit code of the first failing ``ucodec`` command (0 on success)."""
    from codec.cli import fail
    from codec.release import resolve_release
    from recipes.stages import run_verb as ucodec
    from tts.pipeline import ALIASES, CODEC_DIR

    args = build_parser().parse_args(argv)
    out = Path(args.out_dir)
    data, tokens, exp, model = out / "data", out / "tokens", out / "exp", out / "model"
    try:
        base = resolve_release(args.base, ALIASES).resolve()
    except FileNotFoundError as exc:
        return fail(f"{exc}; pass --base RELEASE_DIR")
    steps = args.steps
    if steps is None:
        from codec.configio import from_dict, read_mapping
        from tts.train_config import TTSTrainConfig

        steps = from_dict(TTSTrainConfig, read_mapping(args.train_config), where=args.train_config).max_steps
    wanted = range(args.stage, args.stop_stage + 1)

    def stage(number: int, command: list[str]) -> int:
        if number not in wanted:
            return 0
        print(f"--- stage {number}: {STAGES[number - 1]}: ucodec {' '.join(command)}", flush=True)
        return ucodec(command)

    code = stage(1, ["prepare", "folder", args.speaker_dir, str(data), "--workers", str(args.workers)])
    if code:
        return code
    if 1 in wanted or 2 in wanted:
        try:
            check_amount(data / "manifest.jsonl")
        except (ValueError, FileNotFoundError) as exc:
            return fail(str(exc))
    tokenize = ["tokenize", "--model", str(base / CODEC_DIR), "--manifest", str(data / "manifest.jsonl")]
    code = stage(2, [*tokenize, "--out", str(tokens), "--num-workers", "1", "--device", args.device, "--no-progress"])
    if code:
        return code
    if 3 in wanted and latest_step(exp) >= steps:
        print(f"--- stage 3: train: {exp} is already at step {steps}")
    else:
        train = ["train-tts", "--init-from", str(base), "--train-config", args.train_config, "--store", str(tokens)]
        train += ["--out", str(exp), "--max-steps", str(steps), "--set", f"train.max_steps={steps}"]
        train += sum((["--set", s] for s in args.set), [])
        code = stage(3, [*train, "--resume"] if latest_step(exp) else train)
        if code:
            return code
        if 3 in wanted and (reached := latest_step(exp)) < steps:  # stopped by Ctrl-C/SIGTERM: do not export
            print(f"training stopped at step {reached} of {steps}; run the same command to continue")
            return 130
    marker = out / ".export.done"
    step = latest_step(exp)
    if 4 in wanted and marker.is_file() and marker.read_text().strip() == str(step) and model.is_dir():
        print(f"--- stage 4: export: {model} already holds step {step}")
        return 0
    code = stage(4, ["export-tts", str(exp), str(model)])
    if code == 0 and 4 in wanted:
        marker.write_text(f"{step}\n")
        print(f"done: ucodec synthesize 'Hello!' --model {model} -o hello.wav")
    return code


if __name__ == "__main__":
    sys.exit(main())
