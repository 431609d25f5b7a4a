"""Compatibility with the authors' released tokenizer API (``HY_Tokenizer``) and its flat token layout.

Flat layout: a 1-D tensor, frame-major — ``[f0q0, f0q1, ..., f0q(Q-1), f1q0, ...]`` — where the value of layer
``q`` is offset into its own range: ``q * codebook_size + code``. dtype is int16 when every value fits
(``Q * codebook_size <= 32767``; the 32x256 model uses 0..8191), int32 otherwise.

Differences from the original, on purpose: ``detokenize`` never modifies its argument, and malformed tokens (wrong
length, negative, out of range, a value in another layer's range) raise ``ValueError`` instead of decoding noise.
"""

from __future__ import annotations

import os

import torch

from codec.audio import load_audio
from codec.model import Codec


def flat_dtype(num_codebooks: int, codebook_size: int) -> torch.dtype:
    """int16 when every flat value fits, else int32."""
    return torch.int16 if num_codebooks * codebook_size <= 32767 else torch.int32


def flatten_codes(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """codes ``[Q, F]`` → flat frame-major ``[F * Q]`` with per-layer offsets ``q * codebook_size``."""
    if codes.dim() != 2:
        raise ValueError(f"expected codes of shape [Q, F], got {tuple(codes.shape)}")
    q = codes.shape[0]
    offsets = torch.arange(q, device=codes.device)[:, None] * codebook_size
    flat = (codes.long() + offsets).t().reshape(-1)  # [F, Q] row-major = frame-major
    return flat.to(flat_dtype(q, codebook_size))


def unflatten_codes(flat: torch.Tensor, num_codebooks: int, codebook_size: int) -> torch.Tensor:
    """Flat frame-major tokens ``[F * Q]`` → codes ``[Q, F]`` (long). The input is not modified.

    Raises:
        ValueError: not 1-D integer, length not a multiple of ``num_codebooks``, or a value outside its layer's
            range ``[q * codebook_size, (q + 1) * codebook_size)``.
    """
    if not isinstance(flat, torch.Tensor) or flat.dim() != 1:
        shape = tuple(flat.shape) if isinstance(flat, torch.Tensor) else type(flat).__name__
        raise ValueError(f"expected a 1-D token tensor, got {shape}")
    if flat.is_floating_point() or flat.is_complex() or flat.dtype == torch.bool:
        raise ValueError(f"tokens must be integers, got dtype {flat.dtype}")
    if flat.numel() == 0 or flat.numel() % num_codebooks:
        raise ValueError(f"token count {flat.numel()} is not a positive multiple of num_codebooks={num_codebooks}")
    grid = flat.long().reshape(-1, num_codebooks).t()  # [Q, F], a new tensor
    offsets = torch.arange(num_codebooks, device=grid.device)[:, None] * codebook_size
    codes = grid - offsets
    bad = (codes < 0) | (codes >= codebook_size)
    if bad.any():
        pos = int(bad.t().reshape(-1).nonzero()[0])
        q = pos % num_codebooks
        raise ValueError(
            f"token {pos} has value {int(flat[pos])}; layer {q} tokens must be in "
            f"[{q * codebook_size}, {(q + 1) * codebook_size - 1}] (valid range 0..{num_codebooks * codebook_size - 1})"
        )
    return codes


class HY_Tokenizer:  # noqa: N801 - the authors' public name
    """The released tokenizer API on top of :class:`Codec`.

    Args:
        model: a release directory or shipped release name (default: the shipped small codec), or a ``Codec``.
        device: torch device for the model.

    Example:
        >>> tok = HY_Tokenizer(model="default")
        >>> tokens = tok.tokenize("speech.wav")      # int16 [F * 32]
        >>> wav = tok.detokenize(tokens)               # float [1, F * 3200]
    """

    def __init__(self, model: str | os.PathLike | Codec = "default", device: str | torch.device = "cpu") -> None:
        self.codec = model if isinstance(model, Codec) else Codec.from_pretrained(model, device=device)
        self.codec = self.codec.to(device).eval()
        self.device = torch.device(device)

    @property
    def num_codebooks(self) -> int:
        return self.codec.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.codec.codebook_size

    @property
    def mask_id(self) -> int:
        """First id after the codec's vocabulary (8192 for 32x256), used by LMs as a mask/pad token."""
        return self.num_codebooks * self.codebook_size

    def _as_wav(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 1:
            wav = wav[None, None]
        elif wav.dim() == 2 and wav.shape[0] == 1:
            wav = wav[None]
        elif not (wav.dim() == 3 and wav.shape[:2] == (1, 1)):
            raise ValueError(f"expected a mono waveform [T], [1, T] or [1, 1, T], got {tuple(wav.shape)}")
        if wav.shape[-1] == 0:
            raise ValueError("cannot tokenize an empty waveform")
        if not torch.isfinite(wav).all():
            raise ValueError("waveform contains NaN or Inf samples")
        return wav.float().to(self.device)

    def tokenize(self, audio: str | os.PathLike | torch.Tensor) -> torch.Tensor:
        """Audio path (any rate, resampled) or waveform tensor at the model rate → flat tokens ``[F * Q]``.

        A 1-D *integer* tensor is taken to be tokens already and returned unchanged (as the original does).
        """
        if isinstance(audio, torch.Tensor):
            if audio.dim() == 1 and not audio.is_floating_point():
                return audio
            wav = self._as_wav(audio)
        else:
            wav = self._as_wav(load_audio(audio, self.codec.sample_rate))
        codes = self.codec.encode(wav)[0]  # [Q, F]
        return flatten_codes(codes, self.codebook_size).cpu()

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """Flat tokens ``[F * Q]`` → waveform ``[1, F * hop]`` float32 (the argument is left untouched)."""
        codes = unflatten_codes(tokens, self.num_codebooks, self.codebook_size)
        return self.codec.decode(codes[None].to(self.device))[0].cpu()
