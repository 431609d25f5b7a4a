"""``ucodec encode | decode | info``: the codec from the command line.

Code files: ``.safetensors`` holds ``codes [Q, F]`` (int16) plus metadata (codec release id, sample rate, Q); with
``--format hy`` the flat int16 layout of the authors' tokenizer is written as ``.npy`` or ``.pt`` (a plain tensor,
readable with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

CODE_SUFFIXES = (".safetensors", ".npy", ".pt")
DECODE_CHUNK_FRAMES = 300  # frames decoded at a time (60 s at 5 Hz)


def _add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="codec release directory or shipped name (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="encode an audio file into codec tokens", description=_encode.__doc__)
    p.add_argument("input", help="audio file (wav/flac/ogg/mp3, any rate; resampled)")
    p.add_argument("output", help="codes file: .safetensors (default layout) or .npy/.pt (with --format hy)")
    _add_model_arg(p)
    p.add_argument("--format", choices=["codes", "hy"], default="codes", help="codes: [Q, F] grid; hy: flat layout")
    p.add_argument("--num-codebooks", type=int, default=None, help="keep only the first N RVQ layers")
    p.set_defaults(func=_encode)

    p = sub.add_parser("decode", help="decode codec tokens back into audio", description=_decode.__doc__)
    p.add_argument("input", help="codes file written by `ucodec encode` (.safetensors, .npy, .pt)")
    p.add_argument("output", help="audio file (.wav, .flac, .ogg)")
    _add_model_arg(p)
    p.set_defaults(func=_decode)

    p = sub.add_parser("info", help="describe a codec release or config", description=_info.__doc__)
    p.add_argument("model", nargs="?", default="default", help="release directory, shipped name, or config YAML")
    p.set_defaults(func=_info)


def _load_codec(args: argparse.Namespace):
    from codec.model import Codec

    return Codec.from_pretrained(args.model, device=args.device)


def _encode(args: argparse.Namespace) -> int:
    """Encode an audio file into 5 Hz RVQ codes (streamed in chunks: memory stays bounded for any length)."""
    import numpy as np
    import torch

    from codec.atomic import atomic_path, safetensors_save_atomic
    from codec.chunked_encode import encode_file
    from codec.compat.hy_tokenizer import flat_dtype, flatten_codes

    out = Path(args.output)
    if out.suffix not in CODE_SUFFIXES:
        raise ValueError(f"{out}: unsupported codes file type {out.suffix!r}; use one of {list(CODE_SUFFIXES)}")
    if args.format == "codes" and out.suffix != ".safetensors":
        raise ValueError(f"{out}: the default layout is written as .safetensors; use --format hy for .npy/.pt")
    codec = _load_codec(args)
    n = args.num_codebooks
    if n is not None and not 1 <= n <= codec.num_codebooks:
        raise ValueError(f"--num-codebooks: num_codebooks must be between 1 and {codec.num_codebooks}, got {n}")
    # Streamed in chunks: an hour of audio is encoded in bounded memory, with the codes of a whole-file encode.
    # RVQ layers are a prefix, so keeping the first n rows equals encoding with n layers.
    encoded = encode_file(codec, args.input)
    codes = encoded.codes[:n]  # [Q, F]
    if args.format == "hy":
        flat = flatten_codes(codes, codec.codebook_size)
        with atomic_path(out) as tmp:
            if out.suffix == ".npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, flat.numpy())
            else:
                torch.save(flat, tmp)
    else:
        meta = {
            "codec": codec.release_id,
            "sample_rate": str(codec.sample_rate),
            "num_codebooks": str(codes.shape[0]),
            "codebook_size": str(codec.codebook_size),
        }
        safetensors_save_atomic({"codes": codes.to(flat_dtype(1, codec.codebook_size))}, out, metadata=meta)
    seconds = encoded.num_samples / codec.sample_rate
    print(f"{args.input}: {seconds:.2f} s -> {codes.shape[1]} frames x {codes.shape[0]} codebooks -> {out}")
    return 0


def read_codes(path: str | Path, num_codebooks: int, codebook_size: int):
    """Read a codes file into ``[Q, F]`` long, whatever layout ``ucodec encode`` wrote.

    Raises:
        FileNotFoundError / ValueError: missing, unreadable (including pickles carrying code), or malformed.
    """
    import numpy as np
    import torch

    from codec.compat.hy_tokenizer import unflatten_codes

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"codes file not found: {p}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(p))
            if "codes" not in data:
                raise ValueError(f"{p}: no 'codes' tensor inside")
            codes = data["codes"]
            if codes.dim() != 2:
                raise ValueError(f"{p}: codes must be [Q, F], got {tuple(codes.shape)}")
            if codes.is_floating_point() or codes.dtype == torch.bool:  # .long() would silently truncate floats
                raise ValueError(f"{p}: codes must be integers, got dtype {codes.dtype}")
            return codes.long()
        if p.suffix == ".npy":
            try:
                flat = torch.from_numpy(np.load(p, allow_pickle=False))
            except ValueError as exc:  # numpy's own ValueErrors (object arrays, bad headers) do not name the file
                raise ValueError(f"{p}: unreadable codes file ({str(exc).splitlines()[0][:200]})") from None
        elif p.suffix == ".pt":
            flat = torch.load(p, weights_only=True, map_location="cpu")
            if not isinstance(flat, torch.Tensor):
                raise ValueError(f"{p}: expected a tensor, found {type(flat).__name__}")
        else:
            raise ValueError(f"{p}: unsupported codes file type {p.suffix!r}; use one of {list(CODE_SUFFIXES)}")
    except ValueError:
        raise
    except Exception as exc:  # numpy/torch/safetensors each raise their own types for corrupt files
        raise ValueError(f"{p}: unreadable codes file ({str(exc).splitlines()[0][:200]})") from None
    return unflatten_codes(flat, num_codebooks, codebook_size)


def _decode(args: argparse.Namespace) -> int:
    """Decode codes (either layout) into a waveform at the codec's rate (in chunks: bounded memory)."""
    from codec.audio import SAVE_FORMATS, save_audio_chunks

    out = Path(args.output)
    if out.suffix.lower() not in SAVE_FORMATS:
        raise ValueError(f"{out}: unsupported output format {out.suffix!r}; use one of {sorted(SAVE_FORMATS)}")
    codec = _load_codec(args)
    codes = read_codes(args.input, codec.num_codebooks, codec.codebook_size)
    # Decoded and written DECODE_CHUNK_FRAMES at a time by the streaming decoder (equal to a whole decode), so an
    # hour of codes needs the memory of one minute.
    chunks = codec.decode_stream(codes[None].to(args.device), chunk_frames=DECODE_CHUNK_FRAMES)
    save_audio_chunks(out, (chunk[0].cpu() for chunk in chunks), codec.sample_rate)
    seconds = codes.shape[1] * codec.hop_length / codec.sample_rate
    print(f"{args.input}: {codes.shape[1]} frames x {codes.shape[0]} codebooks -> {seconds:.2f} s -> {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    """Print the architecture, parameter count, rates and bitrate of a release or a config file."""
    from codec.config import CodecConfig
    from codec.model import Codec

    src = Path(args.model)
    if src.suffix in (".yaml", ".yml", ".json") and src.is_file():
        model = Codec(CodecConfig.load(src))
        where = str(src)
    else:
        model = Codec.from_pretrained(args.model)
        where = f"{args.model} (release {model.release_id})"
    c = model.config
    print(f"model           {c.name}  [{where}]")
    print(f"architecture    encoder={c.encoder} decoder={c.decoder} dimension={c.dimension} norm={c.norm}")
    print(f"transformers    {c.transformer.num_layers} layers x d{c.transformer.d_model} (each side)")
    print(f"parameters      {model.num_parameters():,}")
    print(f"sample rate     {c.sample_rate} Hz, hop {c.hop_length} samples, frame rate {c.frame_rate:g} Hz")
    print(f"quantizer       {c.num_codebooks} x {c.codebook_size} codes (codebook_dim {c.quantizer.codebook_dim})")
    print(f"bitrate         {c.bitrate:g} bps, {c.tokens_per_second:g} tokens/s")
    if c.speaker_hidden:
        print("voice           the decoder reads a voice vector pooled from reference codes (a prompt's)")
    return 0
