"""``ucodec content-store | content-times | train-phone-model | train-phone-stack | align``: content-head labels,
alignments and the phone-input codec's pretrained first stack."""

from __future__ import annotations

import argparse
import sys

SHOW_FAILURES = 5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "content-store",
        help="phonemes and Whisper teacher features of a manifest, for content-supervised codec training",
        description=_store.__doc__,
    )
    p.add_argument("manifest", help="JSONL manifest (id, audio, text, ...)")
    p.add_argument("out", help="store directory (an unfinished store there is resumed)")
    p.add_argument("--no-teacher", action="store_true", help="phonemes only (no Whisper features; no [eval] extra)")
    p.add_argument("--workers", type=int, default=1, help="teacher processes, one core each (default 1)")
    p.add_argument("--shard-size", type=int, default=256, help="utterances per teacher shard (default 256)")
    p.add_argument("--frame-rate", type=float, default=5.0, help="codec frames per second (default 5)")
    p.add_argument("--language", default="en-us", help="espeak-ng voice for the phonemes (default en-us)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_store)

    p = sub.add_parser(
        "content-times",
        help="timed phonemes of a content store's utterances from word alignments (the frame classifier's labels)",
        description=_times.__doc__,
    )
    p.add_argument("store", help="content store directory (ucodec content-store)")
    p.add_argument("alignments", nargs="+", help="word-alignment JSONL files (ucodec align [--whisper])")
    p.add_argument("--language", default="en-us", help="espeak-ng voice for the phonemes (default en-us)")
    p.add_argument(
        "--min-matched",
        type=float,
        default=0.0,
        help="skip Whisper alignments that recognised less than this fraction of their words (default 0: keep all)",
    )
    p.set_defaults(func=_times)

    p = sub.add_parser(
        "train-phone-model",
        help="train the small mel phoneme recognizer that ucodec align --phone-model uses (CTC, ~30 CPU minutes)",
        description=_train_phone_model.__doc__,
    )
    p.add_argument("manifest", help="JSONL manifest with transcripts")
    p.add_argument("store", help="its content store (ucodec content-store; only the phonemes are read)")
    p.add_argument("out", help="output directory (phone_model.json + phone_model.safetensors)")
    p.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    p.add_argument("--batch-seconds", type=float, default=60.0, help="audio per batch in seconds (default 60)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0 = torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train_phone_model)

    p = sub.add_parser(
        "train-phone-stack",
        help="pretrain a phone-input codec's first quantizer stack for recognition (for train-codec --init-stack)",
        description=_train_phone_stack.__doc__,
    )
    p.add_argument("manifest", help="JSONL manifest with transcripts (a random subset is used, see --utterances)")
    p.add_argument("out", help="output file (.safetensors): the projection and first-stack levels, codec names")
    p.add_argument("--config", required=True, help="the codec's model config YAML (e.g. configs/codec/small.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    p.add_argument("--phone-model", default="models/phone-aligner", help="the codec's recognizer (train.phone_model)")
    p.add_argument("--dev", default=None, help="manifest scored by greedy PER at the end (optional)")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    p.add_argument("--utterances", type=int, default=2000, help="random training utterances (default 2000; 0 = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and the training (default 0)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0 = torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_train_phone_stack)

    p = sub.add_parser(
        "align",
        help="word and phoneme times of transcribed speech (JSONL): the codec's CTC head, a phone model or Whisper",
        description=_align.__doc__,
    )
    p.add_argument("manifest", help="JSONL manifest with transcripts")
    p.add_argument("out", help="output JSONL: one line per utterance with words[] and phones[] (start/end in s)")
    p.add_argument("--model", default="default", help="codec release directory or shipped name (default: default)")
    p.add_argument(
        "--phone-model",
        metavar="DIR",
        help="align with a mel phone model (ucodec train-phone-model) instead of the codec: phones to 20 ms",
    )
    p.add_argument("--language", default="en-us", help="espeak-ng voice for the phonemes (default en-us)")
    p.add_argument(
        "--whisper",
        action="store_true",
        help="word times from Whisper tiny.en's word timestamps matched onto the transcript (no codec, no phones; "
        "the [eval] extra); each line also says which fraction of its words Whisper recognised (matched)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads (Whisper's with --whisper, else torch's; default 0 = the library's choice). Give 1 to "
        "each of several align processes run side by side on parts of a manifest",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_align)


def _store(args: argparse.Namespace) -> int:
    """Compute once what content supervision needs: phoneme ids of every transcript (espeak-ng) and, unless
    --no-teacher, the Whisper tiny.en encoder's features average-pooled to the codec's frame rate. Run the same
    command again to resume an interrupted build."""
    from codec.content.store import build_content_store

    if args.frame_rate <= 0 or 16000 % args.frame_rate:
        raise ValueError(f"--frame-rate must divide 16000 samples a second, got {args.frame_rate}")
    info = build_content_store(
        args.manifest,
        args.out,
        teacher=not args.no_teacher,
        shard_size=args.shard_size,
        workers=args.workers,
        hop_length=int(16000 / args.frame_rate),
        language=args.language,
        progress=not args.no_progress,
    )
    what = f"teacher {info.teacher} ({info.teacher_dim}-d)" if info.teacher else "no teacher"
    print(f"content store {args.out}: {info.num_utterances} utterances, phonemes, {what}")
    return 0


def _times(args: argparse.Namespace) -> int:
    """Write STORE/phone_times.jsonl (replaced atomically), the per-sub-frame labels of the codec's linear frame
    classifier (model.content.frame_labels, train.loss_weights.phones), from alignments: a CTC aligner's own phones
    (ucodec align --phone-model; best), or each word's espeak-ng phonemes spread evenly over its span (word-only
    alignments such as ucodec align --whisper). Utterances the store does not hold are skipped."""
    from codec.content.phone_times import write_phone_times

    if not 0.0 <= args.min_matched <= 1.0:
        raise ValueError(f"--min-matched must be in [0, 1], got {args.min_matched}")
    done, skipped = write_phone_times(args.store, args.alignments, args.language, args.min_matched)
    print(f"phone times of {done} utterances -> {args.store}" + (f" ({skipped} skipped)" if skipped else ""))
    return 0


def _torch_threads(threads: int) -> None:
    """Apply ``--threads`` to torch (0 = leave torch's choice)."""
    if threads < 0:
        raise ValueError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def _train_phone_model(args: argparse.Namespace) -> int:
    """Train a small CTC phoneme recognizer on log-mels (50 Hz emissions) from a manifest and the phonemes of its
    content store, for forced alignment (ucodec align --phone-model OUT). A slice of the manifest is held out and its
    greedy phoneme error rate printed at each evaluation, after which the model is saved (atomically)."""
    from codec.content.phone_training import train_phone_model

    _torch_threads(args.threads)
    info = train_phone_model(
        args.manifest,
        args.store,
        args.out,
        steps=args.steps,
        batch_seconds=args.batch_seconds,
        lr=args.lr,
        eval_every=max(1, min(500, args.steps)),
        progress=not args.no_progress,
    )
    print(f"phone model -> {args.out}: dev PER {info['dev_per']:.1%} after {info['steps']} steps")
    return 0


def _train_phone_stack(args: argparse.Namespace) -> int:
    """Train the first quantizer stack of a phone-input codec alone: the codec's projection of its frozen
    recognizer's output and its first quantizer.split_levels levels, read by a small CTC head on whole utterances.
    Such a stack keeps far more of the phonemes than the codec's own training gives those levels
    (docs/codec_training.md). Start a codec from it with ucodec train-codec --init-stack OUT, and hold it with
    train.frozen."""
    from codec.config import CodecConfig
    from codec.content.first_stack import StackTrainConfig, pretrain_first_stack

    _torch_threads(args.threads)
    if not str(args.out).endswith(".safetensors"):
        raise ValueError(f"{args.out}: the stack is written as safetensors; name the file *.safetensors")
    codec = CodecConfig.load(args.config, list(args.set))
    cfg = StackTrainConfig(steps=args.steps, utterances=args.utterances, seed=args.seed)
    meta = pretrain_first_stack(
        codec, args.manifest, args.out, args.phone_model, cfg, dev=args.dev, progress=not args.no_progress
    )
    per = f", dev PER {meta['dev_per']:.1f} %" if meta["dev_per"] is not None else ""
    what = f"{meta['levels']} levels, {meta['utterances']} utterances, {cfg.steps} steps"
    print(f"first stack ({what}) -> {args.out}{per}")
    return 0


def _align(args: argparse.Namespace) -> int:
    """Forced-align each transcript's phonemes to the posteriors of a CTC model: the codec's phoneme head (needs a codec
    trained with content supervision) or, with --phone-model, the mel phone model (phones to 20 ms); or with
    --whisper time its words by Whisper's word timestamps. Utterances that cannot be aligned are listed and
    skipped."""
    from codec.content.aligner import align_manifest

    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    if args.whisper and args.phone_model:
        raise ValueError("--whisper and --phone-model are two different aligners; give one")
    if args.whisper:
        from codec.content.word_times import align_manifest_whisper

        done, failures = align_manifest_whisper(
            args.manifest, args.out, threads=args.threads, progress=not args.no_progress
        )
    else:
        _torch_threads(args.threads)
        if args.phone_model:
            from codec.content.phone_model import load_phone_model

            model = load_phone_model(args.phone_model)
        else:
            from codec.model import Codec

            model = Codec.from_pretrained(args.model)
        done, failures = align_manifest(model, args.manifest, args.out, args.language, progress=not args.no_progress)
    for line in failures[:SHOW_FAILURES]:
        print(f"  skipped {line}", file=sys.stderr)
    if len(failures) > SHOW_FAILURES:
        print(f"  ... {len(failures) - SHOW_FAILURES} more", file=sys.stderr)
    print(f"aligned {done} utterances -> {args.out}" + (f" ({len(failures)} skipped)" if failures else ""))
    if not done:
        raise ValueError(f"no utterance could be aligned ({len(failures)} skipped)")
    return 0
