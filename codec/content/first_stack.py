"""A phone-input codec's first quantizer stack, pretrained for recognition and grafted into the codec.

In a codec with ``model.content.phone_input`` the first ``quantizer.split_levels`` levels quantize a projection of a
frozen recognizer's output. Trained inside the codec (mel loss + a linear frame classifier on 2 s crops) those levels
kept only part of the phonemes: the fixed probe read levels 1–4 at 51–52 % PER where it read their unquantized input
at 22.5 %. The same projection and levels trained alone, by a CTC reader on whole utterances, keep most of them
(34 % under the same probe; ``docs/codec_training.md``, session 15). This module does that training
(``ucodec train-phone-stack``) and writes the result into a codec (``ucodec train-codec --init-stack``).

Shapes: features ``[F, s * (V + 1)]`` per utterance (the recognizer's output stacked per frame, as
:meth:`codec.nn.phone_input.PhoneInput.frame_features` gives it) → projection ``[B, D, F]`` → ``levels`` residual
levels → CTC reader ``[B, F * U, V + 1]``. The saved file holds the projection and the levels under the codec's own
parameter names (``phone_input.proj.*``, ``quantizer.layers.<i>.*``), in safetensors, with metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from codec.config import CodecConfig, ContentConfig
from codec.nn.content import CtcHead, ctc_loss, error_rate, greedy_decode
from codec.nn.phone_input import PhoneInput
from codec.nn.quantizer import FactorizedRVQ

FORMAT = "ucodec-first-stack/1"


@dataclass(frozen=True)
class StackTrainConfig:
    """How the first stack is pretrained (the defaults are session 15's study: 30 % dev PER at 1,500 steps)."""

    steps: int = 1500
    batch_size: int = 16  # whole utterances per step
    lr: float = 1e-3  # Adam, constant
    utterances: int = 2000  # random training utterances whose features are extracted once (0 = all)
    seed: int = 0
    reader_upsample: int = 8  # CTC sub-frames per 200 ms frame (40 Hz)
    reader_channels: int = 128

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.utterances < 0:
            raise ValueError("the stack needs steps >= 1, batch_size >= 1, lr > 0 and utterances >= 0")


def recognizer_fingerprint(phone_input: PhoneInput) -> str:
    """A short hash of the frozen recognizer's weights: a stack only fits the recognizer it was trained on."""
    h = hashlib.sha256()
    for name, value in sorted(phone_input.recognizer.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class FirstStack(nn.Module):
    """Projection + ``levels`` RVQ levels + CTC reader: features ``[B, F, W]`` → log-probs ``[B, F * U, V + 1]``."""

    def __init__(self, codec: CodecConfig, width: int, cfg: StackTrainConfig) -> None:
        super().__init__()
        levels, dim = codec.quantizer.split_levels, codec.dimension
        self.proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))  # = PhoneInput.proj
        self.quantizer = FactorizedRVQ(
            replace(codec.quantizer, num_codebooks=levels, split_levels=0, dropout_layers=()), dim, norm=codec.norm
        )
        reader = ContentConfig(
            levels=1,
            symbols=codec.content.symbols,
            ctc_upsample=cfg.reader_upsample,
            ctc_channels=cfg.reader_channels,
        )
        self.reader = CtcHead(dim, reader)
        self.upsample = cfg.reader_upsample

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, F, W]`` → (log-probs ``[B, F * U, V + 1]``, the quantizer's commitment + codebook loss)."""
        out = self.quantizer(self.proj(x).transpose(1, 2))
        q = self.quantizer.cfg
        return self.reader(out.quantized), q.commitment_weight * out.commitment_loss + q.codebook_weight * (
            out.codebook_loss
        )

    def codec_state(self) -> dict[str, torch.Tensor]:
        """The projection and levels under the codec's parameter names."""
        state = {f"phone_input.proj.{k}": v for k, v in self.proj.state_dict().items()}
        state.update({f"quantizer.{k}": v for k, v in self.quantizer.state_dict().items()})
        return {k: v.detach().contiguous() for k, v in state.items()}


def _pad(xs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame features of several utterances → zero-padded ``[B, Fmax, W]`` float and their frame counts ``[B]``."""
    frames = torch.tensor([x.shape[0] for x in xs])
    out = torch.zeros(len(xs), int(frames.max()), xs[0].shape[1])
    for i, x in enumerate(xs):
        out[i, : x.shape[0]] = x.float()
    return out, frames


@torch.no_grad()
def stack_per(stack: FirstStack, feats: list[torch.Tensor], phonemes: list[list[int]]) -> float:
    """Greedy PER of the stack's reader on utterances (one at a time, no padding)."""
    was = stack.training
    stack.eval()
    hyps = []
    for x in feats:
        logp, _ = stack(x.float()[None])
        hyps.extend(greedy_decode(logp, torch.tensor([x.shape[0] * stack.upsample])))
    stack.train(was)
    return error_rate(hyps, phonemes)


def train_first_stack(
    codec: CodecConfig,
    train: tuple[list[torch.Tensor], list[list[int]]],
    cfg: StackTrainConfig,
    progress: bool = True,
) -> FirstStack:
    """Train a :class:`FirstStack` on precomputed frame features and phoneme ids; dead codes revive as in the codec
    trainer (:meth:`FactorizedRVQ.revive_dead_codes`)."""
    from tqdm.auto import tqdm

    feats, phonemes = train
    if not feats:
        raise ValueError("no training utterance with phonemes")
    torch.manual_seed(cfg.seed)
    stack = FirstStack(codec, feats[0].shape[1], cfg)
    opt = torch.optim.Adam(stack.parameters(), cfg.lr)
    rng = random.Random(cfg.seed)
    ema = None
    bar = tqdm(range(cfg.steps), desc="first stack", unit="step", disable=not progress)
    for _ in bar:
        idx = [rng.randrange(len(feats)) for _ in range(cfg.batch_size)]
        x, frames = _pad([feats[i] for i in idx])
        logp, aux = stack(x)
        loss = ctc_loss(logp, [torch.tensor(phonemes[i]) for i in idx], frames, cfg.reader_upsample) + aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        usage = stack.quantizer.take_usage()
        if usage is not None:
            ema, _ = stack.quantizer.revive_dead_codes(usage, ema)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return stack.eval()


@torch.no_grad()
def stack_features(
    phone_input: PhoneInput, utts: list, language: str = "en-us", progress: bool = True
) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Per utterance with phonemes: its frame features ``[F, W]`` (fp16, whole file, zero-padded to whole frames as
    the codec pads) and its phoneme ids. Utterances whose text has no phoneme are left out."""
    from tqdm.auto import tqdm

    from codec.audio import load_audio
    from codec.content.phonemes import phoneme_ids

    hop, rate = phone_input.hop_length, phone_input.recognizer.cfg.sample_rate
    feats, targets = [], []
    ids = phoneme_ids([u.text or "" for u in utts], language)
    for u, ph in tqdm(list(zip(utts, ids, strict=True)), desc="features", unit="utt", disable=not progress):
        if not ph:
            continue
        wav = load_audio(u.audio, rate)
        frames = -(-wav.shape[-1] // hop)
        wav = torch.nn.functional.pad(wav, (0, frames * hop - wav.shape[-1]))
        feats.append(phone_input.frame_features(wav[None])[0].half())
        targets.append(ph)
    return feats, targets


def pretrain_first_stack(
    codec: CodecConfig,
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    phone_model: str | os.PathLike,
    cfg: StackTrainConfig,
    dev: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """``ucodec train-phone-stack``: features of ``cfg.utterances`` random utterances of ``manifest``, the stack
    trained on them, scored on ``dev`` (greedy PER, %), saved to ``out``. Returns the saved metadata.

    Raises:
        ValueError: a codec config without phone input, a manifest without transcribed utterances.
    """
    from codec.manifest import read_manifest

    if not codec.content.phone_input:
        raise ValueError("the codec config has no phone input (set content.phone_input=true, quantizer.split_levels)")
    phone_input = PhoneInput(
        codec.content.symbols, codec.dimension, codec.hop_length, codec.sample_rate, codec.content.phone_features
    )
    phone_input.load_recognizer(phone_model)
    utts = read_manifest(manifest)
    if cfg.utterances and cfg.utterances < len(utts):
        utts = random.Random(cfg.seed).sample(utts, cfg.utterances)
    train = stack_features(phone_input, utts, progress=progress)
    if not train[0]:
        raise ValueError(f"{manifest}: no utterance with a transcript that has phonemes")
    dev_set = stack_features(phone_input, read_manifest(dev), progress=progress) if dev else None
    stack = train_first_stack(codec, train, cfg, progress)
    dev_per = round(100 * stack_per(stack, *dev_set), 2) if dev_set and dev_set[0] else None
    meta = stack_meta(codec, phone_input, cfg, len(train[0]), dev_per)
    save_first_stack(stack, out, meta)
    return meta


def save_first_stack(stack: FirstStack, path: str | os.PathLike, meta: dict) -> None:
    """Write the stack (codec parameter names) and ``meta`` to one safetensors file, atomically."""
    from codec.atomic import safetensors_save_atomic

    info = {"format": FORMAT, **meta}
    safetensors_save_atomic(stack.codec_state(), path, metadata={"first_stack": json.dumps(info)})


def load_first_stack(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state, meta)`` of a file written by :func:`save_first_stack`.

    Raises:
        FileNotFoundError / ValueError: no such file, or not a first-stack file.
    """
    from safetensors import SafetensorError, safe_open

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such first-stack file (ucodec train-phone-stack writes one)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("first_stack", "{}"))
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a first-stack file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a first-stack file (ucodec train-phone-stack writes one)")
    return state, meta


def graft_first_stack(model: nn.Module, path: str | os.PathLike) -> str:
    """Copy a pretrained first stack into a phone-input codec (after its recognizer is loaded); returns a log line.

    The projection, the in-projections and the codebooks of levels ``0..split-1`` are the stack's; those levels'
    output projections start at zero gain, so the codec at first decodes from its second stack alone and learns
    how to render the phonetic levels. Freeze what should not move with ``train.frozen``.

    Raises:
        ValueError: the codec has no phone input, another split, width or recognizer than the stack.
    """
    state, meta = load_first_stack(path)
    phone_input = getattr(model, "phone_input", None)
    if phone_input is None:
        raise ValueError("--init-stack needs a codec with phone input (model.content.phone_input: true)")
    split = model.config.quantizer.split_levels
    if meta.get("levels") != split:
        raise ValueError(f"{path}: a stack of {meta.get('levels')} levels; this codec's split_levels is {split}")
    if meta.get("recognizer") != recognizer_fingerprint(phone_input):
        raise ValueError(f"{path}: trained on another recognizer than this codec's (train.phone_model)")
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"{path}: does not fit this codec ({len(bad)} tensors differ, e.g. {bad[0]})")
    keep = {k: v for k, v in state.items() if ".out_proj." not in k}
    model.load_state_dict(keep, strict=False)
    model.quantizer.silence_levels(split)
    per = f", dev PER {meta['dev_per']} %" if meta.get("dev_per") is not None else ""
    return f"first stack: {len(keep)} tensors (levels 1-{split}{per}) from {path}"


def stack_meta(codec: CodecConfig, phone_input: PhoneInput, cfg: StackTrainConfig, n: int, dev_per) -> dict:
    """What :func:`save_first_stack` records next to the weights."""
    return {
        "levels": codec.quantizer.split_levels,
        "dimension": codec.dimension,
        "features": phone_input.features,
        "recognizer": recognizer_fingerprint(phone_input),
        "utterances": n,
        "train": asdict(cfg),
        "dev_per": dev_per,
    }
