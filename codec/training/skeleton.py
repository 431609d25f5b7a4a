"""The command-line skeleton both trainers share: ``train-codec``/``train-tts`` and ``export``/``export-tts``.

A training verb (:func:`add_train_verb`) is its own arguments plus :func:`add_run_arguments` (``--resume``,
``--max-steps``, ``--set``, ``--cpu``), and its handler is :func:`run_training`: choose the config (a new one, or the
stored one with ``--set`` overrides on ``--resume``), prepare the experiment directory and build the trainer under
:func:`~codec.training.experiment.undo_on_refusal` (a refused start leaves nothing behind), then ``fit``. An export
verb (:func:`add_export_verb`) has a handler that reads the run with :func:`load_run`, writes the release and the
optional slim state (:func:`write_slim`) and ends with :func:`finish_export`. What differs between the codec and
the TTS is a :class:`TrainerKind` and two callables.

Importing this module is cheap (the CLI imports it to build its parser); torch comes with the handlers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

C = TypeVar("C")
SLIM_HELP = "also write a slim training state (fp16 weights, no optimizer moments) that --resume accepts"


@dataclass(frozen=True)
class TrainerKind:
    """What a training verb says that the other one does not.

    Attributes:
        config_cls: the experiment config dataclass stored as ``EXP/config.yaml``.
        export_verb: the verb that turns the run into a release (printed when training ends).
        no_config: the error when a new run is asked for without a config.
        config_required: refuse a new run without a config at once (else only when overrides are given, and
            :func:`~codec.training.experiment.prepare_experiment_dir` decides the rest).
    """

    config_cls: type
    export_verb: str
    no_config: str
    config_required: bool


class Trainer(Protocol):
    """What :func:`run_training` needs of a trainer."""

    acc: Any  # accelerate.Accelerator

    def fit(self, max_steps: int | None = None, resume: bool = True) -> int: ...


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``--resume``, ``--max-steps``, ``--set KEY=VALUE`` (repeatable) and ``--cpu``."""
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this step (overrides train.max_steps)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.lr=3e-4")
    p.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is present")


def add_train_verb(sub: argparse._SubParsersAction, name: str, help: str, handler: Callable) -> argparse.ArgumentParser:
    """The parser of a training verb: its description is ``handler``'s docstring (kept as written), and ``func``
    is ``handler``. The caller adds its own arguments and :func:`add_run_arguments`."""
    p = sub.add_parser(
        name, help=help, description=handler.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.set_defaults(func=handler)
    return p


def add_export_verb(
    sub: argparse._SubParsersAction, name: str, help: str, handler: Callable, helps: tuple
) -> argparse.ArgumentParser:
    """An export verb: ``EXP_DIR OUT_DIR``, ``--step``, ``--fp16`` and ``--slim-state PATH``; returns its parser.

    Args:
        helps: the help texts of ``EXP_DIR``, ``OUT_DIR`` and ``--fp16``, in that order.
    """
    exp_help, out_help, fp16_help = helps
    p = sub.add_parser(name, help=help, description=handler.__doc__)
    p.add_argument("exp_dir", help=exp_help)
    p.add_argument("out_dir", help=out_help)
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--fp16", action="store_true", help=fp16_help)
    p.add_argument("--slim-state", default=None, metavar="PATH", help=SLIM_HELP)
    p.set_defaults(func=handler)
    return p


def run_training(
    args: argparse.Namespace,
    kind: TrainerKind,
    new_config: Callable[[], Any] | None,
    overrides: list[str],
    build: Callable[[Any], Trainer],
) -> int:
    """The body of a training verb. Returns the exit code (0).

    Args:
        args: parsed arguments with ``out``, ``resume`` and ``max_steps``.
        kind: the trainer's :class:`TrainerKind`.
        new_config: builds the config of a new run from the arguments, or None when none was given.
        overrides: ``KEY=VALUE`` overrides (``--set`` and the verb's own shortcuts) for a resumed run.
        build: makes the trainer from the prepared config (and may load starting weights into it).

    Raises:
        ValueError: a new run without a config, or a bad config.
        FileExistsError, FileNotFoundError: see :func:`codec.training.experiment.prepare_experiment_dir`.
    """
    from codec.training.experiment import prepare_experiment_dir, stored_config_with_overrides, undo_on_refusal

    cfg = None
    if new_config is not None:
        cfg = new_config()
    elif not args.resume:
        if kind.config_required or overrides:
            raise ValueError(kind.no_config)
    elif overrides:  # --resume --set train.max_steps=...: the stored run with new training values
        cfg = stored_config_with_overrides(args.out, overrides, kind.config_cls)
    with undo_on_refusal(args.out):  # a refused start leaves no new config.yaml behind
        cfg = prepare_experiment_dir(args.out, cfg, args.resume, kind.config_cls)
        trainer = build(cfg)
    step = trainer.fit(max_steps=args.max_steps, resume=args.resume)
    trainer.acc.print(f"done at step {step}; export with: ucodec {kind.export_verb} {args.out} RELEASE_DIR")
    return 0


def load_run(exp_dir: str | Path, config_cls: type[C], step: int | None = None) -> tuple[C, dict]:
    """An experiment's stored config and the state of its checkpoint ``step`` (default: the newest).

    Raises:
        FileNotFoundError: no ``config.yaml``, or no (such) checkpoint.
    """
    from codec.configio import from_dict, read_mapping
    from codec.training.experiment import CONFIG_NAME, load_checkpoint, select_checkpoint

    exp = Path(exp_dir)
    cfg = from_dict(config_cls, read_mapping(exp / CONFIG_NAME), where=str(exp / CONFIG_NAME))
    return cfg, load_checkpoint(select_checkpoint(exp, step))


def write_slim(state: dict, path: str | Path | None, optimizers: tuple[str, ...], weights: tuple[str, ...]) -> None:
    """:func:`codec.training.experiment.write_slim_state` when ``path`` is given (``--slim-state``)."""
    if path is not None:
        from codec.training.experiment import write_slim_state

        write_slim_state(state, path, optimizers=optimizers, weights=weights)


def finish_export(exp_dir: str | Path, release: Path, step: int, num_parameters: int, slim_state: str | None) -> int:
    """Print what an export verb wrote; returns the exit code (0)."""
    if slim_state:
        print(f"slim training state -> {slim_state} (copy to EXP/checkpoints/step_N.pt, then --resume)")
    print(f"exported step {step} of {exp_dir} -> {release} ({num_parameters:,} parameters)")
    return 0
