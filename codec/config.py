"""Typed configuration of the 5 Hz codec.

One frozen dataclass per component; ``CodecConfig`` composes them. Derived values (hop length, frame rate,
bitrate, the iSTFT upsampling factor) are properties so they can never disagree with the fields they come from.
``configs/codec/{paper,small,tiny}.yaml`` are serialisations of these classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from codec.configio import ConfigMixin

FORMAT_VERSION = 1  # bump when a release directory's layout or parameter names change


@dataclass(frozen=True)
class SeanetConfig:
    """Convolutional SEANet encoder/decoder (Mimi-style, causal). Used when encoder/decoder == "seanet"."""

    n_filters: int = 64  # channels after the stem; doubled at every downsampling stage
    ratios: tuple[int, ...] = (8, 8, 5, 5, 2)  # decoder upsampling order; the encoder uses them reversed
    n_residual_layers: int = 1  # residual blocks per stage
    kernel_size: int = 7  # stem (encoder) / first (decoder) conv kernel
    residual_kernel_size: int = 3  # kernel of the first conv inside a residual block
    last_kernel_size: int = 3  # encoder's projection to `dimension`, decoder's projection to 1 channel
    compress: int = 2  # residual block bottleneck: channels // compress
    dilation_base: int = 2  # residual block j uses dilation dilation_base ** j

    def __post_init__(self) -> None:
        if not self.ratios or any(r < 1 for r in self.ratios):
            raise ValueError(f"seanet.ratios must be positive integers, got {list(self.ratios)}")


@dataclass(frozen=True)
class MelEncoderConfig:
    """Log-mel front end: mel frames at sample_rate/mel_hop, then causal strided convs down to the frame rate."""

    n_mels: int = 80  # mel bands
    n_fft: int = 640  # STFT size (and window length) of the mel analysis
    mel_hop: int = 160  # mel frame hop in samples (100 Hz at 16 kHz)
    channels: int = 256  # width of the conv stack
    strides: tuple[int, ...] = (2, 2, 5)  # product * mel_hop == hop_length
    blocks_per_stage: int = 1  # causal ConvNeXt blocks before each strided conv
    kernel_size: int = 7  # depthwise kernel of the ConvNeXt blocks

    def __post_init__(self) -> None:
        if self.mel_hop > self.n_fft:
            raise ValueError(f"mel.mel_hop ({self.mel_hop}) must not exceed mel.n_fft ({self.n_fft})")


@dataclass(frozen=True)
class IstftDecoderConfig:
    """Vocos-like back end: frames upsampled to STFT frames, causal ConvNeXt blocks, magnitude/phase → iSTFT."""

    n_fft: int = 640  # synthesis STFT size
    stft_hop: int = 160  # synthesis hop in samples; hop_length must be a multiple of it
    channels: int = 256  # ConvNeXt width
    intermediate: int = 768  # ConvNeXt MLP width
    num_blocks: int = 6  # ConvNeXt blocks
    kernel_size: int = 7  # depthwise kernel (causal)
    # causal Transformer layers at the STFT frame rate (100 Hz) between the upsampling and the ConvNeXt blocks, of
    # the codec's transformer settings at width `channels` (0 = none): sub-frame capacity for decoding few levels
    transformer_layers: int = 0

    def __post_init__(self) -> None:
        if self.n_fft % self.stft_hop:
            raise ValueError(f"istft.n_fft ({self.n_fft}) must be a multiple of istft.stft_hop ({self.stft_hop})")
        if self.transformer_layers < 0:
            raise ValueError(f"istft.transformer_layers must be >= 0, got {self.transformer_layers}")


@dataclass(frozen=True)
class TransformerConfig:
    """Pre-norm RoPE Transformer over frames (used after the encoder and before the decoder)."""

    num_layers: int = 8  # 0 disables the transformer
    d_model: int = 512  # width; input/output projections are added when it differs from `dimension`
    num_heads: int = 8  # attention heads
    dim_feedforward: int = 2048  # MLP width (GELU, no biases)
    causal: bool = True  # causal mask (required for streaming)
    context: int | None = 250  # look-back window in frames (None: unlimited)
    layer_scale: float | None = 0.01  # initial layer-scale value (None: no layer scale)
    norm: Literal["layer_norm", "rms_norm"] = "layer_norm"  # normalisation type
    max_period: float = 10000.0  # RoPE base

    def __post_init__(self) -> None:
        if self.num_layers and self.num_heads < 1:
            raise ValueError(f"transformer.num_heads must be >= 1, got {self.num_heads}")
        if self.num_layers and self.d_model % self.num_heads:
            raise ValueError(f"transformer.d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.num_layers and (self.d_model // self.num_heads) % 2:
            raise ValueError("transformer head dimension must be even for RoPE")


@dataclass(frozen=True)
class QuantizerConfig:
    """Factorized residual VQ: per layer project to codebook_dim, cosine nearest code, project back."""

    num_codebooks: int = 32  # RVQ depth Q
    codebook_size: int = 256  # codes per layer
    codebook_dim: int = 8  # factorized lookup dimension
    commitment_weight: float = 0.25  # weight of ||z - sg(q)||^2
    codebook_weight: float = 1.0  # weight of ||sg(z) - q||^2
    dropout_layers: tuple[int, ...] = ()  # training: randomly keep one of these layer counts (e.g. [8, 16, 32])
    dropout_prob: float = 0.5  # probability that a training batch uses quantizer dropout
    dead_code_threshold: float = 0.01  # training: re-init codes whose usage EMA (uses/step) is below this (0 = never)
    usage_decay: float = 0.99  # training: decay of that per-step usage EMA
    # Mimi's split: the first `split_levels` levels form their own residual stack over the latent, the rest another
    # over the same latent, and decoding sums all (0 = one residual stack). The first levels then stop being the
    # coarse approximation every later level refines, so content supervision can shape them freely.
    split_levels: int = 0

    def __post_init__(self) -> None:
        if self.num_codebooks < 1 or self.codebook_size < 2 or self.codebook_dim < 1:
            raise ValueError("quantizer needs num_codebooks >= 1, codebook_size >= 2, codebook_dim >= 1")
        if not 0 <= self.split_levels < self.num_codebooks:
            raise ValueError(f"quantizer.split_levels must be in 0..{self.num_codebooks - 1}, got {self.split_levels}")
        bad = [n for n in self.dropout_layers if not 1 <= n <= self.num_codebooks]
        if bad:
            raise ValueError(f"quantizer.dropout_layers {bad} outside 1..{self.num_codebooks}")


@dataclass(frozen=True)
class ContentConfig:
    """Content supervision of the first RVQ levels (training heads; off unless ``levels`` > 0 and a head is on).

    The sum of the first ``levels`` quantizer outputs feeds a phoneme CTC head (when ``symbols`` is set) and a linear
    projection onto a teacher's features (when ``teacher_dim`` > 0), so that a TTS can get the words from few levels.
    """

    levels: int = 0  # K: the supervised prefix of RVQ levels (0 = no content heads)
    symbols: tuple[str, ...] = ()  # CTC phoneme inventory (blank is id 0, symbol i is id i + 1); empty = no CTC head
    ctc_upsample: int = 8  # CTC sub-frames per codec frame (8 at 5 Hz = 40 Hz, above English's ~15 phones/s)
    ctc_channels: int = 192  # width of the CTC head
    ctc_kernel: int = 5  # kernel of its two convolutions over sub-frames (non-causal: a training/alignment head)
    teacher_dim: int = 0  # width of the distilled teacher features (384: Whisper tiny.en encoder); 0 = off
    teacher_subframes: int = 1  # teacher vectors per frame: 1 = pooled to the frame rate, 10 = Whisper's 50 Hz at 5 Hz
    head_layers: int = 0  # non-causal Transformer layers over the frames at the start of each head (0 = none)
    ctc_detach: bool = False  # train the CTC head on a stop-gradient prefix: a reader (for align), not a teacher
    # a LINEAR classifier reads the phoneme under each of a frame's ctc_upsample sub-frames off the prefix (labels:
    # the store's phone times, ucodec content-times): PAST's phoneme loss, which needs no whole utterance in a crop
    frame_labels: bool = False
    # the content losses reach each level's projected residual only through its direction, which is all that picks
    # a code (their pull on its norm drove the quantizer apart in session 10; docs/codec_training.md)
    tangent_grad: bool = False
    # the first quantizer.split_levels levels quantize a projection of a frozen phoneme recognizer's output
    # (codec/nn/phone_input.py; weights from train.phone_model at the start of a run), not the acoustic latent
    phone_input: bool = False
    # what of the recognizer's output the phone input stacks: its CTC log-probabilities (floored at -10) or the
    # posteriors themselves (peaky: mostly blank, one spike per phone)
    phone_features: Literal["log_probs", "posteriors"] = "log_probs"
    # the first quantizer.split_levels levels learn only from the content losses (CosyVoice's supervised tokens: a
    # quantizer trained for recognition): the reconstruction's gradient stops at their codes and reaches only their
    # output projections, so the mel loss cannot trade phone identity for the broad spectral classes it prefers
    content_only_split: bool = False

    def __post_init__(self) -> None:
        if self.levels < 0 or self.ctc_upsample < 1 or self.ctc_channels < 1 or self.teacher_dim < 0:
            raise ValueError("content needs levels >= 0, ctc_upsample >= 1, ctc_channels >= 1, teacher_dim >= 0")
        if self.teacher_subframes < 1 or self.head_layers < 0:
            raise ValueError("content needs teacher_subframes >= 1 and head_layers >= 0")
        if self.ctc_kernel < 1 or self.ctc_kernel % 2 == 0:
            raise ValueError(f"content.ctc_kernel must be odd and positive, got {self.ctc_kernel}")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("content.symbols must be unique")
        if self.frame_labels and not self.symbols:
            raise ValueError("content.frame_labels needs the phoneme inventory (content.symbols)")
        if self.phone_features not in ("log_probs", "posteriors"):
            raise ValueError(f"content.phone_features must be log_probs or posteriors, got {self.phone_features!r}")
        if self.phone_input and not self.symbols:
            raise ValueError("content.phone_input needs the recognizer's phoneme inventory (content.symbols)")
        if self.levels and not (self.symbols or self.teacher_dim):
            raise ValueError("content.levels > 0 needs a CTC head (symbols) or a teacher (teacher_dim)")

    @property
    def enabled(self) -> bool:
        return self.levels > 0


@dataclass(frozen=True)
class CodecConfig(ConfigMixin):
    """The whole codec. Derived rates are properties; ``hop_length`` comes from the encoder and is checked
    against the decoder."""

    name: str = "ucodec"  # human-readable model name (stored in releases)
    sample_rate: int = 16000  # audio rate in Hz
    encoder: Literal["seanet", "mel"] = "seanet"  # front end
    decoder: Literal["seanet", "istft"] = "seanet"  # back end
    dimension: int = 512  # latent width between encoder, transformers, quantizer and decoder
    norm: Literal["weight_norm", "none"] = "weight_norm"  # weight norm on convs/projections (folded in releases)
    seanet: SeanetConfig = field(default_factory=SeanetConfig)
    mel: MelEncoderConfig = field(default_factory=MelEncoderConfig)
    istft: IstftDecoderConfig = field(default_factory=IstftDecoderConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    content: ContentConfig = field(default_factory=ContentConfig)
    # width of the voice conditioner's MLP (codec/nn/speaker.py): the decoder also reads one vector pooled from a
    # reference's codes, so that a decode of the first levels alone speaks in the reference's voice (0 = off)
    speaker_hidden: int = 0

    def __post_init__(self) -> None:
        if self.speaker_hidden < 0:
            raise ValueError(f"speaker_hidden must be >= 0, got {self.speaker_hidden}")
        if self.content.levels > self.quantizer.num_codebooks:
            raise ValueError(f"content.levels {self.content.levels} exceeds {self.quantizer.num_codebooks} codebooks")
        if self.content.phone_input and not self.quantizer.split_levels:
            raise ValueError("content.phone_input feeds the first quantizer stack: set quantizer.split_levels > 0")
        if self.content.content_only_split and not (self.quantizer.split_levels and self.content.levels):
            raise ValueError("content.content_only_split needs quantizer.split_levels > 0 and content.levels > 0")
        if self.decoder == "istft" and self.hop_length % self.istft.stft_hop:
            raise ValueError(f"hop_length {self.hop_length} must be a multiple of istft.stft_hop {self.istft.stft_hop}")
        if self.decoder == "seanet" and math.prod(self.seanet.ratios) != self.hop_length:
            raise ValueError(
                f"seanet decoder ratios give hop {math.prod(self.seanet.ratios)} but the encoder's hop is "
                f"{self.hop_length}"
            )

    @property
    def hop_length(self) -> int:
        """Samples per frame (3200 at 16 kHz / 5 Hz)."""
        if self.encoder == "seanet":
            return math.prod(self.seanet.ratios)
        return self.mel.mel_hop * math.prod(self.mel.strides)

    @property
    def frame_rate(self) -> float:
        """Frames (= RVQ token columns) per second."""
        return self.sample_rate / self.hop_length

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def bitrate(self) -> float:
        """Bits per second at full depth: Q * log2(codebook_size) * frame_rate."""
        return self.num_codebooks * math.log2(self.codebook_size) * self.frame_rate

    @property
    def tokens_per_second(self) -> float:
        return self.num_codebooks * self.frame_rate
