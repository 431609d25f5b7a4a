"""``ucodec train-tts | export-tts``: train the TTS LM on a token store, turn an experiment into a release.

Both verbs are the codec trainer's skeleton (:mod:`codec.training.skeleton`: the common arguments, the
resume/prepare prologue, the export steps) with the TTS's own arguments and objects. ``export-tts`` is its own
command rather than a mode of ``ucodec export`` because ``codec`` never imports ``tts`` (docs/design.md);
``ucodec plot EXP`` draws the curves of either kind of experiment. Heavy imports happen inside the handlers so
``ucodec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from codec.training.skeleton import (
    TrainerKind,
    add_export_verb,
    add_run_arguments,
    add_train_verb,
    finish_export,
    load_run,
    run_training,
    write_slim,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train-tts`` and ``export-tts`` to the ``ucodec`` parser."""
    help_line = "train the TTS LM on a token store (resumable; accelerate for CPU DDP/GPU)"
    p = add_train_verb(sub, "train-tts", help_line, _train)
    p.add_argument(
        "--config", help="model YAML (e.g. configs/tts/small.yaml); not with --init-from, optional with --resume"
    )
    p.add_argument("--train-config", default=None, help="training YAML (default: configs/tts/train_cpu.yaml)")
    p.add_argument("--store", required=True, help="training token store (ucodec tokenize)")
    p.add_argument("--dev-store", default=None, help="dev token store for the periodic dev loss and samples")
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--codec", default=None, help="codec release of the store (sets train.codec; default: 'default')")
    p.add_argument(
        "--init-from",
        default=None,
        help="fine-tune this TTS release (its model config, frontend and, unless --codec, its codec)",
    )
    p.add_argument(
        "--word-times",
        nargs="+",
        default=None,
        metavar="JSONL",
        help="word times of the train and dev utterances (ucodec align) for a model with model.aligned_text",
    )
    p.add_argument("--init-global", default=None, help="warm-start the global model from a local Llama/Qwen directory")
    add_run_arguments(p)
    exp_help = "TTS experiment directory (config.yaml, frontend.json, checkpoints/)"
    out_help = "release directory to write (usable by TTS.from_pretrained and --model)"
    helps = (exp_help, out_help, "store the LM weights in float16 (half the size)")
    p = add_export_verb(sub, "export-tts", "write a TTS release from a TTS experiment", _export, helps)
    p.add_argument(
        "--codec",
        default=None,
        help="bundle this codec release instead of the run's: one that makes the same tokens (e.g. a decoder-only "
        "fine-tune of it)",
    )
    p.add_argument(
        "--decode-levels",
        type=int,
        default=None,
        help="record in the release that the codec decodes only the first N generated levels (0 = all; default: "
        "the run's model.decode_levels)",
    )
    p.add_argument(
        "--voice",
        default=None,
        metavar="WAV",
        help="the release's own voice: a recording whose middle few seconds a voice-conditioned codec speaks in "
        "when no prompt is given (its codes are stored in config.json)",
    )


def _train(args: argparse.Namespace) -> int:
    """Train the global-local TTS LM on a token store made with train.codec. Checkpoints go to
    OUT/checkpoints every train.checkpoint_every steps; Ctrl-C or SIGTERM saves one and exits. Continue with
    --resume (the stored OUT/config.yaml is used; --set may still change train.* values).

    New model:   ucodec train-tts --config configs/tts/small.yaml --store TOKENS --dev-store DEV --out EXP
    Fine-tune:   ucodec train-tts --init-from RELEASE --train-config configs/tts/finetune_cpu.yaml --store T --out EXP
    Warm start on a new codec (store made with it):
                 ucodec train-tts --init-from RELEASE --codec NEW_CODEC --store T --out EXP
    CPU DDP:     accelerate launch --multi_gpu --num_processes 2 -m ucodec train-tts ...
    (accelerate's --cpu flag with --num_processes silently runs ONE process; do not use it.)"""
    from tts.train import TTSTrainer
    from tts.train_config import DEFAULT_TRAIN_CONFIG, TTSExperimentConfig, load_tts_experiment

    overrides = list(args.set)
    if args.word_times:
        missing = [f for f in args.word_times if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: no such word-times file (make one with `ucodec align`)")
        overrides.append("train.word_times=" + json.dumps([str(Path(f).resolve()) for f in args.word_times]))
    for flag, key in ((args.codec, "codec"), (args.init_global, "init_global")):
        if flag is not None:
            path = Path(flag).expanduser()
            overrides.append(f"train.{key}={path.resolve() if path.is_dir() else flag}")

    def new_config() -> TTSExperimentConfig:
        train_cfg = args.train_config or (str(DEFAULT_TRAIN_CONFIG) if DEFAULT_TRAIN_CONFIG.is_file() else None)
        return load_tts_experiment(args.config, train_cfg, overrides, init_from=args.init_from)

    kind = TrainerKind(
        config_cls=TTSExperimentConfig,
        export_verb="export-tts",
        no_config="give --config (a new model) or --init-from (fine-tuning), or --resume a stored run",
        config_required=True,
    )

    def build(cfg: TTSExperimentConfig) -> TTSTrainer:
        return TTSTrainer(cfg, args.store, args.dev_store, args.out, cpu=args.cpu)

    return run_training(args, kind, new_config if args.config or args.init_from else None, overrides, build)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_experiment` wrote."""

    release: Path  # the release directory
    step: int  # the checkpoint's step
    num_parameters: int  # LM parameters


def export_experiment(
    exp_dir: str | Path,
    out_dir: str | Path,
    step: int | None = None,
    fp16: bool = False,
    slim_state: str | Path | None = None,
    codec: str | Path | None = None,
    decode_levels: int | None = None,
    voice: str | Path | None = None,
):
    """Write the release of a TTS experiment's checkpoint (LM weights, config, frontend, bundled codec).

    ``codec``: bundle this codec release instead of ``train.codec``; it must make the same tokens
    (:meth:`codec.model.Codec.tokens_id`), as a fine-tune of the decoder alone does. ``decode_levels``: the
    release's ``decode_levels`` instead of the run's. ``voice``: a recording whose codes become the release's own
    voice (:mod:`tts.voice`), cut like a prompt without transcript.

    ``slim_state``: also write the checkpoint there without the AdamW moments and with fp16 weights (about a
    quarter of the size), for carrying a run between machines; ``--resume`` accepts it (the moments restart).

    Raises:
        FileNotFoundError: not a TTS experiment, no (such) checkpoint, or the codec release is gone.
        ValueError: the codec at ``train.codec`` is not the one the run was trained with, or ``codec`` makes
            other tokens.
    """
    import torch

    from codec.model import ALIASES as CODEC_ALIASES
    from codec.model import Codec
    from codec.release import resolve_release
    from tts.frontend import TextFrontend
    from tts.model import TTSModel
    from tts.pipeline import TTS
    from tts.train_config import TTSExperimentConfig

    exp = Path(exp_dir)
    cfg, state = load_run(exp, TTSExperimentConfig, step)
    run_codec = Codec.from_pretrained(cfg.train.codec)
    tokens_id = run_codec.tokens_id()
    if state.get("codec_release_id") != run_codec.release_id and state.get("codec_tokens_id") != tokens_id:
        raise ValueError(
            f"{exp} was trained with codec {state.get('codec_release_id')}, but {cfg.train.codec} is now "
            f"{run_codec.release_id}; the release must bundle the codec its tokens came from"
        )
    bundle = run_codec if codec is None else Codec.from_pretrained(codec)
    if codec is not None and bundle.tokens_id() != tokens_id:
        raise ValueError(
            f"{codec} makes other tokens than {cfg.train.codec}, whose tokens {exp} was trained on (their encoders "
            "or quantizers differ); only a codec that changed its decoder can be bundled"
        )
    model_cfg = cfg.model if decode_levels is None else dataclasses.replace(cfg.model, decode_levels=decode_levels)
    model = TTSModel(model_cfg)
    model.load_state_dict(state["model"])
    frontend = TextFrontend.load(exp, cfg.model.frontend)
    codec_dir = resolve_release(cfg.train.codec if codec is None else codec, CODEC_ALIASES)
    tts = TTS(model, frontend, bundle, codec_dir=codec_dir)
    if voice is not None:
        tts.voice, _ = tts.prepare_prompt(Path(voice), None)
        tts.voice_source = Path(voice).name
    out = tts.save_pretrained(out_dir, dtype=torch.float16 if fp16 else None)
    write_slim(state, slim_state, optimizers=("opt",), weights=("model",))
    return ExportResult(out, int(state["step"]), model.num_parameters()["total"])


def _export(args: argparse.Namespace) -> int:
    """Load a TTS experiment's checkpoint and write a complete release: config.json, model.safetensors,
    frontend.json and the bundled codec/ (copied byte for byte, so its release id is kept). --codec bundles a
    codec that makes the same tokens as the run's instead (a decoder-only fine-tune of it)."""
    res = export_experiment(
        args.exp_dir, args.out_dir, args.step, args.fp16, args.slim_state, args.codec, args.decode_levels, args.voice
    )
    return finish_export(args.exp_dir, res.release, res.step, res.num_parameters, args.slim_state)
