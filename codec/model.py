"""The 5 Hz codec: wav → encoder → Transformer → factorized RVQ → Transformer → decoder → wav.

Contract (shapes): ``encode(wav [B, 1, T]) -> codes [B, Q, F]`` with ``F = ceil(T / hop)``;
``decode(codes [B, Q', F]) -> wav [B, 1, F * hop]`` for any prefix depth ``Q' <= Q``. The input is right-padded
with zeros to a multiple of the hop, as the authors' tokenizer does. ``forward`` is the training path and returns a
:class:`CodecOutput`. Decoding streams: inside ``with codec.streaming():`` successive ``decode`` calls continue the
same stream, and the concatenated chunks equal the offline decode.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from codec.config import FORMAT_VERSION, CodecConfig
from codec.nn.content import ContentHeads
from codec.nn.melstft import IstftDecoder, MelEncoder
from codec.nn.phone_input import PhoneInput
from codec.nn.quantizer import FactorizedRVQ
from codec.nn.seanet import SeanetDecoder, SeanetEncoder
from codec.nn.speaker import SpeakerConditioner
from codec.nn.streaming import streaming
from codec.nn.transformer import ProjectedTransformer
from codec.release import load_release, load_weights, resolve_release, save_release

ALIASES = {"default": "ucodec-5hz-small"}
TOKEN_MODULES = ("encoder", "encoder_transformer", "quantizer", "phone_input")  # what computes the codes
TRAINING_ONLY_QUANTIZER = (
    "commitment_weight",
    "codebook_weight",
    "dropout_layers",
    "dropout_prob",
    "dead_code_threshold",
    "usage_decay",
)


@dataclass
class CodecOutput:
    """Result of a training forward pass.

    Attributes:
        audio: ``[B, 1, F * hop]`` reconstruction.
        codes: ``[B, Q, F]`` codes of every layer.
        commitment_loss: scalar VQ commitment loss (unweighted).
        codebook_loss: scalar VQ codebook loss (unweighted).
        num_layers: ``[B]`` RVQ layers used per sample (quantizer dropout).
        prefix: ``[B, D, F]`` sum of the first ``config.content.levels`` RVQ outputs when the model has content heads
            (:mod:`codec.nn.content`), else None.
    """

    audio: torch.Tensor
    codes: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor
    num_layers: torch.Tensor
    prefix: torch.Tensor | None = None


class Codec(nn.Module):
    """The U-Codec model. Build from a :class:`CodecConfig`, or load a release with :meth:`from_pretrained`."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        causal = c.transformer.causal
        if c.encoder == "seanet":
            self.encoder = SeanetEncoder(c.seanet, c.dimension, causal=causal, norm=c.norm)
        else:
            self.encoder = MelEncoder(c.mel, c.sample_rate, c.dimension)
        self.encoder_transformer = ProjectedTransformer(c.transformer, c.dimension)
        self.quantizer = FactorizedRVQ(c.quantizer, c.dimension, norm=c.norm)
        self.decoder_transformer = ProjectedTransformer(c.transformer, c.dimension)
        if c.decoder == "seanet":
            self.decoder = SeanetDecoder(c.seanet, c.dimension, causal=causal, norm=c.norm)
        else:
            self.decoder = IstftDecoder(c.istft, c.hop_length, c.dimension, c.transformer)
        if c.content.phone_input:  # a frozen phoneme recognizer feeds the first quantizer stack
            self.phone_input = PhoneInput(
                c.content.symbols, c.dimension, c.hop_length, c.sample_rate, c.content.phone_features
            )
        if c.content.enabled:  # training/alignment heads; only models trained with content supervision have them
            self.content = ContentHeads(c.dimension, c.content)
        if c.speaker_hidden:  # the decoder also reads a voice vector pooled from reference codes
            self.speaker = SpeakerConditioner(c.dimension, c.speaker_hidden)
        self.release_id = self.config_hash()

    # ------------------------------------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def num_codebooks(self) -> int:
        return self.config.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def bitrate(self) -> float:
        return self.config.bitrate

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def config_hash(self) -> str:
        """Short hash of the architecture config (releases override ``release_id`` with their weights' hash)."""
        blob = json.dumps(self.config.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def tokens_id(self) -> str:
        """Short hash of everything that turns audio into codes: the encoder side's weights (rounded to fp16, so a
        run and its fp16 release agree) and the config fields it computes with. Two codecs with the same
        ``tokens_id`` give the same codes for the same audio whatever their decoders, so a decoder-only fine-tune
        keeps it and a TTS trained on one's tokens can speak through the other's decoder."""
        cfg = self.config.to_dict()
        keep = {k: cfg[k] for k in ("sample_rate", "encoder", "dimension", "norm", "seanet", "mel", "transformer")}
        keep["quantizer"] = {k: v for k, v in cfg["quantizer"].items() if k not in TRAINING_ONLY_QUANTIZER}
        keep["content"] = {k: cfg["content"].get(k) for k in ("phone_input", "phone_features")}
        h = hashlib.sha256(json.dumps(keep, sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            if name.split(".", 1)[0] in TOKEN_MODULES:
                h.update(f"{name}{tuple(tensor.shape)}".encode())
                h.update(tensor.detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------------------------------ checks
    def _check_wav(self, wav: torch.Tensor) -> torch.Tensor:
        if not isinstance(wav, torch.Tensor) or wav.dim() != 3 or wav.shape[1] != 1:
            shape = tuple(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
            raise ValueError(f"expected a waveform of shape [B, 1, T], got {shape}")
        if wav.shape[-1] == 0 or wav.shape[0] == 0:
            raise ValueError(f"cannot encode an empty waveform (shape {tuple(wav.shape)})")
        if not wav.is_floating_point():
            raise ValueError(f"expected a float waveform, got dtype {wav.dtype}")
        return wav.to(next(self.parameters()).dtype)  # float64 input would fail in the first matmul

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if not isinstance(codes, torch.Tensor) or codes.dim() != 3:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"expected codes of shape [B, Q, F], got {shape}")
        if codes.is_floating_point() or codes.dtype == torch.bool or codes.is_complex():
            raise ValueError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        codes = codes.long()  # before the range check: uint8 codes compared with 256 would wrap around
        if not 1 <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(f"codes have {codes.shape[1]} codebooks; this model has 1 to {self.num_codebooks}")
        if codes.shape[0] == 0 or codes.shape[2] == 0:
            raise ValueError(f"cannot decode empty codes (shape {tuple(codes.shape)}); need B >= 1 and F >= 1")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(
                f"code values must be in [0, {self.codebook_size}), got [{int(codes.min())}, {int(codes.max())}]"
            )
        return codes

    def pad(self, wav: torch.Tensor) -> torch.Tensor:
        """Right-pad ``[B, 1, T]`` with zeros to ``ceil(T / hop) * hop``."""
        frames = math.ceil(wav.shape[-1] / self.hop_length)
        return F.pad(wav, (0, frames * self.hop_length - wav.shape[-1]))

    # ------------------------------------------------------------------------------------------ train path
    def encode_latent(self, wav: torch.Tensor) -> torch.Tensor:
        """wav ``[B, 1, T]`` → pre-quantisation latent ``[B, D, F]``."""
        return self.encoder_transformer(self.encoder(self.pad(self._check_wav(wav))))

    def split_latent(self, wav: torch.Tensor) -> torch.Tensor | None:
        """What the first quantizer stack reads instead of the latent: the phone input ``[B, D, F]`` of wav
        ``[B, 1, T]``, or None for a codec without one."""
        if getattr(self, "phone_input", None) is None:
            return None
        return self.phone_input(self.pad(self._check_wav(wav)))

    @property
    def has_speaker(self) -> bool:
        """Whether the decoder reads a voice vector from reference codes (``config.speaker_hidden > 0``)."""
        return getattr(self, "speaker", None) is not None

    def decode_latent(self, z: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Quantised latent ``[B, D, F]`` → wav ``[B, 1, F * hop]``; ``reference [B, D, Fr]``, the dequantized
        full-depth codes of a voice reference, conditions a codec with a voice conditioner (ignored otherwise)."""
        if reference is not None and self.has_speaker:
            z = z + self.speaker(reference.to(z.dtype))
        return self.decoder(self.decoder_transformer(z))

    def reference_latent(self, wav: torch.Tensor) -> torch.Tensor:
        """Voice reference wav ``[B, 1, Tr]`` → dequantized full-depth codes ``[B, D, Fr]``, as a decoder reads a
        prompt's codes at inference (no gradient reaches the encoder through it)."""
        with torch.no_grad():
            codes = self.quantizer.encode(self.encode_latent(wav), z_split=self.split_latent(wav))
            return self.quantizer.decode(codes)

    def forward(
        self, wav: torch.Tensor, num_codebooks: int | None = None, reference: torch.Tensor | None = None
    ) -> CodecOutput:
        """Training pass: wav ``[B, 1, T]`` → :class:`CodecOutput` (quantizer dropout applies when training);
        ``reference [B, 1, Tr]`` is another recording of each item's voice (used by a voice conditioner)."""
        content = self.config.content
        ref = self.reference_latent(reference) if reference is not None and self.has_speaker else None
        q = self.quantizer(
            self.encode_latent(wav),
            num_codebooks,
            prefix_layers=content.levels,
            prefix_tangent=content.tangent_grad,
            z_split=self.split_latent(wav),
            split_detach=content.content_only_split,
        )
        return CodecOutput(
            audio=self.decode_latent(q.quantized, ref),
            codes=q.codes,
            commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss,
            num_layers=q.num_layers,
            prefix=q.prefix,
        )

    @torch.inference_mode()
    def phoneme_log_probs(self, codes: torch.Tensor) -> torch.Tensor:
        """CTC posteriors of the content head from codes ``[B, Q', F]`` (``Q' >= content.levels``; only the first
        ``levels`` are read) → ``[B, F * ctc_upsample, V + 1]`` (blank 0).

        Raises:
            ValueError: the model has no CTC head, or the codes hold fewer levels than it reads.
        """
        heads = getattr(self, "content", None)
        if heads is None or heads.ctc is None:
            raise ValueError("this codec has no phoneme CTC head (train it with model.content.symbols)")
        k = self.config.content.levels
        codes = self._check_codes(codes)
        if codes.shape[1] < k:
            raise ValueError(f"the CTC head reads the first {k} levels; got codes with {codes.shape[1]}")
        return heads.ctc(self.quantizer.decode(codes[:, :k]))

    # ------------------------------------------------------------------------------------------ inference
    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """wav ``[B, 1, T]`` float → codes ``[B, Q, ceil(T / hop)]`` long (``Q = num_codebooks or all``).

        Raises:
            ValueError: not ``[B, 1, T]`` float, empty, or NaN/Inf samples (which would give meaningless codes).
        """
        if isinstance(wav, torch.Tensor) and not torch.isfinite(wav).all():
            raise ValueError("cannot encode a waveform with NaN or Inf samples")
        return self.quantizer.encode(self.encode_latent(wav), num_codebooks, z_split=self.split_latent(wav))

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """codes ``[B, Q', F]`` (``Q' <= Q``) → wav ``[B, 1, F * hop]``. Continues the stream inside
        :meth:`streaming`.

        ``reference [B or 1, Q'', Fr]``: codes of the voice to speak in, for a codec with a voice conditioner
        (:attr:`has_speaker`): a voice prompt, or the full-depth codes of the same utterance. Without one such a
        codec pools the voice from ``codes`` themselves, which is right only when they hold all levels. Ignored by
        a codec without a conditioner.
        """
        z = self.quantizer.decode(self._check_codes(codes))
        ref = None
        if self.has_speaker:
            ref = z if reference is None else self.quantizer.decode(self._check_codes(reference))
            if ref.shape[0] != z.shape[0]:
                if ref.shape[0] != 1:
                    raise ValueError(f"{ref.shape[0]} references for {z.shape[0]} code sequences")
                ref = ref.expand(z.shape[0], -1, -1)
        return self.decode_latent(z, ref)

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        """Context in which successive :meth:`decode` calls continue one stream (state dropped on exit)."""
        with streaming(self):
            yield

    def decode_stream(
        self, codes: torch.Tensor, chunk_frames: int = 1, reference: torch.Tensor | None = None
    ) -> Iterator[torch.Tensor]:
        """Decode ``codes [B, Q', F]`` ``chunk_frames`` at a time, yielding ``[B, 1, chunk_frames * hop]`` chunks
        whose concatenation equals ``decode(codes, reference)`` (a voice-conditioned codec without ``reference``
        pools the voice from all of ``codes``, as the offline decode does)."""
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        codes = self._check_codes(codes)
        if reference is None and self.has_speaker:
            reference = codes
        with self.streaming():
            for start in range(0, codes.shape[-1], chunk_frames):
                yield self.decode(codes[..., start : start + chunk_frames], reference)

    # ------------------------------------------------------------------------------------------ releases
    def save_pretrained(self, out_dir: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write a release directory (``config.json`` + ``model.safetensors``); ``dtype=torch.float16`` halves it."""
        return save_release(out_dir, "codec", FORMAT_VERSION, self.config.to_dict(), self.state_dict(), dtype=dtype)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike = "default", device: str | torch.device = "cpu") -> Codec:
        """Load a release directory or a shipped release name (``"default"`` = the shipped small codec).

        Weights stored in fp16 are loaded into an fp32 model. Raises ``FileNotFoundError``/``ValueError`` with the
        path for anything missing, corrupt, or from another kind/version of model.
        """
        rel = load_release(resolve_release(name_or_dir, ALIASES), "codec", FORMAT_VERSION)
        model = cls(CodecConfig.from_dict(rel.config, where=f"{rel.path}/config.json"))
        load_weights(model, rel)
        model.release_id = (rel.meta.get("sha256") or model.release_id)[:16]
        return model.to(device).eval()

    def num_parameters(self) -> int:
        """Total parameter count (weight norm counted as g + v, as in the authors' checkpoint)."""
        return sum(p.numel() for p in self.parameters())
