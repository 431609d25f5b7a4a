"""Training of the alignment phone model (``ucodec train-phone-model MANIFEST STORE OUT``).

Whole utterances (a CTC target needs the whole transcript), batched by length to ``batch_seconds`` of audio, the
phoneme ids of a content store (:mod:`codec.content.store`) as targets. A fixed slice of the manifest (every 50th
utterance, at most 200) is held out and scored by greedy PER at each evaluation; the model is saved atomically
after each one, so an interrupted run leaves the last evaluated model.
"""

from __future__ import annotations

import math
import os
import random

import torch
import torch.nn.functional as F

from codec.content.phone_model import PhoneModel, PhoneModelConfig, save_phone_model


def _batches(durations: list[float], batch_seconds: float) -> list[list[int]]:
    """Index lists of similar-length utterances, each at most ``batch_seconds`` of padded audio (at least one)."""
    order = sorted(range(len(durations)), key=lambda i: durations[i])
    out, cur = [], []
    for i in order:
        if cur and (len(cur) + 1) * durations[i] > batch_seconds:
            out.append(cur)
            cur = []
        cur.append(i)
    return out + ([cur] if cur else [])


def _load(paths: list[str], idx: list[int], rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded wavs ``[B, T]`` and lengths ``[B]`` of utterances ``idx``."""
    from codec.audio import load_audio

    wavs = [load_audio(paths[i], rate)[0] for i in idx]
    lengths = torch.tensor([w.shape[-1] for w in wavs])
    batch = torch.zeros(len(wavs), int(lengths.max()))
    for k, w in enumerate(wavs):
        batch[k, : w.shape[-1]] = w / w.abs().max().clamp_min(1e-4) * 0.5
    return batch, lengths


@torch.inference_mode()
def dev_per(model: PhoneModel, paths, targets, idx: list[int]) -> float:
    """Greedy phoneme error rate of ``model`` on utterances ``idx``."""
    from codec.nn.content import error_rate, greedy_decode

    model.eval()
    hyps, refs = [], []
    for i in idx:
        wav, n = _load(paths, [i], model.cfg.sample_rate)
        hyps.extend(greedy_decode(model(wav), model.steps(n)))
        refs.append(targets[i])
    model.train()
    return error_rate(hyps, refs)


def train_phone_model(
    manifest: str | os.PathLike,
    content_dir: str | os.PathLike,
    out: str | os.PathLike,
    steps: int = 2000,
    batch_seconds: float = 60.0,
    lr: float = 1e-3,
    eval_every: int = 500,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train a :class:`PhoneModel` and save it to ``out``; returns ``{"dev_per", "steps", ...}``.

    Raises:
        FileNotFoundError / ValueError: no manifest or store, or no utterance of the manifest has phonemes there.
    """
    from tqdm import tqdm

    from codec.content.store import ContentStore
    from codec.manifest import read_manifest

    if steps < 1 or batch_seconds <= 0 or eval_every < 1 or lr <= 0:
        raise ValueError("steps and eval_every must be >= 1, batch_seconds and lr > 0")
    store = ContentStore(content_dir)
    utts = [u for u in read_manifest(manifest) if store.phonemes.get(u.id)]
    if len(utts) < 2:
        raise ValueError(f"{manifest}: fewer than 2 utterances with phonemes in {content_dir}")
    torch.manual_seed(seed)
    paths = [u.audio for u in utts]
    targets = [store.phonemes[u.id] for u in utts]
    dev = list(range(0, len(utts), 50))[:200]
    held = set(dev)
    train = [i for i in range(len(utts)) if i not in held]
    durations = [float(utts[i].duration or 0.0) or 1.0 for i in train]
    batches = [[train[k] for k in b] for b in _batches(durations, batch_seconds)]
    model = PhoneModel(PhoneModelConfig(symbols=store.info.symbols, sample_rate=store.info.sample_rate))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = min(200, steps // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    rng = random.Random(seed)
    order: list[list[int]] = []
    info: dict = {"manifest": str(manifest), "train_utterances": len(train), "dev_utterances": len(dev)}
    bar = tqdm(range(steps), desc="phone model", unit="step", disable=not progress)
    for step in bar:
        if not order:
            order = batches[:]
            rng.shuffle(order)
        idx = order.pop()
        wav, n = _load(paths, idx, model.cfg.sample_rate)
        log_probs = model(wav, n)
        tgt = [torch.tensor(targets[i]) for i in idx]
        loss = F.ctc_loss(
            log_probs.transpose(0, 1),
            torch.cat(tgt),
            model.steps(n),
            torch.tensor([len(t) for t in tgt]),
            blank=0,
            zero_infinity=True,
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(ctc=f"{loss.item():.3f}")
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            info.update(steps=step + 1, dev_per=round(dev_per(model, paths, targets, dev), 4))
            bar.write(f"step {step + 1}: dev PER {info['dev_per']:.1%}")
            save_phone_model(model, out, info)
    return info
