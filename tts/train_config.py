"""Typed configuration of TTS training: data (token budget, prompts), optimisation, bookkeeping, warm starts.

An experiment directory stores ``model:`` (a :class:`tts.config.TTSConfig`) and ``train:`` (a
:class:`TTSTrainConfig`) in ``config.yaml``. ``configs/tts/train_cpu.yaml`` is the 2-core recipe of the shipped
model and ``configs/tts/finetune_cpu.yaml`` the one of ``recipes/finetune``; ``docs/tts_training.md`` explains the
values. The model section of a fine-tuning run comes from the release it starts from (:func:`load_tts_experiment`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from codec.configio import apply_overrides, from_dict, read_mapping, to_dict
from tts.config import TTSConfig

DEFAULT_TRAIN_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tts" / "train_cpu.yaml"


@dataclass(frozen=True)
class PromptConfig:
    """How a training utterance gets its voice prompt (the paper's recipe, see ``docs/tts_training.md``).

    Per utterance: with probability ``p_none`` no prompt; otherwise, with probability ``p_transcript``, a whole other
    utterance of the same speaker (at most ``max_transcript_seconds`` long) whose transcript is prepended to the
    text; otherwise a random ``crop_seconds`` segment of another utterance of the same speaker, without text.
    """

    p_none: float = 0.1  # no prompt: the model must also speak (in some voice) without one
    p_transcript: float = 0.3  # prompt = a whole short utterance, its transcript prepended to the target text
    crop_seconds: tuple[float, float] = (2.0, 4.0)  # length range of a text-less prompt crop (~3 s)
    max_transcript_seconds: float = 6.0  # only utterances up to this long serve as whole prompts with transcript

    def __post_init__(self) -> None:
        for name in ("p_none", "p_transcript"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"prompt.{name} must be in [0, 1], got {getattr(self, name)}")
        lo, hi = self.crop_seconds
        if not 0 < lo <= hi:
            raise ValueError(f"prompt.crop_seconds must be [low, high] with 0 < low <= high, got {[lo, hi]}")


@dataclass(frozen=True)
class TTSTrainConfig:
    """Everything about a TTS training run except the model architecture."""

    codec: str = "default"  # codec release (directory or shipped name) the token store was made with
    seed: int = 1234  # RNG seed (init, batch order, prompts)
    max_tokens: int = 3000  # global positions per batch and process: B * longest (text + prompt + target)
    max_batch_size: int = 32  # cap on utterances per batch
    num_buckets: int = 10  # length buckets of the batch sampler
    min_seconds: float = 0.4  # shorter utterances are not trained on
    max_seconds: float = 20.0  # longer ones neither (they would get a batch of their own)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    num_workers: int = 1  # DataLoader workers per process
    max_steps: int = 30000  # stop after this many optimisation steps
    lr: float = 8e-4  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    weight_decay: float = 0.01  # AdamW weight decay (matrices only; norms and embeddings are not decayed)
    warmup_steps: int = 500  # linear warm-up steps
    lr_min_ratio: float = 0.05  # cosine decays to lr * lr_min_ratio at max_steps
    grad_clip: float = 1.0  # max gradient norm (0 disables)
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # accelerate precision (bf16 on GPUs)
    log_every: int = 10  # metrics.csv interval (steps)
    checkpoint_every: int = 250  # checkpoint interval (steps)
    keep_checkpoints: int = 2  # how many step_*.pt to keep
    eval_every: int = 500  # dev loss interval (steps; 0 disables; needs --dev-store)
    eval_batches: int = 8  # fixed dev batches per evaluation
    eval_samples: int = 2  # dev utterances synthesized per evaluation (zero-shot, prompt from the same speaker)
    eval_wer: bool = True  # score the samples with Whisper tiny.en when the [eval] extra is installed
    init_from: str | None = None  # TTS release to fine-tune from (weights, frontend and codec)
    init_global: str | None = None  # local Llama/Qwen-style directory to warm-start the global model from
    # With init_from: parameter-name prefixes not taken from the release but trained afresh (e.g. ["local."]); a
    # release that predicts another number of layers a local step relearns "local." anyway.
    relearn: tuple[str, ...] = ()
    # Aligned text (model.aligned_text): `ucodec align` JSONL files of the train and dev utterances. When given
    # (for any model), utterances without times, or whose Whisper alignment matched fewer than min_word_match of
    # their words, are not trained on.
    word_times: tuple[str, ...] = ()
    min_word_match: float = 0.5

    def __post_init__(self) -> None:
        if self.max_tokens < 1 or self.max_batch_size < 1 or self.num_buckets < 1 or self.max_steps < 1:
            raise ValueError("max_tokens, max_batch_size, num_buckets and max_steps must be >= 1")
        if self.keep_checkpoints < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("keep_checkpoints, checkpoint_every and log_every must be >= 1")
        if not 0 <= self.min_word_match <= 1:
            raise ValueError(f"train.min_word_match must be in [0, 1], got {self.min_word_match}")
        if not 0 <= self.min_seconds < self.max_seconds:
            raise ValueError(f"need 0 <= min_seconds < max_seconds, got {self.min_seconds}, {self.max_seconds}")


@dataclass(frozen=True)
class TTSExperimentConfig:
    """``model`` + ``train``: what a TTS experiment directory's ``config.yaml`` holds."""

    model: TTSConfig = field(default_factory=TTSConfig)
    train: TTSTrainConfig = field(default_factory=TTSTrainConfig)

    def to_dict(self) -> dict:
        return to_dict(self)


def load_tts_experiment(
    model_path: str | None,
    train_path: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    init_from: str | None = None,
) -> TTSExperimentConfig:
    """Combine a model YAML (or the config of the release ``init_from``) and a training YAML, then apply
    ``model.x=..``/``train.x=..`` overrides.

    Fine-tuning (``init_from``) takes the model section from the release and, unless overridden, trains with the
    codec bundled in it, so the token store must be made with that codec (``ucodec tokenize --model REL/codec``).

    Raises:
        ValueError: unknown keys, wrong types, an override without a prefix, or both a model YAML and ``init_from``.
        FileNotFoundError: a missing file or release.
    """
    for item in overrides:
        if not item.split("=", 1)[0].startswith(("model.", "train.")):
            raise ValueError(f"override {item!r} must start with 'model.' or 'train.'")
    train = read_mapping(train_path) if train_path else {}
    if init_from is not None:
        if model_path is not None:
            raise ValueError("--init-from takes the model config from the release; do not also give --config")
        from codec.release import load_release, resolve_release
        from tts.config import FORMAT_VERSION
        from tts.pipeline import ALIASES, CODEC_DIR

        root = resolve_release(init_from, ALIASES).resolve()
        model = load_release(root, "tts", FORMAT_VERSION, verify=False).config
        train = {**train, "init_from": str(root), "codec": str(root / CODEC_DIR)}
    elif model_path is not None:
        model = read_mapping(model_path)
    else:
        raise ValueError("give the model config (--config) or a release to fine-tune (--init-from)")
    data = apply_overrides({"model": model, "train": train}, overrides)
    cfg = from_dict(TTSExperimentConfig, data, where="experiment config")
    # Directories are stored absolute, so export and resume work from any working directory.
    paths = {
        name: str(Path(value).expanduser().resolve())
        for name in ("codec", "init_from", "init_global")
        if (value := getattr(cfg.train, name)) is not None and Path(value).expanduser().is_dir()
    }
    times = tuple(str(Path(p).expanduser().resolve()) for p in cfg.train.word_times)
    return replace(cfg, train=replace(cfg.train, word_times=times, **paths))
