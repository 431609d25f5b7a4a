"""A tiny stage runner shared by the end-to-end recipes (``recipes/*/run_*.sh``).

A recipe is a list of :class:`Stage`: each is one ordinary ``ucodec`` command (optionally under a launcher such as
``accelerate launch``) plus a test that says whether its result already exists. ``--stage``/``--stop-stage`` pick a
range (icefall style), ``--dry-run`` prints the commands without running anything, and a finished stage is skipped,
so re-running an interrupted recipe continues where it stopped. The recipes only decide arguments; all the work is
done by the CLI commands themselves.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codec.cli import CODEC_COMMANDS
from tts.cli import TTS_COMMANDS

ROOT = Path(__file__).resolve().parent.parent
# The verbs a recipe runs in this process: the codec's, the TTS's and ``prepare`` (recipes.cli).
VERB_MODULES = (*CODEC_COMMANDS, *TTS_COMMANDS, "recipes.cli")


def run_verb(argv: Sequence[str]) -> int:
    """Run one ``ucodec`` verb in this process (``argv`` without the program name); returns its exit code.

    The same handlers and error handling as the ``ucodec`` program, with the verbs of the packages below the recipes.
    """
    from codec.cli import build_parser, run

    return run(build_parser(VERB_MODULES), list(argv))


@dataclass(frozen=True)
class Stage:
    """One recipe step.

    Attributes:
        name: short label printed with the stage number.
        command: ``ucodec`` arguments (without the program name).
        done: returns True when the stage's result already exists (then it is skipped); None: always run.
        launcher: a multi-process launcher prefix (e.g. ``["accelerate", "launch", "--num_processes", "4"]``);
            the command then runs as ``launcher + ["-m", "ucodec"] + command`` in a subprocess.
        then: further in-process ``ucodec`` commands run after ``command`` (e.g. merging manifests).
        after: called once the commands succeeded (e.g. to write a marker file).
    """

    name: str
    command: list[str]
    done: Callable[[], bool] | None = None
    launcher: list[str] = field(default_factory=list)
    then: tuple[tuple[str, ...], ...] = ()
    after: Callable[[], None] | None = None

    def argv(self) -> list[str]:
        """The full command line as a user would type it."""
        if self.launcher:
            return [*self.launcher, "-m", "ucodec", *self.command]
        return ["ucodec", *self.command]


def add_stage_arguments(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """Add ``--stage``, ``--stop-stage`` and ``--dry-run`` to a recipe's parser (stages numbered from 1)."""
    n_stages = len(names)
    listing = ", ".join(f"{i + 1} {name}" for i, name in enumerate(names))
    p.add_argument("--stage", type=int, default=1, help=f"first stage ({listing})")
    p.add_argument("--stop-stage", type=int, default=n_stages, help=f"last stage (default {n_stages})")
    p.add_argument("--dry-run", action="store_true", help="print the commands of the chosen stages; run nothing")


def run_stages(stages: Sequence[Stage], first: int, last: int, dry_run: bool = False) -> int:
    """Run stages ``first..last`` (1-based) in order.

    Returns:
        0 when every chosen stage succeeded (or was already done), else the exit code of the first failing one.
        A stage range outside ``1..len(stages)`` is a user error (exit 2).
    """
    from codec.cli import fail

    if not 1 <= first <= last <= len(stages):
        return fail(f"--stage {first} --stop-stage {last}: stages are numbered 1..{len(stages)}")
    for number, stage in enumerate(stages, start=1):
        if not first <= number <= last:
            continue
        line = shlex.join(stage.argv()) + "".join(f" && ucodec {shlex.join(c)}" for c in stage.then)
        if stage.done is not None and stage.done():
            print(f"--- stage {number} ({stage.name}): already done, skipped: {line}", flush=True)
            continue
        print(f"--- stage {number} ({stage.name}): {line}", flush=True)
        if dry_run:
            continue
        if stage.launcher:
            code = subprocess.call(stage.argv(), cwd=ROOT)
        else:
            code = run_verb(stage.command)
        for extra in stage.then:
            code = code or run_verb(extra)
        if code:
            print(f"stage {number} ({stage.name}) failed with exit code {code}", file=sys.stderr)
            return code
        if stage.after is not None:
            stage.after()
    return 0


def latest_step(exp: Path) -> int:
    """Step of the newest loadable checkpoint under ``exp`` (0 when there is none)."""
    from codec.training.experiment import latest_good_checkpoint

    found = latest_good_checkpoint(exp) if exp.is_dir() else None
    return int(found[1]["step"]) if found else 0


def marker_holds(marker: Path, value: str) -> bool:
    """True when ``marker`` exists and holds ``value`` (the recipes mark an export with the step it exported)."""
    try:
        return marker.read_text(encoding="utf-8").strip() == value
    except OSError:
        return False


def export_stage(command: list[str], exp: Path, release: Path) -> Stage:
    """The export stage of a recipe: skipped when ``release`` already holds the newest checkpoint of ``exp``.

    The marker ``EXP/.exported`` records ``"<step> <release>"`` after a successful export.
    """
    marker = exp / ".exported"

    def done() -> bool:
        step = latest_step(exp)  # loads the newest checkpoint: once per check
        return step > 0 and release.is_dir() and marker_holds(marker, f"{step} {release}")

    def record() -> None:
        from codec.atomic import write_text_atomic

        write_text_atomic(marker, f"{latest_step(exp)} {release}\n")

    return Stage("export", command, done=done, after=record)


def launcher_for(num_processes: int) -> list[str]:
    """``accelerate launch`` prefix for ``num_processes`` > 1 (none for one process).

    ``--multi_gpu`` also gives CPU DDP; accelerate's ``--cpu`` flag with ``--num_processes`` would silently run one
    process, so it is never added.
    """
    if num_processes <= 1:
        return []
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes)]
