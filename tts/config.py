"""Typed configuration of the global-local TTS model (docs/design.md, docs/tts_design.md).

One frozen dataclass per component; :class:`TTSConfig` composes them and ``configs/tts/{tiny,small}.yaml`` are its
serialisations. Derived values (the END id, per-layer vocabulary, the width of a concatenated frame embedding) are
properties, never stored twice. Sampling values may be given per RVQ layer as a list whose last entry repeats for
the remaining layers, so ``top_k: [50, 20]`` means 50 for layer 0 and 20 for every finer layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from codec.configio import ConfigMixin

FORMAT_VERSION = 1  # bump when a TTS release's layout or parameter names change

# Every frontend's symbol table starts with these three ids, so batches can be built without a frontend at hand.
PAD_ID, BOS_ID, SEP_ID = 0, 1, 2
IGNORE_INDEX = -100  # target value that no loss is computed for


@dataclass(frozen=True)
class FrontendConfig:
    """Text → symbol ids (see :mod:`tts.frontend`)."""

    kind: Literal["phoneme", "sentencepiece", "char"] = "phoneme"  # espeak IPA, a trained sentencepiece, or letters
    language: str = "en-us"  # espeak-ng voice of the phonemizer
    normalize: bool = True  # expand English numbers, currency, ordinals and abbreviations first
    max_sentence_chars: int = 300  # longer sentences are split again at commas/semicolons
    sentencepiece_vocab_size: int = 256  # pieces when a sentencepiece model is trained from corpus text

    def __post_init__(self) -> None:
        if self.max_sentence_chars < 20:
            raise ValueError(f"frontend.max_sentence_chars must be >= 20, got {self.max_sentence_chars}")


@dataclass(frozen=True)
class TransformerConfig:
    """A pre-norm causal Transformer (RMSNorm, SwiGLU MLP, no biases; Llama layout)."""

    num_layers: int = 6  # blocks
    d_model: int = 384  # width
    num_heads: int = 6  # query heads
    num_kv_heads: int | None = None  # key/value heads (grouped-query attention); None = num_heads
    dim_feedforward: int = 1024  # SwiGLU hidden width
    rope_theta: float = 10000.0  # RoPE base (global model; the local model uses learned positions)
    norm: Literal["rms_norm", "layer_norm"] = "rms_norm"  # rms_norm = Llama; layer_norm is ~5x cheaper per call on CPU
    norm_eps: float = 1e-5  # normalisation epsilon
    dropout: float = 0.0  # residual dropout while training

    def __post_init__(self) -> None:
        if self.num_layers < 1 or self.d_model < 1 or self.num_heads < 1:
            raise ValueError("transformer needs num_layers, d_model and num_heads >= 1")
        if self.d_model % self.num_heads or (self.d_model // self.num_heads) % 2:
            raise ValueError(f"d_model ({self.d_model}) / num_heads ({self.num_heads}) must be an even integer")
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.kv_heads})")

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads


@dataclass(frozen=True)
class SamplingConfig:
    """Inference defaults: sampling per RVQ layer, length policy and guards (see :mod:`tts.generate`)."""

    temperature: float | tuple[float, ...] = 0.8  # 0 = greedy; a list gives per-layer values
    top_k: int | tuple[int, ...] = 50  # 0 = off
    top_p: float | tuple[float, ...] = (0.95, 1.0)  # 1.0 = off; default: nucleus on layer 0 only
    min_frames_per_symbol: float = 0.1  # END is forbidden before this many frames per target text symbol
    max_frames_per_symbol: float = 1.0  # generation stops at this many frames per symbol (+ margin) ...
    max_frames_margin: int = 10  # ... plus this many frames
    max_seconds: float = 30.0  # and never later than this
    max_repeat_frames: int = 10  # a sequence repeating the same frame this often in a row is stopped (0 = off)
    repeat_layers: int = 4  # frames are compared on their first k RVQ layers by the repetition/silence guards
    max_silence_frames: int = 10  # consecutive silent frames (after the first speech) that stop a sequence (0 = off)
    end_check_every: int = 4  # frames between END checks (the only host syncs of the frame loop)
    prompt_seconds: float = (
        3.0  # a prompt without transcript is cut to its middle N s (as trained: 2-4 s crops; 0 = whole)
    )
    max_transcribed_prompt_seconds: float = (
        6.0  # a longer transcribed prompt is cut as above, transcript dropped (0 = off)
    )

    def __post_init__(self) -> None:
        for name in ("temperature", "top_k", "top_p"):
            value = getattr(self, name)
            if isinstance(value, tuple) and not value:
                raise ValueError(f"sampling.{name}: an empty list; give a number or one value per layer")
        if self.max_frames_per_symbol <= 0 or self.max_seconds <= 0 or self.end_check_every < 1:
            raise ValueError("sampling: max_frames_per_symbol, max_seconds must be > 0 and end_check_every >= 1")
        if self.min_frames_per_symbol > self.max_frames_per_symbol:
            raise ValueError("sampling.min_frames_per_symbol must not exceed max_frames_per_symbol")
        if self.prompt_seconds < 0 or self.max_transcribed_prompt_seconds < 0:
            raise ValueError("sampling.prompt_seconds and max_transcribed_prompt_seconds must be >= 0")


def codec_mismatches(cfg: TTSConfig, codec) -> list[tuple[str, object, object]]:
    """``(name, model's, codec's)`` of every token-layout field on which a model and a codec disagree: the codebook
    size and the frame rate must be equal; the model may have fewer levels than the codec (it models its first
    ones), never more."""
    out = [
        (name, getattr(cfg, name), getattr(codec, name))
        for name in ("num_codebooks", "codebook_size", "frame_rate")
        if getattr(cfg, name) != getattr(codec, name)
    ]
    return [m for m in out if not (m[0] == "num_codebooks" and m[1] < m[2])]


def check_decode_levels(levels: int, num_codebooks: int) -> int:
    """``levels`` if it is a valid ``decode_levels`` (0 = all, else 1..num_codebooks); else a ValueError."""
    if isinstance(levels, bool) or not isinstance(levels, int) or not 0 <= levels <= num_codebooks:
        raise ValueError(f"decode_levels must be 0 (all) or 1..{num_codebooks}, got {levels!r}")
    return levels


@dataclass(frozen=True)
class TTSConfig(ConfigMixin):
    """The whole TTS model: token layout, frame embedding, global and local Transformers, frontend, sampling."""

    name: str = "ucodec-tts"  # human-readable model name (stored in releases)
    # RVQ layers Q per frame the LM models: the codec's first Q levels (all of them, or fewer for a codec whose
    # decoder speaks from its first levels; the finer levels are then neither generated nor read)
    num_codebooks: int = 32
    codebook_size: int = 256  # codes per layer V (must match the codec)
    frame_rate: float = 5.0  # frames per second (must match the codec)
    text_vocab_size: int = 256  # text embedding rows; the frontend's symbol table must fit
    frame_embedding: Literal["concat", "sum"] = "concat"  # how the Q code embeddings of a frame are combined
    code_embedding_dim: int = 16  # per-layer code embedding width when concatenating (Q * dim -> d_model)
    global_model: TransformerConfig = field(default_factory=TransformerConfig)  # over text + frames
    local_model: TransformerConfig = field(  # over the Q layers of one frame
        default_factory=lambda: TransformerConfig(
            num_layers=2, d_model=128, num_heads=2, dim_feedforward=512, norm="layer_norm"
        )
    )
    # RVQ layers the local model predicts per step: 1 = one local step per layer (Q steps a frame); G > 1 = Q / G
    # steps, each predicting G consecutive layers, the later ones conditioned on the codes chosen before them in the
    # step through an embedding added to the step's hidden state (no further Transformer pass). Fewer steps = faster.
    local_levels_per_step: int = 1
    text_loss_weight: float = 0.01  # weight of next-text-token loss (0 = speech loss only)
    first_layer_loss_weight: float = 1.0  # weight of RVQ layer 0 (and END) against each finer layer (eval tts-oracle)
    # The codec's content levels (its model.content.levels): their loss counts content_loss_weight times each finer
    # level's (times first_layer_loss_weight for layer 0), and the metrics report levels 1..K, K+1..16, 17..Q apart.
    content_levels: int = 0  # 0 = the codec has none (the metrics' first band is then levels 1..4)
    content_loss_weight: float = 1.0
    # RoPE positions: 0 = one per token; s > 0 = aligned (frames s symbols apart on the text's axis, item_positions)
    frame_position_stride: float = 0.0
    # Frame-aligned text (tts.aligned_text): every target frame is told its word of the target text and the model
    # predicts how far that word pointer moves per frame (advance_classes classes, the last = "that many or more");
    # END only once the pointer is on the last word. Training needs word times (train.word_times).
    aligned_text: bool = False
    advance_classes: int = 4
    advance_loss_weight: float = 1.0
    # The codec decodes only the first decode_levels generated levels (0 = all of them): for a codec whose decoder
    # was trained to speak from its first (content) levels, when the model's finer levels are what babbles.
    decode_levels: int = 0
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self) -> None:
        if self.num_codebooks < 1 or self.codebook_size < 2:
            raise ValueError("num_codebooks must be >= 1 and codebook_size >= 2")
        if self.local_levels_per_step < 1 or self.num_codebooks % self.local_levels_per_step:
            raise ValueError(
                f"local_levels_per_step must be >= 1 and divide num_codebooks ({self.num_codebooks}), got "
                f"{self.local_levels_per_step}"
            )
        if self.frame_rate <= 0 or self.text_vocab_size < 4 or self.code_embedding_dim < 1:
            raise ValueError("frame_rate > 0, text_vocab_size >= 4 and code_embedding_dim >= 1 are required")
        if self.text_loss_weight < 0:
            raise ValueError(f"text_loss_weight must be >= 0, got {self.text_loss_weight}")
        if not self.first_layer_loss_weight > 0:
            raise ValueError(f"first_layer_loss_weight must be > 0, got {self.first_layer_loss_weight}")
        if not 0 <= self.content_levels <= self.num_codebooks or not self.content_loss_weight > 0:
            raise ValueError(
                f"content_levels must be in 0..{self.num_codebooks} and content_loss_weight > 0, got "
                f"{self.content_levels} and {self.content_loss_weight}"
            )
        if self.advance_classes < 2 or self.advance_loss_weight < 0:
            raise ValueError(
                f"advance_classes must be >= 2 and advance_loss_weight >= 0, got {self.advance_classes} and "
                f"{self.advance_loss_weight}"
            )
        if self.frame_position_stride < 0:
            raise ValueError(f"frame_position_stride must be >= 0 (0 = off), got {self.frame_position_stride}")
        check_decode_levels(self.decode_levels, self.num_codebooks)

    @property
    def end_id(self) -> int:
        """Layer 0's extra token that ends an utterance."""
        return self.codebook_size

    @property
    def head_vocab(self) -> int:
        """Rows of every local head (layer 0 uses all of them, finer layers all but END)."""
        return self.codebook_size + 1

    @property
    def frame_input_dim(self) -> int:
        """Width of a frame's combined code embedding before the projection to the global width."""
        if self.frame_embedding == "concat":
            return self.num_codebooks * self.code_embedding_dim
        return self.global_model.d_model

    @property
    def local_steps(self) -> int:
        """Local Transformer steps per frame (``Q / local_levels_per_step``)."""
        return self.num_codebooks // self.local_levels_per_step

    @property
    def tokens_per_second(self) -> float:
        return self.num_codebooks * self.frame_rate

    @property
    def level_weights(self) -> tuple[float, ...]:
        """Loss weight of each RVQ layer (``[Q]``): content levels and layer 0 as configured, the rest 1."""
        w = [self.content_loss_weight if q < self.content_levels else 1.0 for q in range(self.num_codebooks)]
        w[0] *= self.first_layer_loss_weight
        return tuple(w)

    @property
    def level_bands(self) -> dict[str, tuple[int, int]]:
        """The metrics' layer bands ``{"lo", "mid", "hi"}`` as ``[start, end)``: 1..K, K+1..16 and 17..Q (1-based;
        K = ``content_levels`` or 4), cut to ``Q``; a band may be empty."""
        q = self.num_codebooks
        k = min(self.content_levels or 4, q)
        mid = max(k, min(16, q))
        return {"lo": (0, k), "mid": (k, mid), "hi": (mid, q)}


def per_layer(value: float | int | tuple, num_codebooks: int, name: str) -> tuple:
    """Expand a scalar or a per-layer list (last entry repeated) to exactly ``num_codebooks`` values.

    Raises:
        ValueError: a list longer than ``num_codebooks``.
    """
    if not isinstance(value, (tuple, list)):
        return (value,) * num_codebooks
    if len(value) > num_codebooks:
        raise ValueError(f"{name}: {len(value)} per-layer values for {num_codebooks} layers")
    return tuple(value) + (value[-1],) * (num_codebooks - len(value))
