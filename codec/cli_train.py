"""``ucodec train-codec | export | plot``: train a codec, turn an experiment into a release, draw its curves."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-codec",
        help="train a codec (GAN, resumable; accelerate for CPU DDP/GPU)",
        description=_train.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="model config YAML (e.g. configs/codec/small.yaml); optional when resuming")
    p.add_argument("--train-config", default=None, help="training YAML (default: configs/codec/train_cpu.yaml)")
    p.add_argument("--train", required=True, help="training manifest (JSONL)")
    p.add_argument("--dev", default=None, help="dev manifest for periodic evaluation (JSONL)")
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this step (overrides train.max_steps)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.lr=3e-4")
    p.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is present")
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
    p.set_defaults(func=_train)

    p = sub.add_parser("export", help="write a release directory from an experiment", description=_export.__doc__)
    p.add_argument("exp_dir", help="experiment directory (has config.yaml and checkpoints/)")
    p.add_argument("out_dir", help="release directory to write")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--fp16", action="store_true", help="store weights in float16 (half the size)")
    p.add_argument(
        "--slim-state",
        default=None,
        metavar="PATH",
        help="also write a slim training state (fp16 weights, no optimizer moments) that --resume accepts",
    )
    p.set_defaults(func=_export)

    p = sub.add_parser("plot", help="render training curves of an experiment to PNG", description=_plot.__doc__)
    p.add_argument("exp_dir", help="experiment directory (has metrics.csv)")
    p.add_argument("--out", default=None, help="PNG path (default: EXP_DIR/curves.png)")
    p.set_defaults(func=_plot)


def _train(args: argparse.Namespace) -> int:
    """Train a codec on random crops of a manifest. Checkpoints go to OUT/checkpoints every train.checkpoint_every
    steps; Ctrl-C or SIGTERM saves one and exits. Continue with --resume.

    CPU DDP: accelerate launch --multi_gpu --num_processes 2 -m codec.cli train-codec ...
    (accelerate's --cpu flag with --num_processes silently runs ONE process; do not use it.)"""
    from codec.train import CodecTrainer, prepare_experiment
    from codec.train_config import load_experiment_config
    from codec.training.experiment import undo_on_refusal

    cfg = None
    if args.config:
        default_train = Path(__file__).resolve().parent.parent / "configs" / "codec" / "train_cpu.yaml"
        train_cfg = args.train_config or (str(default_train) if default_train.is_file() else None)
        cfg = load_experiment_config(args.config, train_cfg, args.set)
    elif args.set and not args.resume:
        raise ValueError("--set needs --config (or --resume to override a stored run)")
    elif args.set:  # --resume --set train.max_steps=...: the stored run with new training values
        from codec.train_config import CodecExperimentConfig
        from codec.training.experiment import stored_config_with_overrides

        cfg = stored_config_with_overrides(args.out, args.set, CodecExperimentConfig)
    if args.init_from and args.resume:
        raise ValueError("--init-from starts a new run; a resumed run continues from its own checkpoint")
    with undo_on_refusal(args.out):  # a refused start leaves no new config.yaml behind
        cfg = prepare_experiment(args.out, cfg, args.resume)
        trainer = CodecTrainer(cfg, args.train, args.dev, args.out, cpu=args.cpu, content_dir=args.content)
        if args.init_from:
            from codec.content.train import init_weights_from

            trainer.acc.print(init_weights_from(trainer.model, trainer.disc, args.init_from))
    step = trainer.fit(max_steps=args.max_steps, resume=args.resume)
    trainer.acc.print(f"done at step {step}; export with: ucodec export {args.out} RELEASE_DIR")
    return 0


def _export(args: argparse.Namespace) -> int:
    """Load an experiment's checkpoint and write config.json + model.safetensors."""
    import torch

    from codec.configio import from_dict, read_mapping
    from codec.model import Codec
    from codec.train import list_checkpoints, load_checkpoint
    from codec.train_config import CodecExperimentConfig

    exp = Path(args.exp_dir)
    cfg = from_dict(CodecExperimentConfig, read_mapping(exp / "config.yaml"), where=str(exp / "config.yaml"))
    ckpts = list_checkpoints(exp)
    if args.step is not None:
        ckpts = [c for c in ckpts if c.name == f"step_{args.step:07d}.pt"]
    if not ckpts:
        raise FileNotFoundError(f"{exp}: no checkpoint" + (f" for step {args.step}" if args.step is not None else ""))
    state = load_checkpoint(ckpts[-1])
    model = Codec(cfg.model)
    model.load_state_dict(state["model"])
    out = model.save_pretrained(args.out_dir, dtype=torch.float16 if args.fp16 else None)
    if args.slim_state:  # ~30 MB instead of 159 MB for the small codec
        from codec.training.experiment import write_slim_state

        write_slim_state(state, args.slim_state, optimizers=("opt_g", "opt_d"), weights=("model", "disc"))
        print(f"slim training state -> {args.slim_state} (copy to EXP/checkpoints/step_N.pt, then --resume)")
    print(f"exported step {state['step']} of {exp} -> {out} ({model.num_parameters():,} parameters)")
    return 0


def _plot(args: argparse.Namespace) -> int:
    """Plot every column of metrics.csv (and eval.csv) against the step."""
    import csv

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install -e '.[eval]'") from None
    from codec.atomic import atomic_path

    exp = Path(args.exp_dir)
    series: dict[str, tuple[list[float], list[float]]] = {}
    for name in ("metrics.csv", "eval.csv"):
        path = exp / name
        if not path.is_file():
            continue
        for row in csv.DictReader(path.open()):
            step = float(row.pop("step"))
            for key, value in row.items():
                if value not in ("", None):
                    xs, ys = series.setdefault(f"{name[:-4]}/{key}", ([], []))
                    xs.append(step)
                    ys.append(float(value))
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
