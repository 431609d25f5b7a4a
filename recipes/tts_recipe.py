"""End-to-end TTS recipe on the synthetic corpus: filter → tokenize → train → export → eval.

    recipes/synthetic/run_tts.sh [--stage N] [--stop-stage M] [--dry-run] [--max-steps S] [--set train.lr=...]
    python -m recipes.tts_recipe ...

Reproduces the shipped ``models/tts-small``. It needs the corpus (``recipes/synthetic/run_codec.sh --stop-stage 1``
or ``ucodec prepare synthetic``) and a codec release (default: the shipped ``models/ucodec-5hz-small``).

1. filter: training, dev and test-seen lists without the hardest-to-understand voices (``--exclude-speakers``,
   default: the accented MBROLA voices, whose own recordings Whisper transcribes at 50-92 % WER), written next to
   the corpus manifests as ``*-tts.jsonl``. Each ``--extra-data`` corpus (another seed of the synthetic corpus)
   joins the training list whole (``all.jsonl``), less the main corpus' dev/test sentences and test-unseen voices,
   its ids prefixed so they cannot collide;
2. tokenize: codes of the training and dev lists with the codec (resumable);
3. train: ``ucodec train-tts`` with ``configs/tts/small.yaml`` + ``configs/tts/train_cpu.yaml`` (resumes);
4. export: the release, with the codec bundled;
5. eval: ``ucodec eval tts`` on test-seen (intelligibility) and the first ``--unseen-per-speaker`` lines of each
   test-unseen voice (zero-shot voice prompting).

Every stage is an ordinary ``ucodec`` command, printed before it runs; re-running continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recipes.stages import Stage, add_stage_arguments, export_stage, latest_step, launcher_for, run_stages

STAGE_NAMES = ("filter", "tokenize", "train", "export", "eval")
HARD_VOICES = r"^mbrola-(af|de|fr|hu|nl|pl|sw)\d"  # accented MBROLA readers of English (see docs/corpus.md)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recipes.tts_recipe",
        description="Train the default TTS on the synthetic corpus: filter → tokenize → train → export → eval "
        "(see docs/tts_training.md).",
    )
    p.add_argument("--data", default="data/synth", help="corpus folder with train/dev/test-*.jsonl (%(default)s)")
    p.add_argument(
        "--extra-data",
        action="append",
        default=[],
        metavar="DIR",
        help="another corpus folder (e.g. a second synthetic seed) whose all.jsonl joins the training list",
    )
    p.add_argument("--codec", default="models/ucodec-5hz-small", help="codec release for the codes (%(default)s)")
    p.add_argument("--tokens", default="data/tokens", help="token store folder (%(default)s)")
    p.add_argument("--exclude-speakers", default=HARD_VOICES, metavar="REGEX", help="voices left out (%(default)s)")
    p.add_argument("--config", default="configs/tts/small.yaml", help="model config (%(default)s)")
    p.add_argument("--train-config", default="configs/tts/train_cpu.yaml", help="training config (%(default)s)")
    p.add_argument("--exp", default="exp/tts-small", help="experiment folder (%(default)s)")
    p.add_argument("--model", default="models/tts-small", help="release folder to export to (%(default)s)")
    p.add_argument("--eval-dir", default="docs/tts_eval", help="eval reports: EVAL_DIR/{seen,unseen} (%(default)s)")
    p.add_argument("--unseen-per-speaker", type=int, default=20, help="test-unseen lines per voice (%(default)s)")
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate only the first N lines of each test set")
    p.add_argument("--max-steps", type=int, default=None, help="stop training at this step (default: the config's)")
    p.add_argument("--num-processes", type=int, default=1, help="training processes via accelerate (default 1)")
    p.add_argument("--workers", type=int, default=1, help="tokenizing processes (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="training override")
    p.add_argument("--fp16", action="store_true", help="export the LM weights in float16")
    add_stage_arguments(p, STAGE_NAMES)
    return p


def build_stages(args: argparse.Namespace) -> list[Stage]:
    """The five stages for ``args`` (nothing is touched until a stage runs)."""
    data, tokens, exp, model = Path(args.data), Path(args.tokens), Path(args.exp), Path(args.model)
    lists = {name: data / f"{name}-tts.jsonl" for name in ("train", "dev", "test-seen")}
    sources = {name: data / f"{name}-tts.jsonl" for name in lists}
    if args.extra_data:
        sources["train"] = data / "train-base-tts.jsonl"  # merged with the extra corpora into lists["train"]
    filters = [
        (
            "prepare",
            "filter",
            str(data / f"{name}.jsonl"),
            str(sources[name]),
            "--exclude-speakers",
            args.exclude_speakers,
        )
        for name in lists
    ]
    held_out = [str(data / f"{name}.jsonl") for name in ("dev", "test-seen", "test-unseen")]
    extras = []
    for k, folder in enumerate(map(Path, args.extra_data), start=1):
        extra = folder / "extra-tts.jsonl"
        filters.append(
            ("prepare", "filter", str(folder / "all.jsonl"), str(extra), "--exclude-speakers", args.exclude_speakers)
            + ("--exclude-speakers-of", str(data / "test-unseen.jsonl"), "--id-prefix", f"x{k}-")
            + tuple(item for m in held_out for item in ("--exclude-texts", m))
        )
        extras.append(str(extra))
    if extras:
        filters.append(("prepare", "merge", str(lists["train"]), str(sources["train"]), *extras))
    unseen_list = data / "test-unseen-tts.jsonl"  # a fixed share of every unseen voice keeps the eval affordable
    filters.append(
        (
            "prepare",
            "filter",
            str(data / "test-unseen.jsonl"),
            str(unseen_list),
            "--per-speaker",
            str(args.unseen_per_speaker),
        )
    )
    tokenize = [
        ("tokenize", "--model", args.codec, "--manifest", str(lists[name]), "--out", str(tokens / name))
        + ("--num-workers", str(args.workers))
        for name in ("train", "dev")
    ]
    train = ["train-tts", "--store", str(tokens / "train"), "--dev-store", str(tokens / "dev"), "--out", str(exp)]
    if latest_step(exp):
        train += ["--resume"]
    else:
        train += ["--config", args.config, "--train-config", args.train_config, "--codec", args.codec]
    if args.max_steps is not None:
        train += ["--max-steps", str(args.max_steps)]
    train += [item for s in args.set for item in ("--set", s)]

    export = ["export-tts", str(exp), str(model)] + (["--fp16"] if args.fp16 else [])
    limit = ["--limit", str(args.eval_limit)] if args.eval_limit else []
    seen = ("eval", "tts", "--model", str(model), "--manifest", str(lists["test-seen"]))
    unseen = ("eval", "tts", "--model", str(model), "--manifest", str(unseen_list))
    return [
        Stage("filter", list(filters[0]), then=tuple(filters[1:])),
        Stage("tokenize", list(tokenize[0]), then=tuple(tokenize[1:])),
        Stage("train", train, launcher=launcher_for(args.num_processes)),
        export_stage(export, exp, model),
        Stage(
            "eval",
            [*seen, "--out", f"{args.eval_dir}/seen", *limit],
            then=((*unseen, "--out", f"{args.eval_dir}/unseen", *limit),),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the chosen stages; 0 on success, else the failing stage's exit code."""
    args = build_parser().parse_args(argv)
    return run_stages(build_stages(args), args.stage, args.stop_stage, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
