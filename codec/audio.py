"""Audio I/O: load anything soundfile reads as mono float32 at the model rate; save atomically.

Every entry point of the project (CLI, Python API, demo, server, data preparation) loads audio through
:func:`load_audio`, so bad input is reported the same way everywhere: a ``FileNotFoundError`` or ``ValueError`` that
names the path and the problem.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from codec.atomic import atomic_path

MAX_CHANNELS = 8  # 7.1 is the widest layout we downmix; more channels is not a speech recording
SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


class TruncatedAudioWarning(UserWarning):
    """An audio file holds fewer samples than its header promises (a cut copy or download); what is there is used."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file (read without decoding the samples)."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of ``path``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not audio that soundfile can read, or has an unsupported channel layout.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio file not found: {p}")
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError depending on the damage
        raise ValueError(f"{p}: not a readable audio file ({_short(exc)})") from None
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise ValueError(f"{p}: unsupported channel layout ({info.channels} channels; 1 to {MAX_CHANNELS} allowed)")
    return AudioInfo(sample_rate=int(info.samplerate), channels=int(info.channels), frames=int(info.frames))


def wav_frames_promised(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(frames the header promises, frames the file holds)`` of a RIFF/WAVE file, from its ``fmt `` and ``data``
    chunk headers; None for another format or a header without a usable size (streaming writers leave 0 or
    0xFFFFFFFF there). A frame is one sample of every channel."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(fh.fileno()).st_size
            block_align = 0
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"data":
                    if block_align == 0 or length in (0, 0xFFFFFFFF):
                        return None
                    held = max(0, size - fh.tell())
                    return length // block_align, min(held, length) // block_align
                if name == b"fmt ":
                    body = fh.read(length)
                    if len(body) < 14:
                        return None
                    block_align = struct.unpack("<H", body[12:14])[0]
                    fh.seek(length % 2, os.SEEK_CUR)  # chunks are padded to an even size
                else:
                    fh.seek(length + length % 2, os.SEEK_CUR)
    except OSError:
        return None


def _warn_if_truncated(path: str | os.PathLike) -> None:
    """Warn (:class:`TruncatedAudioWarning`) when a WAV file holds fewer samples than its header promises."""
    found = wav_frames_promised(path)
    if found is not None and found[1] < found[0]:
        promised, held = found
        warnings.warn(
            f"{path}: truncated audio: the header promises {promised} samples, the file holds {held}; "
            f"using the {held} that are there",
            TruncatedAudioWarning,
            stacklevel=3,
        )


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _to_mono(data: np.ndarray, where: str) -> torch.Tensor:
    """``data [T, C]`` float → ``[1, T]`` float32 mono, with the finite-value check."""
    if not np.isfinite(data).all():
        raise ValueError(f"{where}: audio contains NaN or Inf samples")
    return torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))[None]


def resample(wav: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``wav [..., T]`` from ``orig_rate`` to ``new_rate`` (band-limited sinc, torchaudio)."""
    if orig_rate == new_rate:
        return wav
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    return AF.resample(wav, orig_rate, new_rate)


def load_audio(path: str | os.PathLike, sample_rate: int = 16000, max_seconds: float | None = None) -> torch.Tensor:
    """Load ``path`` as mono float32 ``[1, T]`` in [-1, 1] at ``sample_rate``.

    Args:
        path: wav/flac/ogg/mp3 (whatever the installed libsndfile reads), any rate, 1 to 8 channels (downmixed).
        sample_rate: target rate; the file is resampled to it.
        max_seconds: refuse files longer than this (guards memory in servers); ``None`` means no limit.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not audio, empty, NaN/Inf samples, unsupported channel layout, or longer than ``max_seconds``.

    Warns:
        TruncatedAudioWarning: a WAV file holds fewer samples than its header promises; the samples that are there
            are returned (the warning names both counts).
    """
    info = audio_info(path)
    if max_seconds is not None and info.duration > max_seconds:
        raise ValueError(f"{path}: audio is {info.duration:.1f} s long; the limit here is {max_seconds:g} s")
    _warn_if_truncated(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise ValueError(f"{path}: audio data is unreadable or truncated ({_short(exc)})") from None
    if data.shape[0] == 0:
        raise ValueError(f"{path}: audio file is empty (0 samples)")
    return resample(_to_mono(data, str(path)), int(rate), sample_rate)


def iter_audio_chunks(
    path: str | os.PathLike, sample_rate: int = 16000, chunk_seconds: float = 60.0
) -> Iterator[torch.Tensor]:
    """Yield ``[1, t]`` mono chunks of a long file with bounded memory (at most one chunk decoded at a time).

    Resampling is done per chunk with 0.1 s of context on each side that is trimmed afterwards, so chunk borders
    are inaudible; concatenating the chunks gives the same length as :func:`load_audio` (to within one sample).

    Raises:
        Same as :func:`load_audio`.
    """
    info = audio_info(path)
    if info.frames == 0:
        raise ValueError(f"{path}: audio file is empty (0 samples)")
    _warn_if_truncated(path)
    block = max(1, int(chunk_seconds * info.sample_rate))
    ctx = int(0.1 * info.sample_rate) if info.sample_rate != sample_rate else 0
    ratio = sample_rate / info.sample_rate
    emitted = 0
    try:
        with sf.SoundFile(str(path)) as fh:
            for start in range(0, info.frames, block):
                lo = max(0, start - ctx)
                fh.seek(lo)
                data = fh.read(min(info.frames, start + block + ctx) - lo, dtype="float32", always_2d=True)
                wav = resample(_to_mono(data, str(path)), info.sample_rate, sample_rate)
                # Trim the context in output samples; the end index is cumulative so rounding never drifts.
                head = round((start - lo) * ratio)
                end_total = round(min(info.frames, start + block) * ratio)
                chunk = wav[:, head : head + end_total - emitted]
                emitted += chunk.shape[1]
                yield chunk
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ValueError(f"{path}: audio data is unreadable or truncated ({_short(exc)})") from None


def save_audio(path: str | os.PathLike, wav: torch.Tensor, sample_rate: int = 16000) -> Path:
    """Write ``wav [1, T]`` (or ``[T]``, float in [-1, 1]) to ``path`` atomically as 16-bit PCM (wav/flac) or Vorbis.

    Raises:
        ValueError: unknown extension, more than one channel, or non-finite samples.
    """
    return save_audio_chunks(path, [wav], sample_rate)


def save_audio_chunks(path: str | os.PathLike, chunks: Iterable[torch.Tensor], sample_rate: int = 16000) -> Path:
    """Write consecutive mono chunks (each ``[1, t]`` or ``[t]``) as one file, atomically, holding one chunk at a
    time in memory (an hour of decoded audio never exists as one tensor). Formats as :func:`save_audio`.

    Raises:
        ValueError: unknown extension, more than one channel, or non-finite samples; nothing is written then.
    """
    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(f"{p}: unsupported output format {p.suffix!r}; use one of {sorted(SAVE_FORMATS)}")
    subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
    # SoundFile closes before atomic_path renames; an error in any chunk removes the temporary file.
    with atomic_path(p) as tmp, sf.SoundFile(str(tmp), "w", sample_rate, 1, format=fmt, subtype=subtype) as fh:
        for wav in chunks:
            wav = wav.detach().float().cpu()
            if wav.dim() == 2 and wav.shape[0] == 1:
                wav = wav[0]
            if wav.dim() != 1:
                raise ValueError(f"save_audio expects a mono [1, T] or [T] tensor, got shape {tuple(wav.shape)}")
            if not torch.isfinite(wav).all():
                raise ValueError(f"{p}: refusing to write audio with NaN or Inf samples")
            fh.write(wav.clamp(-1.0, 1.0).numpy())
    return p
