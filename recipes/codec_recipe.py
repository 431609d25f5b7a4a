"""End-to-end codec recipes: prepare → content → train → export → eval, one command each.

    recipes/synthetic/run_codec.sh [--stage N] [--stop-stage M] [--dry-run] [--set train.lr=...]
    recipes/libritts/run_codec.sh LIBRITTS_ROOT [--num-processes 8] [--dry-run] ...
    python -m recipes.codec_recipe {synthetic,libritts} ...

``synthetic`` reproduces the shipped ``models/ucodec-5hz-small`` on 2 CPU cores from nothing but the engines that
``recipes/synthetic/install.sh`` installs. When the model config has content heads (``model.content``, on in
``configs/codec/small.yaml``), the ``content`` stage builds the phoneme/teacher store of the training manifest
(``ucodec content-store``) and training reads it; otherwise that stage is skipped.

``libritts`` trains the published-size model (``configs/codec/paper.yaml``) on LibriTTS for users with GPUs;
``--num-processes N`` launches the trainer through ``accelerate launch --multi_gpu`` (also CPU DDP). Every stage is
an ordinary ``ucodec`` command (printed before it runs); finished stages are skipped and training resumes from the
newest checkpoint, so re-running after an interruption continues.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recipes.stages import Stage, add_stage_arguments, export_stage, latest_step, launcher_for, run_stages

STAGE_NAMES = ("prepare", "content", "train", "export", "eval")
LIBRITTS_TRAIN = ("train-clean-100", "train-clean-360", "train-other-500")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recipes.codec_recipe",
        description="Train a 5 Hz codec from scratch: prepare → train → export → eval (see docs/codec_training.md).",
    )
    corpora = p.add_subparsers(dest="corpus", metavar="CORPUS", required=True)
    syn = corpora.add_parser("synthetic", help="the offline synthetic corpus, small model, 2 CPU cores (shipped)")
    syn.add_argument("--data", default="data/synth", help="corpus folder (default %(default)s)")
    syn.add_argument("--hours", type=float, default=10.0, help="hours of synthetic speech (default %(default)s)")
    syn.add_argument("--seed", type=int, default=0, help="corpus seed (default %(default)s)")
    _common(
        syn, "configs/codec/small.yaml", "configs/codec/train_cpu.yaml", "exp/codec-small", "models/ucodec-5hz-small"
    )
    syn.set_defaults(eval_out="docs/codec_eval", fp16=True)

    lib = corpora.add_parser("libritts", help="LibriTTS (or LibriTTS-R), published-size model, GPUs")
    lib.add_argument("src_dir", metavar="LIBRITTS_ROOT", help="folder holding train-clean-100, dev-clean, ...")
    lib.add_argument("--data", default="data/libritts", help="manifest folder (default %(default)s)")
    lib.add_argument("--flavour", choices=("libritts", "libritts-r"), default="libritts", help="preparer to use")
    lib.add_argument(
        "--train-parts", default=",".join(LIBRITTS_TRAIN), help="comma list of training subsets (default: all 960 h)"
    )
    lib.add_argument("--dev-part", default="dev-clean", help="subset for periodic dev evaluation")
    lib.add_argument("--test-part", default="test-clean", help="subset for the final evaluation")
    lib.add_argument("--workers", type=int, default=8, help="processes checking the corpus (default %(default)s)")
    _common(lib, "configs/codec/paper.yaml", "configs/codec/train_gpu.yaml", "exp/codec-paper", "models/ucodec-5hz")
    lib.set_defaults(eval_out=None, fp16=False)
    return p


def _common(p: argparse.ArgumentParser, config: str, train_config: str, exp: str, model: str) -> None:
    p.add_argument("--config", default=config, help="model config (default %(default)s)")
    p.add_argument("--train-config", default=train_config, help="training config (default %(default)s)")
    p.add_argument("--exp", default=exp, help="experiment folder (default %(default)s)")
    p.add_argument("--model", default=model, help="release folder to export to (default %(default)s)")
    p.add_argument("--eval-dir", default=None, help="eval report folder (default: EXP/eval)")
    p.add_argument("--max-steps", type=int, default=None, help="stop training at this step (default: the config's)")
    p.add_argument("--num-processes", type=int, default=1, help="training processes via accelerate (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="training override")
    p.add_argument("--init-from", default=None, help="start a new run from this codec release or checkpoint")
    p.add_argument("--content-workers", type=int, default=2, help="teacher processes of the content stage (2)")
    add_stage_arguments(p, STAGE_NAMES)


def build_stages(args: argparse.Namespace) -> list[Stage]:
    """The four stages for ``args`` (paths are not touched until a stage runs)."""
    data, exp, model = Path(args.data), Path(args.exp), Path(args.model)
    if args.corpus == "synthetic":
        prepare = Stage(
            "prepare",
            ["prepare", "synthetic", str(data), "--hours", f"{args.hours:g}", "--seed", str(args.seed)],
        )
        train_manifest, dev, test = data / "train.jsonl", data / "dev.jsonl", data / "test-unseen.jsonl"
    else:
        parts = [p.strip() for p in args.train_parts.split(",") if p.strip()]
        if not parts:
            raise ValueError("--train-parts names no subset")
        train_manifest, dev, test = (
            data / "train.jsonl",
            data / f"{args.dev_part}.jsonl",
            data / f"{args.test_part}.jsonl",
        )
        merge = ("prepare", "merge", str(train_manifest), *(str(data / f"{p}.jsonl") for p in parts))
        prepare = Stage(
            "prepare",
            ["prepare", args.flavour, args.src_dir, str(data), "--workers", str(args.workers)],
            then=(merge,),
        )
    step = latest_step(exp)
    train = ["train-codec", "--train", str(train_manifest), "--dev", str(dev), "--out", str(exp)]
    if step:
        train += ["--resume"]  # the run's own config.yaml is used; --set may still change train.* values
    else:
        train += ["--config", args.config, "--train-config", args.train_config]
        if args.init_from:
            train += ["--init-from", args.init_from]
    store = data / "content-train"
    content_args = ["content-store", str(train_manifest), str(store), "--workers", str(args.content_workers)]
    if _has_content_heads(exp if step else None, args.config):
        train += ["--content", str(store)]
        content = Stage("content", content_args, done=lambda: _store_done(store))
    else:
        content = Stage("content", content_args, done=lambda: True)  # no content heads: nothing to build
    if args.max_steps is not None:
        train += ["--max-steps", str(args.max_steps)]
    train += [item for s in args.set for item in ("--set", s)]

    export = ["export", str(exp), str(model)] + (["--fp16"] if args.fp16 else [])
    eval_dir = args.eval_dir or args.eval_out or str(exp / "eval")
    evaluate = ["eval", "codec", "--model", str(model), "--manifest", str(test), "--out", eval_dir]
    evaluate += ["--num-codebooks", "1,2,4,8,16,32", "--probe-train", str(train_manifest)]
    return [
        prepare,
        content,
        Stage("train", train, launcher=launcher_for(args.num_processes)),
        export_stage(export, exp, model),
        Stage("eval", evaluate),
    ]


def _has_content_heads(exp: Path | None, config: str) -> bool:
    """Whether the run (its stored config when resuming, else ``config``) has content heads."""
    from codec.configio import read_mapping

    try:
        data = read_mapping(str(exp / "config.yaml"))["model"] if exp is not None else read_mapping(config)
    except (OSError, ValueError, KeyError):
        return False
    return int((data.get("content") or {}).get("levels", 0)) > 0


def _store_done(store: Path) -> bool:
    """A content store whose teacher shards are all written (a rerun of the stage would do nothing)."""
    from codec.content.store import INFO_NAME, ContentStore, shard_path

    if not (store / INFO_NAME).is_file():
        return False
    info = ContentStore(store).info
    return not info.teacher or all(shard_path(store, s).is_file() for s in range(info.num_shards))


def main(argv: list[str] | None = None) -> int:
    """Run the chosen stages; 0 on success, else the failing stage's exit code."""
    from codec.cli import fail

    args = build_parser().parse_args(argv)
    try:
        stages = build_stages(args)
    except ValueError as exc:
        return fail(str(exc))
    return run_stages(stages, args.stage, args.stop_stage, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
