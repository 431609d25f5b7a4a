"""How much of the words the first RVQ levels carry, independent of the decoder (``eval codec --probe-train``).

Phoneme error rates (PER, espeak-ng phonemes without stress, :mod:`codec.content.phonemes`):

- **head PER**: the codec's own CTC head (when it has one) read greedily from its first ``content.levels`` levels;
- **frame-classifier PER**: the codec's linear frame classifier (``content.frame_labels``), its argmax per sub-frame
  with repeats merged and "no phone" dropped;
- **probe PER** (fixed protocol, so any two codecs compare): a fresh small CTC probe (the same shape as the content
  head: 8 sub-frames per frame, 128 channels) trained on the *frozen* sum of the first ``k`` levels of
  ``PROBE.train_utterances`` training utterances for ``PROBE.steps`` Adam steps (seed 0), then scored on the test
  utterances; one probe per ``k`` in ``PROBE.levels`` (1, 4 and all levels by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from codec.config import ContentConfig
from codec.nn.content import CtcHead, ctc_loss, error_rate, greedy_decode


@dataclass(frozen=True)
class ProbeProtocol:
    """The fixed probe protocol (change it and earlier numbers no longer compare)."""

    levels: tuple[int, ...] = (1, 4, 32)  # prefixes probed (clipped to the codec's depth)
    train_utterances: int = 600  # first N utterances of the probe's training manifest
    steps: int = 1500  # Adam steps
    batch_size: int = 16
    lr: float = 2e-3
    channels: int = 128
    upsample: int = 8
    seed: int = 0


PROBE = ProbeProtocol()


@dataclass
class Features:
    """Frozen prefix sums of a set of utterances: ``prefix[k]`` is a list of ``[D, F]`` tensors."""

    prefix: dict[int, list[torch.Tensor]]
    phonemes: list[list[int]]
    phone_input: list[torch.Tensor] | None = None  # the first stack's input [D, F] before quantization, if any


@torch.inference_mode()
def extract(codec, utts, levels: tuple[int, ...], language: str = "en-us", progress: bool = False) -> Features:
    """Encode each utterance once and keep the sum of its first ``k`` levels for every ``k`` in ``levels``."""
    from tqdm import tqdm

    from codec.audio import load_audio
    from codec.content.phonemes import phoneme_ids

    ids = phoneme_ids([u.text or "" for u in utts], language)
    prefix: dict[int, list[torch.Tensor]] = {k: [] for k in levels}
    phone_input = [] if getattr(codec, "phone_input", None) is not None else None
    kept = []
    for u, ph in tqdm(list(zip(utts, ids, strict=True)), desc="probe features", disable=not progress):
        if not ph:
            continue
        wav = load_audio(u.audio, codec.sample_rate)
        codes = codec.encode(wav[None], num_codebooks=max(levels))
        for k in levels:
            prefix[k].append(codec.quantizer.decode(codes[:, :k])[0].float().clone())
        if phone_input is not None:
            phone_input.append(codec.split_latent(wav[None])[0].float().clone())
        kept.append(ph)
    return Features(prefix, kept, phone_input)


def _batches(n: int, size: int, gen: torch.Generator):
    while True:
        for chunk in torch.randperm(n, generator=gen).split(size):
            yield chunk.tolist()


def _pad(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    frames = torch.tensor([x.shape[-1] for x in items])
    out = torch.zeros(len(items), items[0].shape[0], int(frames.max()))
    for i, x in enumerate(items):
        out[i, :, : x.shape[-1]] = x
    return out, frames


def train_probe(train: list[torch.Tensor], targets: list[list[int]], num_symbols: int, p: ProbeProtocol) -> CtcHead:
    """Fit a fresh CTC probe on frozen features ``[D, F]`` → phoneme ids (fixed seed and steps)."""
    torch.manual_seed(p.seed)
    cfg = ContentConfig(
        levels=1, symbols=tuple(str(i) for i in range(num_symbols)), ctc_upsample=p.upsample, ctc_channels=p.channels
    )
    probe = CtcHead(train[0].shape[0], cfg)
    opt = torch.optim.Adam(probe.parameters(), p.lr)
    gen = torch.Generator().manual_seed(p.seed)
    batches = _batches(len(train), p.batch_size, gen)
    with torch.enable_grad():
        for _ in range(p.steps):
            idx = next(batches)
            x, frames = _pad([train[i] for i in idx])
            loss = ctc_loss(probe(x), [torch.tensor(targets[i]) for i in idx], frames, p.upsample)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return probe.eval()


@torch.inference_mode()
def head_per(feats: list[torch.Tensor], refs: list[list[int]], head: torch.nn.Module, upsample: int) -> float:
    """PER of a CTC head (the codec's own or a probe) or of the frame classifier on ``[D, F]`` features, greedy
    decoding of ``head``'s ``[1, F * upsample, V + 1]`` scores."""
    hyps = []
    for x in feats:
        hyps.extend(greedy_decode(head(x[None]), torch.tensor([x.shape[-1] * upsample])))
    return error_rate(hyps, refs)


def content_scores(codec, train_utts, test_utts, protocol: ProbeProtocol = PROBE, progress: bool = True) -> dict:
    """``{"head_per": float | None, "frames_per": float | None, "probe_per": {k: float}, "levels": K, ...}`` for a
    codec (see module doc); a codec with phone input also gets ``"input_per"``, the same probe on the first stack's
    input before quantization (what its levels could hold at best).

    Raises:
        ValueError: espeak-ng is missing, or no test/train utterance has a phoneme.
    """
    from codec.content.phonemes import CTC_SYMBOLS

    q = codec.num_codebooks
    levels = tuple(sorted({min(k, q) for k in protocol.levels}))
    content = codec.config.content
    heads = getattr(codec, "content", None)
    own = content.levels if heads is not None and heads.ctc is not None else None
    framed = content.levels if heads is not None and heads.frames is not None else None
    need = tuple(sorted(set(levels) | {k for k in (own, framed) if k}))
    test = extract(codec, test_utts, need, progress=progress)
    train = extract(codec, train_utts[: protocol.train_utterances], levels, progress=progress)
    if not test.phonemes or not train.phonemes:
        raise ValueError("the probe needs transcripts with phonemes in both manifests")
    out: dict = {
        "levels": own,
        "head_per": None,
        "frames_per": None,
        "probe_per": {},
        "protocol": protocol.__dict__,
        "test_utterances": len(test.phonemes),
        "train_utterances": len(train.phonemes),
    }
    if own:
        out["head_per"] = head_per(test.prefix[own], test.phonemes, heads.ctc, content.ctc_upsample)
    if framed:  # the frame classifier's argmax per sub-frame, repeats merged and "no phone" (0) dropped
        out["levels"] = framed
        out["frames_per"] = head_per(test.prefix[framed], test.phonemes, heads.frames, content.ctc_upsample)
    for k in levels:
        probe = train_probe(train.prefix[k], train.phonemes, len(CTC_SYMBOLS), protocol)
        out["probe_per"][k] = head_per(test.prefix[k], test.phonemes, probe, protocol.upsample)
    if train.phone_input is not None:  # the ceiling of the first stack: what reached it, before quantization
        probe = train_probe(train.phone_input, train.phonemes, len(CTC_SYMBOLS), protocol)
        out["input_per"] = head_per(test.phone_input, test.phonemes, probe, protocol.upsample)
    return out
