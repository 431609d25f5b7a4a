"""Encode audio of any length with bounded memory, giving exactly the codes of a whole-file ``Codec.encode``.

Why not "chunks with overlap": the encoder Transformer attends ``context`` frames back (250 frames = 50 s for the
shipped configs) and every layer widens that, so no finite overlap reproduces the whole-file codes. Instead the
encoder is *streamed*: every causal convolution keeps its input tail, the Transformer keeps a KV cache of the last
``context`` frames and continues the RoPE positions, and the log-mel front end keeps the last ``n_fft - mel_hop``
samples (the whole-file path left-pads with that many zeros, which is also the initial state here). The quantizer is
per frame. Chunks are cut at multiples of the hop and only the final remainder is zero-padded, as the whole-file path
pads. The result is bit-identical to ``codec.encode(whole_wav)`` (tested), while memory holds one chunk plus
``O(context)`` state. A non-causal codec cannot stream; it is encoded whole.

Resampled files are the one inexactness: :func:`codec.audio.iter_audio_chunks` resamples each chunk with 0.1 s of
context, so samples near chunk borders can differ from resampling the whole file in the last float bits (and the
length from :func:`codec.audio.load_audio`'s by one sample). Files at the model rate (every prepared corpus here)
are exact.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from codec.audio import audio_info, iter_audio_chunks
from codec.model import Codec
from codec.nn.streaming import streaming

DEFAULT_CHUNK_SECONDS = 60.0  # one pass for any normal utterance; 60 s of activations of the small codec is ~30 MB


@dataclass
class EncodedAudio:
    """Codes of one recording.

    Attributes:
        codes: ``[Q, F]`` long, ``F = ceil(num_samples / hop)``.
        num_samples: length of the audio at the model rate (before padding to the hop).
    """

    codes: torch.Tensor
    num_samples: int


def can_stream(codec: Codec) -> bool:
    """Whether the encoder is causal end to end (then chunked encoding is exact); a phone input reads whole
    utterances, so a codec with one is not."""
    return bool(codec.config.transformer.causal) and not codec.config.content.phone_input


class StreamingEncoder:
    """Feed a recording chunk by chunk; collect codes equal to the whole-file encode.

    Use as a context manager (it puts the encoder in streaming mode and drops the state on exit)::

        with StreamingEncoder(codec) as enc:
            for chunk in chunks:          # [1, t] float at the model rate, any t
                parts.append(enc.feed(chunk))
            parts.append(enc.flush())     # or feed(last_chunk, last=True)
        codes = torch.cat(parts, dim=-1)  # [Q, F]
    """

    def __init__(self, codec: Codec) -> None:
        if not can_stream(codec):
            raise ValueError("chunked encoding needs a causal codec (transformer.causal = true)")
        self.codec = codec
        self.hop = codec.hop_length
        self._pending: torch.Tensor | None = None  # [1, t < hop] samples not yet encoded
        self._mel_tail: torch.Tensor | None = None  # [1, n_fft - mel_hop] last samples, the log-mel look-back
        self._contexts: list = []
        self.num_samples = 0

    def __enter__(self) -> StreamingEncoder:
        self._contexts = [streaming(self.codec.encoder), streaming(self.codec.encoder_transformer)]
        for ctx in self._contexts:
            ctx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for ctx in reversed(self._contexts):
            ctx.__exit__(*exc)
        self._contexts = []

    def feed(self, chunk: torch.Tensor, last: bool = False) -> torch.Tensor:
        """Consume ``chunk [1, t]``; return the codes ``[Q, f]`` of the whole hops now available (``f`` may be 0).

        With ``last=True`` the remainder is zero-padded to a whole hop and encoded in the same pass (the same numbers
        as a separate :meth:`flush`, one model call fewer — a short utterance then costs exactly one pass).
        """
        assert self._contexts, "use StreamingEncoder as a context manager"
        chunk = chunk.to(self.codec.device, torch.float32)
        self.num_samples += chunk.shape[-1]
        buf = chunk if self._pending is None else torch.cat([self._pending, chunk], dim=-1)
        if last:
            self._pending = None
            tail = -buf.shape[-1] % self.hop
            return self._encode(torch.cat([buf, buf.new_zeros(1, tail)], dim=-1) if tail else buf)
        usable = buf.shape[-1] // self.hop * self.hop
        self._pending = buf[:, usable:]
        return self._encode(buf[:, :usable])

    def flush(self) -> torch.Tensor:
        """Zero-pad the remaining samples to one hop (as the whole-file path pads) and return their codes."""
        return self.feed(self._empty_wav(), last=True)

    def _empty_wav(self) -> torch.Tensor:
        return torch.zeros(1, 0, device=self.codec.device)

    def _empty(self) -> torch.Tensor:
        return torch.zeros(self.codec.num_codebooks, 0, dtype=torch.long, device=self.codec.device)

    @torch.inference_mode()
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [1, n * hop]`` → codes ``[Q, n]`` continuing the stream."""
        if wav.shape[-1] == 0:
            return self._empty()
        codec = self.codec
        if codec.config.encoder == "mel":
            latent = self._mel_latent(wav)
        else:
            latent = codec.encoder(wav[None])  # SEANet is all streaming convs: [1, D, n]
        return codec.quantizer.encode(codec.encoder_transformer(latent))[0]

    def _mel_latent(self, wav: torch.Tensor) -> torch.Tensor:
        # Mirrors MelEncoder.forward, with the real previous samples instead of zeros as the STFT look-back; the
        # streaming test (chunked == whole-file) guards this against drift from codec/nn/melstft.py.
        enc = self.codec.encoder
        ctx = enc.cfg.n_fft - enc.cfg.mel_hop
        if self._mel_tail is None:
            self._mel_tail = wav.new_zeros(1, ctx)
        buf = torch.cat([self._mel_tail, wav], dim=-1)
        self._mel_tail = buf[:, buf.shape[-1] - ctx :]
        mel = torch.log(enc.mel(buf).clamp_min(1e-5))  # [1, n_mels, n * hop / mel_hop]
        x = enc.stages(enc.conv_in(mel))
        return enc.proj(enc.norm(x.transpose(1, 2))).transpose(1, 2)  # [1, D, n]


def encode_chunks(codec: Codec, chunks: Iterable[torch.Tensor]) -> EncodedAudio:
    """Encode a recording given as consecutive ``[1, t]`` chunks at the model rate (exactly as if whole).

    Raises:
        ValueError: the chunks hold no samples.
    """
    parts = []
    with StreamingEncoder(codec) as enc:
        it = iter(chunks)
        chunk = next(it, None)
        while chunk is not None:
            following = next(it, None)  # one chunk of look-ahead, so the last one is encoded with its padding
            parts.append(enc.feed(chunk, last=following is None))
            chunk = following
        num_samples = enc.num_samples
    if num_samples == 0:
        raise ValueError("cannot encode an empty recording")
    return EncodedAudio(codes=torch.cat(parts, dim=-1).cpu(), num_samples=num_samples)


def encode_file(codec: Codec, path: str | os.PathLike, chunk_seconds: float = DEFAULT_CHUNK_SECONDS) -> EncodedAudio:
    """Encode an audio file (any rate/channels, resampled and downmixed) with memory bounded by one chunk.

    Args:
        codec: the codec (its device is used).
        path: audio file.
        chunk_seconds: seconds decoded and encoded at a time (rounded down to whole hops, at least one hop).

    Raises:
        FileNotFoundError, ValueError: as :func:`codec.audio.load_audio` (missing, corrupt, empty, NaN audio).
    """
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    sr = codec.sample_rate
    if not can_stream(codec):
        # Non-causal: every frame may see the whole file, so only a whole-file encode is correct.
        seconds = audio_info(path).duration + 1.0
        chunk_seconds = max(chunk_seconds, seconds)
    hops = max(1, int(chunk_seconds * sr) // codec.hop_length)
    chunks = iter_audio_chunks(path, sr, hops * codec.hop_length / sr)
    if not can_stream(codec):
        wav = torch.cat(list(chunks), dim=-1)
        codes = codec.encode(wav[None].to(codec.device))[0].cpu()
        return EncodedAudio(codes=codes, num_samples=wav.shape[-1])
    return encode_chunks(codec, chunks)
