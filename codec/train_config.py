"""Typed configuration of codec training (optimisation, data, losses, discriminators, bookkeeping).

Kept apart from :mod:`codec.config` because a release needs only the model config; an experiment directory stores
both (``exp/config.yaml`` holds ``model:`` and ``train:`` sections).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from codec.config import CodecConfig
from codec.configio import apply_overrides, from_dict, read_mapping, to_dict


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Widths and resolutions of the discriminators."""

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)  # multi-period discriminator periods
    mpd_channels: int = 8  # first MPD width (x4 per layer)
    mpd_max_channels: int = 128  # MPD width cap
    stft_ffts: tuple[int, ...] = (512, 1024, 256)  # multi-resolution STFT discriminator sizes
    stft_channels: int = 64  # STFT discriminator width


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator loss terms."""

    mel: float = 15.0  # multi-resolution mel L1
    adversarial: float = 1.0  # generator adversarial loss
    feature_matching: float = 2.0  # discriminator feature matching
    commitment: float = 1.0  # multiplies QuantizerConfig.commitment_weight * commitment loss
    codebook: float = 1.0  # multiplies QuantizerConfig.codebook_weight * codebook loss
    ctc: float = 0.0  # phoneme CTC loss of the content head on the first model.content.levels levels
    distill: float = 0.0  # cosine distance of the projected first levels to the teacher's features
    phones: float = 0.0  # cross-entropy of the frame classifier's sub-frame phonemes (model.content.frame_labels)


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a training run except the model architecture."""

    seed: int = 1234  # RNG seed (data order, crops, init)
    batch_size: int = 8  # crops per process per step
    crop_seconds: float = 2.0  # random crop length (rounded down to whole frames)
    # a model with a voice conditioner (model.speaker_hidden) reads a crop of this length from another utterance of
    # each item's speaker (rounded down to whole frames)
    reference_seconds: float = 3.0
    num_workers: int = 1  # DataLoader workers per process
    max_steps: int = 100000  # stop after this many optimisation steps
    lr: float = 5e-4  # generator peak learning rate
    lr_disc: float = 2e-4  # discriminator learning rate
    betas: tuple[float, float] = (0.8, 0.99)  # AdamW betas
    weight_decay: float = 0.0  # AdamW weight decay
    warmup_steps: int = 500  # linear warm-up steps
    lr_min_ratio: float = 0.1  # cosine decays to lr * lr_min_ratio at max_steps
    grad_clip: float = 1.0  # max gradient norm (0 disables)
    disc_start: int = 5000  # step at which the adversarial losses switch on
    adversarial: Literal["hinge", "lsgan"] = "hinge"  # GAN objective
    loss_weights: LossWeights = field(default_factory=LossWeights)
    mel_ffts: tuple[int, ...] = (256, 512, 1024, 2048)  # mel loss resolutions
    mel_bins: tuple[int, ...] = (32, 64, 80, 128)  # mel bands per resolution
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loudness_db: float = -23.0  # crops are gain-normalised to this RMS level (dBFS)
    gain_jitter_db: float = 3.0  # augmentation: random gain +- this many dB after normalisation
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # accelerate precision (GPU)
    log_every: int = 10  # CSV/TensorBoard logging interval (steps)
    checkpoint_every: int = 500  # checkpoint interval (steps)
    keep_checkpoints: int = 2  # how many step_*.pt to keep
    eval_every: int = 1000  # dev evaluation interval (steps; 0 disables)
    eval_utterances: int = 8  # fixed dev subset size
    eval_seconds: float = 6.0  # dev utterances are cut to this length
    eval_depths: tuple[int, ...] = ()  # also score the decode of only the first N levels (columns *_N in eval.csv)
    # the saved phoneme recognizer (ucodec train-phone-model; a directory or a shipped name) a model with
    # content.phone_input starts from; read once when a run starts (fresh or --init-from), since its weights then
    # live in the checkpoints
    phone_model: str = "phone-aligner"
    # parameters that do not train: shell patterns on their names (fnmatch), e.g. a pretrained first stack with
    # ["phone_input.proj.*", "quantizer.layers.[0-3].in_proj.*", "quantizer.layers.[0-3].codebook.*"]; their
    # codebooks are also spared by dead-code revival
    frozen: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodecExperimentConfig:
    """``model`` + ``train``: what an experiment directory's ``config.yaml`` holds."""

    model: CodecConfig = field(default_factory=CodecConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return to_dict(self)


def load_experiment_config(
    model_path: str, train_path: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> CodecExperimentConfig:
    """Combine a model YAML and an optional training YAML, then apply ``model.x=..``/``train.x=..`` overrides.

    Raises:
        ValueError: unknown keys, wrong types, or an override without a ``model.``/``train.`` prefix.
    """
    data = {"model": read_mapping(model_path), "train": read_mapping(train_path) if train_path else {}}
    for item in overrides:
        if not item.split("=", 1)[0].startswith(("model.", "train.")):
            raise ValueError(f"override {item!r} must start with 'model.' or 'train.'")
    return from_dict(CodecExperimentConfig, apply_overrides(data, overrides), where="experiment config")
