"""``ucodec convert-original``: the authors' ``generator-*.pt`` → a ucodec release directory.

Example::

    ucodec convert-original generator-650000.pt models/ucodec-original --config config.json5 --fp16
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``convert-original`` subcommand to the ``ucodec`` parser."""
    p = sub.add_parser(
        "convert-original",
        help="convert the authors' generator checkpoint into a ucodec release",
        description=_convert.__doc__,
    )
    p.add_argument("checkpoint", metavar="CKPT", help="the authors' generator checkpoint (generator-*.pt)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="release directory to write")
    p.add_argument(
        "--config",
        metavar="CFG",
        default=None,
        help="their json5 config (or a ucodec YAML/JSON config); without it the architecture is inferred from shapes",
    )
    p.add_argument(
        "--num-heads",
        type=int,
        default=None,
        help="attention heads (not stored in the weights; default: the config's value, else 8 with a warning)",
    )
    p.add_argument("--fp16", action="store_true", help="store the weights in float16 (half the size)")
    p.add_argument("--overwrite", action="store_true", help="replace a release already in OUT_DIR")
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    """Convert the authors' generator checkpoint (+ optional json5 config) into a release directory: tensors are
    renamed onto our seanet codec, weight norm is folded, and every tensor must be used."""
    import warnings

    import torch

    from codec.original import convert_original
    from codec.original_config import OriginalConfigWarning

    if args.num_heads is not None and args.num_heads < 1:
        raise ValueError(f"--num-heads must be a positive integer, got {args.num_heads}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OriginalConfigWarning)  # reported below from the result, as one line each
        result = convert_original(
            args.checkpoint,
            args.out_dir,
            config=args.config,
            num_heads=args.num_heads,
            dtype=torch.float16 if args.fp16 else None,
            overwrite=args.overwrite,
        )
    for key, value in result.assumed.items():
        hint = " (set with --num-heads)" if key == "transformer.num_heads" else ""
        print(f"warning: {key}={value} assumed, not stored in the checkpoint{hint}", file=sys.stderr)
    if result.assumed:
        print("warning: pass the authors' json5 config with --config to use their exact values", file=sys.stderr)
    cfg = result.config
    print(
        f"wrote {result.path}: {result.num_tensors} tensors ({result.num_folded} weight-norm pairs folded); "
        f"{cfg.num_codebooks}x{cfg.codebook_size} RVQ at {cfg.frame_rate:g} Hz, hop {cfg.hop_length}, "
        f"{cfg.bitrate:g} bps"
    )
    return 0
