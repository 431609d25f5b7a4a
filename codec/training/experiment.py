"""The experiment directory of a training run, shared by the codec and the TTS trainers.

Layout (both trainers)::

    EXP/config.yaml                   the run's config (source of truth; resume reads it back)
    EXP/checkpoints/step_XXXXXXX.pt   full training states, written atomically, the last K kept
    EXP/metrics.csv                   training losses, fixed columns
    EXP/eval.csv                      dev metrics, fixed columns

Besides the directory itself this module holds what every training loop needs the same way: the warm-up + cosine
learning-rate multiplier and a stop flag set by SIGINT/SIGTERM, so that an interrupted run writes a checkpoint and
exits cleanly instead of losing the steps since the last one.
"""

from __future__ import annotations

import csv
import math
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from codec.atomic import torch_save_atomic, write_text_atomic
from codec.configio import apply_overrides, dump_yaml, from_dict, read_mapping

CKPT_DIR = "checkpoints"
CONFIG_NAME = "config.yaml"

C = TypeVar("C")


def lr_lambda(step: int, warmup: int, max_steps: int, min_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_ratio`` (multiplier of the peak learning rate)."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def load_scheduler(sched: torch.optim.lr_scheduler.LambdaLR, state: dict) -> None:
    """Restore a warm-up + cosine scheduler's position, keeping the peak rates of the *current* config.

    A plain ``load_state_dict`` would bring back the stored ``base_lrs``, so ``--resume --set train.lr=...`` would
    be silently ignored; and after a slim state (fresh optimizer) the first step would run at the rate of step 0.
    Here each group's rate is set to ``peak * multiplier(step)`` at once. With an unchanged config this is the very
    value the uninterrupted run had, so exact resume is not affected.
    """
    peaks = list(sched.base_lrs)  # from the optimizer built with the current config
    sched.load_state_dict(state)
    sched.base_lrs = peaks
    for group, peak, multiplier in zip(sched.optimizer.param_groups, peaks, sched.lr_lambdas, strict=True):
        group["initial_lr"] = peak
        group["lr"] = peak * multiplier(sched.last_epoch)
    sched._last_lr = [group["lr"] for group in sched.optimizer.param_groups]


def list_checkpoints(exp_dir: str | Path) -> list[Path]:
    """Checkpoints of an experiment, oldest first."""
    return sorted((Path(exp_dir) / CKPT_DIR).glob("step_*.pt"))


def checkpoint_path(exp_dir: str | Path, step: int) -> Path:
    """Where the state of ``step`` goes (zero-padded, so names sort by step)."""
    return Path(exp_dir) / CKPT_DIR / f"step_{step:07d}.pt"


def load_checkpoint(path: str | Path) -> dict:
    """Load a training state safely (``weights_only=True``: tensors and plain containers only).

    Raises:
        ValueError: unreadable or not a training state (e.g. a pickle carrying code).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a loadable training checkpoint ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise ValueError(f"{path}: not a training checkpoint (no 'model'/'step')")
    return state


def latest_good_checkpoint(exp_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads; a damaged newer one is skipped with a warning (kill -9 mid-write)."""
    for path in reversed(list_checkpoints(exp_dir)):
        try:
            return path, load_checkpoint(path)
        except ValueError as exc:
            print(f"warning: skipping damaged checkpoint: {exc}")
    return None


def select_checkpoint(exp_dir: str | Path, step: int | None = None) -> Path:
    """The checkpoint of ``step``, or the newest one.

    Raises:
        FileNotFoundError: the experiment has no (such) checkpoint.
    """
    ckpts = list_checkpoints(exp_dir)
    if step is not None:
        ckpts = [c for c in ckpts if c == checkpoint_path(exp_dir, step)]
    if not ckpts:
        raise FileNotFoundError(f"{exp_dir}: no checkpoint" + (f" for step {step}" if step is not None else ""))
    return ckpts[-1]


def write_checkpoint(exp_dir: str | Path, step: int, state: dict, keep: int) -> Path:
    """Write ``state`` atomically as the checkpoint of ``step`` and delete all but the newest ``keep``."""
    path = checkpoint_path(exp_dir, step)
    torch_save_atomic(state, path)
    for old in list_checkpoints(exp_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def is_checkpointed(exp_dir: str | Path, step: int) -> bool:
    """Whether the newest checkpoint is the one of ``step`` (the end of a run needs no second write)."""
    ckpts = list_checkpoints(exp_dir)
    return bool(ckpts) and ckpts[-1] == checkpoint_path(exp_dir, step)


def append_csv(path: str | Path, row: dict, fields: tuple[str, ...] | None = None) -> None:
    """Append ``row`` to a CSV file, writing the header first when the file is new.

    ``fields`` fixes the columns: keys outside it are dropped and missing ones left blank, so a header never
    changes in the middle of a file (e.g. when adversarial losses switch on). An existing file keeps its own header:
    a run resumed by a newer version that logs more columns goes on writing the columns it started with.
    """
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    columns = list(fields or row)
    if not new:
        with open(path, newline="") as fh:
            columns = next(csv.reader(fh), None) or columns
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def stored_config_with_overrides(exp_dir: str | Path, overrides: list[str], cls: type[C]) -> C:
    """The stored ``exp_dir/config.yaml`` with ``--set`` overrides applied, for ``--resume --set train.x=..``.

    A changed ``model.*`` value is refused later by :func:`prepare_experiment_dir`.

    Raises:
        FileNotFoundError: the run has no stored config.
        ValueError: an unknown key or a value of the wrong type.
    """
    stored = Path(exp_dir) / CONFIG_NAME
    if not stored.is_file():
        raise FileNotFoundError(f"{stored} not found: nothing to resume (give --config to start a new run)")
    return from_dict(cls, apply_overrides(read_mapping(stored), overrides), where="experiment config")


def prepare_experiment_dir(exp_dir: str | Path, cfg: C | None, resume: bool, cls: type[C]) -> C:
    """Create ``exp_dir/config.yaml`` for a new run, or read it back on resume.

    Args:
        cfg: the requested config (a dataclass with a ``model`` field), or None to reuse the stored one.
        resume: continue an existing run.
        cls: the config dataclass (to parse the stored file).

    Raises:
        FileExistsError: a new run into a directory that already has checkpoints (use --resume).
        ValueError: resume requested with a different model config than the stored one.
        FileNotFoundError: nothing stored and no config given.
    """
    exp = Path(exp_dir)
    stored = exp / CONFIG_NAME
    if stored.is_file():
        old = from_dict(cls, read_mapping(stored), where=str(stored))
        if not resume and list_checkpoints(exp):
            raise FileExistsError(f"{exp} already holds a run; pass --resume to continue it or choose a new --out")
        if cfg is not None and cfg.model != old.model:
            raise ValueError(f"{stored}: the model config differs from the stored one; use a new --out to change it")
        cfg = cfg or old
    elif cfg is None:
        raise FileNotFoundError(f"{stored} not found: give --config to start a new run")
    exp.mkdir(parents=True, exist_ok=True)
    for stale in (exp / CKPT_DIR).glob(".step_*.tmp"):  # the temp file of a checkpoint write killed before its rename
        stale.unlink(missing_ok=True)
    write_text_atomic(stored, dump_yaml(cfg))
    return cfg


@contextmanager
def undo_on_refusal(exp_dir: str | Path) -> Iterator[None]:
    """Leave ``exp_dir`` as it was found if the block raises: what the block created there is removed.

    Wraps the start of a run (:func:`prepare_experiment_dir` and the trainer's constructor, never ``fit``): a start
    refused for a bad store, codec or weights would otherwise leave a new ``config.yaml`` behind, and the retry with
    a corrected command would find a stored run it did not ask for. Entries that existed before are never touched.
    """
    exp = Path(exp_dir)
    existed = exp.is_dir()
    before = set(exp.iterdir()) if existed else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(exp, ignore_errors=True)
        elif exp.is_dir():
            for entry in set(exp.iterdir()) - before:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        raise


def write_slim_state(state: dict, path: str | Path, optimizers: tuple[str, ...], weights: tuple[str, ...]) -> None:
    """Write a checkpoint for carrying a run between machines: without the ``optimizers`` entries (Adam moments are
    most of a checkpoint) and with the ``weights`` state dicts in fp16 (``load_state_dict`` upcasts them). Resume
    accepts it; the moments restart from zero."""
    from codec.atomic import torch_save_atomic

    slim = {k: v for k, v in state.items() if k not in optimizers}
    for key in weights:
        slim[key] = {n: t.half() if t.is_floating_point() else t for n, t in state[key].items()}
    torch_save_atomic(slim, path)


def start_fit(trainer: Any, max_steps: int | None, resume: bool) -> int:
    """The opening of both trainers' ``fit``: returns the step to stop at (``max_steps``, else the config's
    ``train.max_steps``; 0 is a valid limit, not "unset") and, with ``resume``, loads the newest good checkpoint of
    ``trainer.exp`` into ``trainer`` (``load_state_dict``) and says so."""
    limit = trainer.tc.max_steps if max_steps is None else max_steps
    if resume and (found := latest_good_checkpoint(trainer.exp)):
        trainer.load_state_dict(found[1])
        trainer.acc.print(f"resumed from {found[0]} (step {trainer.step})")
    return limit


def training_loader(dataset: Any, seed: int, num_workers: int, **kwargs: Any) -> torch.utils.data.DataLoader:
    """The DataLoader of a training loop (``kwargs``: its sampler, batching and collate function).

    Workers ignore stop signals (:func:`ignore_stop_signals`), and they are seeded from a private generator: worker
    seeding must not draw from the global RNG, or resume would not be exact.
    """
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset,
        num_workers=num_workers,
        worker_init_fn=ignore_stop_signals if num_workers else None,
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn`` of training DataLoaders: workers ignore SIGINT and SIGTERM.

    Ctrl-C in a terminal, ``kill -TERM -PGID`` and batch schedulers (Slurm) signal every process of the job at once.
    A worker that died of it would make the main process fail with "DataLoader worker is killed by signal" before
    it could checkpoint; ignoring the signals leaves them to the main process, which saves a checkpoint and then
    shuts its workers down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class StopFlag:
    """Set by SIGINT/SIGTERM while :meth:`installed` is active; the loop checks it between steps."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:  # signal handler
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Route SIGINT and SIGTERM to this flag, restoring the previous handlers on exit."""
        old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
