"""``ucodec train-codec | export | plot``: train a codec, turn an experiment into a release, draw its curves."""

from __future__ import annotations

import argparse
from pathlib import Path

from codec.training.skeleton import (
    TrainerKind,
    add_export_verb,
    add_run_arguments,
    add_train_verb,
    load_run,
    run_training,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train-codec``, ``export`` and ``plot`` to the ``ucodec`` parser."""
    p = add_train_verb(sub, "train-codec", "train a codec (GAN, resumable; accelerate for CPU DDP/GPU)", _train)
    p.add_argument("--config", help="model config YAML (e.g. configs/codec/small.yaml); optional when resuming")
    p.add_argument("--train-config", default=None, help="training YAML (default: configs/codec/train_cpu.yaml)")
    p.add_argument("--train", required=True, help="training manifest (JSONL)")
    p.add_argument("--dev", default=None, help="dev manifest for periodic evaluation (JSONL)")
    p.add_argument("--out", required=True, help="experiment directory")
    add_run_arguments(p)
    p.add_argument(
        "--content",
        default=None,
        metavar="DIR",
        help="content store of the training manifest (ucodec content-store), for models with content heads",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="PATH",
        help="new run only: start from a codec release or checkpoint (same-named weights; new heads start fresh)",
    )
    p.add_argument(
        "--init-stack",
        default=None,
        metavar="FILE",
        help="new run only: the first quantizer stack from ucodec train-phone-stack (phone-input codecs; after "
        "--init-from). Hold it with --set \"train.frozen=['phone_input.proj.*','quantizer.layers.[0-3].in_proj.*',"
        "'quantizer.layers.[0-3].codebook.*']\"",
    )
    help_texts = ("experiment directory (has config.yaml and checkpoints/)", "release directory to write")
    help_texts += ("store weights in float16 (half the size)",)
    add_export_verb(sub, "export", "write a release directory from an experiment", _export, help_texts)

    p = sub.add_parser("plot", help="render training curves of an experiment to PNG", description=_plot.__doc__)
    p.add_argument("exp_dir", help="experiment directory (has metrics.csv)")
    p.add_argument("--out", default=None, help="PNG path (default: EXP_DIR/curves.png)")
    p.set_defaults(func=_plot)


def _kind() -> TrainerKind:
    from codec.train_config import CodecExperimentConfig

    return TrainerKind(
        config_cls=CodecExperimentConfig,
        export_verb="export",
        no_config="--set needs --config (or --resume to override a stored run)",
        config_required=False,
    )


def _train(args: argparse.Namespace) -> int:
    """Train a codec on random crops of a manifest. Checkpoints go to OUT/checkpoints every train.checkpoint_every
    steps; Ctrl-C or SIGTERM saves one and exits. Continue with --resume.

    CPU DDP: accelerate launch --multi_gpu --num_processes 2 -m ucodec train-codec ...
    (accelerate's --cpu flag with --num_processes silently runs ONE process; do not use it.)"""
    from codec.train import CodecTrainer
    from codec.train_config import load_experiment_config

    for flag, value in (("--init-from", args.init_from), ("--init-stack", args.init_stack)):
        if value and args.resume:
            raise ValueError(f"{flag} starts a new run; a resumed run continues from its own checkpoint")

    def new_config():
        default_train = Path(__file__).resolve().parent.parent / "configs" / "codec" / "train_cpu.yaml"
        train_cfg = args.train_config or (str(default_train) if default_train.is_file() else None)
        return load_experiment_config(args.config, train_cfg, args.set)

    def build(cfg) -> CodecTrainer:
        trainer = CodecTrainer(cfg, args.train, args.dev, args.out, cpu=args.cpu, content_dir=args.content)
        if args.init_from:
            from codec.content.train import init_weights_from

            trainer.acc.print(init_weights_from(trainer.model, trainer.disc, args.init_from))
        phone_input = getattr(trainer.model, "phone_input", None)
        if phone_input is not None and not args.resume:  # resumed runs have the recognizer in their checkpoint
            from codec.release import resolve_release

            trainer.acc.print(phone_input.load_recognizer(resolve_release(cfg.train.phone_model)))
        if args.init_stack:  # after the recognizer: the stack must have been trained on the same one
            from codec.content.first_stack import graft_first_stack

            trainer.acc.print(graft_first_stack(trainer.model, args.init_stack))
        return trainer

    return run_training(args, _kind(), new_config if args.config else None, list(args.set), build)


def _export(args: argparse.Namespace) -> int:
    """Load an experiment's checkpoint and write config.json + model.safetensors."""
    import torch

    from codec.model import Codec
    from codec.training.skeleton import finish_export, write_slim

    cfg, state = load_run(args.exp_dir, _kind().config_cls, args.step)
    model = Codec(cfg.model)
    model.load_state_dict(state["model"])
    out = model.save_pretrained(args.out_dir, dtype=torch.float16 if args.fp16 else None)
    # ~30 MB instead of 159 MB for the small codec
    write_slim(state, args.slim_state, optimizers=("opt_g", "opt_d"), weights=("model", "disc"))
    return finish_export(Path(args.exp_dir), out, state["step"], model.num_parameters(), args.slim_state)


def read_curves(exp: Path) -> dict[str, tuple[list[float], list[float]]]:
    """``{"metrics/<column>" or "eval/<column>": (steps, values)}`` of an experiment's CSV logs; empty and
    non-finite values are left out (a column that is never finite, e.g. the level bands a TTS model of 4 levels
    does not have, gets no curve)."""
    import csv
    import math

    series: dict[str, tuple[list[float], list[float]]] = {}
    for name in ("metrics.csv", "eval.csv"):
        path = exp / name
        if not path.is_file():
            continue
        for row in csv.DictReader(path.open()):
            step = float(row.pop("step"))
            for key, value in row.items():
                if value in ("", None) or not math.isfinite(float(value)):
                    continue
                xs, ys = series.setdefault(f"{name[:-4]}/{key}", ([], []))
                xs.append(step)
                ys.append(float(value))
    return series


def _plot(args: argparse.Namespace) -> int:
    """Plot every column of metrics.csv (and eval.csv) against the step."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install -e '.[eval]'") from None
    from codec.atomic import atomic_path

    exp = Path(args.exp_dir)
    series = read_curves(exp)
    if not series:
        raise FileNotFoundError(f"{exp}: no metrics.csv or eval.csv to plot")
    cols = 3
    rows = (len(series) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 2.8 * rows), squeeze=False)
    for ax, (key, (xs, ys)) in zip(axes.flat, sorted(series.items()), strict=False):
        ax.plot(xs, ys, lw=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(args.out) if args.out else exp / "curves.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    print(f"wrote {out}")
    return 0
